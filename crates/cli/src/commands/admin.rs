use std::path::PathBuf;
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
}

pub async fn run(cmd: AdminCommand, conn: Connection) -> anyhow::Result<ExitCode> {
    let data = match cmd {
        AdminCommand::Check { data } => data,
        AdminCommand::Gc { json } => return gc(conn, json).await,
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
