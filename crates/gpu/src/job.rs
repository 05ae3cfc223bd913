use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::scope::{on_compiler_stack, scoped};
use crate::slot::Timer;
use crate::{ErrorKind, GpuError, Quotas, Slot};

/// wgpu's copy and write alignment; sizes and offsets of guest buffers follow it.
const ALIGN: u64 = wgpu::COPY_BUFFER_ALIGNMENT;

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub u32);
    };
}
handle!(
    /// A buffer of one job. Ids are never reused within a job, so a stale id
    /// is always an [`ErrorKind::UnknownHandle`] error, never another object.
    BufferId
);
handle!(
    /// A compiled shader of one job.
    ShaderId
);
handle!(
    /// A compute pipeline of one job.
    PipelineId
);

/// How a buffer may be bound. Every buffer can also be written and read back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferUsage {
    pub storage: bool,
    pub uniform: bool,
}

impl BufferUsage {
    pub const STORAGE: BufferUsage = BufferUsage {
        storage: true,
        uniform: false,
    };
    pub const UNIFORM: BufferUsage = BufferUsage {
        storage: false,
        uniform: true,
    };

    fn to_wgpu(self) -> wgpu::BufferUsages {
        let mut usages = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        if self.storage || !self.uniform {
            usages |= wgpu::BufferUsages::STORAGE;
        }
        if self.uniform {
            usages |= wgpu::BufferUsages::UNIFORM;
        }
        usages
    }
}

/// What one dispatch cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatchReport {
    /// GPU-busy nanoseconds of this dispatch's compute pass.
    pub gpu_ns: u64,
}

/// One job's view of a slot: its objects, its quotas and its metered GPU time.
///
/// Dropping it destroys every object the job created and frees the slot.
pub struct JobGpu {
    slot: Slot,
    quotas: Quotas,
    next_id: u32,
    buffers: HashMap<u32, wgpu::Buffer>,
    /// Each with the BLAKE3 hash of its source (the pipeline cache's key).
    shaders: HashMap<u32, (wgpu::ShaderModule, [u8; 32])>,
    pipelines: HashMap<u32, wgpu::ComputePipeline>,
    buffer_bytes: u64,
    /// Host staging memory wgpu holds for writes not yet submitted (and
    /// written buffers dropped since): wgpu keeps it until the next
    /// submission, so it is flushed before it passes the buffer quota.
    unsubmitted_bytes: u64,
    gpu_ns: u64,
    dispatches: u64,
    deadline: Option<Instant>,
    /// Longest any one GPU wait may take (a dispatch, a copy).
    max_dispatch: Duration,
    /// A wait ran past `max_dispatch`: the device is still busy with this
    /// job's work and must be recovered (worker restarted) before reuse.
    hung: Cell<bool>,
}

/// Default of [`JobGpu::set_max_dispatch`]: 10 s.
pub const DEFAULT_MAX_DISPATCH: Duration = Duration::from_secs(10);

impl JobGpu {
    pub(crate) fn new(slot: Slot, quotas: Quotas) -> JobGpu {
        JobGpu {
            slot,
            quotas,
            next_id: 1,
            buffers: HashMap::new(),
            shaders: HashMap::new(),
            pipelines: HashMap::new(),
            buffer_bytes: 0,
            unsubmitted_bytes: 0,
            gpu_ns: 0,
            dispatches: 0,
            deadline: None,
            max_dispatch: DEFAULT_MAX_DISPATCH,
            hung: Cell::new(false),
        }
    }

    /// Sets the dispatch limit: a dispatch (or copy) that keeps the device
    /// busy longer fails with [`ErrorKind::Hang`] and is charged this long.
    pub fn set_max_dispatch(&mut self, limit: Duration) {
        self.max_dispatch = limit;
    }

    /// Whether a wait ran past the dispatch limit: the device may still run
    /// this job's kernel, so the slot needs recovery before the next job.
    pub fn hung(&self) -> bool {
        self.hung.get()
    }

    /// No new GPU work starts after `deadline` ([`ErrorKind::Timeout`]); a
    /// dispatch running when it passes is waited for (up to the dispatch
    /// limit) and metered before the timeout is returned, so the time it kept
    /// the GPU busy is known and charged.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }

    /// GPU nanoseconds metered for this job so far.
    pub fn gpu_ns(&self) -> u64 {
        self.gpu_ns
    }

