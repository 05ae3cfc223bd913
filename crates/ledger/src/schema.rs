//! Schema migrations, versioned in code: `MIGRATIONS[i]` takes the database
//! from version `i` to `i + 1`, inside one transaction.

use rusqlite::{Connection, OptionalExtension};

use crate::{LedgerError, Result};

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: tokens, node sessions, jobs, attempts, blob grants.
    "CREATE TABLE tokens (
        hash BLOB PRIMARY KEY,
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE nodes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        gpu TEXT NOT NULL,
        slots INTEGER NOT NULL,
        connected_ms INTEGER NOT NULL
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        state TEXT NOT NULL,
        module BLOB NOT NULL,
        input BLOB NOT NULL,
        min_gpu_memory INTEGER NOT NULL,
        max_gpu_ns INTEGER,
        timeout_ns INTEGER NOT NULL,
        max_memory INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        outcome TEXT,
        error TEXT,
        output BLOB,
        output_bytes INTEGER NOT NULL DEFAULT 0,
        submitted_ms INTEGER NOT NULL,
        finished_ms INTEGER
    );
    CREATE INDEX jobs_by_state ON jobs (state, tenant, id);
    CREATE INDEX jobs_by_tenant ON jobs (tenant, id);
    CREATE TABLE attempts (
        job INTEGER NOT NULL REFERENCES jobs (id),
        attempt INTEGER NOT NULL,
        node_id INTEGER NOT NULL REFERENCES nodes (id),
        outcome TEXT,
        error TEXT,
        gpu_ns INTEGER NOT NULL,
        wall_ns INTEGER NOT NULL,
        metering TEXT,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER,
        PRIMARY KEY (job, attempt)
    );
    CREATE TABLE blob_grants (
        hash BLOB NOT NULL,
        tenant TEXT NOT NULL,
        PRIMARY KEY (hash, tenant)
    );",
    // 2: billing. Node keys bound to tokens, price classes, price history,
    // credit limits, and the append-only usage table (one row per ended
    // attempt, holding everything its receipt signs).
    "ALTER TABLE tokens ADD COLUMN node_key BLOB;
    ALTER TABLE nodes ADD COLUMN gpu_class TEXT NOT NULL DEFAULT 'unknown';
    ALTER TABLE nodes ADD COLUMN public_key BLOB NOT NULL DEFAULT x'';
    ALTER TABLE attempts ADD COLUMN gpu_class TEXT NOT NULL DEFAULT 'unknown';
    ALTER TABLE attempts ADD COLUMN price_micros INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE prices (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        class TEXT NOT NULL,
        micros INTEGER NOT NULL,
        set_ms INTEGER NOT NULL
    );
    CREATE INDEX prices_by_class ON prices (class, id);
    CREATE TABLE node_classes (
        node TEXT PRIMARY KEY,
        class TEXT NOT NULL
    );
    CREATE TABLE credit_limits (
        tenant TEXT PRIMARY KEY,
        micros INTEGER NOT NULL
    );
    CREATE TABLE usage (
        job INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        node TEXT NOT NULL,
        node_id INTEGER NOT NULL,
        node_key BLOB NOT NULL,
        gpu_class TEXT NOT NULL,
        module BLOB NOT NULL,
        input BLOB NOT NULL,
        output BLOB,
        outcome TEXT NOT NULL,
        metering TEXT NOT NULL,
        gpu_ns INTEGER NOT NULL,
        charged_gpu_ns INTEGER NOT NULL,
        wall_ns INTEGER NOT NULL,
        price_micros INTEGER NOT NULL,
        cost_micros INTEGER NOT NULL,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER NOT NULL,
        recorded_ms INTEGER NOT NULL,
        signature BLOB,
        PRIMARY KEY (job, attempt),
        FOREIGN KEY (job, attempt) REFERENCES attempts (job, attempt)
    );
    CREATE INDEX usage_by_tenant ON usage (tenant, recorded_ms);
    CREATE INDEX usage_by_node ON usage (node, recorded_ms);
    CREATE INDEX usage_by_time ON usage (recorded_ms);
    CREATE TRIGGER usage_is_append_only_update BEFORE UPDATE ON usage
        BEGIN SELECT RAISE(ABORT, 'usage rows are append-only'); END;
    CREATE TRIGGER usage_is_append_only_delete BEFORE DELETE ON usage
        BEGIN SELECT RAISE(ABORT, 'usage rows are append-only'); END;",
    // 3: typed outcomes and metering, the dispatch limit, node caps, the
    // charge cap of each usage row. SQLite cannot add a CHECK constraint with
    // ALTER TABLE, so jobs, attempts and usage are rebuilt with their rows
    // (foreign keys are off while migrating and checked before the commit).
    // Old jobs get the default dispatch limit (10 s); old usage rows keep
    // the cap they were charged under (`min(budget, timeout)`), and their
    // `metering = 'none'` (attempts the coordinator ended) becomes NULL.
    "ALTER TABLE nodes ADD COLUMN cap_memory_bytes INTEGER;
    ALTER TABLE nodes ADD COLUMN cap_timeout_ns INTEGER;
    ALTER TABLE nodes ADD COLUMN cap_dispatch_ns INTEGER;
    CREATE TABLE new_jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        state TEXT NOT NULL
            CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        module BLOB NOT NULL,
        input BLOB NOT NULL,
        min_gpu_memory INTEGER NOT NULL,
        max_gpu_ns INTEGER,
        timeout_ns INTEGER NOT NULL,
        max_memory INTEGER NOT NULL,
        max_dispatch_ns INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        outcome TEXT CHECK (outcome IN ('succeeded', 'job_error', 'trap', 'timeout',
            'memory_limit', 'gpu_budget_exceeded', 'log_limit', 'invalid_job', 'cancelled',
            'crashed', 'gpu_hang', 'node_lost', 'provider_fault')),
        error TEXT,
        output BLOB,
        output_bytes INTEGER NOT NULL DEFAULT 0,
        submitted_ms INTEGER NOT NULL,
        finished_ms INTEGER
    );
    INSERT INTO new_jobs (id, tenant, state, module, input, min_gpu_memory, max_gpu_ns, timeout_ns,
                          max_memory, max_dispatch_ns, max_attempts, outcome, error, output,
                          output_bytes, submitted_ms, finished_ms)
        SELECT id, tenant, state, module, input, min_gpu_memory, max_gpu_ns, timeout_ns,
               max_memory, 10000000000, max_attempts, outcome, error, output,
               output_bytes, submitted_ms, finished_ms
        FROM jobs;
    DELETE FROM sqlite_sequence WHERE name = 'new_jobs';
    INSERT INTO sqlite_sequence (name, seq) SELECT 'new_jobs', seq FROM sqlite_sequence WHERE name = 'jobs';
    DROP TABLE jobs;
    ALTER TABLE new_jobs RENAME TO jobs;
    CREATE INDEX jobs_by_state ON jobs (state, tenant, id);
    CREATE INDEX jobs_by_tenant ON jobs (tenant, id);
    CREATE TABLE new_attempts (
        job INTEGER NOT NULL REFERENCES jobs (id),
        attempt INTEGER NOT NULL,
        node_id INTEGER NOT NULL REFERENCES nodes (id),
        outcome TEXT CHECK (outcome IN ('succeeded', 'job_error', 'trap', 'timeout',
            'memory_limit', 'gpu_budget_exceeded', 'log_limit', 'invalid_job', 'cancelled',
            'crashed', 'gpu_hang', 'node_lost', 'provider_fault')),
        error TEXT,
        gpu_ns INTEGER NOT NULL,
        wall_ns INTEGER NOT NULL,
        metering TEXT CHECK (metering IN ('timestamp', 'wall')),
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER,
        gpu_class TEXT NOT NULL DEFAULT 'unknown',
        price_micros INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (job, attempt)
    );
    INSERT INTO new_attempts (job, attempt, node_id, outcome, error, gpu_ns, wall_ns, metering,
                              started_ms, ended_ms, gpu_class, price_micros)
        SELECT job, attempt, node_id, outcome, error, gpu_ns, wall_ns, NULLIF(metering, 'none'),
               started_ms, ended_ms, gpu_class, price_micros
        FROM attempts;
    DROP TABLE attempts;
    ALTER TABLE new_attempts RENAME TO attempts;
    CREATE INDEX attempts_running ON attempts (job) WHERE outcome IS NULL;
    CREATE TABLE new_usage (
        job INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        node TEXT NOT NULL,
        node_id INTEGER NOT NULL,
        node_key BLOB NOT NULL,
        gpu_class TEXT NOT NULL,
        module BLOB NOT NULL,
        input BLOB NOT NULL,
        output BLOB,
        outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'job_error', 'trap', 'timeout',
            'memory_limit', 'gpu_budget_exceeded', 'log_limit', 'invalid_job', 'cancelled',
            'crashed', 'gpu_hang', 'node_lost', 'provider_fault')),
        metering TEXT CHECK (metering IN ('timestamp', 'wall')),
        gpu_ns INTEGER NOT NULL,
        charged_gpu_ns INTEGER NOT NULL,
        charge_cap_ns INTEGER NOT NULL,
        wall_ns INTEGER NOT NULL,
        price_micros INTEGER NOT NULL,
        cost_micros INTEGER NOT NULL,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER NOT NULL,
        recorded_ms INTEGER NOT NULL,
        signature BLOB,
        PRIMARY KEY (job, attempt),
        FOREIGN KEY (job, attempt) REFERENCES attempts (job, attempt),
        CHECK ((metering IS NULL) = (signature IS NULL))
    );
    INSERT INTO new_usage (job, attempt, tenant, node, node_id, node_key, gpu_class, module, input,
                           output, outcome, metering, gpu_ns, charged_gpu_ns, charge_cap_ns, wall_ns,
                           price_micros, cost_micros, started_ms, ended_ms, recorded_ms, signature)
        SELECT us.job, us.attempt, us.tenant, us.node, us.node_id, us.node_key, us.gpu_class,
               us.module, us.input, us.output, us.outcome, NULLIF(us.metering, 'none'), us.gpu_ns,
               us.charged_gpu_ns, MIN(COALESCE(j.max_gpu_ns, j.timeout_ns), j.timeout_ns),
               us.wall_ns, us.price_micros, us.cost_micros, us.started_ms, us.ended_ms,
               us.recorded_ms, us.signature
        FROM usage us JOIN jobs j ON j.id = us.job;
    DROP TABLE usage;
    ALTER TABLE new_usage RENAME TO usage;
    CREATE INDEX usage_by_tenant ON usage (tenant, recorded_ms);
    CREATE INDEX usage_by_node ON usage (node, recorded_ms);
    CREATE INDEX usage_by_time ON usage (recorded_ms);
    CREATE TRIGGER usage_is_append_only_update BEFORE UPDATE ON usage
        BEGIN SELECT RAISE(ABORT, 'usage rows are append-only'); END;
    CREATE TRIGGER usage_is_append_only_delete BEFORE DELETE ON usage
        BEGIN SELECT RAISE(ABORT, 'usage rows are append-only'); END;",
    // 4: node identity, per-token node caps, quarantine, drain (issue 11).
    // A receipt key binds to one node token (unique index; `before_v4`
    // names duplicates instead of failing on the index); each node session
    // records the token it registered with, so attempts belong to token and
    // key together; a node token's slot cap, admin drain and quarantine live
    // with the token, so they survive a restart. `restored_ms`: faults
    // before it no longer count towards quarantine.
    "ALTER TABLE tokens ADD COLUMN max_slots INTEGER NOT NULL DEFAULT 8;
    ALTER TABLE tokens ADD COLUMN drained INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tokens ADD COLUMN quarantine TEXT;
    ALTER TABLE tokens ADD COLUMN restored_ms INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX tokens_by_node_key ON tokens (node_key) WHERE node_key IS NOT NULL;
    ALTER TABLE nodes ADD COLUMN token_hash BLOB;
    UPDATE nodes SET token_hash = (SELECT t.hash FROM tokens t
        WHERE t.role = 'node' AND t.node_key = nodes.public_key);
    CREATE INDEX nodes_by_token ON nodes (token_hash);",
    // 5: token lifecycle: revocation, last use (issue 11).
    "ALTER TABLE tokens ADD COLUMN revoked_ms INTEGER;
    ALTER TABLE tokens ADD COLUMN last_used_ms INTEGER;
    CREATE INDEX tokens_by_name ON tokens (name);",
    // 6: storage quotas and retention (issue 11). `blobs` holds one row per
    // blob file (written before the file, deleted before the file), so bytes
    // are counted from the ledger, never by scanning the disk; grants get the
    // time they were made (existing ones: the time of this migration, so an
    // upgrade starts their retention now); `job_logs` counts each job's log
    // bytes against its tenant; `storage_quotas` overrides the default quota.
    "CREATE TABLE blobs (
        hash BLOB PRIMARY KEY,
        size INTEGER NOT NULL,
        stored_ms INTEGER NOT NULL
    );
    ALTER TABLE blob_grants ADD COLUMN granted_ms INTEGER NOT NULL DEFAULT 0;
    UPDATE blob_grants SET granted_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
    CREATE INDEX blob_grants_by_tenant ON blob_grants (tenant, hash);
    CREATE TABLE job_logs (
        job INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        deleted_ms INTEGER
    );
    CREATE INDEX job_logs_kept ON job_logs (tenant) WHERE deleted_ms IS NULL;
    CREATE TABLE storage_quotas (
        tenant TEXT PRIMARY KEY,
        bytes INTEGER NOT NULL
    );
    CREATE INDEX jobs_by_module ON jobs (module);
    CREATE INDEX jobs_by_input ON jobs (input);
    CREATE INDEX jobs_by_output ON jobs (output) WHERE output IS NOT NULL;
    CREATE INDEX attempts_by_node ON attempts (node_id);",
    // 7: each tenant's spend kept as a running total (issue 12), so a credit
    // check reads one row instead of the tenant's whole usage history. The
    // trigger adds each usage row's cost in the row's own transaction
    // (saturating at i64::MAX); `check` verifies total = sum of rows.
    // Existing totals are summed once here.
    "CREATE TABLE tenant_spend (
        tenant TEXT PRIMARY KEY,
        micros INTEGER NOT NULL CHECK (micros >= 0)
    );
    INSERT INTO tenant_spend (tenant, micros)
        SELECT tenant, CAST(MIN(total(cost_micros), 9223372036854775807.0) AS INTEGER)
        FROM usage GROUP BY tenant;
    CREATE TRIGGER usage_adds_to_spend AFTER INSERT ON usage BEGIN
        INSERT INTO tenant_spend (tenant, micros) VALUES (NEW.tenant, NEW.cost_micros)
        ON CONFLICT (tenant) DO UPDATE SET micros =
            CASE WHEN micros > 9223372036854775807 - excluded.micros
                 THEN 9223372036854775807 ELSE micros + excluded.micros END;
    END;",
];

