//! Tenants' storage quota where bytes come in: blob uploads and job logs.
//!
//! What a tenant stores is counted in the ledger (`suanli_ledger` storage
//! functions), never by scanning the disk: blobs granted to it (uploads and
//! its jobs' outputs) plus its jobs' logs.

use std::path::PathBuf;

use suanli_ledger::{QuotaRefusal, Stored};
use suanli_proto::{ErrorCode, Hash, Response, Role};

use crate::auth::now_ms;
use crate::server::Peer;
use crate::state::Shared;

/// Log bytes are counted against a tenant in steps of this much (at most
/// the job's log limit), so a job that logs line by line costs one ledger
/// commit per step, not per line. A tenant's count may run ahead of its
/// logs' real size by less than one step per job.
pub(crate) const LOG_RESERVE_STEP: u64 = 64 * 1024;

fn quota_exceeded(refusal: &QuotaRefusal) -> Response {
    Response::Error {
        code: ErrorCode::QuotaExceeded,
        message: refusal.to_string(),
    }
}

fn internal(what: &str, err: impl std::fmt::Display) -> Response {
    Response::Error {
        code: ErrorCode::Internal,
        message: format!("{what}: {err}"),
    }
}

/// Refuses a tenant's (or admin's) upload past its quota before its body is
/// read. Nodes' uploads are outputs: refusing one would leave the node
/// re-sending its result forever, so they are never refused for quota;
/// they count against the job's tenant once its result grants them.
pub(crate) fn refuse_upload(
    shared: &Shared,
    peer: &Peer,
    hash: &Hash,
    size: u64,
) -> Option<Response> {
    if peer.role == Role::Node {
        return None;
    }
    let quota = shared.config.storage_quota;
    let refusal = shared
        .reader()
        .upload_refusal(&peer.name, hash, size, quota);
    match refusal {
        Ok(None) => None,
        Ok(Some(refusal)) => {
            tracing::warn!(name = %peer.name, %refusal, "upload refused");
            Some(quota_exceeded(&refusal))
        }
        Err(e) => Some(internal("cannot check the storage quota", e)),
    }
}

/// Records a verified upload in the ledger (its row, and the uploader's
/// grant, checked against its quota again in that transaction: uploads run
/// concurrently), then moves the file into place. Row before file, under
/// the store's lock: a file without a row is always garbage.
pub(crate) fn store_upload(
    shared: &Shared,
    peer: &Peer,
    tmp: PathBuf,
    file: std::fs::File,
    hash: &Hash,
    size: u64,
) -> Response {
    // The slow part (fsync of up to a whole blob) before taking the lock.
    if let Err(e) = file.sync_all() {
        let _ = std::fs::remove_file(&tmp);
        return internal("cannot store blob", e);
    }
    let tenant = (peer.role != Role::Node).then(|| peer.name.clone());
    let _row_and_file = shared.blobs.lock_row_and_file();
    let (hash_owned, quota) = (*hash, shared.config.storage_quota);
    let recorded =
        shared.write(move |l| l.record_blob(&hash_owned, size, tenant.as_deref(), quota, now_ms()));
    match recorded {
        Ok(Stored::Stored) => {}
        Ok(Stored::OverQuota(refusal)) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(name = %peer.name, %refusal, "upload refused");
            return quota_exceeded(&refusal);
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return internal("cannot record blob", e);
        }
    }
    match shared.blobs.commit(tmp, file, hash) {
        Ok(()) => Response::Stored,
        // The row stays without its file: `has` says missing, so the
        // client uploads again; garbage collection forgets it otherwise.
        Err(e) => internal("cannot store blob", e),
    }
}

/// How many of `len` log bytes at `offset` of `job`'s log its tenant's
/// quota holds: all of them, or none (the append is refused and logged with
/// the numbers; the job runs on, its log cut).
pub(crate) fn log_room(shared: &Shared, job: u64, offset: u64, len: usize) -> usize {
    let end = offset.saturating_add(len as u64);
    let quota = shared.config.storage_quota;
    let reserved = match shared.reader().log_reserved(job) {
        Ok(r) => r,
        Err(err) => {
            tracing::warn!(job, %err, "cannot read the log's counted bytes; keeping the chunk");
            return len;
        }
    };
    if end <= reserved {
        return len;
    }
    let step = end
        .max(reserved.saturating_add(LOG_RESERVE_STEP))
        .min(shared.config.max_log_bytes.max(end));
    let outcome = shared.write(move |l| {
        let outcome = l.reserve_log(job, step, quota);
        if step > end && matches!(outcome, Ok(Stored::OverQuota(_))) {
            // A whole step does not fit: perhaps what this chunk needs does.
            return l.reserve_log(job, end, quota);
        }
        outcome
    });
    match outcome {
        Ok(Stored::Stored) => len,
        Ok(Stored::OverQuota(refusal)) => {
            tracing::warn!(job, %refusal, "log append refused");
            0
        }
        Err(err) => {
            tracing::warn!(job, %err, "cannot count log bytes; keeping the chunk");
            len
        }
    }
}
