use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::adapter::{AdapterInfo, Metering};
use crate::pipeline_cache::{PipelineCache, PipelineCacheStats};
use crate::{ErrorKind, GpuError, JobGpu, Quotas};

/// One device and queue, shared by the jobs that run on it one after another.
///
/// Cloning a `Slot` clones a handle to the same device.
#[derive(Clone)]
pub struct Slot {
    pub(crate) inner: Arc<SlotInner>,
}

pub(crate) struct SlotInner {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    /// Nanoseconds per timestamp tick.
    pub(crate) timestamp_period_ns: f64,
    /// Query set and buffers for the timestamps around each compute pass;
    /// `None` when metering falls back to wall time.
    pub(crate) timer: Option<Timer>,
    busy: AtomicBool,
    /// Checked shaders and pipelines of earlier jobs (code only, never data).
    pipeline_cache: Mutex<PipelineCache>,
}

pub(crate) struct Timer {
    pub(crate) queries: wgpu::QuerySet,
    pub(crate) resolve: wgpu::Buffer,
    pub(crate) readback: wgpu::Buffer,
}

/// The device limits a job may rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotLimits {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_uniform_buffer_binding_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroup_size_x: u32,
    pub max_compute_workgroup_size_y: u32,
    pub max_compute_workgroup_size_z: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_workgroups_per_dimension: u32,
}

impl Slot {
    pub(crate) fn new(adapter: &wgpu::Adapter, info: AdapterInfo) -> Result<Slot, GpuError> {
        let timestamps = info.metering == Metering::Timestamp;
        let required_features = if timestamps {
            wgpu::Features::TIMESTAMP_QUERY
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("suanli slot"),
            required_features,
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::new(ErrorKind::NoAdapter, format!("cannot create a device: {e}")))?;
        // Errors outside our scopes must never take the process down.
        device.on_uncaptured_error(Arc::new(|err| {
            tracing::error!(%err, "uncaptured wgpu error");
        }));
        let timer = timestamps.then(|| Timer {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("suanli pass timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("suanli timestamp resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("suanli timestamp readback"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        });
        let timestamp_period_ns = f64::from(queue.get_timestamp_period());
        let limits = device.limits();
        Ok(Slot {
            inner: Arc::new(SlotInner {
                device,
                queue,
                info,
                limits,
                timestamp_period_ns,
                timer,
                busy: AtomicBool::new(false),
                pipeline_cache: Mutex::default(),
            }),
        })
    }

    pub fn info(&self) -> &AdapterInfo {
        &self.inner.info
    }

    pub fn limits(&self) -> SlotLimits {
        let l = &self.inner.limits;
        SlotLimits {
            max_buffer_size: l.max_buffer_size,
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_uniform_buffer_binding_size: l.max_uniform_buffer_binding_size,
            max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
            max_compute_workgroup_size_x: l.max_compute_workgroup_size_x,
            max_compute_workgroup_size_y: l.max_compute_workgroup_size_y,
            max_compute_workgroup_size_z: l.max_compute_workgroup_size_z,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
        }
    }

    /// The slot's device and queue, for native benchmarks that compare a job
    /// against the same kernel run directly on the same device.
    pub fn wgpu(&self) -> (&wgpu::Device, &wgpu::Queue) {
        (&self.inner.device, &self.inner.queue)
    }

    /// Waits up to `timeout` for the device to finish all submitted work;
    /// `false` if it is still busy (a kernel that outlived its job's deadline:
    /// kernels cannot be preempted).
    pub fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        self.inner
            .device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(timeout),
            })
            .is_ok()
    }

    /// Starts a job on this slot. Fails with [`ErrorKind::SlotBusy`] while
    /// another job holds it: one job per slot keeps error scopes and metering
    /// unambiguous.
    pub fn begin_job(&self, quotas: Quotas) -> Result<JobGpu, GpuError> {
        if self
            .inner
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(GpuError::new(
                ErrorKind::SlotBusy,
                "the slot already runs a job",
            ));
        }
        Ok(JobGpu::new(self.clone(), quotas))
    }

    /// Hits, misses and entries of this slot's shader and pipeline cache.
    pub fn pipeline_cache_stats(&self) -> PipelineCacheStats {
        self.pipeline_cache().stats()
    }

    /// The slot's pipeline cache; a job that panicked while holding it left
    /// nothing half-written that matters (entries are inserted whole).
    pub(crate) fn pipeline_cache(&self) -> MutexGuard<'_, PipelineCache> {
        self.inner
            .pipeline_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn release(&self) {
        self.inner.busy.store(false, Ordering::Release);
    }
}
