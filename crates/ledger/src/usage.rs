//! Reports over the usage table: totals grouped by tenant, node, class or
//! day, and the per-attempt records (with receipts) that invoices list and
//! `suanli usage --verify` checks.

use rusqlite::types::Value;
use suanli_proto::usage::{GroupBy, UsageGroup, UsageQuery, UsageRecord, UsageReport};
use suanli_proto::{Metering, PublicKey, Receipt, Signature};

use crate::{Ledger, LedgerError, Result, hash_from, i, u};

/// `WHERE …` for a query, and its parameters.
pub(crate) fn filter(q: &UsageQuery) -> (String, Vec<Value>) {
    let mut clauses = Vec::new();
    let mut args = Vec::new();
    for (column, value) in [
        ("tenant", &q.tenant),
        ("node", &q.node),
        ("gpu_class", &q.class),
    ] {
        if let Some(v) = value {
            args.push(Value::Text(v.clone()));
            clauses.push(format!("{column} = ?{}", args.len()));
        }
    }
    if let Some(since) = q.since_ms {
        args.push(Value::Integer(i(since)));
        clauses.push(format!("recorded_ms >= ?{}", args.len()));
    }
    if let Some(until) = q.until_ms {
        args.push(Value::Integer(i(until)));
        clauses.push(format!("recorded_ms < ?{}", args.len()));
    }
    if clauses.is_empty() {
        (String::new(), args)
    } else {
        (format!("WHERE {}", clauses.join(" AND ")), args)
    }
}

pub(crate) fn group_key(g: GroupBy) -> &'static str {
    match g {
        GroupBy::Nothing => "''",
        GroupBy::Tenant => "tenant",
        GroupBy::Node => "node",
        GroupBy::Class => "gpu_class",
        GroupBy::Day => "date(recorded_ms / 1000, 'unixepoch')",
    }
}

/// Adds `g`'s sums to `total` (saturating), as reports add their rows.
pub fn add_usage(total: &mut UsageGroup, g: &UsageGroup) {
    total.attempts += g.attempts;
    total.gpu_ns = total.gpu_ns.saturating_add(g.gpu_ns);
    total.charged_gpu_ns = total.charged_gpu_ns.saturating_add(g.charged_gpu_ns);
    total.wall_ns = total.wall_ns.saturating_add(g.wall_ns);
    total.cost_micros = total.cost_micros.saturating_add(g.cost_micros);
}

impl Ledger {
    /// Sums of the attempts `q` selects, grouped as it asks. The total is the
    /// sum of the groups, so a report always adds up.
    pub fn usage(&self, q: &UsageQuery) -> Result<UsageReport> {
        let (filter, args) = filter(q);
        let key = group_key(q.group_by);
        // Summed in Rust from per-row values: SQLite's SUM would fail on i64
        // overflow, and the report must equal the sum of its records exactly.
        let sql = format!(
            "SELECT {key}, gpu_ns, charged_gpu_ns, wall_ns, cost_micros FROM usage {filter} ORDER BY 1"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok(UsageGroup {
                key: r.get(0)?,
                attempts: 1,
                gpu_ns: u(r.get(1)?),
                charged_gpu_ns: u(r.get(2)?),
                wall_ns: u(r.get(3)?),
                cost_micros: u(r.get(4)?),
            })
        })?;
        let mut report = UsageReport::default();
        for row in rows {
            let row = row?;
            add_usage(&mut report.total, &row);
            match report.groups.last_mut() {
                Some(g) if g.key == row.key => add_usage(g, &row),
                _ => report.groups.push(row),
            }
        }
        if q.group_by == GroupBy::Nothing {
            report.groups.clear();
        }
        Ok(report)
    }

    /// Up to `limit` records `q` selects, in (job, attempt) order after `after`.
    pub fn usage_records(
        &self,
        q: &UsageQuery,
        after: Option<(u64, u32)>,
        limit: u32,
    ) -> Result<Vec<UsageRecord>> {
        let (filter, mut args) = filter(q);
        let (job, attempt) = after.unwrap_or((0, 0));
        args.push(Value::Integer(i(job)));
        let j = args.len();
        args.push(Value::Integer(i64::from(attempt)));
        let a = args.len();
        args.push(Value::Integer(i64::from(limit)));
        let l = args.len();
        let joiner = if filter.is_empty() { "WHERE" } else { "AND" };
        let sql = format!(
            "SELECT tenant, node, node_key, gpu_class, price_micros, charged_gpu_ns, cost_micros,
                    job, attempt, node_id, module, input, output, gpu_ns, wall_ns, outcome, metering,
                    started_ms, ended_ms, signature, charge_cap_ns
             FROM usage {filter} {joiner} (job > ?{j} OR (job = ?{j} AND attempt > ?{a}))
             ORDER BY job, attempt LIMIT ?{l}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok((
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ),
                (
                    r.get::<_, i64>(7)?,
                    r.get::<_, u32>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, Vec<u8>>(10)?,
                    r.get::<_, Vec<u8>>(11)?,
                    r.get::<_, Option<Vec<u8>>>(12)?,
                    r.get::<_, i64>(13)?,
                ),
                (
                    r.get::<_, i64>(14)?,
                    r.get::<_, String>(15)?,
                    r.get::<_, Option<String>>(16)?,
                    r.get::<_, i64>(17)?,
                    r.get::<_, i64>(18)?,
                    r.get::<_, Option<Vec<u8>>>(19)?,
                    r.get::<_, i64>(20)?,
                ),
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                (tenant, node, key, gpu_class, price, charged, cost),
                (job, attempt, node_id, module, input, output, gpu_ns),
                (wall_ns, outcome, metering, started, ended, signature, cap),
            ) = row?;
            let node_key = <[u8; 32]>::try_from(key.as_slice())
                .map(PublicKey)
                .map_err(|_| LedgerError::Corrupt("node key is not 32 bytes".into()))?;
            let signature = match signature {
                None => None,
                Some(bytes) => Some(
                    Signature::from_bytes(&bytes)
                        .ok_or_else(|| LedgerError::Corrupt("signature is not 64 bytes".into()))?,
                ),
            };
            out.push(UsageRecord {
                tenant,
                node,
                node_key,
                gpu_class,
                price_micros: u(price),
                charged_gpu_ns: u(charged),
                charge_cap_ns: u(cap),
                cost_micros: u(cost),
                receipt: Receipt {
                    job: u(job),
                    attempt,
                    node_id: u(node_id),
                    module: hash_from(module)?,
                    input: hash_from(input)?,
                    output: output.map(hash_from).transpose()?,
                    gpu_ns: u(gpu_ns),
                    wall_ns: u(wall_ns),
                    outcome: crate::jobs::parse_outcome(&outcome)?,
                    // NULL: an unsigned row, nothing measured (see `UsageRecord`).
                    metering: metering
                        .as_deref()
                        .map(crate::jobs::parse_metering)
                        .transpose()?
                        .unwrap_or(Metering::Timestamp),
                    started_ms: u(started),
                    ended_ms: u(ended),
                },
                signature,
            });
        }
        Ok(out)
    }

    /// A tenant's credit limit and what it has spent, if it has a limit.
    pub fn credit(&mut self, tenant: &str) -> Result<Option<(u64, u64)>> {
        let tx = self.conn.savepoint()?;
        let Some(limit) = crate::jobs::credit_limit(&tx, tenant)? else {
            return Ok(None);
        };
        let spent = crate::jobs::spend(&tx, tenant)?;
        Ok(Some((limit, spent)))
    }
}
