//! Aggregates over the whole ledger for monitoring (`/metrics`) and the
//! dashboard: jobs by state, attempts by outcome, the queue per tenant,
//! GPU time and revenue per GPU class, stored blobs, and usage over time.
//! Read-only; each is one indexed query or one scan of a small table.

use std::collections::BTreeMap;

use suanli_proto::usage::{GroupBy, UsageGroup, UsageQuery};

use crate::usage::{add_usage, filter, group_key};
use crate::{Ledger, Result, u};

/// Queued jobs of one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStat {
    pub tenant: String,
    pub jobs: u64,
    /// When its oldest queued job was submitted.
    pub oldest_submitted_ms: u64,
}

/// What the ledger says about the whole cluster, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// `(state, jobs)` for every state that has jobs.
    pub jobs_by_state: Vec<(String, u64)>,
    /// `(outcome, attempts)`; attempts still running count as `running`.
    pub attempts_by_outcome: Vec<(String, u64)>,
    pub queued: Vec<QueueStat>,
    /// Usage summed per GPU class (`key` is the class).
    pub usage_by_class: Vec<UsageGroup>,
    /// Blobs the ledger records as stored, and their bytes.
    pub blobs: u64,
    pub blob_bytes: u64,
}

/// Usage of one series (a tenant, node or class) in one time bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesPoint {
    /// Start of the bucket (ms since the epoch), a multiple of its width.
    pub bucket_ms: u64,
    pub usage: UsageGroup,
}

impl Ledger {
    /// One snapshot for monitoring.
    pub fn stats(&self) -> Result<LedgerStats> {
        let counts = |sql: &str| -> Result<Vec<(String, u64)>> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, u(r.get(1)?))))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        let jobs_by_state = counts("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY 1")?;
        let attempts_by_outcome = counts(
            "SELECT COALESCE(outcome, 'running'), COUNT(*) FROM attempts GROUP BY 1 ORDER BY 1",
        )?;
        let queued = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT tenant, COUNT(*), MIN(submitted_ms) FROM jobs
                 WHERE state = 'queued' GROUP BY tenant ORDER BY tenant",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(QueueStat {
                    tenant: r.get(0)?,
                    jobs: u(r.get(1)?),
                    oldest_submitted_ms: u(r.get(2)?),
                })
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let usage_by_class = self
            .usage(&UsageQuery {
                group_by: GroupBy::Class,
                ..UsageQuery::default()
            })?
            .groups;
        let (blobs, blob_bytes) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs",
            [],
            |r| Ok((u(r.get(0)?), u(r.get(1)?))),
        )?;
        Ok(LedgerStats {
            jobs_by_state,
            attempts_by_outcome,
            queued,
            usage_by_class,
            blobs,
            blob_bytes,
        })
    }

    /// Usage `q` selects, summed per `bucket_ms`-wide bucket of the time the
    /// attempts ended and per `q.group_by` key: one series per key, each in
    /// time order, with only the buckets that have usage. `bucket_ms` of 0
    /// is taken as 1.
    pub fn usage_series(
        &self,
        q: &UsageQuery,
        bucket_ms: u64,
    ) -> Result<BTreeMap<String, Vec<SeriesPoint>>> {
        let bucket = bucket_ms.max(1);
        let (filter, args) = filter(q);
        let key = group_key(q.group_by);
        let sql = format!(
            "SELECT {key}, recorded_ms, gpu_ns, charged_gpu_ns, wall_ns, cost_micros
             FROM usage {filter} ORDER BY recorded_ms"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut series: BTreeMap<String, Vec<SeriesPoint>> = BTreeMap::new();
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let bucket_ms = u(r.get(1)?) / bucket * bucket;
            let row = UsageGroup {
                key: key.clone(),
                attempts: 1,
                gpu_ns: u(r.get(2)?),
                charged_gpu_ns: u(r.get(3)?),
                wall_ns: u(r.get(4)?),
                cost_micros: u(r.get(5)?),
            };
            let points = series.entry(key.clone()).or_default();
            match points.last_mut() {
                Some(p) if p.bucket_ms == bucket_ms => add_usage(&mut p.usage, &row),
                _ => points.push(SeriesPoint {
                    bucket_ms,
                    usage: row,
                }),
            }
        }
        Ok(series)
    }
}
