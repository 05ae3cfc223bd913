//! The coordinator's durable store, in one SQLite file (WAL mode).
//!
//! Tokens (as SHA-256 hashes only), node sessions, the job queue, every
//! attempt with its raw usage, and which tenant may read which blob.
//!
//! **Architecture invariants:** only this crate writes these tables; it does
//! no I/O beyond its database; a state change is acknowledged to a peer only
//! after its transaction commits; `(job, attempt)` is unique, so a result sent
//! twice is recorded once.

mod schema;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use suanli_proto::{
    AttemptResult, AttemptView, GpuInfo, Hash, JobLimits, JobSpec, JobState, JobView, Requirements,
    Role,
};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database holds schema version {found}; this build knows up to {known}")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// A queued job as the scheduler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedJob {
    pub id: u64,
    pub tenant: String,
    pub spec: JobSpec,
    /// Attempts made so far.
    pub attempts: u32,
}

/// What recording an attempt's end did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The attempt ended now; the job is in `state`.
    Ended { state: JobState },
    /// The attempt had already ended (a re-sent result): nothing changed.
    Duplicate,
    /// No such running attempt (e.g. it was declared lost): nothing changed.
    Unknown,
}

pub struct Ledger {
    conn: Connection,
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn hash_from(bytes: Vec<u8>) -> Result<Hash> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Hash)
        .map_err(|_| LedgerError::Corrupt("hash is not 32 bytes".into()))
}

fn state_name(s: JobState) -> &'static str {
    s.as_str()
}

fn parse_state(s: &str) -> Result<JobState> {
    Ok(match s {
        "queued" => JobState::Queued,
        "running" => JobState::Running,
        "succeeded" => JobState::Succeeded,
        "failed" => JobState::Failed,
        "cancelled" => JobState::Cancelled,
        other => return Err(LedgerError::Corrupt(format!("unknown job state {other:?}"))),
    })
}

