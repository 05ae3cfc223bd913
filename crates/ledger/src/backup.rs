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
    // Created empty with mode 0600 first (SQLite takes an empty file as a
    // new database), so the copy of token hashes is never readable by others,
    // whatever the umask.
    create_owner_only(dest)
        .map_err(|e| LedgerError::Corrupt(format!("cannot create {}: {e}", dest.display())))?;
    let mut dst = Connection::open(dest)?;
    {
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        // Every page in one step: one read transaction, one snapshot.
        backup.step(-1)?;
    }
    // One self-contained file: the copy keeps the ledger's WAL flag, which
    // would make every reader of the backup leave -wal and -shm files
    // beside it. A coordinator opening it turns WAL back on.
    dst.pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(()))?;
    drop(dst);
    inspect(dest)
}

fn create_owner_only(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
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

#[cfg(test)]
mod tests {
    use suanli_proto::Role;

    use super::*;
    use crate::Ledger;

    #[test]
    fn a_snapshot_holds_what_was_committed_and_opens_as_a_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let mut ledger = Ledger::open(&path).unwrap();
        ledger
            .add_token(&[1; 32], Role::Tenant, "alice", 0)
            .unwrap();
        // An open write transaction on another connection is not in it.
        ledger.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        ledger.add_token(&[2; 32], Role::Tenant, "bob", 0).unwrap();
        let copy = dir.path().join("copy.db");
        let info = snapshot(&path, &copy).unwrap();
        ledger.conn.execute_batch("COMMIT").unwrap();
        assert_eq!(info.schema_version, schema::MIGRATIONS.len() as i64);
        for side in ["copy.db-wal", "copy.db-shm"] {
            assert!(
                !dir.path().join(side).exists(),
                "{side} left beside the copy"
            );
        }
        let restored = Ledger::open(&copy).unwrap();
        assert!(restored.find_token(&[1; 32]).unwrap().is_some());
        assert!(restored.find_token(&[2; 32]).unwrap().is_none());
        assert!(restored.check().unwrap().is_empty());
        assert!(snapshot(&path, &copy).is_err(), "never overwrites");
    }

    #[test]
    fn inspect_refuses_a_newer_schema_and_what_is_not_a_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let newer = dir.path().join("newer.db");
        let conn = Connection::open(&newer).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        drop(conn);
        assert!(matches!(
            inspect(&newer),
            Err(LedgerError::SchemaTooNew { found: 999, .. })
        ));
        let empty = dir.path().join("empty.db");
        drop(Connection::open(&empty).unwrap());
        assert!(inspect(&empty).is_err());
        let text = dir.path().join("text.db");
        std::fs::write(&text, b"not a database at all, not even close").unwrap();
        assert!(inspect(&text).is_err());
    }
}
