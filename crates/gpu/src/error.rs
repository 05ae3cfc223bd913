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
    /// One dispatch kept the GPU busy past the job's dispatch limit; the
    /// device must be recovered before another job uses it.
    Hang,
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
            ErrorKind::Hang => "GPU hang",
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
            wgpu::Error::Validation { description, .. } => {
                GpuError::new(default, tidy(&description))
            }
            wgpu::Error::Internal { description, .. } => {
                GpuError::new(ErrorKind::Validation, tidy(&description))
            }
        }
    }
}

/// wgpu's descriptions start with a generic header ("Validation Error",
/// "Caused by:") and carry blank lines; keep what says what went wrong,
/// including naga's annotated source excerpt.
fn tidy(description: &str) -> String {
    let lines: Vec<&str> = description
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            !matches!(
                l.trim(),
                "Validation Error" | "Internal Error" | "Caused by:"
            )
        })
        .collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            // Plain "In X" context lines join the sentence; diagnostics keep their layout.
            out.push_str(if lines[i - 1].trim_start().starts_with("In ") {
                ": "
            } else {
                "\n"
            });
        }
        out.push_str(if i == 0 || lines[i - 1].trim_start().starts_with("In ") {
            line.trim_start()
        } else {
            line
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn tidy_drops_the_generic_header_and_keeps_the_diagnostic() {
        let raw = "Validation Error\n\nCaused by:\n  In Device::create_shader_module\n    \nShader '' parsing error: expected identifier\n  ┌─ wgsl:1:10\n  │\n";
        assert_eq!(
            tidy(raw),
            "In Device::create_shader_module: Shader '' parsing error: expected identifier\n  ┌─ wgsl:1:10\n  │"
        );
    }
}
