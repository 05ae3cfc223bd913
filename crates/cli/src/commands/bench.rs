use std::path::PathBuf;
use std::process::ExitCode;

use suanli_bench::{
    BenchConfig, ClusterBenchConfig, MeteringBenchConfig, Report, StartBenchConfig,
    TransferBenchConfig,
};
use suanli_gpu::{Gpu, GpuOptions};

use super::read_file;
use super::units::Bytes;

#[derive(clap::Args)]
pub struct Args {
    /// Sandbox overhead: the matmul example job (target/guest/wasm32-wasip2/release/matmul.wasm).
    #[arg(long)]
    matmul: Option<PathBuf>,
    /// Cluster round trips and throughput: the vector-add example job.
    #[arg(long, value_name = "VECTOR_ADD_WASM")]
    cluster: Option<PathBuf>,
    /// Metering accuracy: receipt GPU time of the matmul job through a local
    /// cluster vs the same kernel timed with native wgpu timestamps.
    #[arg(long, value_name = "MATMUL_WASM")]
    metering: Option<PathBuf>,
    /// Job start latency: instantiation floor, warm start p50/p99 and cold
    /// start of a no-op job (e.g. the misbehave test job, input `ok`).
    #[arg(long, value_name = "JOB_WASM")]
    start: Option<PathBuf>,
    /// Bulk transfer: blob uploads and downloads through a coordinator on
    /// loopback vs the same bytes on a raw quinn stream (no job, no GPU).
    #[arg(long)]
    transfer: bool,
    /// Transfer: blob sizes, comma-separated.
    #[arg(
        long,
        value_name = "SIZES",
        value_delimiter = ',',
        default_value = "1MiB,64MiB,256MiB"
    )]
    transfer_sizes: Vec<Bytes>,
    /// Start: the job's input.
    #[arg(long, default_value = "ok")]
    start_input: String,
    /// Cluster: sequential round trips measured.
    #[arg(long, default_value_t = 100)]
    round_trips: usize,
    /// Cluster: jobs submitted back to back.
    #[arg(long, default_value_t = 200)]
    pipelined: usize,
    /// Cluster: slots of the node.
    #[arg(long, default_value_t = 2)]
    slots: u32,
    /// Matrix size.
    #[arg(long, default_value_t = 512)]
    n: u32,
    /// Runs of each side; medians are reported. For --start: warm runs
    /// measured (at least 100).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Use the adapter whose name contains this text.
    #[arg(long)]
    adapter: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.matmul.is_none()
        && args.cluster.is_none()
        && args.metering.is_none()
        && args.start.is_none()
        && !args.transfer
    {
        anyhow::bail!(
            "nothing to measure: pass --matmul MATMUL_WASM, --cluster VECTOR_ADD_WASM, --metering MATMUL_WASM, --start JOB_WASM and/or --transfer"
        );
    }
    if args.transfer {
        run_transfer(&args)?;
    }
    if let Some(path) = &args.start {
        run_start(&args, path)?;
    }
    if let Some(path) = &args.metering {
        let gpu = Gpu::open(&GpuOptions {
            adapter_name: args.adapter.clone(),
            ..GpuOptions::default()
        })?;
        let slot = gpu.new_slot()?;
        let config = MeteringBenchConfig {
            matmul_wasm: read_file("job", path)?,
            n: args.n,
            runs: args.runs,
        };
        let report = super::block_on_value(suanli_bench::run_metering(&slot, &config))?;
        if args.json {
            println!("{}", serde_json::to_value(&report)?);
        } else {
            println!(
                "metering accuracy (matmul n = {}, {} runs, medians): receipt {} vs native timestamps {}: relative error {:.3}% (worst pair {:.3}%)",
                report.n,
                report.runs,
                ms(report.receipt_gpu_ns),
                ms(report.native_gpu_ns),
                report.relative_error * 100.0,
                report.worst_pair_error * 100.0
            );
        }
    }
    if let Some(path) = &args.cluster {
        let config = ClusterBenchConfig {
            vector_add_wasm: read_file("job", path)?,
            round_trips: args.round_trips,
            pipelined: args.pipelined,
            slots: args.slots,
        };
        let report = super::block_on_value(suanli_bench::run_cluster(&config))?;
        if args.json {
            println!("{}", serde_json::to_value(&report)?);
        } else {
            println!(
                "cluster on loopback (1 coordinator, 1 node with {} slots): small vector-add job round trip p50 {}, p99 {} over {} jobs; {} pipelined jobs at {:.1} jobs/s",
                report.slots,
                ms(report.p50_ns),
                ms(report.p99_ns),
                report.round_trips,
                report.pipelined,
                report.jobs_per_second
            );
        }
    }
    let Some(matmul) = &args.matmul else {
        return Ok(ExitCode::SUCCESS);
    };
    let gpu = Gpu::open(&GpuOptions {
        adapter_name: args.adapter,
        ..GpuOptions::default()
    })?;
    let slot = gpu.new_slot()?;
    let report = suanli_bench::run(
        &slot,
        &BenchConfig {
            matmul_wasm: read_file("job", matmul)?,
            n: args.n,
            runs: args.runs,
        },
    )?;
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["gpu_ratio"] = serde_json::json!(report.gpu_ratio());
        value["wall_ratio"] = serde_json::json!(report.wall_ratio());
        println!("{value}");
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--transfer`: blob transfers vs a raw quinn stream.
fn run_transfer(args: &Args) -> anyhow::Result<()> {
    let config = TransferBenchConfig {
        sizes: args.transfer_sizes.iter().map(|b| b.0).collect(),
        runs: args.runs,
    };
    let report = super::block_on_value(suanli_bench::run_transfer(&config))?;
    if args.json {
        println!("{}", serde_json::to_value(&report)?);
        return Ok(());
    }
    println!(
        "bulk transfer on loopback ({} runs, medians): suanli blob vs raw quinn stream",
        report.runs
    );
    for s in &report.sizes {
        println!(
            "{:>10}: put {} ({:.0} MiB/s, ratio {:.2}), get {} ({:.0} MiB/s, ratio {:.2})",
            bytesize::ByteSize(s.bytes).display().iec().to_string(),
            ms(s.put_ns),
            s.put_mib_per_s,
            s.put_ratio,
            ms(s.get_ns),
            s.get_mib_per_s,
            s.get_ratio
        );
    }
    Ok(())
}

/// `--start`: job start latency on one slot.
fn run_start(args: &Args, path: &std::path::Path) -> anyhow::Result<()> {
    let gpu = Gpu::open(&GpuOptions {
        adapter_name: args.adapter.clone(),
        ..GpuOptions::default()
    })?;
    let slot = gpu.new_slot()?;
    let config = StartBenchConfig {
        wasm: read_file("job", path)?,
        input: args.start_input.clone().into_bytes(),
        runs: args.runs,
        sandbox: suanli_sandbox::SandboxConfig::default(),
    };
    let report = suanli_bench::run_start(&slot, &config)?;
    if args.json {
        println!("{}", serde_json::to_value(&report)?);
    } else {
        println!(
            "job start ({} warm runs): instance floor {}, warm p50 {}, p99 {}; cold {} (compiling {})",
            report.runs,
            us(report.instance_floor_ns),
            us(report.warm_start_p50_ns),
            us(report.warm_start_p99_ns),
            ms(report.cold_start_ns),
            ms(report.cold_load_ns)
        );
    }
    Ok(())
}

fn us(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1e3)
}

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

fn print_table(r: &Report) {
    println!(
        "adapter: {} ({}, metering: {})",
        r.adapter.name,
        r.adapter.backend,
        r.adapter.metering.as_str()
    );
    println!(
        "matmul n = {}, {} interleaved runs per side, medians",
        r.n, r.runs
    );
    println!(
        "{:<28}{:>16}{:>16}{:>10}",
        "", "job (sandbox)", "native wgpu", "ratio"
    );
    println!(
        "{:<28}{:>16}{:>16}{:>10.3}",
        "kernel GPU time",
        ms(r.job.gpu_ns),
        ms(r.native.gpu_ns),
        r.gpu_ratio()
    );
    println!(
        "{:<28}{:>16}{:>16}{:>10.3}",
        "end to end (host wall)",
        ms(r.job.wall_ns),
        ms(r.native.wall_ns),
        r.wall_ratio()
    );
    println!(
        "start of a job: cold {} (compiling {}), warm {} (loading {})",
        ms(r.cold_start_ns),
        ms(r.cold_load_ns),
        ms(r.warm_start_ns),
        ms(r.warm_load_ns)
    );
}
