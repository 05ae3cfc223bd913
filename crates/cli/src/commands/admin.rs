use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use suanli_proto::Role;

use super::connect::Connection;

#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Verify the ledger's invariants: one usage row and a valid receipt per
    /// ended attempt, no job both queued and running, tenant sums equal to
    /// their attempts. Exits 1 on a violation.
    Check {
        /// Check the coordinator data directory DIR directly (the coordinator
        /// may be stopped) instead of asking the coordinator.
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// Collect garbage now: delete finished jobs' blobs and logs past the
    /// coordinator's retention, blobs nothing refers to, and old node
    /// sessions no attempt names; print what was deleted. The coordinator
    /// also does this every --gc-interval.
    Gc {
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a consistent copy of the ledger while the coordinator serves
    /// (SQLite's online backup) and write it to FILE, atomically, mode
    /// 0600: it holds token hashes and every usage row. Blobs, logs and the
    /// certificate and key are not in it: back DATA/blobs, DATA/cert.der,
    /// DATA/key.der and DATA/client.toml up beside it (see the README).
    Backup {
        /// Where to write the backup (replaced atomically if it exists).
        file: PathBuf,
    },
    /// Install a backup as the ledger of the data directory DIR, offline
    /// (the coordinator must be stopped): checks the file is a suanli
    /// ledger this build can open, migrates a copy to the current schema,
    /// verifies every invariant `admin check` verifies, then moves it into
    /// place. An existing ledger is replaced only with --force, and kept
    /// beside it as ledger.db.replaced-<unix seconds>.
    Restore {
        /// The backup file (from `suanli admin backup`).
        file: PathBuf,
        /// The coordinator's data directory to restore into.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Replace the ledger DIR already holds.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(cmd: AdminCommand, conn: Connection) -> anyhow::Result<ExitCode> {
    let data = match cmd {
        AdminCommand::Check { data } => data,
        AdminCommand::Gc { json } => return gc(conn, json).await,
        AdminCommand::Backup { file } => return backup(conn, &file).await,
        AdminCommand::Restore { file, data, force } => return restore(&file, &data, force),
    };
    let violations = match data {
        Some(dir) => {
            let path = dir.join("ledger.db");
            anyhow::ensure!(path.exists(), "no ledger at {}", path.display());
            suanli_ledger::Ledger::open(&path)
                .and_then(|l| l.check())
                .with_context(|| format!("checking {}", path.display()))?
        }
        None => conn.connect(Role::Admin).await?.check().await?,
    };
    if violations.is_empty() {
        println!("ledger consistent: every invariant holds");
        return Ok(ExitCode::SUCCESS);
    }
    for v in &violations {
        println!("violation: {v}");
    }
    eprintln!("{} violations", violations.len());
    Ok(ExitCode::FAILURE)
}

async fn gc(conn: Connection, json: bool) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Admin).await?;
    let r = match client.call(&suanli_proto::Request::Gc).await? {
        suanli_proto::Response::Gc(r) => r,
        suanli_proto::Response::Error { code, message } => {
            anyhow::bail!("garbage collection refused ({code:?}): {message}")
        }
        other => anyhow::bail!("unexpected answer to gc: {other:?}"),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "grants_expired": r.grants_expired,
                "blobs_deleted": r.blobs_deleted,
                "blob_bytes_deleted": r.blob_bytes_deleted,
                "logs_deleted": r.logs_deleted,
                "log_bytes_deleted": r.log_bytes_deleted,
                "node_sessions_pruned": r.node_sessions_pruned,
            })
        );
    } else {
        println!(
            "deleted {} blobs ({} bytes) and {} logs ({} bytes); expired {} grants; \
             pruned {} node sessions",
            r.blobs_deleted,
            r.blob_bytes_deleted,
            r.logs_deleted,
            r.log_bytes_deleted,
            r.grants_expired,
            r.node_sessions_pruned
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How long the backup's body may stall before the download is abandoned.
const BACKUP_STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// `suanli admin backup FILE`: downloads the coordinator's snapshot into a
/// private temp file beside FILE, then renames it into place (durably), so
/// FILE is whole or untouched whatever happens.
async fn backup(conn: Connection, file: &Path) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Admin).await?;
    let started = std::time::Instant::now();
    let (tmp, out) = suanli_fs::create_temp(file)
        .with_context(|| format!("cannot create a temp file beside {}", file.display()))?;
    let mut out = tokio::fs::File::from_std(out);
    let size = match client.backup(&mut out, BACKUP_STALL).await {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(anyhow::Error::new(e).context("backup failed"));
        }
    };
    let out = out.into_std().await;
    // Checked before it replaces FILE: a bad copy never takes the place of
    // an earlier good backup.
    let info = match suanli_ledger::backup::inspect(&tmp) {
        Ok(info) => info,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(anyhow::Error::new(e).context(format!(
                "the backup received for {} does not check; nothing was written",
                file.display()
            )));
        }
    };
    if let Err(e) = suanli_fs::persist(&tmp, out, file) {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::Error::new(e).context(format!("cannot write {}", file.display())));
    }
    println!(
        "backup written to {} ({size} bytes in {:.2} s): schema {}, {} jobs, {} usage rows",
        file.display(),
        started.elapsed().as_secs_f64(),
        info.schema_version,
        info.jobs,
        info.usage_rows
    );
    Ok(ExitCode::SUCCESS)
}

