//! `price`, `tenant`, `usage` and `invoice`: money in, reports out.
//!
//! Amounts print as units with six decimals (micro-units exactly) and
//! GPU-seconds with nine (nanoseconds exactly), so the table, the CSV
//! (integers) and the JSON (integers) carry the same numbers.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;
use suanli_ledger::billing::check_record;
use suanli_proto::Role;
use suanli_proto::usage::{GroupBy, UsageGroup, UsageQuery, UsageRecord};

use super::connect::Connection;
use super::table::{self, Csv};
use super::time::{month_range_ms, parse_time_ms};
use super::units::Bytes;

#[derive(clap::Subcommand)]
pub enum PriceCommand {
    /// Set a GPU class's price in units per GPU-second, exact to six
    /// decimals (`2.5`; admin). The class `default` prices every class
    /// without its own price.
    Set {
        /// A GPU class (see `suanli nodes`), or `default`.
        class: String,
        /// Units per GPU-second, e.g. `2.5` (stored as 2500000 micro-units).
        price: String,
    },
    /// Show the prices in force.
    List {
        /// Print a JSON array: `[{"class", "micros", "set_ms"}]`.
        #[arg(long)]
        json: bool,
    },
    /// Put a provider's nodes (node token name) in a class; `auto` goes back
    /// to the class derived from their adapter (admin).
    Node {
        /// The provider's node token name.
        node: String,
        /// The class its nodes are priced as, or `auto`.
        class: String,
    },
}

