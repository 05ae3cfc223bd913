//! Host GPU service for suanli jobs, over `wgpu`.
//!
//! [`Gpu`] picks one adapter (a real GPU when there is one, the Vulkan software
//! driver lavapipe otherwise). Each [`Slot`] owns one long-lived `wgpu::Device`:
//! creating a device costs most of a second on lavapipe, so it is never done per
//! job. A job borrows a slot through a [`JobGpu`], which holds the job's handle
//! tables and quotas and meters the GPU time of every dispatch. Dropping the
//! `JobGpu` drops every GPU object the job created. A slot remembers checked
//! shaders and built pipelines across its jobs (see `pipeline_cache`).
//!
//! **Architecture invariant:** this crate knows nothing about wasm or networks.
//! Every value it is given may come from an untrusted job, so every wgpu call
//! runs inside error scopes and invalid input becomes a [`GpuError`], never a panic.

mod adapter;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod job;
mod pipeline_cache;
mod quota;
mod scope;
mod shader_check;
mod slot;

pub use adapter::{AdapterInfo, AdapterListing, Gpu, GpuOptions, Metering, list_adapters};
pub use error::{ErrorKind, GpuError};
pub use job::{
    BufferId, BufferUsage, DEFAULT_MAX_DISPATCH, DispatchReport, JobGpu, PipelineId, ShaderId,
};
pub use pipeline_cache::{MAX_CACHED_PIPELINES, MAX_CACHED_SHADERS, PipelineCacheStats};
pub use quota::Quotas;
pub use slot::{Slot, SlotLimits};
