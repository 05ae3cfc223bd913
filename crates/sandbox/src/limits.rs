//! What one job's store may hold: linear memory and table elements summed
//! over all its memories and tables (multi-memory is on, and a component can
//! hold many core instances), and explicit counts of instances, memories and
//! tables (wasmtime's defaults allow 10,000 of each).

use wasmtime::ResourceLimiter;

/// Table elements of all the job's tables together (function references,
/// resource handles).
pub(crate) const MAX_TABLE_ELEMENTS: usize = 1 << 20;
/// Core and component instances in one store. A `wasm32-wasip2` job built
/// with the SDK has fewer than 10.
pub const MAX_INSTANCES: usize = 32;
/// Linear memories in one store (jobs use 1–3).
pub const MAX_MEMORIES: usize = 8;
/// Tables in one store.
pub const MAX_TABLES: usize = 32;

/// Refuses growth that would take the store's memories together past
/// `max_memory_bytes`, with a trap, and remembers that it did so the job's
/// outcome says `memory_limit` rather than a generic trap (Rust's allocator
/// would otherwise abort with an opaque `unreachable`).
pub(crate) struct MemoryLimiter {
    max_memory_bytes: usize,
    memory_bytes: usize,
    table_elements: usize,
    pub(crate) hit: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the job tried to grow its memory to {desired} bytes (all its memories together); the limit is {limit} bytes"
)]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) desired: usize,
    pub(crate) limit: usize,
}

impl MemoryLimiter {
    pub(crate) fn new(max_memory_bytes: usize) -> MemoryLimiter {
        MemoryLimiter {
            max_memory_bytes,
            memory_bytes: 0,
            table_elements: 0,
            hit: None,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_bytes
            .saturating_add(desired.saturating_sub(current));
        if total > self.max_memory_bytes {
            self.hit = Some(total);
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired: total,
                limit: self.max_memory_bytes,
            }));
        }
        self.memory_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .table_elements
            .saturating_add(desired.saturating_sub(current));
        if total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_count_together() {
        let mut l = MemoryLimiter::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        // A second memory of 60 would bring the total to 120.
        assert!(l.memory_growing(0, 60, None).is_err());
        assert_eq!(l.hit, Some(120));
        // Growing the first memory by 40 fits exactly.
        assert!(l.memory_growing(60, 100, None).unwrap());
        assert!(l.memory_growing(100, 101, None).is_err());
    }

    #[test]
    fn tables_count_together() {
        let mut l = MemoryLimiter::new(0);
        assert!(l.table_growing(0, MAX_TABLE_ELEMENTS - 1, None).unwrap());
        assert!(l.table_growing(0, 1, None).unwrap());
        assert!(!l.table_growing(0, 1, None).unwrap());
    }
}
