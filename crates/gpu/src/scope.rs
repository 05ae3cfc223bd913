//! Error scopes around every wgpu call a job causes, so that validation and
//! out-of-memory errors become values instead of reaching wgpu's default
//! uncaptured-error handler (which panics).

use crate::{ErrorKind, GpuError};

/// Runs `f` inside validation, out-of-memory and internal error scopes and
/// returns the first error captured. wgpu's scope stack is thread-local, and a
/// slot runs one job at a time on one thread, so scopes never capture another
/// job's errors.
pub(crate) fn scoped<T>(
    device: &wgpu::Device,
    kind: ErrorKind,
    f: impl FnOnce() -> T,
) -> Result<T, GpuError> {
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let value = f();
    let errors = [
        pollster::block_on(validation.pop()),
        pollster::block_on(oom.pop()),
        pollster::block_on(internal.pop()),
    ];
    match errors.into_iter().flatten().next() {
        Some(err) => Err(GpuError::from_wgpu(err, kind)),
        None => Ok(value),
    }
}
