use std::fmt;

/// Why a GPU call failed. Mirrors `error-kind` in `suanli:gpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidShader,
    Validation,
    QuotaExceeded,
    OutOfMemory,
    InvalidArgument,
    DeviceLost,
    /// The job's wall-clock deadline passed while waiting for the GPU.
    Timeout,
    /// The handle does not name a live object of this job (dropped or never created).
    UnknownHandle,
    /// No usable adapter or device.
    NoAdapter,
    /// The slot already runs a job.
    SlotBusy,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidShader => "invalid shader",
            ErrorKind::Validation => "validation error",
            ErrorKind::QuotaExceeded => "quota exceeded",
            ErrorKind::OutOfMemory => "out of GPU memory",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::DeviceLost => "device lost",
            ErrorKind::Timeout => "timed out waiting for the GPU",
            ErrorKind::UnknownHandle => "unknown handle",
            ErrorKind::NoAdapter => "no GPU adapter",
            ErrorKind::SlotBusy => "slot busy",
        }
    }
}

/// A GPU call's failure, with a message meant for the job developer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct GpuError {
    pub kind: ErrorKind,
    pub message: String,
}

impl GpuError {
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> GpuError {
        GpuError {
            kind,
            message: message.to_string(),
        }
    }

    pub(crate) fn from_wgpu(err: wgpu::Error, default: ErrorKind) -> GpuError {
        match err {
            wgpu::Error::OutOfMemory { .. } => GpuError::new(ErrorKind::OutOfMemory, err),
            wgpu::Error::Validation { description, .. } => GpuError::new(default, description),
            wgpu::Error::Internal { description, .. } => {
                GpuError::new(ErrorKind::Validation, description)
            }
        }
    }
}
