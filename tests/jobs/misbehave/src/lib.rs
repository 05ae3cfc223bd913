//! A job that misbehaves on request, for the sandbox's bad-input tests. The
//! input is the name of a misdeed, optionally followed by a space and an argument.

#[cfg(target_arch = "wasm32")]
mod job;
