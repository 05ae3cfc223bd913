//! Blobs on disk, one file per BLAKE3 hash: written once, read by many.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use suanli_proto::Hash;

pub(crate) struct BlobStore {
    dir: PathBuf,
    next_tmp: AtomicU64,
    /// Held while a blob's ledger row and its file change together (an
    /// upload records its row then moves the file in; garbage collection
    /// deletes the row then the file), so neither sees the other half-done.
    pub(crate) row_and_file: std::sync::Mutex<()>,
}

impl BlobStore {
    pub(crate) fn new(dir: PathBuf) -> BlobStore {
        BlobStore {
            dir,
            next_tmp: AtomicU64::new(0),
            row_and_file: std::sync::Mutex::new(()),
        }
    }

    pub(crate) fn path(&self, hash: &Hash) -> PathBuf {
        let hex = hash.to_hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    pub(crate) fn has(&self, hash: &Hash) -> bool {
        self.path(hash).exists()
    }

    /// A temporary file to stream an upload into; [`BlobStore::commit`] moves
    /// it into place once its hash is verified.
    pub(crate) fn temp(&self) -> std::io::Result<(PathBuf, std::fs::File)> {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        let file = suanli_fs::create_private(&path)?;
        Ok((path, file))
    }

    pub(crate) fn commit(
        &self,
        tmp: PathBuf,
        mut file: std::fs::File,
        hash: &Hash,
    ) -> std::io::Result<()> {
        file.flush()?;
        file.sync_all()?;
        let dest = self.path(hash);
        if let Some(parent) = dest.parent()
            && !parent.exists()
        {
            // A new shard directory must itself survive a crash, or the
            // blob in it is lost while its ledger row stays.
            std::fs::create_dir_all(parent)?;
            suanli_fs::sync_dir(&self.dir)?;
        }
        suanli_fs::rename_durable(&tmp, &dest)
    }
}

/// What garbage collection reads of the store: files by hash, and temporary
/// files that no upload of this process is writing.
impl BlobStore {
    /// Takes [`BlobStore::row_and_file`] (a poisoned lock is still a lock).
    pub(crate) fn lock_row_and_file(&self) -> std::sync::MutexGuard<'_, ()> {
        self.row_and_file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every blob file: its hash (from its name) and its size. Files whose
    /// names are not hashes are skipped (not ours to delete).
    pub(crate) fn files(&self) -> Vec<(Hash, u64)> {
        let mut found = Vec::new();
        let Ok(shards) = std::fs::read_dir(&self.dir) else {
            return found;
        };
        for shard in shards.flatten() {
            if shard.file_name() == "tmp" {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(hash) = name.to_str().and_then(hash_from_hex) else {
                    continue;
                };
                if let Ok(meta) = entry.metadata()
                    && meta.is_file()
                {
                    found.push((hash, meta.len()));
                }
            }
        }
        found
    }

    /// Deletes a blob's file; one already gone is not an error (a crash
    /// between the row's deletion and the file's leaves either state).
    pub(crate) fn remove(&self, hash: &Hash) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(hash)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Deletes upload temporaries left by earlier coordinator processes
    /// (named `PID-N`; this process's own may be uploads in progress).
    /// Returns their bytes.
    pub(crate) fn remove_stale_temps(&self) -> (u64, u64) {
        let mine = format!("{}-", std::process::id());
        let (mut files, mut bytes) = (0, 0);
        let Ok(entries) = std::fs::read_dir(self.dir.join("tmp")) else {
            return (0, 0);
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(&mine) {
                continue;
            }
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if std::fs::remove_file(entry.path()).is_ok() {
                files += 1;
                bytes += len;
            }
        }
        (files, bytes)
    }
}

/// The hash a blob file is named by (64 lowercase hex digits).
fn hash_from_hex(name: &str) -> Option<Hash> {
    name.parse::<Hash>().ok().filter(|h| h.to_hex() == name)
}

/// Bytes read from disk and written to the peer at a time when serving a
/// blob: a download holds about twice this (ours and tokio's file buffer),
/// whatever the blob's size, where it once held the whole blob (up to
/// 256 MiB per request, 64 requests per connection).
pub(crate) const SEND_CHUNK: usize = 64 * 1024;

/// Sends `Blob { size }` and then the blob file at `path`, chunk by chunk.
/// Each chunk must be taken by the peer (QUIC flow control) within `stall`:
/// a peer that asks for a blob and never reads it holds a task, a file and
/// [`SEND_CHUNK`] only that long.
pub(crate) async fn send_file(
    path: &std::path::Path,
    send: &mut quinn::SendStream,
    stall: std::time::Duration,
) -> Result<(), suanli_net::NetError> {
    let size = tokio::fs::metadata(path).await?.len();
    suanli_net::frame::write_frame(send, &suanli_proto::Response::Blob { size }).await?;
    send_body(path, size, send, stall).await
}

/// Sends the first `size` bytes of the file at `path` (a blob, a backup),
/// each chunk taken by the peer within `stall`; a file that shrank under
/// it is an error, not a short body.
pub(crate) async fn send_body(
    path: &std::path::Path,
    size: u64,
    send: &mut quinn::SendStream,
    stall: std::time::Duration,
) -> Result<(), suanli_net::NetError> {
    use suanli_net::NetError;
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let mut file = file.take(size);
    let mut buf = vec![0u8; SEND_CHUNK];
    let mut sent = 0u64;
    while sent < size {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Err(NetError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("file shrank to {sent} of {size} bytes while being sent"),
            )));
        }
        tokio::time::timeout(stall, send.write_all(&buf[..n]))
            .await
            .map_err(|_| NetError::Timeout("the peer stopped reading"))??;
        sent += n as u64;
    }
    Ok(())
}
