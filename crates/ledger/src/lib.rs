//! The coordinator's durable store, in one SQLite file (WAL mode).
//!
//! Tokens (as SHA-256 hashes only), node sessions, the job queue, every
//! attempt with its raw usage, and which tenant may read which blob.
//!
//! **Architecture invariants:** only this crate writes these tables; it does
//! no I/O beyond its database; a state change is acknowledged to a peer only
//! after its transaction commits; `(job, attempt)` is unique, so a result sent
//! twice is recorded once.

mod account;
pub mod backup;
/// The billing rules, from the pure `suanli-billing` crate (re-exported so
/// existing users of `suanli_ledger::billing` keep working).
pub use suanli_billing as billing;
mod check;
mod jobs;
mod ops;
mod schema;
mod stats;
mod storage;
mod tokens;
mod usage;
pub mod writer;

use rusqlite::{Connection, OptionalExtension, params};
use suanli_proto::usage::Price;
use suanli_proto::{DEFAULT_NODE_MAX_SLOTS, GpuInfo, Hash, NodeCaps, NodeInfo, Role};

pub use jobs::{
    Admission, DEADLINE_MISSED, Overdue, QueuedJob, Recorded, Retry, Start, crashed_on,
    missed_deadline_on, retry,
};
pub use ops::LedgerWrites;
pub use stats::{LedgerStats, QueueStat, SeriesPoint};
pub use storage::{QuotaRefusal, Stored};
pub use tokens::LAST_USED_RESOLUTION_MS;
pub use usage::add_usage;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database holds schema version {found}; this build knows up to {known}")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("cannot migrate the ledger to schema version {version}: {reason}")]
    Migration { version: i64, reason: String },
    /// The operation's batch did not commit (see [`writer`]): nothing of it
    /// is stored.
    #[error("the ledger write was not committed: {0}")]
    NotCommitted(String),
    /// The writer thread is gone (the coordinator is shutting down).
    #[error("the ledger writer has stopped")]
    WriterStopped,
    /// The writer's queue is full ([`writer::WRITE_QUEUE_CAPACITY`]).
    #[error("the ledger is busy: its write queue is full; try again")]
    Busy,
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// A registered node session, with what its token allows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSession {
    pub id: u64,
    pub gpu_class: String,
    /// The token's slot cap (`suanli token create --max-slots`).
    pub max_slots: u32,
    /// Drained by the admin (survives restarts until `node undrain`).
    pub drained: bool,
    /// Why the token is quarantined (until `node restore`).
    pub quarantine: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    Registered(NodeSession),
    /// The token is bound to another key: the reason, for the node.
    KeyMismatch(String),
    /// The key is bound to another node token: the reason, for the node.
    KeyTaken(String),
}

/// A node token's quarantine, set by [`Ledger::note_fault`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    pub token_hash: [u8; 32],
    pub name: String,
    pub reason: String,
}

/// The node token row that registration reads: bound key, slot cap, drain,
/// quarantine.
type TokenRow = (Option<Vec<u8>>, u32, bool, Option<String>);

pub struct Ledger {
    conn: Connection,
    /// Told how long each batch commit took (monitoring; see
    /// [`Ledger::observe_commits`]).
    commit_observer: Option<CommitObserver>,
}

/// Called with the duration of each committed batch.
pub type CommitObserver = Box<dyn Fn(std::time::Duration) + Send>;

pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn hash_from(bytes: Vec<u8>) -> Result<Hash> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Hash)
        .map_err(|_| LedgerError::Corrupt("hash is not 32 bytes".into()))
}

