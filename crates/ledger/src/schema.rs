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