/// The outcome names migration 3's CHECK constraints allow, in the order of
/// `Outcome::ALL` (a test keeps them equal: a new outcome needs a new
/// migration that rebuilds the constraints).
const OUTCOMES_V3: [&str; 13] = [
    "succeeded",
    "job_error",
    "trap",
    "timeout",
    "memory_limit",
    "gpu_budget_exceeded",
    "log_limit",
    "invalid_job",
    "cancelled",
    "crashed",
    "gpu_hang",
    "node_lost",
    "provider_fault",
];

/// Rows that migration 3's CHECK constraints would refuse: outcome or
/// metering names no honest node sends (before version 2 they were free
/// text from the node). Usage rows are signed and append-only, so they are
/// not rewritten: the migration stops and names them for the operator.
fn before_v3(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    let outcomes = OUTCOMES_V3.map(|o| format!("'{o}'")).join(", ");
    let sql = format!(
        "SELECT 'job ' || id, outcome FROM jobs WHERE outcome NOT IN ({outcomes})
         UNION ALL SELECT 'attempt ' || job || '/' || attempt, outcome FROM attempts
             WHERE outcome NOT IN ({outcomes})
         UNION ALL SELECT 'attempt ' || job || '/' || attempt, metering FROM attempts
             WHERE metering NOT IN ('timestamp', 'wall', 'none')
         UNION ALL SELECT 'usage row ' || job || '/' || attempt, outcome FROM usage
             WHERE outcome NOT IN ({outcomes})
         UNION ALL SELECT 'usage row ' || job || '/' || attempt, metering FROM usage
             WHERE NOT (metering IN ('timestamp', 'wall') OR (metering = 'none' AND signature IS NULL))
         LIMIT 20"
    );
    let mut stmt = tx.prepare(&sql)?;
    let bad = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} has {:?}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if bad.is_empty() {
        return Ok(());
    }
    Err(LedgerError::Migration {
        version: 3,
        reason: format!(
            "rows name outcomes or metering methods that no honest node reports ({}); \
             the known outcomes are {}. Inspect them (sqlite3 ledger.db) and correct or \
             remove them, then start again; the database was left unchanged",
            bad.join("; "),
            OUTCOMES_V3.join(", ")
        ),
    })
}