impl Ledger {
    /// Opens (creating or migrating) the database at `path`.
    pub fn open(path: &std::path::Path) -> Result<Ledger> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut ledger = Ledger {
            conn,
            commit_observer: None,
        };
        // Turns foreign keys on once the schema is current.
        schema::migrate(&mut ledger.conn)?;
        Ok(ledger)
    }

    /// Calls `observe` with the duration of every batch commit from now on
    /// (the coordinator's ledger commit latency histogram).
    pub fn observe_commits(&mut self, observe: CommitObserver) {
        self.commit_observer = Some(observe);
    }

    /// A read-only connection to the ledger at `path`, which [`Ledger::open`]
    /// has already created and migrated (WAL: it reads committed data while
    /// the writer writes). Any write through it fails (`query_only`).
    pub fn open_reader(path: &std::path::Path) -> Result<Ledger> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", "ON")?;
        let known = schema::MIGRATIONS.len() as i64;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found != known {
            return Err(LedgerError::Migration {
                version: found,
                reason: format!("a reader needs a ledger at schema version {known}"),
            });
        }
        Ok(Ledger {
            conn,
            commit_observer: None,
        })
    }

    // ---- tokens -------------------------------------------------------

    pub fn add_token(
        &mut self,
        token_hash: &[u8; 32],
        role: Role,
        name: &str,
        now_ms: u64,
    ) -> Result<()> {
        self.add_token_with_slots(token_hash, role, name, now_ms, DEFAULT_NODE_MAX_SLOTS)
    }

    /// A token; for a node token, its nodes get work for at most
    /// `max_slots` slots, whatever they report.
    pub fn add_token_with_slots(
        &mut self,
        token_hash: &[u8; 32],
        role: Role,
        name: &str,
        now_ms: u64,
        max_slots: u32,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO tokens (hash, role, name, created_ms, max_slots) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token_hash.as_slice(), role.as_str(), name, i(now_ms), max_slots],
        )?;
        Ok(())
    }

    /// The role, name and stored hash of the token with this hash.
    pub fn find_token(&self, token_hash: &[u8; 32]) -> Result<Option<(Role, String, Vec<u8>)>> {
        let row: Option<(String, String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT role, name, hash FROM tokens WHERE hash = ?1",
                params![token_hash.as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(role, name, hash)| {
            Role::parse(&role)
                .map(|r| (r, name, hash))
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

    /// A new node session (every connection is one), with the caps it
    /// announced (what one job may take there). The first session of a
    /// node token binds the node's public key to the token; a later session
    /// presenting another key is refused, and so is any other token
    /// presenting a bound key (a tenant learns node keys from its usage
    /// records): a node's identity is its token and key together, checked
    /// here in one transaction (and by a unique index on the bound key).
    pub fn register_node(
        &mut self,
        token_hash: &[u8; 32],
        name: &str,
        info: &NodeInfo,
        now_ms: u64,
    ) -> Result<Registration> {
        let gpu = serde_json::to_string(&GpuJson::from(&info.gpu))
            .map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        let key = info.public_key.0.as_slice();
        let tx = self.conn.savepoint()?;
        let row: Option<TokenRow> = tx
            .query_row(
                "SELECT node_key, max_slots, drained, quarantine FROM tokens
                 WHERE hash = ?1 AND role = 'node'",
                params![token_hash.as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((bound, max_slots, drained, quarantine)) = row else {
            return Err(LedgerError::Corrupt("no such node token".into()));
        };
        if let Some(refusal) = key_refusal(&tx, token_hash, info, bound.as_deref())? {
            return Ok(refusal);
        }
        if bound.is_none() {
            tx.execute(
                "UPDATE tokens SET node_key = ?2 WHERE hash = ?1",
                params![token_hash.as_slice(), key],
            )?;
        }
        let gpu_class: String = tx
            .query_row(
                "SELECT class FROM node_classes WHERE node = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_else(|| billing::gpu_class(&info.gpu.name));
        let caps = &info.caps;
        tx.execute(
            "INSERT INTO nodes (name, gpu, slots, connected_ms, gpu_class, public_key,
                                cap_memory_bytes, cap_timeout_ns, cap_dispatch_ns, token_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                name,
                gpu,
                info.slots,
                i(now_ms),
                gpu_class,
                key,
                i(caps.max_memory_bytes),
                i(caps.max_timeout_ns),
                i(caps.max_dispatch_ns),
                token_hash.as_slice(),
            ],
        )?;
        let id = u(tx.last_insert_rowid());
        tx.commit()?;
        Ok(Registration::Registered(NodeSession {
            id,
            gpu_class,
            max_slots,
            drained,
            quarantine,
        }))
    }

    /// Drains (or undrains) the node tokens named `name`: their nodes get
    /// no new jobs, across restarts. Returns how many tokens have the name.
    pub fn set_drained(&mut self, name: &str, drained: bool) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE tokens SET drained = ?2 WHERE name = ?1 AND role = 'node'",
            params![name, drained],
        )?)
    }

    /// Lifts the quarantine of the node tokens named `name`; faults before
    /// `now_ms` no longer count. Returns how many tokens have the name.
    pub fn restore_node(&mut self, name: &str, now_ms: u64) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE tokens SET quarantine = NULL, restored_ms = ?2 WHERE name = ?1 AND role = 'node'",
            params![name, i(now_ms)],
        )?)
    }

    /// After a `provider_fault` on node session `node_id`: quarantines its
    /// token once `max_faults` of its attempts ended `provider_fault` within
    /// `window_ms` (and since its last restore). Returns the new quarantine.
    pub fn note_fault(
        &mut self,
        node_id: u64,
        now_ms: u64,
        window_ms: u64,
        max_faults: u32,
    ) -> Result<Option<Quarantined>> {
        let tx = self.conn.savepoint()?;
        let token: Option<(Vec<u8>, String, Option<String>, i64)> = tx
            .query_row(
                "SELECT t.hash, t.name, t.quarantine, t.restored_ms FROM nodes n
                 JOIN tokens t ON t.hash = n.token_hash WHERE n.id = ?1",
                params![i(node_id)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((hash, name, None, restored_ms)) = token else {
            return Ok(None);
        };
        let since = i(now_ms.saturating_sub(window_ms)).max(restored_ms);
        let faults: u32 = tx.query_row(
            "SELECT COUNT(*) FROM attempts a JOIN nodes n ON n.id = a.node_id
             WHERE n.token_hash = ?1 AND a.outcome = 'provider_fault' AND a.ended_ms >= ?2",
            params![hash, since],
            |r| r.get(0),
        )?;
        if faults < max_faults {
            return Ok(None);
        }
        let reason = format!(
            "{faults} attempts ended provider_fault within {} s; \
             `suanli node restore {name}` lifts it",
            window_ms / 1000
        );
        tx.execute(
            "UPDATE tokens SET quarantine = ?2 WHERE hash = ?1",
            params![hash, reason],
        )?;
        tx.commit()?;
        let token_hash = <[u8; 32]>::try_from(hash.as_slice())
            .map_err(|_| LedgerError::Corrupt("token hash is not 32 bytes".into()))?;
        Ok(Some(Quarantined {
            token_hash,
            name,
            reason,
        }))
    }

    /// Puts the nodes of token name `node` in `class` (or back to their
    /// derived class). Applies to its live sessions' next attempts too.
    pub fn set_node_class(&mut self, node: &str, class: Option<&str>) -> Result<()> {
        let tx = self.conn.savepoint()?;
        match class {
            Some(class) => {
                tx.execute(
                    "INSERT INTO node_classes (node, class) VALUES (?1, ?2)
                     ON CONFLICT (node) DO UPDATE SET class = excluded.class",
                    params![node, class],
                )?;
            }
            None => {
                tx.execute("DELETE FROM node_classes WHERE node = ?1", params![node])?;
            }
        }
        // Live sessions follow (derived classes come back from the stored GPU name).
        let sessions: Vec<(i64, String)> = {
            let mut stmt = tx.prepare("SELECT id, gpu FROM nodes WHERE name = ?1")?;
            stmt.query_map(params![node], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        for (id, gpu) in sessions {
            let class = match class {
                Some(c) => c.to_owned(),
                None => {
                    let name = serde_json::from_str::<serde_json::Value>(&gpu)
                        .ok()
                        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                        .unwrap_or_default();
                    billing::gpu_class(&name)
                }
            };
            tx.execute(
                "UPDATE nodes SET gpu_class = ?2 WHERE id = ?1",
                params![id, class],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The class the node session `node_id` is billed as now.
    pub fn node_class(&self, node_id: u64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT gpu_class FROM nodes WHERE id = ?1",
                params![i(node_id)],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The caps node session `node_id` announced when it registered (`None`
    /// for sessions registered before schema version 3, or no such session).
    pub fn node_caps(&self, node_id: u64) -> Result<Option<NodeCaps>> {
        let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT cap_memory_bytes, cap_timeout_ns, cap_dispatch_ns FROM nodes WHERE id = ?1",
                params![i(node_id)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(match row {
            Some((Some(m), Some(t), Some(d))) => Some(NodeCaps {
                max_memory_bytes: u(m),
                max_timeout_ns: u(t),
                max_dispatch_ns: u(d),
            }),
            _ => None,
        })
    }

    // ---- prices and credit --------------------------------------------

    /// Sets a class's price. Prices are a history: the newest row of a
    /// class is in force; attempts keep the price they started with.
    pub fn set_price(&mut self, class: &str, micros: u64, now_ms: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO prices (class, micros, set_ms) VALUES (?1, ?2, ?3)",
            params![class, i(micros), i(now_ms)],
        )?;
        Ok(())
    }

    /// The price in force of every class that has one.
    pub fn prices(&self) -> Result<Vec<Price>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT class, micros, set_ms FROM prices p
             WHERE id = (SELECT MAX(id) FROM prices WHERE class = p.class) ORDER BY class",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Price {
                class: r.get(0)?,
                micros: u(r.get(1)?),
                set_ms: u(r.get(2)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_credit_limit(&mut self, tenant: &str, micros: Option<u64>) -> Result<()> {
        match micros {
            Some(m) => self.conn.execute(
                "INSERT INTO credit_limits (tenant, micros) VALUES (?1, ?2)
                 ON CONFLICT (tenant) DO UPDATE SET micros = excluded.micros",
                params![tenant, i(m)],
            )?,
            None => self.conn.execute(
                "DELETE FROM credit_limits WHERE tenant = ?1",
                params![tenant],
            )?,
        };
        Ok(())
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

    /// Which of `hashes` `tenant` holds a grant on, in one query (`HasBlobs`
    /// asks this before looking at any file, so its answer and its timing
    /// for a hash without a grant do not depend on whether the file exists).
    /// The hashes travel as one blob, 32 bytes each, cut apart in SQL.
    pub fn granted_blobs(
        &self,
        hashes: &[Hash],
        tenant: &str,
    ) -> Result<std::collections::HashSet<Hash>> {
        let packed: Vec<u8> = hashes.iter().flat_map(|h| h.0).collect();
        let mut stmt = self.conn.prepare_cached(
            "WITH RECURSIVE k(n) AS (SELECT 0 WHERE ?2 > 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < ?2)
             SELECT g.hash FROM k JOIN blob_grants g
                 ON g.hash = substr(?1, k.n * 32 + 1, 32) AND g.tenant = ?3",
        )?;
        let rows = stmt.query_map(params![packed, hashes.len() as i64, tenant], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        let mut out = std::collections::HashSet::new();
        for row in rows {
            out.insert(hash_from(row?)?);
        }
        Ok(out)
    }
}

/// Why a node token and key may not register together: the token is bound
/// to another key, or the key to another token (a key serves one token).
fn key_refusal(
    tx: &rusqlite::Connection,
    token_hash: &[u8; 32],
    info: &NodeInfo,
    bound: Option<&[u8]>,
) -> Result<Option<Registration>> {
    let key = info.public_key.0.as_slice();
    if let Some(bound) = bound
        && bound != key
    {
        return Ok(Some(Registration::KeyMismatch(format!(
            "this node token is bound to receipt key {}, but the node presents {}; \
             a node token serves one node key (its data directory's node.key): \
             restore that key or use a new node token",
            hex::encode(bound),
            info.public_key.to_hex()
        ))));
    }
    let taken: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM tokens WHERE node_key = ?1 AND hash != ?2)",
        params![key, token_hash.as_slice()],
        |r| r.get(0),
    )?;
    Ok(taken.then(|| {
        Registration::KeyTaken(format!(
            "receipt key {} is bound to another node token; a key serves one node token \
             only, so this node cannot use it: give it its own data directory (a new \
             node.key)",
            info.public_key.to_hex()
        ))
    }))
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
mod tests;

/// A ledger in a fresh temporary directory, for unit tests.
#[cfg(test)]
pub(crate) fn temp_ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().expect("temp dir");
    let l = Ledger::open(&dir.path().join("ledger.db")).expect("ledger opens");
    (dir, l)
}
