use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use suanli_proto::{JobState, Role};

use super::connect::Connection;
use super::json;

#[derive(clap::Args)]
pub struct StatusArgs {
    job: u64,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ResultArgs {
    job: u64,
    /// Where to write the output.
    #[arg(long, short)]
    output: PathBuf,
}

#[derive(clap::Args)]
pub struct LogsArgs {
    job: u64,
    /// Keep printing until the job finishes.
    #[arg(long, short)]
    follow: bool,
}

#[derive(clap::Args)]
pub struct CancelArgs {
    job: u64,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct NodesArgs {
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
    let jobs = client.jobs().await?;
    if args.json {
        println!(
            "{}",
            serde_json::Value::Array(jobs.iter().map(json::job).collect())
        );
    } else {
        for j in &jobs {
            let gpu: u64 = j.attempts.iter().map(|a| a.gpu_ns).sum();
            println!(
                "{:>8}  {:<10} {:<12} {:<20} gpu {:>12} ns  {}",
                j.id,
                j.tenant,
                j.state.as_str(),
                j.outcome.map_or("-", |o| o.as_str()),
                gpu,
                j.waiting_reason.as_deref().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn nodes(args: NodesArgs, conn: Connection) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Admin).await?;
    let nodes = client.nodes().await?;
    if args.json {
        println!(
            "{}",
            serde_json::Value::Array(nodes.iter().map(json::node).collect())
        );
    } else {
        for n in &nodes {
            println!(
                "{:>6}  {:<12} {} ({}, {}), class {}, {} bytes max buffer, {}/{} slots busy ({} reported), {} jobs run{}{}\n        caps per job: {} bytes of memory, {} timeout, {} per dispatch",
                n.id,
                n.name,
                n.gpu.name,
                n.gpu.backend,
                n.gpu.metering,
                n.gpu_class,
                n.gpu.max_buffer_size,
                n.running,
                n.allowed_slots,
                n.slots,
                n.jobs_run,
                if n.draining { ", draining" } else { "" },
                n.quarantine
                    .as_deref()
                    .map(|q| format!(", quarantined: {q}"))
                    .unwrap_or_default(),
                n.caps.max_memory_bytes,
                json::secs(n.caps.max_timeout_ns),
                json::secs(n.caps.max_dispatch_ns),
            );
            for d in &n.devices {
                println!("{}", json::device_line(d));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
