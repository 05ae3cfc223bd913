//! Finished attempts the coordinator has not acknowledged yet: the signed
//! result and the output, on disk in `DATA/outbox`, so they survive lost
//! connections and node restarts and are re-sent until acknowledged.

use std::path::{Path, PathBuf};

use suanli_proto::AttemptResult;

pub(crate) struct Outbox {
    dir: PathBuf,
}

/// Temp file, fsync, rename, directory fsync: a result on disk is whole.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    suanli_fs::write_atomic(path, bytes)
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl Outbox {
    pub(crate) fn new(dir: PathBuf) -> std::io::Result<Outbox> {
        std::fs::create_dir_all(&dir)?;
        Ok(Outbox { dir })
    }

    fn path(&self, key: (u64, u32), ext: &str) -> PathBuf {
        self.dir.join(format!("{}-{}.{ext}", key.0, key.1))
    }

    /// Keeps a result (and its output) until [`Outbox::remove`]. The output
    /// is written first: a result on disk always has its output.
    pub(crate) fn put(&self, result: &AttemptResult, output: &[u8]) -> std::io::Result<()> {
        let key = (result.receipt.job, result.receipt.attempt);
        if result.receipt.output.is_some() {
            write_synced(&self.path(key, "output"), output)?;
        }
        let bytes = suanli_proto::encode(result).map_err(invalid)?;
        write_synced(&self.path(key, "result"), &bytes)
    }

    /// The attempts with a kept result.
    pub(crate) fn list(&self) -> Vec<(u64, u32)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut keys: Vec<(u64, u32)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (job, attempt) = name.strip_suffix(".result")?.split_once('-')?;
                Some((job.parse().ok()?, attempt.parse().ok()?))
            })
            .collect();
        keys.sort_unstable();
        keys
    }

    /// A kept result and its output (empty without one).
    pub(crate) fn load(&self, key: (u64, u32)) -> std::io::Result<(AttemptResult, Vec<u8>)> {
        let bytes = std::fs::read(self.path(key, "result"))?;
        let payload = bytes
            .get(suanli_proto::FRAME_HEADER_BYTES..)
            .ok_or_else(|| invalid("truncated result"))?;
        let result: AttemptResult = suanli_proto::decode(payload).map_err(invalid)?;
        let output = match result.receipt.output {
            Some(_) => std::fs::read(self.path(key, "output"))?,
            None => Vec::new(),
        };
        Ok((result, output))
    }

    pub(crate) fn remove(&self, key: (u64, u32)) {
        let _ = std::fs::remove_file(self.path(key, "result"));
        let _ = std::fs::remove_file(self.path(key, "output"));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suanli_proto::{Hash, Receipt, ReceiptSigner};

    #[test]
    fn results_survive_reopening_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let signer = ReceiptSigner::from_seed(&[1; 32]);
        let receipt = Receipt {
            job: 42,
            attempt: 3,
            node_id: 7,
            module: Hash::of(b"m"),
            input: Hash::of(b"i"),
            output: Some(Hash::of(b"out")),
            gpu_ns: 10,
            wall_ns: 20,
            outcome: suanli_proto::Outcome::Succeeded,
            metering: suanli_proto::Metering::Timestamp,
            started_ms: 1,
            ended_ms: 2,
        };
        let result = AttemptResult {
            signature: signer.sign(&receipt),
            receipt,
            error: None,
            output_bytes: 3,
        };
        Outbox::new(dir.path().into())
            .unwrap()
            .put(&result, b"out")
            .unwrap();
        let again = Outbox::new(dir.path().into()).unwrap();
        assert_eq!(again.list(), [(42, 3)]);
        let (loaded, output) = again.load((42, 3)).unwrap();
        assert_eq!(loaded, result);
        assert_eq!(output, b"out");
        again.remove((42, 3));
        assert!(again.is_empty());
    }
}
