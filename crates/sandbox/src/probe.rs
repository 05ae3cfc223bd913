//! A running job as seen from another thread: what a supervisor needs to
//! enforce deadlines and cancels where wasmtime cannot (a job blocked in a
//! WASI host call such as `sleep` is not interrupted by the epoch), and to
//! know how much GPU time was metered if it has to stop the job from outside.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Shared between the thread running a job and whoever supervises it.
#[derive(Debug, Default)]
pub struct JobProbe {
    gpu_ns: AtomicU64,
    dispatches: AtomicU64,
    in_gpu_call: AtomicBool,
    deadline: Mutex<Option<Instant>>,
}

impl JobProbe {
    /// GPU nanoseconds metered so far (every finished dispatch).
    pub fn gpu_ns(&self) -> u64 {
        self.gpu_ns.load(Ordering::Acquire)
    }

    pub fn dispatches(&self) -> u64 {
        self.dispatches.load(Ordering::Acquire)
    }

    /// Whether the job waits on the GPU now. Such a wait ends on its own
    /// (bounded by the dispatch limit) and must not be cut short: the kernel
    /// it waits for is metered when it ends.
    pub fn is_in_gpu_call(&self) -> bool {
        self.in_gpu_call.load(Ordering::Acquire)
    }

    /// When the job's wall-time limit passes; `None` before its clock starts.
    pub fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_deadline(&self, deadline: Instant) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
    }

    pub(crate) fn metered(&self, gpu_ns: u64, dispatches: u64) {
        self.gpu_ns.store(gpu_ns, Ordering::Release);
        self.dispatches.store(dispatches, Ordering::Release);
    }

    /// Marks a GPU wait. Metering is published (with [`JobProbe::metered`])
    /// before [`JobProbe::leave_gpu_call`], so a supervisor that sees the job
    /// outside the GPU also sees the time of the dispatch it just finished.
    pub(crate) fn enter_gpu_call(&self) {
        self.in_gpu_call.store(true, Ordering::Release);
    }

    pub(crate) fn leave_gpu_call(&self) {
        self.in_gpu_call.store(false, Ordering::Release);
    }
}
