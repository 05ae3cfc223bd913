//! Error scopes around every wgpu call a job causes, so that validation and
//! out-of-memory errors become values instead of reaching wgpu's default
//! uncaptured-error handler (which panics), and the thread shaders compile on.

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

/// Stack of the thread that parses, validates and compiles a job's shader.
/// naga and the driver recurse over the shader's nesting; the limits in
/// `shader_check.rs` keep that far below what a 2 MiB stack holds, and this
/// stack is the margin behind them for whatever those limits miss. Only the
/// pages actually touched are ever backed by memory.
const COMPILER_STACK_BYTES: usize = 64 << 20;

/// Runs `f` on a fresh thread with a [`COMPILER_STACK_BYTES`] stack and waits
/// for it. The caller may be deep in wasmtime on a small stack; a stack
/// overflow aborts the whole process, where a panic would not.
///
/// `f` must do its own [`scoped`] call: wgpu's error scopes are per thread.
/// A panic in `f` (a bug in naga or wgpu on some shader) becomes an
/// [`ErrorKind::InvalidShader`] error instead of unwinding into the caller.
pub(crate) fn on_compiler_stack<T: Send>(
    f: impl FnOnce() -> Result<T, GpuError> + Send,
) -> Result<T, GpuError> {
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .name("suanli-shader-compiler".into())
            .stack_size(COMPILER_STACK_BYTES)
            .spawn_scoped(s, f)
            .map_err(|e| {
                GpuError::new(
                    ErrorKind::OutOfMemory,
                    format!("the host could not start a shader compiler thread: {e}"),
                )
            })?;
        thread.join().unwrap_or_else(|_| {
            Err(GpuError::new(
                ErrorKind::InvalidShader,
                "the shader compiler failed on this shader (it panicked)",
            ))
        })
    })
}
