//! The pipe protocol between a node and its slot workers: a little-endian
//! `u32` length, then a bincode payload, on the worker's stdin (node →
//! worker) and stdout (worker → node). Blocking I/O: each side reads on a
//! thread of its own.
//!
//! The node treats the worker as hostile (it runs strangers' code and may be
//! subverted): lengths are checked before anything is allocated and every
//! value is re-checked on the node.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use suanli_gpu::{AdapterInfo, SlotLimits};
use suanli_proto::{JobLimits, Outcome};

/// Largest frame either side sends: the biggest output a job may return
/// plus room for the rest of the report.
pub(crate) const MAX_IPC_FRAME: usize = (256 << 20) + (1 << 20);

/// What a worker needs to set up its slot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WorkerInit {
    pub(crate) adapter: Option<String>,
    /// The adapter's index in `suanli_gpu::list_adapters` (`--gpu N`);
    /// when set, `adapter` is not consulted.
    pub(crate) adapter_index: Option<usize>,
    /// Compiled components, shared by the node's workers.
    pub(crate) cache_dir: PathBuf,
    /// Bytes of compiled components kept there (`NodeConfig::component_cache_bytes`).
    pub(crate) cache_max_bytes: u64,
    pub(crate) max_gpu_memory: Option<u64>,
    /// Which slot of the node it is (0-based), for metrics.
    pub(crate) slot: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    Init(WorkerInit),
    Run(RunJob),
    /// Stop the running job (outcome `cancelled`).
    Cancel,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunJob {
    // Bytes as one slice, not a sequence of u8 (bincode's serde path would
    // encode and decode them one by one: ~0.5 ms for an 80 KB module).
    #[serde(with = "serde_bytes")]
    pub(crate) module: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub(crate) input: Vec<u8>,
    pub(crate) limits: JobLimits,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The slot is open.
    Ready {
        adapter: AdapterInfo,
        limits: SlotLimits,
    },
    /// The slot could not be opened.
    Failed(String),
    Log(#[serde(with = "serde_bytes")] Vec<u8>),
    /// GPU time metered so far, sent as it grows: what a crash leaves known.
    Metered {
        gpu_ns: u64,
    },
    Done(WorkerReport),
}

/// How a job ended in the worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerReport {
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<String>,
    #[serde(with = "serde_bytes")]
    pub(crate) output: Vec<u8>,
    pub(crate) gpu_ns: u64,
    pub(crate) wall_ns: u64,
    /// The worker cannot run another job (a job stuck in a host call, a GPU
    /// hang): the node restarts it.
    pub(crate) restart: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum IpcError {
    #[error("pipe: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the maximum of {MAX_IPC_FRAME} bytes")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Codec(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_IPC_FRAME>()
}

pub(crate) fn write_msg<T: Serialize>(out: &mut impl Write, msg: &T) -> Result<(), IpcError> {
    let payload =
        bincode::serde::encode_to_vec(msg, config()).map_err(|e| IpcError::Codec(e.to_string()))?;
    if payload.len() > MAX_IPC_FRAME {
        return Err(IpcError::TooLarge(payload.len()));
    }
    out.write_all(&(payload.len() as u32).to_le_bytes())?;
    out.write_all(&payload)?;
    out.flush()?;
    Ok(())
}

/// The next message; `Ok(None)` at a clean end of the stream.
pub(crate) fn read_msg<T: DeserializeOwned>(input: &mut impl Read) -> Result<Option<T>, IpcError> {
    let mut header = [0u8; 4];
    match input.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_IPC_FRAME {
        return Err(IpcError::TooLarge(len));
    }
    // Grows as bytes arrive: a lying header costs no more than what was sent.
    let mut payload = Vec::new();
    input.take(len as u64).read_to_end(&mut payload)?;
    if payload.len() != len {
        return Err(IpcError::Codec("the stream ended inside a frame".into()));
    }
    let (msg, used) = bincode::serde::decode_from_slice(&payload, config())
        .map_err(|e| IpcError::Codec(e.to_string()))?;
    if used != len {
        return Err(IpcError::Codec(format!("{} trailing bytes", len - used)));
    }
    Ok(Some(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_lies_are_errors() {
        let mut buf = Vec::new();
        write_msg(&mut buf, &FromWorker::Metered { gpu_ns: 42 }).unwrap();
        let back: FromWorker = read_msg(&mut &buf[..]).unwrap().unwrap();
        assert!(matches!(back, FromWorker::Metered { gpu_ns: 42 }));
        // Clean end of stream.
        assert!(read_msg::<FromWorker>(&mut &[][..]).unwrap().is_none());
        // A header past the maximum is refused before allocating.
        let huge = u32::MAX.to_le_bytes();
        assert!(matches!(
            read_msg::<FromWorker>(&mut &huge[..]),
            Err(IpcError::TooLarge(_))
        ));
        // A frame cut short.
        let mut short = 100u32.to_le_bytes().to_vec();
        short.extend_from_slice(&[1, 2, 3]);
        assert!(read_msg::<FromWorker>(&mut &short[..]).is_err());
    }
}
