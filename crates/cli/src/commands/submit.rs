use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use suanli_proto::{JobLimits, JobState, Requirements, Role};

use super::connect::Connection;
use super::units::Bytes;
use super::{LimitArgs, json, read_file, read_input};

#[derive(clap::Args)]
pub struct Args {
    /// The job: a wasm32-wasip2 component built with suanli-guest.
    job: PathBuf,
    /// Input bytes for the job (default: empty input).
    #[arg(long, short, value_name = "FILE")]
    input: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Only run on a node whose GPU offers at least this much memory (its
    /// largest buffer).
    #[arg(long, value_name = "SIZE", default_value = "0")]
    min_gpu_memory: Bytes,
    /// Runs allowed when nodes are lost or fail (at most 10; a job that
    /// crashes a node's worker runs once more, elsewhere, at most).
    #[arg(long, value_name = "N", default_value_t = 3)]
    max_attempts: u32,
    /// Wait for the job to finish and show its result.
    #[arg(long)]
    wait: bool,
    /// With --wait: write the output here.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print JSON: `{"job": ID}`, or with --wait the finished job.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, conn: Connection) -> anyhow::Result<ExitCode> {
    let module = read_file("job", &args.job)?;
    let input = read_input(args.input.as_deref())?;
    let max_dispatch_ns = u64::try_from(args.limits.max_dispatch()?.as_nanos()).unwrap_or(u64::MAX);
    let limits = JobLimits {
        max_gpu_ns: args.limits.max_gpu_ns(),
        timeout_ns: args.limits.timeout.as_nanos(),
        max_memory_bytes: args.limits.max_memory.0,
        max_dispatch_ns,
    };
    let client = conn.connect(Role::Tenant).await?;
    let job = client
        .submit(
            &module,
            &input,
            Requirements {
                min_gpu_memory: args.min_gpu_memory.0,
            },
            limits,
            args.max_attempts,
        )
        .await?;
    if !args.wait {
        if args.json {
            println!("{}", serde_json::json!({ "job": job }));
        } else {
            println!("{job}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        eprintln!("job {job} submitted");
    }
    let (view, output) = wait_reconnecting(&conn, client, job, !args.json).await?;
    if let Some(path) = &args.output
        && view.state == JobState::Succeeded
    {
        std::fs::write(path, &output)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", json::job(&view));
    } else {
        println!("{}", json::job_text(&view));
    }
    Ok(if view.state == JobState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Waits for the job's result; when the coordinator goes away (a restart),
/// reconnects with backoff and keeps waiting, for up to ten minutes.
pub async fn wait_reconnecting(
    conn: &Connection,
    mut client: suanli_net::Client,
    job: u64,
    progress: bool,
) -> anyhow::Result<(suanli_proto::JobView, Vec<u8>)> {
    loop {
        let attempt = async {
            if progress {
                show_progress(&client, job).await?;
            }
            client.result(job).await
        };
        let err = match attempt.await {
            Ok(done) => return Ok(done),
            Err(e) if e.is_connection_lost() => e,
            Err(e) => return Err(e.into()),
        };
        eprintln!("lost the coordinator ({err}); reconnecting and waiting on");
        let since = std::time::Instant::now();
        let mut pauses = suanli_net::backoff::pauses(
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(5),
            None,
        );
        client = loop {
            let pause = pauses.next().unwrap_or(std::time::Duration::from_secs(5));
            tokio::time::sleep(pause).await;
            match conn.connect(Role::Tenant).await {
                Ok(c) => break c,
                Err(e) if since.elapsed() > std::time::Duration::from_secs(600) => {
                    return Err(e.context(format!("gave up waiting for job {job}")));
                }
                Err(_) => {}
            }
        };
    }
}

/// Prints each change of the job's state (queued and why, running where)
/// until it is final.
async fn show_progress(client: &suanli_net::Client, job: u64) -> Result<(), suanli_net::NetError> {
    let mut waiting = super::progress::Waiting::new();
    loop {
        let view = client.status(job).await?;
        let line = match (view.state, view.attempts.last()) {
            (JobState::Queued, _) => format!(
                "queued: {}",
                view.waiting_reason.as_deref().unwrap_or("waiting")
            ),
            (JobState::Running, Some(a)) => format!(
                "running: attempt {} on node {} ({})",
                a.attempt, a.node_id, a.node
            ),
            (state, _) => state.as_str().to_owned(),
        };
        waiting.show(line);
        if view.state.is_final() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
