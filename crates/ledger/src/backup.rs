//! Backups of a live ledger and checks of a backup before it is restored.
//!
//! A backup is SQLite's online backup of the whole database, taken in one
//! step from its own read-only connection: in WAL mode that is one read
//! transaction, so the copy is a consistent snapshot of what was committed
//! when it began, and the writer goes on committing meanwhile (a reader
//! never blocks a writer under WAL; it only holds checkpoints back until the
//! copy is done).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::{LedgerError, Result, schema};

/// What a backup file holds, as [`inspect`] found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    /// Its schema version (`PRAGMA user_version`); a coordinator of this
    /// build migrates an older one on start.
    pub schema_version: i64,
    pub jobs: u64,
    pub usage_rows: u64,
}

/// Copies the ledger at `ledger` into a new database at `dest` (which
/// must not exist) while other connections keep writing; returns what the
/// copy holds. Blocking: run it on a blocking thread.
pub fn snapshot(ledger: &Path, dest: &Path) -> Result<BackupInfo> {
    let src = Connection::open_with_flags(
        ledger,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(std::time::Duration::from_secs(5))?;
    if dest.exists() {
        return Err(LedgerError::Corrupt(format!(
            "backup destination {} already exists",
            dest.display()
        )));
    }
    let mut dst = Connection::open(dest)?;
    {
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        // Every page in one step: one read transaction, one snapshot.
        backup.step(-1)?;
    }
    drop(dst);
    inspect(dest)
}

/// Checks that `path` is a suanli ledger this build can open (its schema
/// version is known, SQLite finds it intact, its tables are there) without
/// changing it, and says what it holds.
pub fn inspect(path: &Path) -> Result<BackupInfo> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let not_ours = |reason: String| LedgerError::Migration {
        version: 0,
        reason: format!("{} is not a suanli ledger: {reason}", path.display()),
    };
    let known = schema::MIGRATIONS.len() as i64;
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| not_ours(e.to_string()))?;
    if found > known {
        return Err(LedgerError::SchemaTooNew { found, known });
    }
    if found < 1 {
        return Err(not_ours("it has no schema version".into()));
    }
    let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(LedgerError::Corrupt(format!(
            "{}: SQLite's quick check says {verdict}",
            path.display()
        )));
    }
    let count = |table: &str| -> Result<u64> {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| not_ours(format!("table {table}: {e}")))?;
        Ok(crate::u(n))
    };
    count("tokens")?;
    Ok(BackupInfo {
        schema_version: found,
        jobs: count("jobs")?,
        usage_rows: if found >= 2 { count("usage")? } else { 0 },
    })
}
