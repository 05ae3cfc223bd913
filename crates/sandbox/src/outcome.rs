use crate::cache::LoadError;
use crate::host::HostTrap;
use crate::limits::MemoryLimitExceeded;
use crate::log::LogOverflow;
use crate::pool::POOL_LIMIT_TEXT;

/// How a job ended: the protocol's typed outcome, so the sandbox, the
/// node's receipts and the ledger share one list of names.
pub use suanli_proto::Outcome;

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

/// The outcome of a job whose bytes could not be prepared: not a component,
/// a component of another world, or one that needs more instances,
/// memories or tables than a job may have (the pooling allocator checks
/// these counts when it compiles the component, before any limiter runs).
pub(crate) fn classify_load(err: &LoadError) -> (Outcome, String) {
    match err {
        LoadError::Compile(e) if describe(e).contains(POOL_LIMIT_TEXT) => too_many(describe(e)),
        LoadError::Compile(e) => (
            Outcome::InvalidJob,
            format!("invalid component: {}", describe(e)),
        ),
        LoadError::Link(e) => classify(e, None, true),
    }
}

/// Whether instantiation failed because every pool slot is taken.
pub(crate) fn pool_exhausted(err: &wasmtime::Error) -> bool {
    err.chain()
        .any(|e| e.is::<wasmtime::PoolConcurrencyLimitError>())
}

/// `memory_limit`, naming the counts a job may have.
fn too_many(text: String) -> (Outcome, String) {
    (
        Outcome::MemoryLimit,
        format!(
            "the job needs more instances, memories or tables than a job may have \
             ({} instances, {} memories, {} tables): {text}",
            crate::limits::MAX_INSTANCES,
            crate::limits::MAX_MEMORIES,
            crate::limits::MAX_TABLES
        ),
    )
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
            HostTrap::GpuHang(_) => Outcome::GpuHang,
        };
        return (outcome, trap.to_string());
    }
    if let Some(e) = err.downcast_ref::<MemoryLimitExceeded>() {
        return (Outcome::MemoryLimit, e.to_string());
    }
    if memory_hit.is_some() {
        return (Outcome::MemoryLimit, describe(err));
    }
    // wasmtime's own counts (instances, memories, tables; see `limits.rs`).
    // The pool's own counts and sizes, when it checks at instantiation.
    let text = describe(err);
    if text.contains("resource limit exceeded") || text.contains(POOL_LIMIT_TEXT) {
        return too_many(text);
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
