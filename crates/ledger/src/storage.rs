//! Storage accounting, quotas and retention.
//!
//! The coordinator's disk holds blob files (modules, inputs, outputs, one per
//! BLAKE3 hash) and job logs. The ledger knows every blob file and its size
//! (`blobs`, a row written before the file and deleted before it), which
//! tenant may read which blob (`blob_grants`, with when it was granted) and
//! how many log bytes each job keeps (`job_logs`). So what a tenant stores is
//! a query, never a scan of the disk: the sum of the sizes of the blobs
//! granted to it plus its jobs' kept log bytes. A blob two tenants hold
//! counts in full for each (either could have uploaded it alone).
//!
//! Retention withdraws grants and releases logs of jobs that finished before
//! a cutoff; garbage collection then deletes blobs nothing refers to. Jobs,
//! attempts, usage rows and receipts are never deleted here.

use rusqlite::{Connection, OptionalExtension, params};
use suanli_proto::Hash;

use crate::{Ledger, Result, hash_from, i, u};

/// Why an upload or a log append was refused: the tenant's stored bytes
/// plus this one would pass its quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaRefusal {
    pub tenant: String,
    /// Bytes the tenant stores now (blobs granted to it and kept job logs).
    pub used: u64,
    /// Bytes this upload or append would add.
    pub adding: u64,
    pub quota: u64,
}

impl std::fmt::Display for QuotaRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "storage quota exceeded: tenant {} stores {} bytes (blobs and job logs), this adds {} \
             and its quota is {} bytes; finished jobs' blobs and logs are deleted after the \
             coordinator's retention, or the operator may raise the quota (suanli tenant quota)",
            self.tenant, self.used, self.adding, self.quota
        )
    }
}

/// Whether bytes were accounted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    Stored,
    OverQuota(QuotaRefusal),
}

/// SQL: the blob `hash` (an expression) is still needed: a tenant holds a
/// grant for it, or a queued or running job runs it or reads it.
fn referenced(hash: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM blob_grants g WHERE g.hash = {hash})
          OR EXISTS (SELECT 1 FROM jobs j WHERE j.module = {hash}
                     AND j.state IN ('queued', 'running'))
          OR EXISTS (SELECT 1 FROM jobs j WHERE j.input = {hash}
                     AND j.state IN ('queued', 'running')))"
    )
}

/// What one blob counts against a quota at the least: a file system block
/// and its ledger rows, whatever its size, so a billion 1-byte blobs (inodes,
/// ledger rows) cost as much as 4 TB of data.
pub const MIN_BLOB_CHARGE: u64 = 4096;

/// Bytes `tenant` stores now: blobs granted to it (those with a row, each at
/// least [`MIN_BLOB_CHARGE`]) and the log bytes of its jobs not yet released.
fn used(conn: &Connection, tenant: &str) -> Result<u64> {
    let (blobs, logs): (i64, i64) = conn.query_row(
        "SELECT COALESCE((SELECT SUM(MAX(b.size, 4096)) FROM blob_grants g JOIN blobs b ON b.hash = g.hash
                          WHERE g.tenant = ?1), 0),
                COALESCE((SELECT SUM(bytes) FROM job_logs
                          WHERE tenant = ?1 AND deleted_ms IS NULL), 0)",
        params![tenant],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(u(blobs).saturating_add(u(logs)))
}

fn quota(conn: &Connection, tenant: &str, default: u64) -> Result<u64> {
    let set: Option<i64> = conn
        .query_row(
            "SELECT bytes FROM storage_quotas WHERE tenant = ?1",
            params![tenant],
            |r| r.get(0),
        )
        .optional()?;
    Ok(set.map_or(default, u))
}

/// The refusal if `adding` more bytes would take `tenant` past its quota.
fn over_quota(
    conn: &Connection,
    tenant: &str,
    adding: u64,
    default: u64,
) -> Result<Option<QuotaRefusal>> {
    let (used, quota) = (used(conn, tenant)?, quota(conn, tenant, default)?);
    Ok((used.saturating_add(adding) > quota).then(|| QuotaRefusal {
        tenant: tenant.to_owned(),
        used,
        adding,
        quota,
    }))
}

fn has_grant(conn: &Connection, hash: &Hash, tenant: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM blob_grants WHERE hash = ?1 AND tenant = ?2)",
        params![hash.0.as_slice(), tenant],
        |r| r.get(0),
    )?)
}

impl Ledger {
    /// Bytes `tenant` stores now (blobs granted to it and kept job logs).
    pub fn storage_used(&self, tenant: &str) -> Result<u64> {
        used(&self.conn, tenant)
    }

    /// `tenant`'s quota: its own, else `default` (the coordinator's setting).
    pub fn storage_quota(&self, tenant: &str, default: u64) -> Result<u64> {
        quota(&self.conn, tenant, default)
    }