    pub fn dispatches(&self) -> u64 {
        self.dispatches
    }

    /// Bytes held by the job's live buffers.
    pub fn buffer_bytes(&self) -> u64 {
        self.buffer_bytes
    }

    fn device(&self) -> &wgpu::Device {
        &self.slot.inner.device
    }

    fn objects(&self) -> usize {
        self.buffers.len() + self.shaders.len() + self.pipelines.len()
    }

    fn take_id(&mut self) -> Result<u32, GpuError> {
        if self.objects() >= self.quotas.max_objects as usize {
            return Err(GpuError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "the job already holds {} GPU objects (quota {}); drop some first",
                    self.objects(),
                    self.quotas.max_objects
                ),
            ));
        }
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).ok_or_else(|| {
            GpuError::new(ErrorKind::QuotaExceeded, "the job created 2^32 GPU objects")
        })?;
        Ok(id)
    }

    pub fn create_buffer(&mut self, size: u64, usage: BufferUsage) -> Result<BufferId, GpuError> {
        if size == 0 || !size.is_multiple_of(ALIGN) {
            return Err(GpuError::new(
                ErrorKind::InvalidArgument,
                format!("buffer size {size} must be a positive multiple of {ALIGN} bytes"),
            ));
        }
        let max = self.slot.inner.limits.max_buffer_size;
        if size > max {
            return Err(GpuError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "buffer of {size} bytes exceeds the device's maximum buffer size of {max} bytes"
                ),
            ));
        }
        let total = self.buffer_bytes.saturating_add(size);
        if total > self.quotas.max_buffer_bytes {
            return Err(GpuError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "buffer of {size} bytes would bring the job's GPU memory to {total} bytes; the quota is {} bytes",
                    self.quotas.max_buffer_bytes
                ),
            ));
        }
        let id = self.take_id()?;
        let buffer = scoped(self.device(), ErrorKind::Validation, || {
            self.device().create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage: usage.to_wgpu(),
                mapped_at_creation: false,
            })
        })?;
        self.buffer_bytes = total;
        self.buffers.insert(id, buffer);
        Ok(BufferId(id))
    }

    fn buffer(&self, id: BufferId) -> Result<&wgpu::Buffer, GpuError> {
        self.buffers.get(&id.0).ok_or_else(|| {
            GpuError::new(
                ErrorKind::UnknownHandle,
                format!("buffer {} does not exist (dropped or never created)", id.0),
            )
        })
    }

    pub fn buffer_size(&self, id: BufferId) -> Result<u64, GpuError> {
        Ok(self.buffer(id)?.size())
    }

    fn check_range(&self, id: BufferId, offset: u64, len: u64) -> Result<&wgpu::Buffer, GpuError> {
        let buffer = self.buffer(id)?;
        if !offset.is_multiple_of(ALIGN) || !len.is_multiple_of(ALIGN) {
            return Err(GpuError::new(
                ErrorKind::InvalidArgument,
                format!("offset {offset} and length {len} must be multiples of {ALIGN} bytes"),
            ));
        }
        match offset.checked_add(len) {
            Some(end) if end <= buffer.size() => Ok(buffer),
            _ => Err(GpuError::new(
                ErrorKind::InvalidArgument,
                format!(
                    "range {offset}..+{len} is outside buffer {} of {} bytes",
                    id.0,
                    buffer.size()
                ),
            )),
        }
    }

    pub fn write_buffer(&mut self, id: BufferId, offset: u64, data: &[u8]) -> Result<(), GpuError> {
        self.check_range(id, offset, data.len() as u64)?;
        if data.is_empty() {
            return Ok(());
        }
        // Each write copies `data` into a staging buffer that wgpu keeps
        // until the next submission; a job that only writes would grow it
        // without bound. Submit what is pending before it passes the quota.
        let len = data.len() as u64;
        if self.unsubmitted_bytes.saturating_add(len) > self.quotas.max_buffer_bytes {
            self.flush_writes()?;
        }
        let buffer = self.buffer(id)?;
        let queue = &self.slot.inner.queue;
        scoped(self.device(), ErrorKind::Validation, || {
            queue.write_buffer(buffer, offset, data)
        })?;
        self.unsubmitted_bytes = self.unsubmitted_bytes.saturating_add(len);
        Ok(())
    }

    /// Submits pending buffer writes and waits for them, which frees their
    /// staging memory (and buffers dropped since).
    fn flush_writes(&mut self) -> Result<(), GpuError> {
        let submission = self.slot.inner.queue.submit([]);
        self.wait_for(Some(submission))?;
        self.unsubmitted_bytes = 0;
        Ok(())
    }

    pub fn read_buffer(
        &mut self,
        id: BufferId,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, GpuError> {
        self.check_deadline()?;
        let buffer = self.check_range(id, offset, len)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        // The staging copy is GPU memory the job causes: it counts.
        let total = self.buffer_bytes.saturating_add(len);
        if total > self.quotas.max_buffer_bytes {
            return Err(GpuError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "reading {len} bytes back needs as much staging memory, which would bring the job's GPU memory to {total} bytes; the quota is {} bytes (read in smaller pieces)",
                    self.quotas.max_buffer_bytes
                ),
            ));
        }
        let device = self.device();
        let staging = scoped(device, ErrorKind::OutOfMemory, || {
            let staging = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("suanli readback"),
                size: len,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, len);
            let submission = self.slot.inner.queue.submit([encoder.finish()]);
            (staging, submission)
        })?;
        let (staging, submission) = staging;
        if let Err(e) = self.wait_for(Some(submission)) {
            staging.destroy();
            return Err(e);
        }
        self.unsubmitted_bytes = 0;
        let data = self.map_and_read(&staging);
        staging.destroy();
        data
    }

    /// Maps a `MAP_READ` buffer whose copy has been submitted and returns its bytes.
    fn map_and_read(&self, buffer: &wgpu::Buffer) -> Result<Vec<u8>, GpuError> {
        let done: Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
        let flag = done.clone();
        buffer.map_async(wgpu::MapMode::Read, .., move |r| {
            if let Ok(mut slot) = flag.lock() {
                *slot = Some(r);
            }
        });
        self.wait_for(None)?;
        let mapped = done.lock().ok().and_then(|mut d| d.take());
        match mapped {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                return Err(GpuError::new(
                    ErrorKind::DeviceLost,
                    format!("map failed: {e}"),
                ));
            }
            None => return Err(GpuError::new(ErrorKind::DeviceLost, "map did not complete")),
        }
        let data = buffer
            .get_mapped_range(..)
            .map(|view| view.to_vec())
            .map_err(|e| GpuError::new(ErrorKind::DeviceLost, format!("map failed: {e}")));
        buffer.unmap();
        data
    }

    /// [`ErrorKind::Timeout`] once the job's deadline has passed.
    fn check_deadline(&self) -> Result<(), GpuError> {
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(GpuError::new(
                ErrorKind::Timeout,
                "the job's time limit passed",
            )),
            _ => Ok(()),
        }
    }

    /// Blocks until `submission` (or all work) is done. Not cut short by the
    /// deadline: kernels cannot be preempted, and the time one keeps the GPU
    /// busy must be measured to be charged. Bounded by the dispatch limit
    /// instead: past it the job is hung ([`ErrorKind::Hang`]).
    fn wait_for(&self, submission: Option<wgpu::SubmissionIndex>) -> Result<(), GpuError> {
        match self.device().poll(wgpu::PollType::Wait {
            submission_index: submission,
            timeout: Some(self.max_dispatch),
        }) {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => {
                self.hung.set(true);
                Err(GpuError::new(
                    ErrorKind::Hang,
                    format!(
                        "the GPU was still busy after {:.3} s, the job's dispatch limit \
                         (max_dispatch_seconds); the slot is being recovered",
                        self.max_dispatch.as_secs_f64()
                    ),
                ))
            }
            Err(e) => Err(GpuError::new(ErrorKind::DeviceLost, e)),
        }
    }

    pub fn drop_buffer(&mut self, id: BufferId) -> Result<(), GpuError> {
        let buffer = self.buffers.remove(&id.0).ok_or_else(|| {
            GpuError::new(
                ErrorKind::UnknownHandle,
                format!("buffer {} does not exist", id.0),
            )
        })?;
        self.buffer_bytes -= buffer.size();
        if self.unsubmitted_bytes > 0 {
            // A buffer written since the last submission lives on in wgpu
            // until then.
            self.unsubmitted_bytes = self.unsubmitted_bytes.saturating_add(buffer.size());
        }
        buffer.destroy();
        Ok(())
    }

    /// Checks and compiles `wgsl`. Both run on a thread with a large stack
    /// (`scope::on_compiler_stack`), since naga recurses over the shader.
    /// The slot's pipeline cache remembers the verdict: the same source under
    /// the same limits is answered without parsing it again.
    pub fn create_shader(&mut self, wgsl: &str) -> Result<ShaderId, GpuError> {
        if wgsl.len() > self.quotas.max_shader_bytes {
            return Err(GpuError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "shader source of {} bytes exceeds the limit of {} bytes",
                    wgsl.len(),
                    self.quotas.max_shader_bytes
                ),
            ));
        }
        let limits = crate::shader_check::ShaderLimits {
            max_private_bytes: self.quotas.max_private_bytes,
            max_workgroup_bytes: u64::from(
                self.device().limits().max_compute_workgroup_storage_size,
            ),
            max_expression_depth: self.quotas.max_expression_depth,
            max_nesting_depth: self.quotas.max_nesting_depth,
            max_inlined_size: self.quotas.max_inlined_size,
        };
        // A cached verdict still makes the shader one of the job's objects.
        let id = self.take_id()?;
        let source = *blake3::hash(wgsl.as_bytes()).as_bytes();
        let cached = self.slot.pipeline_cache().shader(&source, &limits);
        let verdict = match cached {
            Some(verdict) => verdict,
            None => {
                let verdict = self.check_and_compile(wgsl, &limits);
                self.slot
                    .pipeline_cache()
                    .remember_shader(&source, &limits, &verdict);
                verdict
            }
        };
        self.shaders.insert(id, (verdict?, source));
        Ok(ShaderId(id))
    }

    /// Checks `wgsl` against `limits` and compiles it, on a thread with a
    /// large stack.
    fn check_and_compile(
        &self,
        wgsl: &str,
        limits: &crate::shader_check::ShaderLimits,
    ) -> Result<wgpu::ShaderModule, GpuError> {
        let device = self.device();
        on_compiler_stack(|| {
            crate::shader_check::check(wgsl, limits)?;
            scoped(device, ErrorKind::InvalidShader, || {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: None,
                    source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(wgsl)),
                })
            })
        })
    }

    pub fn drop_shader(&mut self, id: ShaderId) -> Result<(), GpuError> {
        self.shaders.remove(&id.0).map(drop).ok_or_else(|| {
            GpuError::new(
                ErrorKind::UnknownHandle,
                format!("shader {} does not exist", id.0),
            )
        })
    }

    pub fn create_pipeline(
        &mut self,
        shader: ShaderId,
        entry_point: &str,
    ) -> Result<PipelineId, GpuError> {
        let (module, source) = self.shaders.get(&shader.0).ok_or_else(|| {
            GpuError::new(
                ErrorKind::UnknownHandle,
                format!("shader {} does not exist", shader.0),
            )
        })?;
        let source = *source;
        let cached = self.slot.pipeline_cache().pipeline(&source, entry_point);
        let pipeline = match cached {
            Some(pipeline) => pipeline,
            None => {
                let pipeline = Self::build_pipeline(self.device(), module, entry_point)?;
                self.slot
                    .pipeline_cache()
                    .remember_pipeline(&source, entry_point, &pipeline);
                pipeline
            }
        };
        // A cached pipeline is still one of the job's objects.
        let id = self.take_id()?;
        self.pipelines.insert(id, pipeline);
        Ok(PipelineId(id))
    }

    /// Has the driver build the pipeline of `entry_point`; it compiles here,
    /// recursing over the shader like naga, so on the compiler's stack.
    fn build_pipeline(
        device: &wgpu::Device,
        module: &wgpu::ShaderModule,
        entry_point: &str,
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        on_compiler_stack(|| {
            scoped(device, ErrorKind::Validation, || {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: None,
                    layout: None,
                    module,
                    entry_point: Some(entry_point),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
        })
    }

    pub fn drop_pipeline(&mut self, id: PipelineId) -> Result<(), GpuError> {
        self.pipelines.remove(&id.0).map(drop).ok_or_else(|| {
            GpuError::new(
                ErrorKind::UnknownHandle,
                format!("pipeline {} does not exist", id.0),
            )
        })
    }

    /// Runs `pipeline` over `workgroups` with `bindings[i]` at
    /// `@group(0) @binding(i)`, waits for it, and meters its GPU time.
    ///
    /// Refused once the deadline passed. A dispatch still running at the
    /// deadline is waited for and metered, then [`ErrorKind::Timeout`] is
    /// returned; one running past the dispatch limit is charged the limit and
    /// fails with [`ErrorKind::Hang`].
    pub fn dispatch(
        &mut self,
        pipeline: PipelineId,
        bindings: &[BufferId],
        workgroups: [u32; 3],
    ) -> Result<DispatchReport, GpuError> {
        self.check_deadline()?;
        let per_dim = self.slot.inner.limits.max_compute_workgroups_per_dimension;
        if let Some(d) = workgroups.iter().find(|&&d| d > per_dim) {
            return Err(GpuError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "workgroup count {d} exceeds the device's limit of {per_dim} per dimension"
                ),
            ));
        }
        let total: u64 = workgroups.iter().map(|&d| u64::from(d)).product();
        if total > self.quotas.max_workgroups_per_dispatch {
            return Err(GpuError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "dispatch of {total} workgroups exceeds the quota of {} per dispatch",
                    self.quotas.max_workgroups_per_dispatch
                ),
            ));
        }
        let compute = self.pipelines.get(&pipeline.0).ok_or_else(|| {
            GpuError::new(
                ErrorKind::UnknownHandle,
                format!("pipeline {} does not exist", pipeline.0),
            )
        })?;
        let buffers = bindings
            .iter()
            .map(|&b| self.buffer(b))
            .collect::<Result<Vec<_>, _>>()?;
        let device = self.device();
        let inner = &self.slot.inner;
        let timer = inner.timer.as_ref();
        let (submission, started) = scoped(device, ErrorKind::Validation, || {
            let bind_group = (!buffers.is_empty()).then(|| {
                let entries: Vec<wgpu::BindGroupEntry> = buffers
                    .iter()
                    .enumerate()
                    .map(|(i, b)| wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource: b.as_entire_binding(),
                    })
                    .collect();
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &compute.get_bind_group_layout(0),
                    entries: &entries,
                })
            });
            let mut encoder = device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: timer.map(|t| wgpu::ComputePassTimestampWrites {
                        query_set: &t.queries,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    }),
                });
                pass.set_pipeline(compute);
                if let Some(group) = &bind_group {
                    pass.set_bind_group(0, group, &[]);
                }
                let [x, y, z] = workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
            if let Some(t) = timer {
                encoder.resolve_query_set(&t.queries, 0..2, &t.resolve, 0);
                encoder.copy_buffer_to_buffer(&t.resolve, 0, &t.readback, 0, 16);
            }
            let started = Instant::now();
            (inner.queue.submit([encoder.finish()]), started)
        })?;
        if let Err(e) = self.wait_for(Some(submission)) {
            if e.kind == ErrorKind::Hang {
                // Still running: it kept the GPU at least this long.
                self.gpu_ns = self.gpu_ns.saturating_add(duration_ns(self.max_dispatch));
                self.dispatches += 1;
            }
            return Err(e);
        }
        self.unsubmitted_bytes = 0;
        let wall = started.elapsed();
        let gpu_ns = match timer {
            Some(t) => self.read_timestamps(t)?,
            None => duration_ns(wall),
        };
        self.gpu_ns = self.gpu_ns.saturating_add(gpu_ns);
        self.dispatches += 1;
        self.check_deadline()?;
        Ok(DispatchReport { gpu_ns })
    }

    fn read_timestamps(&self, timer: &Timer) -> Result<u64, GpuError> {
        let bytes = self.map_and_read(&timer.readback)?;
        let ticks = |i: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(word)
        };
        let elapsed = ticks(1).saturating_sub(ticks(0));
        Ok((elapsed as f64 * self.slot.inner.timestamp_period_ns).round() as u64)
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Drop for JobGpu {
    fn drop(&mut self) {
        self.pipelines.clear();
        self.shaders.clear();
        for (_, buffer) in self.buffers.drain() {
            buffer.destroy();
        }
        // Let wgpu free what the GPU no longer uses; never block here, a kernel
        // that outlived the job's deadline may still be running.
        let _ = self.slot.inner.device.poll(wgpu::PollType::Poll);
        self.slot.release();
    }
}
