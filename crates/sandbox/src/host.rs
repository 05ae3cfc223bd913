//! `suanli:gpu/compute` implemented on a job's [`JobGpu`].
//!
//! Values from the guest are never trusted: handles are looked up in the
//! store's resource table (a forged handle traps in wasmtime before reaching
//! us), everything else is checked by `suanli-gpu`. Limits that must end the
//! job are returned as traps ([`HostTrap`]) so the guest cannot ignore them.

use suanli_gpu::{BufferId, BufferUsage, ErrorKind, GpuError, PipelineId, ShaderId};
use wasmtime::component::Resource;

use crate::JobState;
use crate::bindings::compute;

pub struct BufferHandle(BufferId);
pub struct ShaderHandle(ShaderId);
pub struct PipelineHandle(PipelineId);

/// A limit that ends the job. Carried as a trap through wasmtime and turned
/// into the job's outcome.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostTrap {
    #[error(
        "GPU budget exceeded: the job used {used_ns} ns of GPU time; its budget is {budget_ns} ns"
    )]
    GpuBudgetExceeded { used_ns: u64, budget_ns: u64 },
    #[error("time limit exceeded while waiting for the GPU")]
    Timeout,
    #[error("the job was cancelled")]
    Cancelled,
    /// A dispatch ran past the dispatch limit.
    #[error("{0}")]
    GpuHang(String),
}

type HostResult<T> = wasmtime::Result<Result<T, compute::GpuError>>;

/// Turns a GPU error into the guest's error value, or into a trap for the
/// errors that must end the job.
fn to_guest<T>(r: Result<T, GpuError>) -> HostResult<T> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.kind == ErrorKind::Timeout => Err(wasmtime::Error::new(HostTrap::Timeout)),
        Err(e) if e.kind == ErrorKind::Hang => {
            Err(wasmtime::Error::new(HostTrap::GpuHang(e.to_string())))
        }
        Err(e) => {
            let kind = match e.kind {
                ErrorKind::InvalidShader => compute::ErrorKind::InvalidShader,
                ErrorKind::Validation | ErrorKind::UnknownHandle => compute::ErrorKind::Validation,
                ErrorKind::QuotaExceeded => compute::ErrorKind::QuotaExceeded,
                ErrorKind::OutOfMemory => compute::ErrorKind::OutOfMemory,
                ErrorKind::InvalidArgument => compute::ErrorKind::InvalidArgument,
                ErrorKind::DeviceLost
                | ErrorKind::NoAdapter
                | ErrorKind::SlotBusy
                | ErrorKind::Timeout
                | ErrorKind::Hang => compute::ErrorKind::DeviceLost,
            };
            Ok(Err(compute::GpuError {
                kind,
                message: e.to_string(),
            }))
        }
    }
}

impl JobState {
    /// Traps `gpu_budget_exceeded` once metered GPU time reached the budget.
    fn check_budget(&self) -> wasmtime::Result<()> {
        match self.max_gpu_ns {
            Some(budget_ns) if self.gpu.gpu_ns() >= budget_ns => {
                Err(wasmtime::Error::new(HostTrap::GpuBudgetExceeded {
                    used_ns: self.gpu.gpu_ns(),
                    budget_ns,
                }))
            }
            _ => Ok(()),
        }
    }
}

impl compute::Host for JobState {
    fn dispatch(
        &mut self,
        pipeline: Resource<PipelineHandle>,
        bindings: Vec<Resource<BufferHandle>>,
        x: u32,
        y: u32,
        z: u32,
    ) -> HostResult<()> {
        let pipeline = self.table.get(&pipeline)?.0;
        let buffers = bindings
            .iter()
            .map(|b| self.table.get(b).map(|h| h.0))
            .collect::<Result<Vec<_>, _>>()?;
        // The budget is a stop signal: once spent, no dispatch starts.
        self.check_budget()?;
        self.probe.enter_gpu_call();
        let result = self.gpu.dispatch(pipeline, &buffers, [x, y, z]);
        self.probe.metered(self.gpu.gpu_ns(), self.gpu.dispatches());
        self.probe.leave_gpu_call();
        // The dispatch that crossed the budget was metered; it is charged up
        // to the job's charge cap (budget + dispatch limit).
        if self.max_gpu_ns.is_some_and(|b| self.gpu.gpu_ns() > b) {
            self.check_budget()?;
        }
        to_guest(result.map(|_| ()))
    }

