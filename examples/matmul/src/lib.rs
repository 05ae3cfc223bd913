//! Tiled matrix multiply with workgroup memory. See README.md for the
//! contract; [`reference`] is the CPU reference.

pub mod reference;

/// The kernel, shared with the native benchmark (`suanli bench`) so both run
/// exactly the same WGSL.
pub const WGSL: &str = include_str!("matmul.wgsl");
/// Rows and columns of C computed by one workgroup.
pub const TILE: u32 = 16;

#[cfg(target_arch = "wasm32")]
mod job;