/// `suanli admin restore FILE --data DIR`: see [`AdminCommand::Restore`].
/// The backup itself is never written to: a copy is migrated and checked.
fn restore(file: &Path, data: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let info = suanli_ledger::backup::inspect(file)
        .with_context(|| format!("{} cannot be restored", file.display()))?;
    let dest = data.join("ledger.db");
    let wal = data.join("ledger.db-wal");
    let present = dest.exists() || wal.exists();
    anyhow::ensure!(
        !present || force,
        "{} already holds a ledger; stop its coordinator and pass --force to replace it \
         (the old one is kept beside it)",
        data.display()
    );
    create_private_dir(data)?;
    // Held until the restore is done: a coordinator cannot start on DATA
    // meanwhile, and one running there is refused here.
    let _lock = suanli_fs::lock_dir(data)
        .with_context(|| format!("cannot lock {}", data.display()))?
        .with_context(|| {
            format!(
                "a coordinator is running on {} (its lock is held); stop it before restoring",
                data.display()
            )
        })?;
    let (tmp, placeholder) = suanli_fs::create_temp(&dest)
        .with_context(|| format!("cannot create a temp file in {}", data.display()))?;
    drop(placeholder);
    let staged = stage(file, &tmp);
    let violations = match staged {
        Ok(v) => v,
        Err(e) => {
            remove_db(&tmp);
            return Err(e);
        }
    };
    if !violations.is_empty() {
        remove_db(&tmp);
        for v in &violations {
            println!("violation: {v}");
        }
        anyhow::bail!(
            "{} fails {} invariant checks; nothing was restored",
            file.display(),
            violations.len()
        );
    }
    if present {
        let aside = set_aside(data)?;
        println!("the ledger that was there is kept as {}", aside.display());
    }
    let out =
        std::fs::File::open(&tmp).with_context(|| format!("cannot reopen {}", tmp.display()))?;
    suanli_fs::persist(&tmp, out, &dest)
        .with_context(|| format!("cannot move the restored ledger to {}", dest.display()))?;
    println!(
        "restored {} into {} (schema {} migrated to the current one; {} jobs, {} usage rows); \
         ledger consistent: every invariant holds",
        file.display(),
        dest.display(),
        info.schema_version,
        info.jobs,
        info.usage_rows
    );
    for (missing, why) in missing_beside(data) {
        println!(
            "{} has no {missing}: copy it from the original data directory ({why})",
            data.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What a restored ledger needs beside it that `data` lacks, and why.
fn missing_beside(data: &Path) -> Vec<(&'static str, &'static str)> {
    [
        ("cert.der", "without it and key.der the coordinator makes a new identity and every client and node must pin the new fingerprint"),
        ("key.der", "the certificate's key"),
        ("client.toml", "the admin token: the ledger keeps only its hash"),
        ("blobs", "jobs' modules, inputs and outputs; results of jobs whose blobs are missing are not found"),
    ]
    .into_iter()
    .filter(|(name, _)| !data.join(name).exists())
    .collect()
}

/// Copies the backup to `tmp`, migrates it to this build's schema and
/// checks its invariants; the violations found.
/// Copies `file` into `tmp` (a path whose placeholder file is replaced)
/// through SQLite's backup API, so a ledger copied with its `-wal` beside
/// it is restored with what that WAL holds; migrates it; checks it.
fn stage(file: &Path, tmp: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::remove_file(tmp).with_context(|| format!("cannot replace {}", tmp.display()))?;
    suanli_ledger::backup::snapshot(file, tmp)
        .with_context(|| format!("cannot copy {}", file.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    // Opening migrates; dropping closes (checkpointing its WAL into tmp).
    let ledger = suanli_ledger::Ledger::open(tmp)
        .with_context(|| format!("cannot open or migrate {}", file.display()))?;
    let violations = ledger.check()?;
    drop(ledger);
    Ok(violations)
}

/// Renames the ledger (and its WAL and shared-memory files, which belong
/// to it) to `ledger.db.replaced-<unix seconds>`.
fn set_aside(data: &Path) -> anyhow::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = data.join(format!("ledger.db.replaced-{secs}"));
    for suffix in ["", "-wal", "-shm"] {
        let from = data.join(format!("ledger.db{suffix}"));
        let to = PathBuf::from(format!("{}{suffix}", aside.display()));
        if from.exists() {
            suanli_fs::rename_durable(&from, &to)
                .with_context(|| format!("cannot move {} aside", from.display()))?;
        }
    }
    Ok(aside)
}

/// Removes a staged database and any WAL files SQLite left beside it.
fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The data directory, created owner-only if it is not there yet.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}
