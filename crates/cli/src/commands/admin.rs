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
}

pub async fn run(cmd: AdminCommand, conn: Connection) -> anyhow::Result<ExitCode> {
    let AdminCommand::Check { data } = cmd;
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