    /// Sets `tenant`'s quota, or back to the default with `None`.
    pub fn set_storage_quota(&mut self, tenant: &str, bytes: Option<u64>) -> Result<()> {
        match bytes {
            Some(b) => self.conn.execute(
                "INSERT INTO storage_quotas (tenant, bytes) VALUES (?1, ?2)
                 ON CONFLICT (tenant) DO UPDATE SET bytes = excluded.bytes",
                params![tenant, i(b)],
            )?,
            None => self.conn.execute(
                "DELETE FROM storage_quotas WHERE tenant = ?1",
                params![tenant],
            )?,
        };
        Ok(())
    }

    /// Whether `tenant` may upload `size` bytes as `hash`, asked before the
    /// body is read so an upload past the quota costs no disk. A blob the
    /// tenant already holds adds nothing.
    pub fn upload_refusal(
        &self,
        tenant: &str,
        hash: &Hash,
        size: u64,
        default_quota: u64,
    ) -> Result<Option<QuotaRefusal>> {
        if has_grant(&self.conn, hash, tenant)? {
            return Ok(None);
        }
        over_quota(&self.conn, tenant, size.max(MIN_BLOB_CHARGE), default_quota)
    }

    /// Records a verified blob before its file is moved into place (so a
    /// file without a row is garbage): its row, and for a tenant's upload
    /// its grant, refreshed to `now_ms` (retention counts from the last
    /// upload). A tenant's new grant is checked against its quota in the
    /// same transaction; a node's upload (`tenant` `None`, an output) is
    /// granted to the job's tenant when its result is recorded.
    pub fn record_blob(
        &mut self,
        hash: &Hash,
        size: u64,
        tenant: Option<&str>,
        default_quota: u64,
        now_ms: u64,
    ) -> Result<Stored> {
        let tx = self.conn.savepoint()?;
        if let Some(t) = tenant
            && !has_grant(&tx, hash, t)?
            && let Some(refusal) = over_quota(&tx, t, size.max(MIN_BLOB_CHARGE), default_quota)?
        {
            return Ok(Stored::OverQuota(refusal));
        }
        tx.execute(
            "INSERT INTO blobs (hash, size, stored_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (hash) DO UPDATE SET stored_ms = excluded.stored_ms",
            params![hash.0.as_slice(), i(size), i(now_ms)],
        )?;
        if let Some(t) = tenant {
            tx.execute(
                "INSERT INTO blob_grants (hash, tenant, granted_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (hash, tenant) DO UPDATE SET granted_ms = excluded.granted_ms",
                params![hash.0.as_slice(), t, i(now_ms)],
            )?;
        }
        tx.commit()?;
        Ok(Stored::Stored)
    }

