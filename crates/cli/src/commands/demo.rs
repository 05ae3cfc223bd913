//! A whole cluster in one process on loopback: a coordinator, two provider
//! nodes and a tenant, running the example jobs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use suanli_coordinator::{Coordinator, CoordinatorConfig};
use suanli_net::Client;
use suanli_node::{Node, NodeConfig};
use suanli_proto::{JobLimits, JobState, Requirements, Role};

use suanli_ledger::billing::check_record;
use suanli_proto::usage::{GroupBy, UsageQuery};

use super::billing::{micros, seconds};
use super::json::attempt_line;
use super::read_file;

#[derive(clap::Args)]
pub struct Args {
    /// Where the example jobs are (scripts/build-guests.sh puts them there).
    #[arg(long, default_value = "target/guest/wasm32-wasip2/release")]
    jobs: PathBuf,
    /// Where to put the coordinator's and nodes' data and the outputs.
    #[arg(long, default_value = "target/demo")]
    out: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = std::fs::remove_dir_all(args.out.join("cluster"));
    let coordinator = Coordinator::start(CoordinatorConfig::new(
        "127.0.0.1:0".parse()?,
        args.out.join("cluster/coordinator"),
    ))
    .await?;
    let (addr, fp) = (coordinator.addr(), coordinator.fingerprint().to_owned());
    let admin_token = coordinator
        .new_admin_token
        .clone()
        .context("a fresh coordinator has an admin token")?;
    println!("coordinator on {addr}, certificate sha-256 {fp}");
    let admin = Client::connect(addr, &fp, &admin_token, Role::Admin).await?;
    let tenant_token = admin.create_token(Role::Tenant, "demo-tenant").await?;
    // Prices in micro-units per GPU-second: 2.5 units for any GPU, 4 units
    // for provider-b's, which the operator certified as "premium".
    admin.set_price("default", 2_500_000).await?;
    admin.set_price("premium", 4_000_000).await?;
    admin.set_node_class("provider-b", Some("premium")).await?;
    println!("prices: default 2.500000, premium 4.000000 per GPU-second; provider-b is premium");

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut node_tasks = Vec::new();
    for name in ["provider-a", "provider-b"] {
        let token = admin.create_token(Role::Node, name).await?;
        let config = NodeConfig::new(addr, fp.clone(), token, args.out.join("cluster").join(name));
        let node = tokio::task::spawn_blocking(move || Node::new(config)).await??;
        println!(
            "node {name}: {} ({})",
            node.info().gpu.name,
            node.info().gpu.metering
        );
        node_tasks.push(tokio::spawn(node.run(stop.clone())));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while admin.nodes().await?.len() < 2 {
        if tokio::time::Instant::now() > deadline {
            bail!("the nodes did not register within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let tenant = Client::connect(addr, &fp, &tenant_token, Role::Tenant).await?;
    let examples = [
        ("vector_add", "1,048,576-element sum"),
        ("matmul", "512 x 512 tiled matmul"),
        ("mandelbrot", "1024 x 768 PNG"),
    ];
    let mut submitted = Vec::new();
    for (name, what) in examples {
        let module = read_file("job", &args.jobs.join(format!("{name}.wasm")))?;
        let job = tenant
            .submit(
                &module,
                &[],
                Requirements::default(),
                JobLimits::default(),
                3,
            )
            .await?;
        println!("submitted job {job}: {name} ({what})");
        submitted.push((job, name));
    }
    let mut ok = true;
    for (job, name) in submitted {
        let (view, output) = tenant.result(job).await?;
        println!(
            "\njob {job} {name}: {} ({} bytes of output)",
            view.state.as_str(),
            output.len()
        );
        if let Some(e) = &view.error {
            println!("  error: {e}");
        }
        for a in &view.attempts {
            println!("{}", attempt_line(a));
        }
        ok &= view.state == JobState::Succeeded;
        match name {
            "vector_add" if output.len() >= 16 => {
                let sums: Vec<f32> = output[..16]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                println!("  first sums: {sums:?}");
            }
            "mandelbrot" => {
                let path = args.out.join("mandelbrot.png");
                std::fs::write(&path, &output)?;
                println!("  image: {}", path.display());
            }
            _ => {}
        }
    }
    // The bill: what the tenant used per node, re-checked against the receipts.
    let report = tenant
        .usage(UsageQuery {
            group_by: GroupBy::Node,
            ..UsageQuery::default()
        })
        .await?;
    println!("\nbill for demo-tenant:");
    for g in report.groups.iter().chain(std::iter::once(&report.total)) {
        println!(
            "  {:<12} {} attempts, {} GPU-seconds billed, cost {}",
            if g.key.is_empty() { "total" } else { &g.key },
            g.attempts,
            seconds(g.charged_gpu_ns),
            micros(g.cost_micros)
        );
    }
    let records = tenant.usage_records(UsageQuery::default()).await?;
    let bad: Vec<String> = records
        .iter()
        .filter_map(|r| check_record(r).err())
        .collect();
    println!(
        "  {} receipts signed by their nodes: {}",
        records.len(),
        if bad.is_empty() {
            "all verified".to_owned()
        } else {
            bad.join("; ")
        }
    );
    ok &= bad.is_empty();
    // Stop the nodes and wait for them, so their GPU devices are released
    // before the runtime goes away.
    let _ = stop_tx.send(true);
    for task in node_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    tracing::debug!("demo: nodes stopped");
    tenant.close().await;
    admin.close().await;
    tracing::debug!("demo: clients closed");
    coordinator.shutdown().await;
    tracing::debug!("demo: coordinator stopped");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
