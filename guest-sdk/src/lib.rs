//! Write suanli GPU jobs in safe Rust.
//!
//! A job is a `wasm32-wasip2` component that exports
//! `run(input) -> result<output, string>` and reaches the GPU only through the
//! host's `suanli:gpu/compute` interface: buffers, WGSL kernels and dispatches.
//!
//! ```no_run
//! use suanli_guest::{Buffer, Kernel, Result};
//!
//! const DOUBLE: &str = "
//! @group(0) @binding(0) var<storage, read_write> data: array<f32>;
//! @compute @workgroup_size(64)
//! fn main(@builtin(global_invocation_id) id: vec3<u32>) {
//!     if (id.x < arrayLength(&data)) { data[id.x] = 2.0 * data[id.x]; }
//! }";
//!
//! fn run(input: &[u8]) -> Result<Vec<u8>> {
//!     let data: Vec<f32> = suanli_guest::decode(input)?;
//!     let buf = Buffer::from_slice(&data)?;
//!     Kernel::new(DOUBLE, "main")?.dispatch(&[&buf], suanli_guest::grid(data.len(), 64))?;
//!     buf.read_bytes()
//! }
//! suanli_guest::job!(run);
//! # fn main() {}
//! ```
//!
//! Errors from the host (naga's WGSL diagnostics, validation errors, quota
//! errors) come back as [`Error`] values with the host's message. Limits that
//! end the job (time, memory, GPU budget) are not errors: the job just stops.

mod buffer;
mod error;
mod kernel;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "job",
        path: "wit",
        pub_export_macro: true,
        default_bindings_module: "suanli_guest::bindings",
    });
}

pub use buffer::Buffer;
pub use bytemuck::{Pod, Zeroable};
pub use error::{Error, Result};
pub use kernel::{Kernel, grid};

use bindings::suanli::gpu::compute;
pub use compute::{AdapterInfo, ErrorKind, Limits};

/// The GPU this job runs on, and how its time is metered.
pub fn adapter_info() -> AdapterInfo {
    compute::adapter()
}

/// The device's limits and this job's quotas.
pub fn limits() -> Limits {
    compute::device_limits()
}

/// GPU nanoseconds this job has used so far.
pub fn gpu_time_ns() -> u64 {
    compute::gpu_time_ns()
}

/// Reads little-endian plain values (`f32`, `u32`, ...) from input bytes.
/// Fails when the length is not a multiple of the value size.
pub fn decode<T: Pod>(bytes: &[u8]) -> Result<Vec<T>> {
    let size = std::mem::size_of::<T>();
    if size == 0 || !bytes.len().is_multiple_of(size) {
        return Err(Error::msg(format!(
            "input of {} bytes is not a whole number of {size}-byte values",
            bytes.len()
        )));
    }
    Ok(bytemuck::pod_collect_to_vec(bytes))
}

/// Plain values as little-endian bytes (wasm is little-endian).
pub fn encode<T: Pod>(values: &[T]) -> Vec<u8> {
    bytemuck::cast_slice(values).to_vec()
}

/// Exports `fn(&[u8]) -> Result<Vec<u8>, E: Display>` as the job's `run`.
#[macro_export]
macro_rules! job {
    ($run:path) => {
        struct __SuanliJob;
        impl $crate::bindings::Guest for __SuanliJob {
            fn run(
                input: ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                $run(&input).map_err(|e| ::std::string::ToString::to_string(&e))
            }
        }
        $crate::bindings::export!(__SuanliJob with_types_in $crate::bindings);
    };
}
