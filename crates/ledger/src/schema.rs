//! Schema migrations, versioned in code: `MIGRATIONS[i]` takes the database
//! from version `i` to `i + 1`, inside one transaction.

use rusqlite::Connection;

use crate::{LedgerError, Result};

const MIGRATIONS: &[&str] = &[
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
];

pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > known {
        return Err(LedgerError::SchemaTooNew { found, known });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