impl Ledger {
    /// Opens (creating or migrating) the database at `path`.
    pub fn open(path: &std::path::Path) -> Result<Ledger> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut ledger = Ledger { conn };
        schema::migrate(&mut ledger.conn)?;
        Ok(ledger)
    }

    // ---- tokens -------------------------------------------------------

    pub fn add_token(
        &mut self,
        token_hash: &[u8; 32],
        role: Role,
        name: &str,
        now_ms: u64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO tokens (hash, role, name, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash.as_slice(), role.as_str(), name, i(now_ms)],
        )?;
        Ok(())
    }

    /// The role and name of the token with this hash.
    pub fn find_token(&self, token_hash: &[u8; 32]) -> Result<Option<(Role, String)>> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT role, name FROM tokens WHERE hash = ?1",
                params![token_hash.as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(role, name)| {
            Role::parse(&role)
                .map(|r| (r, name))
                .ok_or_else(|| LedgerError::Corrupt(format!("unknown role {role:?}")))
        })
        .transpose()
    }

    pub fn has_tokens(&self, role: Role) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM tokens WHERE role = ?1)",
            params![role.as_str()],
            |r| r.get(0),
        )?)
    }

    // ---- nodes --------------------------------------------------------

    /// A new node session (every connection is one: results of attempts of
    /// an older session are never accepted through a new one).
    pub fn add_node(&mut self, name: &str, gpu: &GpuInfo, slots: u32, now_ms: u64) -> Result<u64> {
        let gpu = serde_json::to_string(&GpuJson::from(gpu))
            .map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        self.conn.execute(
            "INSERT INTO nodes (name, gpu, slots, connected_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name, gpu, slots, i(now_ms)],
        )?;
        Ok(u(self.conn.last_insert_rowid()))
    }

    // ---- blobs --------------------------------------------------------

    pub fn grant_blob(&mut self, hash: &Hash, tenant: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO blob_grants (hash, tenant) VALUES (?1, ?2)",
            params![hash.0.as_slice(), tenant],
        )?;
        Ok(())
    }

    pub fn may_read_blob(&self, hash: &Hash, tenant: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM blob_grants WHERE hash = ?1 AND tenant = ?2)",
            params![hash.0.as_slice(), tenant],
            |r| r.get(0),
        )?)
    }

    // ---- jobs ---------------------------------------------------------

    pub fn submit(&mut self, tenant: &str, spec: &JobSpec, now_ms: u64) -> Result<u64> {
        self.conn.execute(
            "INSERT INTO jobs (tenant, state, module, input, min_gpu_memory, max_gpu_ns, timeout_ns, max_memory,
                               max_attempts, submitted_ms)
             VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                tenant,
                spec.module.0.as_slice(),
                spec.input.0.as_slice(),
                i(spec.requirements.min_gpu_memory),
                spec.limits.max_gpu_ns.map(i),
                i(spec.limits.timeout_ns),
                i(spec.limits.max_memory_bytes),
                spec.max_attempts,
                i(now_ms),
            ],
        )?;
        Ok(u(self.conn.last_insert_rowid()))
    }

    pub fn job(&self, id: u64) -> Result<Option<JobView>> {
        let mut views = self.query_jobs("WHERE id = ?1", params![i(id)])?;
        Ok(views.pop())
    }

    /// Jobs of one tenant, or of all tenants, newest first.
    pub fn jobs(&self, tenant: Option<&str>, limit: u32) -> Result<Vec<JobView>> {
        match tenant {
            Some(t) => self.query_jobs(
                "WHERE tenant = ?1 ORDER BY id DESC LIMIT ?2",
                params![t, limit],
            ),
            None => self.query_jobs("ORDER BY id DESC LIMIT ?1", params![limit]),
        }
    }

    fn query_jobs(&self, tail: &str, args: impl rusqlite::Params) -> Result<Vec<JobView>> {
        let sql = format!(
            "SELECT id, tenant, state, module, input, min_gpu_memory, max_gpu_ns, timeout_ns, max_memory,
                    max_attempts, outcome, error, output, output_bytes, submitted_ms, finished_ms
             FROM jobs {tail}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, u32>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, Option<String>>(11)?,
                r.get::<_, Option<Vec<u8>>>(12)?,
                r.get::<_, i64>(13)?,
                r.get::<_, i64>(14)?,
                r.get::<_, Option<i64>>(15)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                tenant,
                state,
                module,
                input,
                min_mem,
                max_gpu,
                timeout,
                max_mem,
                max_attempts,
                outcome,
                error,
                output,
                output_bytes,
                submitted,
                finished,
            ) = row?;
            let id = u(id);
            out.push(JobView {
                id,
                tenant,
                state: parse_state(&state)?,
                spec: JobSpec {
                    module: hash_from(module)?,
                    input: hash_from(input)?,
                    requirements: Requirements {
                        min_gpu_memory: u(min_mem),
                    },
                    limits: JobLimits {
                        max_gpu_ns: max_gpu.map(u),
                        timeout_ns: u(timeout),
                        max_memory_bytes: u(max_mem),
                    },
                    max_attempts,
                },
                waiting_reason: None,
                outcome,
                error,
                output: output.map(hash_from).transpose()?,
                output_bytes: u(output_bytes),
                submitted_ms: u(submitted),
                finished_ms: finished.map(u),
                attempts: self.attempts(id)?,
            });
        }
        Ok(out)
    }

    fn attempts(&self, job: u64) -> Result<Vec<AttemptView>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.attempt, a.node_id, n.name, a.outcome, a.error, a.gpu_ns, a.wall_ns, a.metering, a.started_ms, a.ended_ms
             FROM attempts a JOIN nodes n ON n.id = a.node_id WHERE a.job = ?1 ORDER BY a.attempt",
        )?;
        let rows = stmt.query_map(params![i(job)], |r| {
            Ok(AttemptView {
                attempt: r.get(0)?,
                node_id: u(r.get(1)?),
                node: r.get(2)?,
                outcome: r.get(3)?,
                error: r.get(4)?,
                gpu_ns: u(r.get(5)?),
                wall_ns: u(r.get(6)?),
                metering: r.get(7)?,
                started_ms: u(r.get(8)?),
                ended_ms: r.get::<_, Option<i64>>(9)?.map(u),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `per_tenant` oldest queued jobs of every tenant, oldest first
    /// within a tenant. Bounded per tenant, so one tenant's 10,000 queued jobs
    /// cost the scheduler no more than another's one.
    pub fn queued(&self, per_tenant: u32) -> Result<Vec<QueuedJob>> {
        let ids: Vec<i64> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id FROM (
                    SELECT id, ROW_NUMBER() OVER (PARTITION BY tenant ORDER BY id) AS rank
                    FROM jobs WHERE state = 'queued')
                 WHERE rank <= ?1 ORDER BY id",
            )?;
            stmt.query_map(params![per_tenant], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(view) = self.job(u(id))? {
                out.push(QueuedJob {
                    id: view.id,
                    tenant: view.tenant,
                    attempts: view.attempts.len() as u32,
                    spec: view.spec,
                });
            }
        }
        Ok(out)
    }

    /// Moves a queued job to running with a new attempt on `node_id`.
    /// Returns the attempt number, or `None` if the job is no longer queued.
    pub fn start_attempt(&mut self, job: u64, node_id: u64, now_ms: u64) -> Result<Option<u32>> {
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE jobs SET state = 'running' WHERE id = ?1 AND state = 'queued'",
            params![i(job)],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        let attempt: u32 = tx.query_row(
            "SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE job = ?1",
            params![i(job)],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO attempts (job, attempt, node_id, gpu_ns, wall_ns, started_ms) VALUES (?1, ?2, ?3, 0, 0, ?4)",
            params![i(job), attempt, i(node_id), i(now_ms)],
        )?;
        tx.commit()?;
        Ok(Some(attempt))
    }

    /// Records a node's result for a running attempt, once. The job ends
    /// `succeeded` or `failed` with the attempt's outcome (a job's own failure
    /// is not retried: it would fail again).
    pub fn finish_attempt(&mut self, node_id: u64, r: &AttemptResult) -> Result<Recorded> {
        let tx = self.conn.transaction()?;
        let recorded = match attempt_status(&tx, r.job, r.attempt, node_id)? {
            None => return Ok(Recorded::Unknown),
            Some(true) => return Ok(Recorded::Duplicate),
            Some(false) => {
                tx.execute(
                    "UPDATE attempts SET outcome = ?3, error = ?4, gpu_ns = ?5, wall_ns = ?6, metering = ?7,
                                         ended_ms = ?8
                     WHERE job = ?1 AND attempt = ?2",
                    params![i(r.job), r.attempt, r.outcome, r.error, i(r.gpu_ns), i(r.wall_ns), r.metering, i(r.ended_ms)],
                )?;
                let state = if r.outcome == "succeeded" {
                    JobState::Succeeded
                } else {
                    JobState::Failed
                };
                tx.execute(
                    "UPDATE jobs SET state = ?2, outcome = ?3, error = ?4, output = ?5, output_bytes = ?6, finished_ms = ?7
                     WHERE id = ?1 AND state = 'running'",
                    params![
                        i(r.job),
                        state_name(state),
                        r.outcome,
                        r.error,
                        r.output.map(|h| h.0.to_vec()),
                        i(r.output_bytes),
                        i(r.ended_ms)
                    ],
                )?;
                if let Some(output) = &r.output {
                    tx.execute(
                        "INSERT OR IGNORE INTO blob_grants (hash, tenant) SELECT ?1, tenant FROM jobs WHERE id = ?2",
                        params![output.0.as_slice(), i(r.job)],
                    )?;
                }
                Recorded::Ended { state }
            }
        };
        tx.commit()?;
        Ok(recorded)
    }

    /// Ends a running attempt whose node is gone (`node_lost`, billed
    /// nothing) and puts the job back in the queue while attempts remain.
    pub fn lose_attempt(
        &mut self,
        job: u64,
        attempt: u32,
        now_ms: u64,
        reason: &str,
    ) -> Result<Recorded> {
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE attempts SET outcome = 'node_lost', error = ?3, ended_ms = ?4
             WHERE job = ?1 AND attempt = ?2 AND outcome IS NULL",
            params![i(job), attempt, reason, i(now_ms)],
        )?;
        if changed == 0 {
            return Ok(Recorded::Duplicate);
        }
        let (attempts, max): (u32, u32) = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM attempts WHERE job = ?1), max_attempts FROM jobs WHERE id = ?1",
            params![i(job)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let state = if attempts < max {
            tx.execute(
                "UPDATE jobs SET state = 'queued' WHERE id = ?1 AND state = 'running'",
                params![i(job)],
            )?;
            JobState::Queued
        } else {
            tx.execute(
                "UPDATE jobs SET state = 'failed', outcome = 'node_lost', error = ?2, finished_ms = ?3
                 WHERE id = ?1 AND state = 'running'",
                params![i(job), format!("all {max} attempts lost their node; last: {reason}"), i(now_ms)],
            )?;
            JobState::Failed
        };
        tx.commit()?;
        Ok(Recorded::Ended { state })
    }

    /// Cancels a job that is not final. Returns its running attempt, if any,
    /// for the caller to stop on its node.
    pub fn cancel(&mut self, job: u64, now_ms: u64) -> Result<Option<Option<(u32, u64)>>> {
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE jobs SET state = 'cancelled', outcome = 'cancelled', finished_ms = ?2
             WHERE id = ?1 AND state IN ('queued', 'running')",
            params![i(job), i(now_ms)],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        let running: Option<(u32, i64)> = tx
            .query_row(
                "SELECT attempt, node_id FROM attempts WHERE job = ?1 AND outcome IS NULL",
                params![i(job)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        tx.commit()?;
        Ok(Some(running.map(|(a, n)| (a, u(n)))))
    }

    /// Attempts without an outcome (running when the coordinator stopped).
    pub fn open_attempts(&self) -> Result<Vec<(u64, u32, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT job, attempt, node_id FROM attempts WHERE outcome IS NULL ORDER BY job",
        )?;
        let rows = stmt.query_map([], |r| Ok((u(r.get(0)?), r.get(1)?, u(r.get(2)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records the end of an attempt of a cancelled job (what the node
    /// reported); the job stays cancelled.
    pub fn close_cancelled_attempt(&mut self, node_id: u64, r: &AttemptResult) -> Result<Recorded> {
        let tx = self.conn.transaction()?;
        match attempt_status(&tx, r.job, r.attempt, node_id)? {
            None => return Ok(Recorded::Unknown),
            Some(true) => return Ok(Recorded::Duplicate),
            Some(false) => {}
        }
        tx.execute(
            "UPDATE attempts SET outcome = ?3, error = ?4, gpu_ns = ?5, wall_ns = ?6, metering = ?7, ended_ms = ?8
             WHERE job = ?1 AND attempt = ?2",
            params![i(r.job), r.attempt, r.outcome, r.error, i(r.gpu_ns), i(r.wall_ns), r.metering, i(r.ended_ms)],
        )?;
        tx.commit()?;
        Ok(Recorded::Ended {
            state: JobState::Cancelled,
        })
    }
}

/// `Some(ended?)` for an attempt of `node_id`, `None` if there is no such attempt.
fn attempt_status(
    tx: &Transaction<'_>,
    job: u64,
    attempt: u32,
    node_id: u64,
) -> Result<Option<bool>> {
    Ok(tx
        .query_row(
            "SELECT outcome IS NOT NULL FROM attempts WHERE job = ?1 AND attempt = ?2 AND node_id = ?3",
            params![i(job), attempt, i(node_id)],
            |r| r.get(0),
        )
        .optional()?)
}

/// The GPU as stored (JSON keeps the column readable with the sqlite3 shell).
#[derive(serde::Serialize)]
struct GpuJson<'a> {
    name: &'a str,
    backend: &'a str,
    device_type: &'a str,
    max_buffer_size: u64,
}

impl<'a> From<&'a GpuInfo> for GpuJson<'a> {
    fn from(g: &'a GpuInfo) -> GpuJson<'a> {
        GpuJson {
            name: &g.name,
            backend: &g.backend,
            device_type: &g.device_type,
            max_buffer_size: g.max_buffer_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(max_attempts: u32) -> JobSpec {
        JobSpec {
            module: Hash::of(b"module"),
            input: Hash::of(b"input"),
            requirements: Requirements::default(),
            limits: JobLimits::default(),
            max_attempts,
        }
    }

    fn gpu() -> GpuInfo {
        GpuInfo {
            name: "test gpu".into(),
            backend: "vulkan".into(),
            device_type: "cpu".into(),
            driver: "none".into(),
            metering: "timestamp".into(),
            max_buffer_size: 1 << 30,
            max_storage_buffer_binding_size: 1 << 27,
            max_compute_workgroups_per_dimension: 65535,
            features: vec![],
        }
    }

    fn result(job: u64, attempt: u32, outcome: &str) -> AttemptResult {
        AttemptResult {
            job,
            attempt,
            outcome: outcome.into(),
            error: None,
            output: Some(Hash::of(b"out")),
            output_bytes: 3,
            gpu_ns: 1_234_567,
            wall_ns: 9_999_999,
            metering: "timestamp".into(),
            started_ms: 1,
            ended_ms: 2,
        }
    }

    #[test]
    fn a_result_sent_twice_is_recorded_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let mut l = Ledger::open(&path).unwrap();
        let node = l.add_node("n1", &gpu(), 2, 0).unwrap();
        let job = l.submit("alice", &spec(3), 0).unwrap();
        assert_eq!(l.start_attempt(job, node, 1).unwrap(), Some(1));
        assert_eq!(
            l.start_attempt(job, node, 1).unwrap(),
            None,
            "a running job cannot start twice"
        );
        let r = result(job, 1, "succeeded");
        assert_eq!(
            l.finish_attempt(node, &r).unwrap(),
            Recorded::Ended {
                state: JobState::Succeeded
            }
        );
        assert_eq!(l.finish_attempt(node, &r).unwrap(), Recorded::Duplicate);
        assert_eq!(
            l.finish_attempt(node + 1, &r).unwrap(),
            Recorded::Unknown,
            "another node's claim"
        );
        drop(l);
        let l = Ledger::open(&path).unwrap();
        let view = l.job(job).unwrap().unwrap();
        assert_eq!(view.state, JobState::Succeeded);
        assert_eq!(view.attempts.len(), 1);
        assert_eq!(view.attempts[0].gpu_ns, 1_234_567);
        assert_eq!(view.attempts[0].wall_ns, 9_999_999);
        assert!(l.may_read_blob(&Hash::of(b"out"), "alice").unwrap());
        assert!(!l.may_read_blob(&Hash::of(b"out"), "bob").unwrap());
    }

    #[test]
    fn lost_attempts_requeue_until_max_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        let node = l.add_node("n1", &gpu(), 1, 0).unwrap();
        let job = l.submit("alice", &spec(2), 0).unwrap();
        l.start_attempt(job, node, 1).unwrap();
        assert_eq!(
            l.lose_attempt(job, 1, 2, "gone").unwrap(),
            Recorded::Ended {
                state: JobState::Queued
            }
        );
        assert_eq!(
            l.lose_attempt(job, 1, 2, "gone").unwrap(),
            Recorded::Duplicate
        );
        assert_eq!(l.start_attempt(job, node, 3).unwrap(), Some(2));
        assert_eq!(
            l.lose_attempt(job, 2, 4, "gone").unwrap(),
            Recorded::Ended {
                state: JobState::Failed
            }
        );
        let view = l.job(job).unwrap().unwrap();
        assert_eq!(view.outcome.as_deref(), Some("node_lost"));
        assert_eq!(
            view.attempts
                .iter()
                .filter(|a| a.outcome.as_deref() == Some("node_lost"))
                .count(),
            2
        );
        // A late result for a lost attempt changes nothing.
        assert_eq!(
            l.finish_attempt(node, &result(job, 2, "succeeded"))
                .unwrap(),
            Recorded::Duplicate
        );
    }

    #[test]
    fn the_queue_is_bounded_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        for _ in 0..50 {
            l.submit("hog", &spec(1), 0).unwrap();
        }
        let lone = l.submit("lone", &spec(1), 0).unwrap();
        let q = l.queued(4).unwrap();
        assert_eq!(q.len(), 5);
        assert!(q.iter().any(|j| j.id == lone));
    }

    #[test]
    fn tokens_are_found_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        assert!(!l.has_tokens(Role::Admin).unwrap());
        l.add_token(&[1; 32], Role::Admin, "root", 0).unwrap();
        assert!(l.has_tokens(Role::Admin).unwrap());
        assert_eq!(
            l.find_token(&[1; 32]).unwrap(),
            Some((Role::Admin, "root".into()))
        );
        assert_eq!(l.find_token(&[2; 32]).unwrap(), None);
    }
}