    /// Whether the ledger knows a blob file of this hash.
    pub fn has_blob_row(&self, hash: &Hash) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM blobs WHERE hash = ?1)",
            params![hash.0.as_slice()],
            |r| r.get(0),
        )?)
    }

    /// Whether a grant or a live job still needs this blob.
    pub fn blob_referenced(&self, hash: &Hash) -> Result<bool> {
        Ok(self.conn.query_row(
            &format!("SELECT {}", referenced("?1")),
            params![hash.0.as_slice()],
            |r| r.get(0),
        )?)
    }

    /// Gives a file that has no row one (files stored before schema
    /// version 6, which grants or jobs still refer to).
    pub fn adopt_blob(&mut self, hash: &Hash, size: u64, now_ms: u64) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO blobs (hash, size, stored_ms) VALUES (?1, ?2, ?3)",
            params![hash.0.as_slice(), i(size), i(now_ms)],
        )?;
        Ok(())
    }

    /// Log bytes of `job` already counted against its tenant.
    pub fn log_reserved(&self, job: u64) -> Result<u64> {
        let bytes: Option<i64> = self
            .conn
            .query_row(
                "SELECT bytes FROM job_logs WHERE job = ?1",
                params![i(job)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(bytes.map_or(0, u))
    }

    /// Counts `job`'s log as `total` bytes against its tenant, if its quota
    /// holds the increase. The coordinator reserves in steps (not per
    /// chunk) so a chatty job does not cost a commit per line.
    pub fn reserve_log(&mut self, job: u64, total: u64, default_quota: u64) -> Result<Stored> {
        let tx = self.conn.savepoint()?;
        let tenant: Option<String> = tx
            .query_row(
                "SELECT tenant FROM jobs WHERE id = ?1",
                params![i(job)],
                |r| r.get(0),
            )
            .optional()?;
        let Some(tenant) = tenant else {
            return Ok(Stored::Stored);
        };
        let counted: i64 = tx.query_row(
            "SELECT COALESCE((SELECT bytes FROM job_logs WHERE job = ?1), 0)",
            params![i(job)],
            |r| r.get(0),
        )?;
        let Some(adding) = total.checked_sub(u(counted)).filter(|a| *a > 0) else {
            return Ok(Stored::Stored);
        };
        if let Some(refusal) = over_quota(&tx, &tenant, adding, default_quota)? {
            return Ok(Stored::OverQuota(refusal));
        }
        tx.execute(
            "INSERT INTO job_logs (job, tenant, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT (job) DO UPDATE SET bytes = excluded.bytes",
            params![i(job), tenant, i(total)],
        )?;
        tx.commit()?;
        Ok(Stored::Stored)
    }

    /// Retention: withdraws every grant made before `cutoff_ms` that no job
    /// of its tenant still needs (queued, running, or finished at or after
    /// the cutoff, as module, input or output). Returns how many.
    pub fn expire_grants(&mut self, cutoff_ms: u64) -> Result<u64> {
        let n = self.conn.execute(
            "DELETE FROM blob_grants WHERE granted_ms < ?1
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.module = blob_grants.hash
                 AND j.tenant = blob_grants.tenant AND (j.state IN ('queued', 'running')
                     OR COALESCE(j.finished_ms, j.submitted_ms) >= ?1))
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.input = blob_grants.hash
                 AND j.tenant = blob_grants.tenant AND (j.state IN ('queued', 'running')
                     OR COALESCE(j.finished_ms, j.submitted_ms) >= ?1))
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.output = blob_grants.hash
                 AND j.tenant = blob_grants.tenant AND (j.state IN ('queued', 'running')
                     OR COALESCE(j.finished_ms, j.submitted_ms) >= ?1))",
            params![i(cutoff_ms)],
        )?;
        Ok(n as u64)
    }

    /// Whether `job`'s log is past retention: the job finished before
    /// `cutoff_ms` (or no such job exists).
    pub fn log_expired(&self, job: u64, cutoff_ms: u64) -> Result<bool> {
        let row: Option<(String, Option<i64>, i64)> = self
            .conn
            .query_row(
                "SELECT state, finished_ms, submitted_ms FROM jobs WHERE id = ?1",
                params![i(job)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(match row {
            None => true,
            Some((state, finished, submitted)) => {
                !matches!(state.as_str(), "queued" | "running")
                    && u(finished.unwrap_or(submitted)) < cutoff_ms
            }
        })
    }

    /// Releases the counted log bytes of `job` (before its file is deleted).
    pub fn release_log(&mut self, job: u64, now_ms: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE job_logs SET deleted_ms = ?2 WHERE job = ?1 AND deleted_ms IS NULL",
            params![i(job), i(now_ms)],
        )?;
        Ok(())
    }

    /// Jobs whose log bytes are still counted though they finished before
    /// `cutoff_ms`: their logs are due for deletion.
    pub fn expired_logs(&self, cutoff_ms: u64, limit: u32) -> Result<Vec<u64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT l.job FROM job_logs l JOIN jobs j ON j.id = l.job
             WHERE l.deleted_ms IS NULL AND j.state NOT IN ('queued', 'running')
               AND COALESCE(j.finished_ms, j.submitted_ms) < ?1
             ORDER BY l.job LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![i(cutoff_ms), limit], |r| r.get::<_, i64>(0))?;
        Ok(rows.map(|r| r.map(u)).collect::<Result<_, _>>()?)
    }

    /// Blobs nothing refers to (no grant, no live job) stored before
    /// `stored_before_ms`: garbage. At most `limit`.
    pub fn unreferenced_blobs(&self, stored_before_ms: u64, limit: u32) -> Result<Vec<Hash>> {
        let sql = format!(
            "SELECT hash FROM blobs b WHERE stored_ms < ?1 AND NOT {} LIMIT ?2",
            referenced("b.hash")
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![i(stored_before_ms), limit], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        rows.map(|r| hash_from(r?)).collect()
    }

    /// Deletes the row of a blob if it is still unreferenced and stored
    /// before `stored_before_ms` (checked in the same statement, so a grant
    /// made meanwhile keeps it). Returns its size if it was deleted; the
    /// caller deletes the file after this.
    pub fn forget_blob(&mut self, hash: &Hash, stored_before_ms: u64) -> Result<Option<u64>> {
        let tx = self.conn.savepoint()?;
        let size: Option<i64> = tx
            .query_row(
                "SELECT size FROM blobs WHERE hash = ?1",
                params![hash.0.as_slice()],
                |r| r.get(0),
            )
            .optional()?;
        let deleted = tx.execute(
            &format!(
                "DELETE FROM blobs WHERE hash = ?1 AND stored_ms < ?2 AND NOT {}",
                referenced("?1")
            ),
            params![hash.0.as_slice(), i(stored_before_ms)],
        )?;
        tx.commit()?;
        Ok(size.filter(|_| deleted == 1).map(u))
    }

    /// Deletes rows of node sessions that connected before `cutoff_ms`, are
    /// not in `live`, and that no attempt refers to (every usage row and
    /// receipt has its attempt, so the sessions they name stay forever). Returns how
    /// many. A row some other table still refers to is kept.
    pub fn prune_node_sessions(&mut self, cutoff_ms: u64, live: &[u64]) -> Result<u64> {
        let tx = self.conn.savepoint()?;
        let candidates: Vec<i64> = {
            let mut stmt = tx.prepare(
                "SELECT id FROM nodes n WHERE connected_ms < ?1
                 AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.node_id = n.id)",
            )?;
            stmt.query_map(params![i(cutoff_ms)], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut pruned = 0;
        for id in candidates.into_iter().filter(|id| !live.contains(&u(*id))) {
            match tx.execute("DELETE FROM nodes WHERE id = ?1", params![id]) {
                Ok(n) => pruned += n as u64,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation => {}
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit()?;
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests;
