//! What the coordinator tells Prometheus (`GET /metrics` on `--http ADDR`).
//!
//! Two kinds of numbers. Live instruments, updated where things happen:
//! request round trips by kind, scheduling delay (submitted → started),
//! ledger commit latency, refusals by reason, connections by role. And a
//! snapshot taken at each scrape from the ledger and the live node table:
//! jobs by state, attempts by outcome, the queue per tenant, nodes, GPUs and
//! slots, GPU time metered and billed and revenue per GPU class, stored
//! blobs. The snapshot reads the same ledger rows `suanli usage` sums, so
//! the two always agree. One registry per coordinator (no globals).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use suanli_proto::{ErrorCode, JobState, Role};

use crate::auth::now_ms;
use crate::state::Shared;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabel {
    pub(crate) kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RoleLabel {
    pub(crate) role: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Label {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabel {
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: String,
}

/// Why a connection or a request was refused: a closed set, so the label
/// cannot grow with what peers send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    UnknownToken,
    Revoked,
    ProtocolVersion,
    WrongRole,
    ConnectionLimit,
    HandshakeTimeout,
    BadHello,
    Request(ErrorCode),
}

impl Refused {
    fn as_str(self) -> &'static str {
        match self {
            Refused::UnknownToken => "unknown_token",
            Refused::Revoked => "revoked",
            Refused::ProtocolVersion => "protocol_version",
            Refused::WrongRole => "wrong_role",
            Refused::ConnectionLimit => "connection_limit",
            Refused::HandshakeTimeout => "handshake_timeout",
            Refused::BadHello => "bad_hello",
            Refused::Request(code) => match code {
                ErrorCode::Forbidden => "forbidden",
                ErrorCode::NotFound => "not_found",
                ErrorCode::BadRequest => "bad_request",
                ErrorCode::TooLarge => "too_large",
                ErrorCode::CreditLimit => "credit_limit",
                ErrorCode::Overloaded => "overloaded",
                ErrorCode::QuotaExceeded => "quota_exceeded",
                ErrorCode::Internal => "internal",
                ErrorCode::ShuttingDown => "shutting_down",
            },
        }
    }
}

/// Whether an error answer refuses the request (a limit, a role, a
/// shutdown) rather than failing it (not found, malformed, internal).
fn is_refusal(code: ErrorCode) -> bool {
    match code {
        ErrorCode::Forbidden
        | ErrorCode::TooLarge
        | ErrorCode::CreditLimit
        | ErrorCode::Overloaded
        | ErrorCode::QuotaExceeded
        | ErrorCode::ShuttingDown => true,
        ErrorCode::NotFound | ErrorCode::BadRequest | ErrorCode::Internal => false,
    }
}

/// Request round trips from 50 µs to about 3.5 min.
fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 23))
}

/// The coordinator's live instruments.
pub(crate) struct CoordinatorMetrics {
    /// Round trip of each answered request (frame read → answer written).
    pub(crate) requests: Family<KindLabel, Histogram, fn() -> Histogram>,
    /// From a job's submission to the start of its attempt (retries count
    /// from the original submission).
    pub(crate) scheduling_delay: Histogram,
    /// One batch commit of the ledger writer (its fsync).
    pub(crate) ledger_commit: Histogram,
    refusals: Family<ReasonLabel, Counter>,
    /// Requests that failed for another reason than a refusal (not found,
    /// malformed, internal), by error code.
    errors: Family<ReasonLabel, Counter>,
    connections: Family<RoleLabel, Gauge>,
}

impl CoordinatorMetrics {
    pub(crate) fn new() -> CoordinatorMetrics {
        CoordinatorMetrics {
            requests: Family::new_with_constructor(request_histogram as fn() -> Histogram),
            // 1 ms to about 18 h: a job may wait hours for a GPU.
            scheduling_delay: Histogram::new(exponential_buckets(0.001, 2.0, 27)),
            ledger_commit: Histogram::new(exponential_buckets(0.000_02, 2.0, 20)),
            refusals: Family::default(),
            errors: Family::default(),
            connections: Family::default(),
        }
    }

    pub(crate) fn refused(&self, why: Refused) {
        self.refusals
            .get_or_create(&ReasonLabel {
                reason: why.as_str(),
            })
            .inc();
    }

    /// Records a request's round trip, and its refusal if it was one.
    pub(crate) fn answered(
        &self,
        kind: &'static str,
        started: std::time::Instant,
        answer: &suanli_proto::Response,
    ) {
        self.requests
            .get_or_create(&KindLabel { kind })
            .observe(started.elapsed().as_secs_f64());
        if let suanli_proto::Response::Error { code, .. } = answer {
            let why = Refused::Request(*code);
            if is_refusal(*code) {
                self.refused(why);
            } else {
                self.errors
                    .get_or_create(&ReasonLabel {
                        reason: why.as_str(),
                    })
                    .inc();
            }
        }
    }

    /// Counts an authenticated connection until the guard drops.
    pub(crate) fn connected(&self, role: Role) -> ConnectionGauge {
        let gauge = self
            .connections
            .get_or_create(&RoleLabel {
                role: role.as_str(),
            })
            .clone();
        gauge.inc();
        ConnectionGauge(gauge)
    }