    fn adapter(&mut self) -> wasmtime::Result<compute::AdapterInfo> {
        let info = self.gpu.slot().info();
        Ok(compute::AdapterInfo {
            name: info.name.clone(),
            backend: info.backend.clone(),
            device_type: info.device_type.clone(),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            vendor: info.vendor,
            device: info.device,
            metering: info.metering.as_str().to_owned(),
        })
    }

    fn device_limits(&mut self) -> wasmtime::Result<compute::Limits> {
        let l = self.gpu.slot().limits();
        let q = self.gpu.quotas();
        Ok(compute::Limits {
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
            quota_buffer_bytes: q.max_buffer_bytes,
            quota_objects: q.max_objects,
            quota_workgroups_per_dispatch: q.max_workgroups_per_dispatch,
        })
    }

    fn gpu_time_ns(&mut self) -> wasmtime::Result<u64> {
        Ok(self.gpu.gpu_ns())
    }
}

impl compute::HostBuffer for JobState {
    fn create(
        &mut self,
        size: u64,
        usage: compute::BufferUsage,
    ) -> HostResult<Resource<BufferHandle>> {
        let usage = BufferUsage {
            storage: usage.contains(compute::BufferUsage::STORAGE),
            uniform: usage.contains(compute::BufferUsage::UNIFORM),
        };
        match self.gpu.create_buffer(size, usage) {
            Ok(id) => Ok(Ok(self.table.push(BufferHandle(id))?)),
            Err(e) => to_guest(Err(e)),
        }
    }

    fn size(&mut self, buffer: Resource<BufferHandle>) -> wasmtime::Result<u64> {
        let id = self.table.get(&buffer)?.0;
        Ok(self.gpu.buffer_size(id)?)
    }

    fn write(
        &mut self,
        buffer: Resource<BufferHandle>,
        offset: u64,
        data: Vec<u8>,
    ) -> HostResult<()> {
        let id = self.table.get(&buffer)?.0;
        to_guest(self.gpu.write_buffer(id, offset, &data))
    }

    fn read(
        &mut self,
        buffer: Resource<BufferHandle>,
        offset: u64,
        len: u64,
    ) -> HostResult<Vec<u8>> {
        let id = self.table.get(&buffer)?.0;
        self.probe.enter_gpu_call();
        let data = self.gpu.read_buffer(id, offset, len);
        self.probe.leave_gpu_call();
        to_guest(data)
    }

    fn drop(&mut self, buffer: Resource<BufferHandle>) -> wasmtime::Result<()> {
        let id = self.table.delete(buffer)?.0;
        Ok(self.gpu.drop_buffer(id)?)
    }
}

impl compute::HostShader for JobState {
    fn compile(&mut self, wgsl: String) -> HostResult<Resource<ShaderHandle>> {
        match self.gpu.create_shader(&wgsl) {
            Ok(id) => Ok(Ok(self.table.push(ShaderHandle(id))?)),
            Err(e) => to_guest(Err(e)),
        }
    }

    fn drop(&mut self, shader: Resource<ShaderHandle>) -> wasmtime::Result<()> {
        let id = self.table.delete(shader)?.0;
        Ok(self.gpu.drop_shader(id)?)
    }
}

impl compute::HostPipeline for JobState {
    fn create(
        &mut self,
        shader: Resource<ShaderHandle>,
        entry_point: String,
    ) -> HostResult<Resource<PipelineHandle>> {
        let shader = self.table.get(&shader)?.0;
        match self.gpu.create_pipeline(shader, &entry_point) {
            Ok(id) => Ok(Ok(self.table.push(PipelineHandle(id))?)),
            Err(e) => to_guest(Err(e)),
        }
    }

    fn drop(&mut self, pipeline: Resource<PipelineHandle>) -> wasmtime::Result<()> {
        let id = self.table.delete(pipeline)?.0;
        Ok(self.gpu.drop_pipeline(id)?)
    }
}
