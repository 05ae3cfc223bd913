//! Vector add: the smallest useful GPU job. See README.md for the input and
//! output contract. [`reference`] is the CPU reference the tests compare with.

pub mod reference;

#[cfg(target_arch = "wasm32")]
mod job;