    /// The text exposition: the live instruments, the ledger snapshot
    /// `stats` and the node table.
    pub(crate) fn encode(&self, shared: &Shared, stats: &suanli_ledger::LedgerStats) -> String {
        let mut registry = Registry::with_prefix("suanli");
        self.register_live(&mut registry);
        register_ledger(&mut registry, stats);
        register_nodes(&mut registry, shared);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    fn register_live(&self, r: &mut Registry) {
        r.register(
            "request_seconds",
            "Round trip of answered requests, by kind",
            self.requests.clone(),
        );
        r.register(
            "scheduling_delay_seconds",
            "From a job's submission to the start of an attempt",
            self.scheduling_delay.clone(),
        );
        r.register(
            "ledger_commit_seconds",
            "Ledger batch commits (one fsync each)",
            self.ledger_commit.clone(),
        );
        r.register(
            "refusals",
            "Connections and requests refused, by reason",
            self.refusals.clone(),
        );
        r.register(
            "request_errors",
            "Requests that failed other than by a refusal, by error code",
            self.errors.clone(),
        );
        r.register(
            "connections",
            "Authenticated connections now, by role",
            self.connections.clone(),
        );
    }
}

/// Decrements its role's connection gauge when the connection ends.
pub(crate) struct ConnectionGauge(Gauge);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn gauge(r: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge = Gauge::default();
    g.set(clamp(value));
    r.register(name, help, g);
}

fn register_ledger(r: &mut Registry, stats: &suanli_ledger::LedgerStats) {
    let jobs = Family::<StateLabel, Gauge>::default();
    // Every state is present, so a dashboard sees a 0 rather than a gap.
    for state in JobState::ALL {
        let _ = jobs.get_or_create(&StateLabel {
            state: state.as_str().into(),
        });
    }
    for (state, n) in &stats.jobs_by_state {
        jobs.get_or_create(&StateLabel {
            state: state.clone(),
        })
        .set(clamp(*n));
    }
    r.register("jobs", "Jobs in the ledger, by state", jobs);
    let attempts = Family::<OutcomeLabel, Gauge>::default();
    for (outcome, n) in &stats.attempts_by_outcome {
        attempts
            .get_or_create(&OutcomeLabel {
                outcome: outcome.clone(),
            })
            .set(clamp(*n));
    }
    r.register(
        "attempts",
        "Attempts in the ledger, by outcome (running: not ended)",
        attempts,
    );
    register_queue(r, stats);
    register_billing(r, stats);
    gauge(r, "blobs", "Blobs stored", stats.blobs);
    gauge(
        r,
        "blob_store_bytes",
        "Bytes of stored blobs",
        stats.blob_bytes,
    );
}

fn register_queue(r: &mut Registry, stats: &suanli_ledger::LedgerStats) {
    let depth = Family::<TenantLabel, Gauge>::default();
    let oldest = Family::<TenantLabel, Gauge<f64, AtomicU64>>::default();
    let now = now_ms();
    for q in &stats.queued {
        let label = TenantLabel {
            tenant: q.tenant.clone(),
        };
        depth.get_or_create(&label).set(clamp(q.jobs));
        let age_ms = now.saturating_sub(q.oldest_submitted_ms);
        oldest.get_or_create(&label).set(age_ms as f64 / 1e3);
    }
    r.register("queue_jobs", "Queued jobs, by tenant", depth);
    r.register(
        "queue_oldest_age_seconds",
        "Age of the oldest queued job, by tenant",
        oldest,
    );
}

fn register_billing(r: &mut Registry, stats: &suanli_ledger::LedgerStats) {
    // Totals that only grow (usage rows are append-only): counters, so
    // `rate()` and `increase()` apply; set from the ledger at each scrape.
    let metered = Family::<ClassLabel, Counter<f64, AtomicU64>>::default();
    let billed = Family::<ClassLabel, Counter<f64, AtomicU64>>::default();
    let revenue = Family::<ClassLabel, Counter>::default();
    for g in &stats.usage_by_class {
        let label = ClassLabel {
            class: g.key.clone(),
        };
        metered.get_or_create(&label).inc_by(g.gpu_ns as f64 / 1e9);
        billed
            .get_or_create(&label)
            .inc_by(g.charged_gpu_ns as f64 / 1e9);
        revenue.get_or_create(&label).inc_by(g.cost_micros);
    }
    r.register(
        "gpu_seconds_metered",
        "GPU time nodes metered, by GPU class",
        metered,
    );
    r.register(
        "gpu_seconds_billed",
        "GPU time billed to tenants, by GPU class",
        billed,
    );
    r.register(
        "revenue_micros",
        "Amount billed to tenants in micro-units, by GPU class",
        revenue,
    );
}

fn register_nodes(r: &mut Registry, shared: &Shared) {
    let views = shared.node_views();
    let t = crate::state::SlotTotals::of(&views);
    gauge(r, "nodes", "Connected nodes", t.nodes);
    gauge(r, "gpus", "GPUs of connected nodes", t.gpus);
    gauge(r, "slots", "Job slots of connected nodes", t.slots);
    gauge(r, "slots_busy", "Slots running an attempt now", t.busy);
    let up = Family::<Label, Gauge>::default();
    for v in &views {
        up.get_or_create(&Label {
            name: v.name.clone(),
        })
        .inc();
    }
    r.register(
        "node_sessions",
        "Connected node sessions, by node token",
        up,
    );
}
