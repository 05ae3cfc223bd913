//! `suanli admin backup`: a consistent copy of the ledger, taken while
//! serving, sent to the admin.
//!
//! The copy is SQLite's online backup from a connection of its own (one
//! read transaction: under WAL the writer keeps committing meanwhile) into
//! a private temp file under `DATA/backup-tmp`, on a blocking thread; then
//! it is hashed, announced (`Backup { size, hash }`) and streamed from the
//! file in chunks, each taken by the peer within `request_timeout`, like a
//! blob download. The temp file is removed whatever happens.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use suanli_net::NetError;
use suanli_net::frame::write_frame;
use suanli_proto::{ErrorCode, Hash, Response};

use crate::server::{Peer, blocking};
use crate::state::Shared;

/// Backups taken at once: each holds a full copy of the ledger on disk and
/// a read transaction (which holds WAL checkpoints back), so one.
pub(crate) const MAX_CONCURRENT_BACKUPS: usize = 1;

/// Removes the temp copy when the request ends, however it ends.
struct TempCopy(PathBuf);

impl Drop for TempCopy {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), %e, "cannot remove a backup's temp copy");
        }
    }
}

/// Serves one `Backup` request (the admin role was checked).
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    peer: &Peer,
    send: &mut quinn::SendStream,
) -> Result<(), NetError> {
    let Ok(_one) = shared.backup.try_acquire() else {
        let busy = Response::Error {
            code: ErrorCode::Overloaded,
            message: "a backup is already being taken; retry when it is done".into(),
        };
        write_frame(send, &busy).await?;
        return Ok(());
    };
    let started = std::time::Instant::now();
    let copy = TempCopy(temp_path(shared));
    let taken = {
        let (s, path) = (shared.clone(), copy.0.clone());
        blocking(move || take(&s, &path)).await.and_then(|r| r)
    };
    let (size, hash, info) = match taken {
        Ok(t) => t,
        Err(message) => {
            tracing::error!(%message, "backup failed");
            let failed = Response::Error {
                code: ErrorCode::Internal,
                message: format!("backup failed: {message}"),
            };
            write_frame(send, &failed).await?;
            return Ok(());
        }
    };
    tracing::info!(
        admin = %peer.name,
        size,
        jobs = info.jobs,
        usage_rows = info.usage_rows,
        schema = info.schema_version,
        took = ?started.elapsed(),
        "backup taken; sending it"
    );
    write_frame(send, &Response::Backup { size, hash }).await?;
    let stall = shared.config.request_timeout;
    crate::blobs::send_body(&copy.0, size, send, stall).await?;
    tracing::info!(admin = %peer.name, size, took = ?started.elapsed(), "backup sent");
    Ok(())
}

/// A temp file name no other backup of this process uses.
fn temp_path(shared: &Shared) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    shared.backup_dir.join(format!("ledger-{n}.db"))
}

/// Takes the copy and hashes it. Blocking.
fn take(
    shared: &Shared,
    path: &std::path::Path,
) -> Result<(u64, Hash, suanli_ledger::backup::BackupInfo), String> {
    let info =
        suanli_ledger::backup::snapshot(&shared.ledger_path, path).map_err(|e| e.to_string())?;
    set_private(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = std::io::copy(&mut std::io::BufReader::new(file), &mut hasher)
        .map_err(|e| e.to_string())?;
    Ok((size, Hash(*hasher.finalize().as_bytes()), info))
}

/// The copy holds token hashes: owner only, like the ledger.
fn set_private(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    let _ = path;
    Ok(())
}
