//! Linear-memory and table limits of one job's store.

use wasmtime::ResourceLimiter;

/// Largest table a job may grow (function references, resource handles).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Refuses growth past `max_memory_bytes` with a trap, and remembers that it
/// did so the job's outcome says `memory_limit` rather than a generic trap
/// (Rust's allocator would otherwise abort with an opaque `unreachable`).
pub(crate) struct MemoryLimiter {
    pub(crate) max_memory_bytes: usize,
    pub(crate) hit: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("the job tried to grow its memory to {desired} bytes; the limit is {limit} bytes")]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) desired: usize,
    pub(crate) limit: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.hit = Some(desired);
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired,
                limit: self.max_memory_bytes,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
