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
    /// Show a tenant's account: credit limit, spent, held for its queued
    /// and running jobs, available, storage, jobs by state (admin: any
    /// tenant; a tenant: itself, without a name).
    Show {
        /// The tenant's token name (admin); a tenant leaves it out.
        tenant: Option<String>,
        /// Print the integers (micro-units, bytes) as JSON.
        #[arg(long)]
        json: bool,
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
    /// A provider's earnings: connect as a node token first. Optional: a
    /// node token is recognised and used as one without it.
    #[arg(long)]
    provider: bool,
}

#[derive(clap::Args)]
pub struct InvoiceArgs {
    /// The tenant (admins; a tenant gets its own).
    #[arg(long)]
    tenant: Option<String>,
    /// A provider's earnings (its nodes' attempts) instead of a tenant's
    /// bill; implied by a node token.
    #[arg(long)]
    provider: bool,
    /// With --provider: the node token name (admins; a provider gets its own).
    #[arg(long, requires = "provider")]
    node: Option<String>,
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
            let known = client.set_price(&class, m).await?;
            eprintln!("{class}: {} per GPU-second", micros(m));
            if !known {
                eprintln!(
                    "warning: no node has GPU class {class:?} and it was never priced; \
                     the price applies once a node of that class connects"
                );
            }
        }
        PriceCommand::List { json } => {
            let (client, _) = conn.connect_any(Role::Tenant).await?;
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
            let known = client.set_node_class(&node, class.as_deref()).await?;
            eprintln!(
                "{node}: class {}",
                class.as_deref().unwrap_or("derived from its adapter")
            );
            warn_unknown_node(&node, known, "class");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tenant(cmd: TenantCommand, conn: Connection) -> anyhow::Result<ExitCode> {
    let (tenant, m) = match cmd {
        TenantCommand::Limit { tenant, amount } => (tenant, amount),
        TenantCommand::Quota { tenant, bytes } => return storage_quota(conn, tenant, bytes).await,
        TenantCommand::Show { tenant, json } => return show_tenant(conn, tenant, json).await,
    };
    let limit = match m.as_str() {
        "none" => None,
        n => Some(suanli_ledger::billing::parse_units(n)?),
    };
    let client = conn.connect(Role::Admin).await?;
    let known = client.set_credit_limit(&tenant, limit).await?;
    match limit {
        Some(l) => eprintln!("{tenant}: credit limit {}", micros(l)),
        None => eprintln!("{tenant}: no credit limit"),
    }
    warn_unknown_tenant(&tenant, known, "limit");
    Ok(ExitCode::SUCCESS)
}

/// The warning for a setting stored for a tenant no token names yet (a
/// typo, or a tenant not created yet); the setting is kept either way.
fn warn_unknown_tenant(tenant: &str, known: bool, what: &str) {
    if !known {
        eprintln!(
            "warning: no tenant named {tenant:?} exists yet; the {what} applies once one does"
        );
    }
}

/// The warning for a setting stored for a node token name no token has.
pub fn warn_unknown_node(node: &str, known: bool, what: &str) {
    if !known {
        eprintln!(
            "warning: no node token named {node:?} exists yet; the {what} applies once one does"
        );
    }
}

/// `suanli tenant show [NAME]`: the account as the coordinator computes it.
async fn show_tenant(
    conn: Connection,
    tenant: Option<String>,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Tenant).await?;
    let v = client.tenant(tenant.as_deref()).await?;
    if as_json {
        let jobs: serde_json::Map<String, serde_json::Value> = v
            .jobs
            .iter()
            .map(|(state, n)| (state.as_str().to_owned(), json!(n)))
            .collect();
        println!(
            "{}",
            json!({
                "tenant": v.name,
                "known": v.known,
                "credit_limit_micros": v.credit_limit_micros,
                "spent_micros": v.spent_micros,
                "held_micros": v.held_micros,
                "available_micros": v.available_micros(),
                "storage_used_bytes": v.storage_used_bytes,
                "storage_quota_bytes": v.storage_quota_bytes,
                "jobs": jobs,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", tenant_text(&v));
    warn_unknown_tenant(&v.name, v.known, "account");
    Ok(ExitCode::SUCCESS)
}

/// The account for people: units with six decimals, sizes with units.
fn tenant_text(v: &suanli_proto::TenantView) -> String {
    let limit = v
        .credit_limit_micros
        .map_or_else(|| "no limit".to_owned(), micros);
    let available = v
        .available_micros()
        .map_or_else(|| "no limit".to_owned(), micros);
    let jobs = if v.jobs.is_empty() {
        "none".to_owned()
    } else {
        let parts: Vec<String> = v
            .jobs
            .iter()
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect();
        parts.join(", ")
    };
    format!(
        "tenant     {}\ncredit     {limit}\nspent      {}\nheld       {} (worst case of queued and running jobs)\navailable  {available}\nstorage    {} of {}\njobs       {jobs}\n",
        v.name,
        micros(v.spent_micros),
        micros(v.held_micros),
        Bytes(v.storage_used_bytes),
        Bytes(v.storage_quota_bytes),
    )
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
    let known = client
        .set_storage_quota(&tenant, quota)
        .await
        .map_err(|e| anyhow::anyhow!("storage quota refused: {e}"))?;
    match quota {
        Some(b) => eprintln!("{tenant}: storage quota {} ({b} bytes)", Bytes(b)),
        None => eprintln!("{tenant}: the coordinator's default storage quota"),
    }
    warn_unknown_tenant(&tenant, known, "quota");
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
    // A node token connects as a node without --provider (the coordinator
    // narrows the report to its own nodes either way).
    let (client, _) = conn.connect_any(role).await?;
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
    let preferred = if args.provider {
        Role::Node
    } else {
        Role::Tenant
    };
    let (client, role) = conn.connect_any(preferred).await?;
    // A provider's invoice itemises its nodes' attempts: what `usage` with
    // its node token totals.
    let provider = role == Role::Node || args.provider;
    let (who, query) = if provider {
        let node = args
            .node
            .or_else(|| (role == Role::Node).then(|| client.name().to_owned()));
        let who = node.as_ref().map_or_else(
            || "provider (every node)".to_owned(),
            |n| format!("provider {n}"),
        );
        let query = UsageQuery {
            node,
            tenant: args.tenant,
            ..UsageQuery::default()
        };
        (who, query)
    } else {
        let tenant = args.tenant.unwrap_or_else(|| client.name().to_owned());
        let query = UsageQuery {
            tenant: Some(tenant.clone()),
            ..UsageQuery::default()
        };
        (format!("tenant {tenant}"), query)
    };
    let records = client
        .usage_records(UsageQuery {
            since_ms: Some(since),
            until_ms: Some(until),
            ..query.clone()
        })
        .await?;
    let total: u64 = records.iter().map(|r| r.cost_micros).sum();
    let billed: u64 = records.iter().map(|r| r.charged_gpu_ns).sum();
    match args.format {
        Format::Table => invoice_table(&who, &args.month, &records, billed, total),
        Format::Csv => invoice_csv(&records, billed, total)?,
        Format::Json => {
            let lines: Vec<_> = records
                .iter()
                .map(|r| {
                    json!({
                        "job": r.receipt.job,
                        "attempt": r.receipt.attempt,
                        "tenant": r.tenant,
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
            let mut doc = json!({
                "month": args.month,
                "lines": lines,
                "charged_gpu_ns": billed,
                "total_micros": total,
            });
            // Who it is for: "tenant" (a bill) or "provider" (earnings).
            let (key, name) = match (&query.node, &query.tenant) {
                (Some(node), _) => ("provider", json!(node)),
                (None, Some(tenant)) if !provider => ("tenant", json!(tenant)),
                (None, _) => ("provider", serde_json::Value::Null),
            };
            doc[key] = name;
            println!("{doc}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn invoice_table(who: &str, month: &str, records: &[UsageRecord], billed: u64, total: u64) {
    println!("Invoice — {who}, {month} (UTC)");
    let mut t = table::new(
        &[
            "JOB",
            "ATTEMPT",
            "TENANT",
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
            r.tenant.clone(),
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
