//! What a node tells Prometheus (`GET /metrics` on `--http ADDR`): its slots
//! and how many are busy, GPU time it metered per GPU and slot, jobs by outcome and
//! duration, its blob cache, its devices, its connection and reconnects.
//! One registry per node (no globals), so tests read a node's own numbers.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    pub(crate) outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GpuLabel {
    /// The adapter index (`suanli gpus`), or `default`.
    pub(crate) gpu: String,
    /// The slot (worker) on the node, from 0.
    pub(crate) slot: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DeviceLabels {
    pub(crate) name: String,
    pub(crate) backend: String,
    pub(crate) driver: String,
    pub(crate) metering: String,
}

/// Job wall durations from 10 ms to about 45 min.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 18))
}

pub(crate) struct NodeMetrics {
    registry: Registry,
    pub(crate) slots: Gauge,
    pub(crate) slots_busy: Gauge,
    pub(crate) connected: Gauge,
    pub(crate) reconnects: Counter,
    pub(crate) gpu_busy_ns: Family<GpuLabel, Counter<u64, AtomicU64>>,
    pub(crate) jobs: Family<OutcomeLabel, Histogram, fn() -> Histogram>,
    pub(crate) blob_cache_bytes: Gauge,
    pub(crate) device: Family<DeviceLabels, Gauge>,
}

impl NodeMetrics {
    pub(crate) fn new() -> NodeMetrics {
        let mut registry = Registry::with_prefix("suanli_node");
        let m = NodeMetrics {
            slots: Gauge::default(),
            slots_busy: Gauge::default(),
            connected: Gauge::default(),
            reconnects: Counter::default(),
            gpu_busy_ns: Family::default(),
            jobs: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            blob_cache_bytes: Gauge::default(),
            device: Family::default(),
            registry: Registry::default(),
        };
        registry.register("slots", "Job slots (worker processes)", m.slots.clone());
        registry.register(
            "slots_busy",
            "Slots running a job now",
            m.slots_busy.clone(),
        );
        registry.register(
            "connected",
            "1 while a session with the coordinator is up",
            m.connected.clone(),
        );
        registry.register(
            "reconnects",
            "Attempts to connect again after the first session",
            m.reconnects.clone(),
        );
        registry.register(
            "gpu_busy_nanoseconds",
            "GPU time metered for jobs, per GPU and slot",
            m.gpu_busy_ns.clone(),
        );
        registry.register(
            "job_duration_seconds",
            "Wall time of attempts run here, by outcome",
            m.jobs.clone(),
        );
        registry.register(
            "blob_cache_bytes",
            "Bytes of modules and inputs kept on disk",
            m.blob_cache_bytes.clone(),
        );
        registry.register(
            "device",
            "The GPU this node registered (value 1)",
            m.device.clone(),
        );
        NodeMetrics { registry, ..m }
    }

    /// The Prometheus text format.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
