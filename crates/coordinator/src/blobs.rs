//! Blobs on disk, one file per BLAKE3 hash: written once, read by many.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use suanli_proto::Hash;

pub(crate) struct BlobStore {
    dir: PathBuf,
    next_tmp: AtomicU64,
}

impl BlobStore {
    pub(crate) fn new(dir: PathBuf) -> BlobStore {
        BlobStore {
            dir,
            next_tmp: AtomicU64::new(0),
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
        let file = std::fs::File::create(&path)?;
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
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(tmp, dest)
    }
}
