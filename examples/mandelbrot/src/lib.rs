//! Mandelbrot set rendered on the GPU, returned as a PNG. See README.md;
//! [`reference`] holds the parameters, the palette and the CPU reference.

pub mod reference;

#[cfg(target_arch = "wasm32")]
mod job;
