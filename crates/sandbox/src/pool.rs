//! wasmtime's pooling instance allocator, sized from the per-job limits of
//! `limits.rs`: a job's instances, memories and tables come from slots
//! reserved once per sandbox, and a finished job's memory is reset in place
//! (the first [`PoolingConfig::keep_resident_bytes`] zeroed, the rest handed
//! back to the kernel) instead of being unmapped and mapped again.
//!
//! The store limiter stays: the pool only caps each memory at 4 GiB and
//! counts slots, while the limiter sums a job's memories against its own
//! `max_memory_bytes` and says `memory_limit`.

use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::limits::{MAX_INSTANCES, MAX_MEMORIES, MAX_TABLE_ELEMENTS, MAX_TABLES};

/// Largest linear memory the pool holds: all a 32-bit memory can address.
/// Jobs are held to their `max_memory_bytes` by the limiter well before.
pub const POOL_MAX_MEMORY_BYTES: usize = 4 << 30;

/// Text wasmtime puts in the errors of a component that needs more than a
/// pool slot holds (core instances, memories or tables per component or
/// module; the size of an instance), checked when the component is compiled
/// or loaded: the job's fault, reported as `memory_limit` like the
/// limiter's counts. (wasmtime gives these errors no type of their own;
/// `job_limits.rs` shows the text still matches.)
pub(crate) const POOL_LIMIT_TEXT: &str = "pooling allocator";

/// Settings of the pooling allocator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolingConfig {
    /// Jobs that may be instantiated at once in one sandbox. A node's
    /// worker runs one job at a time and `suanli run` one job; the spare
    /// slots cover tests and benchmarks that share one sandbox between
    /// slots. A job started past it fails with
    /// [`SandboxError::PoolExhausted`](crate::SandboxError::PoolExhausted).
    /// Default 4; 0 is taken as 1.
    ///
    /// Each job's share is [`MAX_INSTANCES`] core instances, [`MAX_MEMORIES`]
    /// memories and [`MAX_TABLES`] tables. Every memory slot reserves
    /// (virtual address space, not RAM) wasmtime's memory reservation of
    /// 4 GiB plus its guard, and every table slot 1 Mi elements (8 MiB): at
    /// the default about 4 × 8 × 4 GiB = 128 GiB + 1 GiB of address space
    /// per process. 64-bit Linux gives a process 128 TiB, so even a node
    /// with dozens of slot workers reserves a small part of it; only pages
    /// a job touches become resident.
    pub concurrent_jobs: u32,
    /// Bytes of each memory and table slot kept mapped and zeroed with
    /// `memset` when a job ends, instead of being returned to the kernel
    /// (`madvise`): the next job's first pages need no page faults. Either
    /// way the next job sees only zeros. Default 1 MiB.
    pub keep_resident_bytes: usize,
}

impl Default for PoolingConfig {
    fn default() -> PoolingConfig {
        PoolingConfig {
            concurrent_jobs: 4,
            keep_resident_bytes: 1 << 20,
        }
    }
}

impl PoolingConfig {
    /// The allocation strategy for wasmtime's `Config`.
    pub(crate) fn strategy(&self) -> InstanceAllocationStrategy {
        let jobs = self.concurrent_jobs.max(1);
        let per_job = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(jobs)
            .total_core_instances(jobs.saturating_mul(per_job(MAX_INSTANCES)))
            .total_memories(jobs.saturating_mul(per_job(MAX_MEMORIES)))
            .total_tables(jobs.saturating_mul(per_job(MAX_TABLES)))
            .max_core_instances_per_component(per_job(MAX_INSTANCES))
            .max_memories_per_component(per_job(MAX_MEMORIES))
            .max_tables_per_component(per_job(MAX_TABLES))
            .max_memories_per_module(per_job(MAX_MEMORIES))
            .max_tables_per_module(per_job(MAX_TABLES))
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_memory_size(POOL_MAX_MEMORY_BYTES)
            .linear_memory_keep_resident(self.keep_resident_bytes)
            .table_keep_resident(self.keep_resident_bytes);
        InstanceAllocationStrategy::Pooling(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::PoolingConfig;
    use crate::{Sandbox, SandboxConfig};

    #[test]
    fn sandboxes_start_with_and_without_the_pool_and_a_zero_pool_holds_one_job() {
        for pooling in [
            None,
            Some(PoolingConfig::default()),
            Some(PoolingConfig {
                concurrent_jobs: 0,
                keep_resident_bytes: 0,
            }),
        ] {
            let config = SandboxConfig {
                pooling: pooling.clone(),
                ..SandboxConfig::default()
            };
            assert!(Sandbox::new(config).is_ok(), "{pooling:?}");
        }
    }
}
