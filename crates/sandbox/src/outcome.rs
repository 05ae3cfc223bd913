use serde::Serialize;

use crate::host::HostTrap;
use crate::limits::MemoryLimitExceeded;
use crate::log::LogOverflow;

/// How a job ended. The names (snake_case) are a public contract: they appear
/// in `--json` output and, later, in usage records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// `run` returned `Err(message)`.
    JobError,
    /// The job trapped (panic, unreachable, stack overflow, forged handle, ...).
    Trap,
    /// The wall-time limit passed.
    Timeout,
    /// The job tried to grow its memory past the limit.
    MemoryLimit,
    /// Metered GPU time passed `max_gpu_ns`.
    GpuBudgetExceeded,
    /// The job wrote past the log limit and was configured to stop on it.
    LogLimit,
    /// Not a loadable `suanli:gpu/job` component.
    InvalidJob,
    /// Stopped on request (`suanli cancel`).
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::JobError => "job_error",
            Outcome::Trap => "trap",
            Outcome::Timeout => "timeout",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::GpuBudgetExceeded => "gpu_budget_exceeded",
            Outcome::LogLimit => "log_limit",
            Outcome::InvalidJob => "invalid_job",
            Outcome::Cancelled => "cancelled",
        }
    }
}

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Gives a readable reason for the two most common wrong files before
/// wasmtime's parser does.
pub(crate) fn check_header(wasm: &[u8]) -> Result<(), String> {
    if wasm.len() < 8 || &wasm[..4] != WASM_MAGIC {
        return Err("not a WebAssembly file (it does not start with \\0asm); \
                    build the job with `cargo build --target wasm32-wasip2`"
            .into());
    }
    // Bytes 4..8: version and layer. Core modules are layer 0, components layer 1.
    if wasm[6..8] == [0, 0] {
        return Err(
            "this is a core wasm module, not a component; build the job for \
                    wasm32-wasip2 (`cargo build --target wasm32-wasip2`) with the suanli-guest SDK"
                .into(),
        );
    }
    Ok(())
}

/// The error chain on one line, without wasmtime's wasm backtrace (a job
/// developer wants the trap's reason first; symbols rarely survive release builds).
pub(crate) fn describe(err: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.starts_with("error while executing at wasm backtrace") {
            continue;
        }
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}

pub(crate) fn classify(
    err: &wasmtime::Error,
    memory_hit: Option<usize>,
    instantiating: bool,
) -> (Outcome, String) {
    if let Some(trap) = err.downcast_ref::<HostTrap>() {
        let outcome = match trap {
            HostTrap::GpuBudgetExceeded { .. } => Outcome::GpuBudgetExceeded,
            HostTrap::Timeout => Outcome::Timeout,
            HostTrap::Cancelled => Outcome::Cancelled,
        };
        return (outcome, trap.to_string());
    }
    if let Some(e) = err.downcast_ref::<MemoryLimitExceeded>() {
        return (Outcome::MemoryLimit, e.to_string());
    }
    if memory_hit.is_some() {
        return (Outcome::MemoryLimit, describe(err));
    }
    if let Some(e) = err.downcast_ref::<LogOverflow>() {
        return (Outcome::LogLimit, e.to_string());
    }
    if let Some(wasmtime::Trap::Interrupt) = err.downcast_ref::<wasmtime::Trap>() {
        return (Outcome::Timeout, "time limit exceeded".into());
    }
    if instantiating && err.downcast_ref::<wasmtime::Trap>().is_none() {
        return (
            Outcome::InvalidJob,
            format!(
                "cannot instantiate the job (is it built for the suanli:gpu/job world?): {}",
                describe(err)
            ),
        );
    }
    (Outcome::Trap, describe(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        for o in [
            Outcome::Succeeded,
            Outcome::JobError,
            Outcome::Trap,
            Outcome::Timeout,
            Outcome::MemoryLimit,
            Outcome::GpuBudgetExceeded,
            Outcome::LogLimit,
            Outcome::InvalidJob,
            Outcome::Cancelled,
        ] {
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{}\"", o.as_str()));
        }
    }

    #[test]
    fn rejects_non_wasm_and_core_modules_with_hints() {
        assert!(
            check_header(b"hello world")
                .unwrap_err()
                .contains("not a WebAssembly file")
        );
        let core = [0, b'a', b's', b'm', 1, 0, 0, 0];
        assert!(
            check_header(&core)
                .unwrap_err()
                .contains("core wasm module")
        );
        let component = [0, b'a', b's', b'm', 0x0d, 0, 1, 0];
        assert!(check_header(&component).is_ok());
    }
}
