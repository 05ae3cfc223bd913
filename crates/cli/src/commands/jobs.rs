use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use suanli_proto::{JobFilter, JobState, JobView, MAX_LISTED_JOBS, Role};

use super::connect::Connection;
use super::{json, table, units};

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The job's id (as `submit` printed it).
    job: u64,
    /// Print the job as a JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ResultArgs {
    /// The job's id.
    job: u64,
    /// Where to write the output.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
}

#[derive(clap::Args)]
pub struct LogsArgs {
    /// The job's id.
    job: u64,
    /// Keep printing until the job finishes.
    #[arg(long, short)]
    follow: bool,
}

#[derive(clap::Args)]
pub struct CancelArgs {
    /// The job's id.
    job: u64,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only jobs in this state.
    #[arg(long, value_enum)]
    state: Option<StateArg>,
    /// Show at most this many jobs (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LISTED_JOBS)))]
    limit: u32,
    /// The next page: only jobs older than this id (the last id shown).
    #[arg(long, value_name = "ID")]
    before: Option<u64>,
    /// Print a JSON array of jobs.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum StateArg {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<StateArg> for JobState {
    fn from(s: StateArg) -> JobState {
        match s {
            StateArg::Queued => JobState::Queued,
            StateArg::Running => JobState::Running,
            StateArg::Succeeded => JobState::Succeeded,
            StateArg::Failed => JobState::Failed,
            StateArg::Cancelled => JobState::Cancelled,
        }
    }
}

#[derive(clap::Args)]
pub struct NodesArgs {
    /// Print a JSON array of nodes.
    #[arg(long)]
    json: bool,
}

pub async fn status(args: StatusArgs, conn: Connection) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Tenant).await?;
    let view = client.status(args.job).await?;
    if args.json {
        println!("{}", json::job(&view));
    } else {
        println!("{}", json::job_text(&view));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn result(args: ResultArgs, conn: Connection) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Tenant).await?;
    let (view, output) = super::submit::wait_reconnecting(&conn, client, args.job, false).await?;
    if view.state != JobState::Succeeded {
        eprintln!("{}", json::job_text(&view));
        return Ok(ExitCode::FAILURE);
    }
    std::fs::write(&args.output, &output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!("wrote {} bytes to {}", output.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(args: LogsArgs, conn: Connection) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Tenant).await?;
    let mut stdout = std::io::stdout();
    client
        .logs(args.job, args.follow, |chunk| {
            let _ = stdout.write_all(chunk);
            let _ = stdout.flush();
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn cancel(args: CancelArgs, conn: Connection) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Tenant).await?;
    client.cancel(args.job).await?;
    eprintln!("job {} cancelled", args.job);
    Ok(ExitCode::SUCCESS)
}

pub async fn list(args: ListArgs, conn: Connection) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Tenant).await?;
    let filter = JobFilter {
        state: args.state.map(JobState::from),
        before: args.before,
        limit: args.limit,
    };
    let jobs = client.jobs_filtered(filter).await?;
    if args.json {
        println!(
            "{}",
            serde_json::Value::Array(jobs.iter().map(json::job).collect())
        );
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        eprintln!("no jobs");
        return Ok(ExitCode::SUCCESS);
    }
    table::print(&jobs_table(&jobs, units::now_ms()));
    if let Some(last) = jobs.last()
        && jobs.len() as u32 >= args.limit
    {
        eprintln!("more: suanli jobs --before {}", last.id);
    }
    Ok(ExitCode::SUCCESS)
}

/// One row per job: id, tenant, state, outcome, submitted (relative),
/// GPU time, cost, why it waits.
fn jobs_table(jobs: &[JobView], now_ms: u64) -> comfy_table::Table {
    let mut t = table::new(
        &[
            "ID",
            "TENANT",
            "STATE",
            "OUTCOME",
            "SUBMITTED",
            "GPU TIME",
            "COST",
            "NOTE",
        ],
        &["ID", "GPU TIME", "COST"],
    );
    for j in jobs {
        let gpu: u64 = j.attempts.iter().map(|a| a.gpu_ns).sum();
        let cost: u64 = j.attempts.iter().map(|a| a.cost_micros).sum();
        let note = j
            .waiting_reason
            .as_deref()
            .or(j.error.as_deref())
            .unwrap_or("");
        t.add_row(vec![
            j.id.to_string(),
            j.tenant.clone(),
            j.state.as_str().to_owned(),
            j.outcome.map_or("-", |o| o.as_str()).to_owned(),
            units::ago(j.submitted_ms, now_ms),
            units::ns(gpu),
            super::billing::micros(cost),
            table::short(note, 60),
        ]);
    }
    t
}

pub async fn nodes(args: NodesArgs, conn: Connection) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Admin).await?;
    let nodes = client.nodes().await?;
    if args.json {
        println!(
            "{}",
            serde_json::Value::Array(nodes.iter().map(json::node).collect())
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table::new(
        &[
            "ID", "NAME", "GPU", "DEVICES", "CLASS", "MEMORY", "SLOTS", "JOBS", "CAPS", "STATE",
        ],
        &["ID", "MEMORY", "JOBS"],
    );
    let now = units::now_ms();
    for n in &nodes {
        let state = match (&n.quarantine, n.draining) {
            _ if n.simulated_faults.is_some() => format!(
                "SIMULATING FAULTS ({})",
                n.simulated_faults.map(|s| s.describe()).unwrap_or_default()
            ),
            (Some(q), _) => format!("quarantined: {}", table::short(q, 40)),
            (None, true) => "draining".into(),
            (None, false) => format!(
                "up {}",
                units::ago(n.connected_ms, now).trim_end_matches(" ago")
            ),
        };
        t.add_row(vec![
            n.id.to_string(),
            n.name.clone(),
            format!("{} ({}, {})", n.gpu.name, n.gpu.backend, n.gpu.metering),
            n.devices
                .iter()
                .map(json::device_line)
                .collect::<Vec<_>>()
                .join("; "),
            n.gpu_class.clone(),
            units::Bytes(n.gpu.max_buffer_size).to_string(),
            format!("{}/{} ({} reported)", n.running, n.allowed_slots, n.slots),
            n.jobs_run.to_string(),
            format!(
                "{} mem, {} timeout, {} dispatch",
                units::Bytes(n.caps.max_memory_bytes),
                units::Secs(std::time::Duration::from_nanos(n.caps.max_timeout_ns)),
                units::Secs(std::time::Duration::from_nanos(n.caps.max_dispatch_ns)),
            ),
            state,
        ]);
    }
    table::print(&t);
    Ok(ExitCode::SUCCESS)
}
