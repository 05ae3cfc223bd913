use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use suanli_gpu::{Gpu, GpuOptions};
use suanli_sandbox::{JobLimits, JobReport, Outcome, Sandbox, SandboxConfig};

use super::units::Bytes;
use super::{LimitArgs, default_cache_dir, read_file, read_input};

#[derive(clap::Args)]
pub struct Args {
    /// The job: a wasm32-wasip2 component built with suanli-guest.
    job: PathBuf,
    /// Input bytes for the job (default: empty input).
    #[arg(long, short, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the job's output here.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    /// How much stdout/stderr is kept in the job log; the rest is dropped.
    #[arg(long, value_name = "SIZE", default_value = "1MiB")]
    max_log: Bytes,
    /// Use the adapter whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    adapter: Option<String>,
    /// Do not read or write the on-disk cache of compiled jobs.
    #[arg(long)]
    no_cache: bool,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let wasm = read_file("job", &args.job)?;
    let input = read_input(args.input.as_deref())?;
    let limits = JobLimits {
        max_memory_bytes: usize::try_from(args.limits.max_memory.0).unwrap_or(usize::MAX),
        timeout: args.limits.timeout(),
        max_gpu_ns: args.limits.max_gpu_ns(),
        max_dispatch: args.limits.max_dispatch()?,
        max_log_bytes: usize::try_from(args.max_log.0).unwrap_or(usize::MAX),
        ..JobLimits::default()
    };
    let gpu = Gpu::open(&GpuOptions {
        adapter_name: args.adapter.clone(),
        ..GpuOptions::default()
    })?;
    let slot = gpu.new_slot()?;
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: if args.no_cache {
            None
        } else {
            default_cache_dir()
        },
        ..SandboxConfig::default()
    })?;
    let report = sandbox.run(&slot, &wasm, &input, &limits)?;
    if let Some(path) = &args.output
        && report.outcome == Outcome::Succeeded
    {
        std::fs::write(path, &report.output)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["output_file"] = serde_json::json!(args.output);
        println!("{value}");
    } else {
        print_human(&report, args.output.as_deref());
    }
    Ok(if report.outcome == Outcome::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_human(r: &JobReport, output: Option<&std::path::Path>) {
    if !r.log.is_empty() {
        println!("--- job log ---");
        print!("{}", r.log);
        if !r.log.ends_with('\n') {
            println!();
        }
        if r.log_truncated_bytes > 0 {
            println!("[{} more bytes of log dropped]", r.log_truncated_bytes);
        }
        println!("---------------");
    }
    println!("outcome:   {}", r.outcome.as_str());
    if let Some(error) = &r.error {
        println!("error:     {error}");
    }
    match output {
        Some(path) if r.outcome == Outcome::Succeeded => {
            println!(
                "output:    {} bytes, written to {}",
                r.output_bytes,
                path.display()
            )
        }
        _ => println!("output:    {} bytes", r.output_bytes),
    }
    println!(
        "gpu time:  {} ({} ns, {} dispatches)",
        human_ns(r.gpu_ns),
        r.gpu_ns,
        r.dispatches
    );
    println!(
        "wall time: {} ({} ns; loading {} from {})",
        human_ns(r.wall_ns),
        r.wall_ns,
        human_ns(r.load_ns),
        match r.cache {
            suanli_sandbox::CacheHit::Miss => "compilation",
            suanli_sandbox::CacheHit::Memory => "memory cache",
            suanli_sandbox::CacheHit::Disk => "disk cache",
        }
    );
    println!("metering:  {}", r.metering.as_str());
    println!(
        "adapter:   {} ({}, {}, {})",
        r.adapter.name, r.adapter.backend, r.adapter.device_type, r.adapter.driver_info
    );
}

fn human_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.3} ms", ns as f64 / 1e6),
        _ => format!("{:.3} s", ns as f64 / 1e9),
    }
}