#[derive(clap::Subcommand)]
pub enum TenantCommand {
    /// Set a tenant's credit limit in units (exact to six decimals, e.g.
    /// `50` or `12.75`), or `none` (admin).
    Limit {
        /// The tenant's token name.
        tenant: String,
        /// Units, or `none` for no limit.
        amount: String,
    },
    /// Set a tenant's storage quota in bytes (its blobs and job logs), or
    /// `default` for the coordinator's --storage-quota (admin).
    Quota {
        /// The tenant's token name.
        tenant: String,
        /// A size (`50GB`, `512MiB`, or bytes), or `default`.
        bytes: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct UsageArgs {
    /// One tenant (admins; a tenant sees only its own).
    #[arg(long)]
    tenant: Option<String>,
    /// A provider (node token name).
    #[arg(long)]
    node: Option<String>,
    /// A GPU class.
    #[arg(long)]
    class: Option<String>,
    /// From this time (inclusive): YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or Unix milliseconds.
    #[arg(long)]
    since: Option<String>,
    /// Until this time (exclusive), same forms.
    #[arg(long)]
    until: Option<String>,
    /// tenant, node, class, day or none.
    #[arg(long, default_value = "none")]
    group_by: String,
    /// A table for people, or CSV / JSON with integer nanoseconds and micro-units.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Re-check every receipt in the report against its node's key and the cost rule.
    #[arg(long)]
    verify: bool,
    /// Connect with a node token, to see a provider's earnings.
    #[arg(long)]
    provider: bool,
}

#[derive(clap::Args)]
pub struct InvoiceArgs {
    /// The tenant (admins; a tenant gets its own).
    #[arg(long)]
    tenant: Option<String>,
    /// YYYY-MM (UTC).
    #[arg(long)]
    month: String,
    /// A table for people, or CSV / JSON with integer nanoseconds and micro-units.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

pub use suanli_ledger::billing::{seconds, units as micros};

pub async fn price(cmd: PriceCommand, conn: Connection) -> anyhow::Result<ExitCode> {
    match cmd {
        PriceCommand::Set { class, price } => {
            let m = suanli_ledger::billing::parse_units(&price)?;
            let client = conn.connect(Role::Admin).await?;
            client.set_price(&class, m).await?;
            eprintln!("{class}: {} per GPU-second", micros(m));
        }
        PriceCommand::List { json } => {
            let client = conn.connect(Role::Tenant).await?;
            let prices = client.prices().await?;
            if json {
                let rows: Vec<_> = prices
                    .iter()
                    .map(|p| json!({"class": p.class, "micros": p.micros, "set_ms": p.set_ms}))
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else if prices.is_empty() {
                println!("no prices set: every GPU-second is free");
            } else {
                for p in &prices {
                    println!("{:<24} {:>16} per GPU-second", p.class, micros(p.micros));
                }
            }
        }
        PriceCommand::Node { node, class } => {
            let client = conn.connect(Role::Admin).await?;
            let class = (class != "auto").then_some(class);
            client.set_node_class(&node, class.as_deref()).await?;
            eprintln!(
                "{node}: class {}",
                class.as_deref().unwrap_or("derived from its adapter")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tenant(cmd: TenantCommand, conn: Connection) -> anyhow::Result<ExitCode> {
    let (tenant, m) = match cmd {
        TenantCommand::Limit { tenant, amount } => (tenant, amount),
        TenantCommand::Quota { tenant, bytes } => return storage_quota(conn, tenant, bytes).await,
    };
    let limit = match m.as_str() {
        "none" => None,
        n => Some(suanli_ledger::billing::parse_units(n)?),
    };
    let client = conn.connect(Role::Admin).await?;
    client.set_credit_limit(&tenant, limit).await?;
    match limit {
        Some(l) => eprintln!("{tenant}: credit limit {}", micros(l)),
        None => eprintln!("{tenant}: no credit limit"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn storage_quota(
    conn: Connection,
    tenant: String,
    bytes: String,
) -> anyhow::Result<ExitCode> {
    let quota = match bytes.as_str() {
        "default" => None,
        n => Some(
            n.parse::<Bytes>()
                .map_err(|e| anyhow::anyhow!("{e}; or `default`"))?
                .0,
        ),
    };
    let client = conn.connect(Role::Admin).await?;
    let request = suanli_proto::Request::SetStorageQuota {
        tenant: tenant.clone(),
        bytes: quota,
    };
    match client.call(&request).await? {
        suanli_proto::Response::Ok => {}
        suanli_proto::Response::Error { code, message } => {
            bail!("storage quota refused ({code:?}): {message}")
        }
        other => bail!("unexpected answer: {other:?}"),
    }
    match quota {
        Some(b) => eprintln!("{tenant}: storage quota {} ({b} bytes)", Bytes(b)),
        None => eprintln!("{tenant}: the coordinator's default storage quota"),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn usage(args: UsageArgs, conn: Connection) -> anyhow::Result<ExitCode> {
    let Some(group_by) = GroupBy::parse(&args.group_by) else {
        bail!(
            "--group-by must be tenant, node, class, day or none, not {:?}",
            args.group_by
        );
    };
    let query = UsageQuery {
        tenant: args.tenant,
        node: args.node,
        class: args.class,
        since_ms: args.since.as_deref().map(parse_time_ms).transpose()?,
        until_ms: args.until.as_deref().map(parse_time_ms).transpose()?,
        group_by,
    };
    let role = if args.provider {
        Role::Node
    } else {
        Role::Tenant
    };
    let client = conn.connect(role).await?;
    let report = client.usage(query.clone()).await?;
    let mut rows = report.groups.clone();
    let mut total = report.total.clone();
    total.key = "total".into();
    rows.push(total);
    print_groups(group_by.as_str(), &rows, args.format)?;
    if args.verify {
        let records = client.usage_records(query).await?;
        return Ok(verify(&records, &report.total));
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks every record and that they add up to the report; prints a line
/// per failure and a summary on stderr.
fn verify(records: &[UsageRecord], total: &UsageGroup) -> ExitCode {
    let mut bad = 0;
    for r in records {
        if let Err(e) = check_record(r) {
            eprintln!("receipt check failed: {e}");
            bad += 1;
        }
    }
    let sum: u64 = records.iter().map(|r| r.cost_micros).sum();
    let gpu: u64 = records.iter().map(|r| r.charged_gpu_ns).sum();
    if sum != total.cost_micros || gpu != total.charged_gpu_ns {
        eprintln!(
            "receipt check failed: the records add up to {} for {} GPU-seconds, the report says {} for {}",
            micros(sum),
            seconds(gpu),
            micros(total.cost_micros),
            seconds(total.charged_gpu_ns)
        );
        bad += 1;
    }
    let signed = records.iter().filter(|r| r.signature.is_some()).count();
    if bad == 0 {
        eprintln!(
            "verified {} receipts ({signed} signed by their nodes, {} unbilled attempts the coordinator ended); they add up to the report",
            records.len(),
            records.len() - signed
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("{bad} problems found");
        ExitCode::FAILURE
    }
}

fn print_groups(key: &str, rows: &[UsageGroup], format: Format) -> anyhow::Result<()> {
    const NUMBERS: [&str; 5] = [
        "ATTEMPTS",
        "GPU-SECONDS",
        "BILLED-GPU-SECONDS",
        "WALL-SECONDS",
        "COST",
    ];
    match format {
        Format::Table => {
            let key = key.to_uppercase();
            let mut header = vec![key.as_str()];
            header.extend(NUMBERS);
            let mut t = table::new(&header, &NUMBERS);
            for g in rows {
                t.add_row(vec![
                    g.key.clone(),
                    g.attempts.to_string(),
                    seconds(g.gpu_ns),
                    seconds(g.charged_gpu_ns),
                    seconds(g.wall_ns),
                    micros(g.cost_micros),
                ]);
            }
            table::print(&t);
        }
        Format::Csv => {
            let mut csv = Csv::new(&[
                key,
                "attempts",
                "gpu_ns",
                "charged_gpu_ns",
                "wall_ns",
                "cost_micros",
            ])?;
            for g in rows {
                csv.row([
                    g.key.clone(),
                    g.attempts.to_string(),
                    g.gpu_ns.to_string(),
                    g.charged_gpu_ns.to_string(),
                    g.wall_ns.to_string(),
                    g.cost_micros.to_string(),
                ])?;
            }
            csv.finish()?;
        }
        Format::Json => {
            let rows: Vec<_> = rows
                .iter()
                .map(|g| {
                    json!({
                        key: g.key,
                        "attempts": g.attempts,
                        "gpu_ns": g.gpu_ns,
                        "charged_gpu_ns": g.charged_gpu_ns,
                        "wall_ns": g.wall_ns,
                        "cost_micros": g.cost_micros,
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(rows));
        }
    }
    Ok(())
}

pub async fn invoice(args: InvoiceArgs, conn: Connection) -> anyhow::Result<ExitCode> {
    let (since, until) = month_range_ms(&args.month)?;
    let client = conn.connect(Role::Tenant).await?;
    let tenant = args.tenant.unwrap_or_else(|| client.name().to_owned());
    let records = client
        .usage_records(UsageQuery {
            tenant: Some(tenant.clone()),
            since_ms: Some(since),
            until_ms: Some(until),
            ..UsageQuery::default()
        })
        .await?;
    let total: u64 = records.iter().map(|r| r.cost_micros).sum();
    let billed: u64 = records.iter().map(|r| r.charged_gpu_ns).sum();
    match args.format {
        Format::Table => invoice_table(&tenant, &args.month, &records, billed, total),
        Format::Csv => invoice_csv(&records, billed, total)?,
        Format::Json => {
            let lines: Vec<_> = records
                .iter()
                .map(|r| {
                    json!({
                        "job": r.receipt.job,
                        "attempt": r.receipt.attempt,
                        "node": r.node,
                        "class": r.gpu_class,
                        "outcome": r.receipt.outcome,
                        "gpu_ns": r.receipt.gpu_ns,
                        "charged_gpu_ns": r.charged_gpu_ns,
                        "price_micros": r.price_micros,
                        "cost_micros": r.cost_micros,
                    })
                })
                .collect();
            println!(
                "{}",
                json!({
                    "tenant": tenant,
                    "month": args.month,
                    "lines": lines,
                    "charged_gpu_ns": billed,
                    "total_micros": total,
                })
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn invoice_table(tenant: &str, month: &str, records: &[UsageRecord], billed: u64, total: u64) {
    println!("Invoice — tenant {tenant}, {month} (UTC)");
    let mut t = table::new(
        &[
            "JOB",
            "ATTEMPT",
            "NODE",
            "CLASS",
            "OUTCOME",
            "BILLED-GPU-SECONDS",
            "PRICE/GPU-S",
            "COST",
        ],
        &[
            "JOB",
            "ATTEMPT",
            "BILLED-GPU-SECONDS",
            "PRICE/GPU-S",
            "COST",
        ],
    );
    for r in records {
        t.add_row(vec![
            r.receipt.job.to_string(),
            r.receipt.attempt.to_string(),
            r.node.clone(),
            r.gpu_class.clone(),
            r.receipt.outcome.as_str().to_owned(),
            seconds(r.charged_gpu_ns),
            micros(r.price_micros),
            micros(r.cost_micros),
        ]);
    }
    table::print(&t);
    println!(
        "total: {} attempts, {} GPU-seconds billed, {}",
        records.len(),
        seconds(billed),
        micros(total)
    );
}

fn invoice_csv(records: &[UsageRecord], billed: u64, total: u64) -> anyhow::Result<()> {
    let mut csv = Csv::new(&[
        "job",
        "attempt",
        "node",
        "class",
        "outcome",
        "gpu_ns",
        "charged_gpu_ns",
        "price_micros",
        "cost_micros",
    ])?;
    for r in records {
        csv.row([
            r.receipt.job.to_string(),
            r.receipt.attempt.to_string(),
            r.node.clone(),
            r.gpu_class.clone(),
            r.receipt.outcome.as_str().to_owned(),
            r.receipt.gpu_ns.to_string(),
            r.charged_gpu_ns.to_string(),
            r.price_micros.to_string(),
            r.cost_micros.to_string(),
        ])?;
    }
    let (billed, total) = (billed.to_string(), total.to_string());
    csv.row(["total", "", "", "", "", "", &billed, "", &total])?;
    csv.finish()
}
