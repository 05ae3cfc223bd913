//! Retention and garbage collection of the coordinator's disk.
//!
//! **Blob lifecycle invariant:** a blob's ledger row is written before its
//! file and deleted before it (both under `BlobStore::row_and_file`), so a
//! crash leaves at worst a file without a row, which the next collection
//! deletes unless a grant or a live job names it (then it gets its row back:
//! files from before schema version 6). A blob is deleted only when no
//! tenant holds a grant for it and no queued or running job uses it; a grant
//! lasts while a job of its tenant that uses the blob is live or finished
//! within the retention, and for the retention after its upload. Logs of
//! jobs finished before the retention are deleted the same way (ledger
//! first). Jobs, attempts, usage rows and receipts are never deleted.

use std::sync::Arc;

use suanli_ledger::LedgerError;
use suanli_proto::GcReport;

use crate::auth::now_ms;
use crate::state::Shared;

/// Rows read per batch, so one collection never holds the ledger for long.
const BATCH: u32 = 1000;

/// One collection on a blocking thread, logged. The coordinator runs one
/// before it accepts connections (which also gives files from before
/// schema version 6 their rows, so quotas count them from the start).
pub(crate) async fn once(shared: Arc<Shared>) {
    match crate::server::blocking(move || collect(&shared)).await {
        Ok(Ok(report)) if report != GcReport::default() => {
            tracing::info!(?report, "garbage collected")
        }
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!(%err, "garbage collection failed"),
        Err(err) => tracing::warn!(%err, "garbage collection failed"),
    }
}

/// Collects every `gc_interval`.
pub(crate) async fn periodic(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(shared.config.gc_interval).await;
        once(shared.clone()).await;
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One collection: expire grants and logs past the retention, delete
/// unreferenced blobs and files no row knows, prune old node sessions.
/// Blocking (SQLite and file system): run it on a blocking thread.
pub(crate) fn collect(shared: &Shared) -> Result<GcReport, LedgerError> {
    let now = now_ms();
    let cutoff = now.saturating_sub(ms(shared.config.retention));
    let mut report = GcReport {
        grants_expired: shared.write(move |l| l.expire_grants(cutoff))?,
        ..GcReport::default()
    };
    collect_logs(shared, cutoff, now, &mut report)?;
    collect_blobs(shared, now, &mut report)?;
    collect_files(shared, now, &mut report)?;
    let live: Vec<u64> = shared.nodes().keys().copied().collect();
    report.node_sessions_pruned = shared.write(move |l| l.prune_node_sessions(cutoff, &live))?;
    Ok(report)
}

fn remove_log(path: &std::path::Path, report: &mut GcReport) {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    match std::fs::remove_file(path) {
        Ok(()) => {
            report.logs_deleted += 1;
            report.log_bytes_deleted += len;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => tracing::warn!(path = %path.display(), %err, "cannot delete a log"),
    }
}

/// Logs of jobs finished before `cutoff`: the ledger stops counting them,
/// then the file goes; then any log file of such a job the ledger no longer
/// counts (a crash between the two, or logs from before schema version 6).
fn collect_logs(
    shared: &Shared,
    cutoff: u64,
    now: u64,
    report: &mut GcReport,
) -> Result<(), LedgerError> {
    let dir = shared.config.data_dir.join("logs");
    loop {
        let jobs = shared.reader().expired_logs(cutoff, BATCH)?;
        if jobs.is_empty() {
            break;
        }
        for job in jobs {
            shared.write(move |l| l.release_log(job, now))?;
            remove_log(&dir.join(format!("{job}.log")), report);
        }
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(job) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if shared.reader().log_expired(job, cutoff)? {
            shared.write(move |l| l.release_log(job, now))?;
            remove_log(&entry.path(), report);
        }
    }
    Ok(())
}

/// Blobs whose rows nothing refers to, stored before the orphan grace:
/// row first (re-checked in its transaction), then the file.
fn collect_blobs(shared: &Shared, now: u64, report: &mut GcReport) -> Result<(), LedgerError> {
    let stored_before = now.saturating_sub(ms(shared.config.orphan_grace));
    loop {
        let batch = shared.reader().unreferenced_blobs(stored_before, BATCH)?;
        let mut progressed = false;
        for hash in &batch {
            let _row_and_file = shared.blobs.lock_row_and_file();
            let hash = *hash;
            let Some(size) = shared.write(move |l| l.forget_blob(&hash, stored_before))? else {
                continue;
            };
            progressed = true;
            report.blobs_deleted += 1;
            report.blob_bytes_deleted += size;
            if let Err(err) = shared.blobs.remove(&hash) {
                // The next collection finds a file without a row.
                tracing::warn!(%hash, %err, "cannot delete a blob file");
            }
        }
        if !progressed {
            return Ok(());
        }
    }
}

/// Files no row knows: adopted if a grant or a live job names them,
/// otherwise deleted; and upload temporaries of earlier processes.
fn collect_files(shared: &Shared, now: u64, report: &mut GcReport) -> Result<(), LedgerError> {
    for (hash, size) in shared.blobs.files() {
        let _row_and_file = shared.blobs.lock_row_and_file();
        let (known, referenced) = {
            let reader = shared.reader();
            (reader.has_blob_row(&hash)?, reader.blob_referenced(&hash)?)
        };
        if known {
            continue;
        }
        if referenced {
            shared.write(move |l| l.adopt_blob(&hash, size, now))?;
            continue;
        }
        match shared.blobs.remove(&hash) {
            Ok(()) => {
                report.blobs_deleted += 1;
                report.blob_bytes_deleted += size;
            }
            Err(err) => tracing::warn!(%hash, %err, "cannot delete a blob file"),
        }
    }
    let (files, bytes) = shared.blobs.remove_stale_temps();
    report.blobs_deleted += files;
    report.blob_bytes_deleted += bytes;
    Ok(())
}