/// Node tokens bound to the same receipt key, which migration 4's unique
/// index refuses: one of them presented another's key. Which one is the
/// impostor is the operator's call, so the migration stops and names them.
fn before_v4(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    let mut stmt = tx.prepare(
        "SELECT group_concat(name, ', ') FROM tokens WHERE node_key IS NOT NULL
         GROUP BY node_key HAVING COUNT(*) > 1 LIMIT 20",
    )?;
    let shared = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if shared.is_empty() {
        return Ok(());
    }
    Err(LedgerError::Migration {
        version: 4,
        reason: format!(
            "node tokens share a receipt key ({}); a key may be bound to one node token \
             only. Set `node_key = NULL` on the tokens that should not hold it \
             (sqlite3 ledger.db), then start again; the database was left unchanged",
            shared.join("; ")
        ),
    })
}

/// Brings the database to the newest version, one transaction per step.
/// Foreign keys are off while migrating (rebuilding a table drops the one
/// others refer to) and checked before each step commits.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > known {
        return Err(LedgerError::SchemaTooNew { found, known });
    }
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        if version + 1 == 3 {
            before_v3(&tx)?;
        }
        if version + 1 == 4 {
            before_v4(&tx)?;
        }
        tx.execute_batch(sql)?;
        let dangling: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()?;
        if let Some(table) = dangling {
            return Err(LedgerError::Migration {
                version: version as i64 + 1,
                reason: format!("a row of {table} refers to a row that does not exist"),
            });
        }
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_3_allows_exactly_the_outcomes_of_this_build() {
        let names: Vec<&str> = suanli_proto::Outcome::ALL
            .iter()
            .map(|o| o.as_str())
            .collect();
        assert_eq!(names, OUTCOMES_V3);
        let list = OUTCOMES_V3.map(|o| format!("'{o}'")).join(", ");
        let sql: String = MIGRATIONS[2]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(sql.matches(&format!("outcome IN ({list})")).count(), 3);
        let metering: Vec<&str> = suanli_proto::Metering::ALL
            .iter()
            .map(|m| m.as_str())
            .collect();
        assert_eq!(metering, ["timestamp", "wall"]);
        assert_eq!(sql.matches("metering IN ('timestamp', 'wall')").count(), 2);
    }
}
