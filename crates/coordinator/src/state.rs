//! What the coordinator's tasks share: the ledger, live nodes, blobs, logs,
//! and the event bus that wakes waiters and the scheduler.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use suanli_ledger::writer::Writer;
use suanli_ledger::{Ledger, LedgerError, LedgerWrites};
use suanli_proto::{JobLimits, JobSpec, JobState, JobView, NodeCaps, NodeInfo, NodeView, ToNode};
use tokio::sync::{Notify, broadcast, mpsc};

use crate::auth::now_ms;
use crate::blobs::BlobStore;
use crate::data_dir::DataDir;
use crate::metrics::CoordinatorMetrics;
use crate::{CoordinatorConfig, CoordinatorError};

/// Something changed that a waiter or follower may care about.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    Job(u64),
    /// A job's log grew (followers read the new bytes from its file).
    Log {
        job: u64,
    },
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) blob_bytes_received: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) handshakes_refused: AtomicU64,
    pub(crate) address_retries: AtomicU64,
}

/// A connected node session.
pub(crate) struct LiveNode {
    pub(crate) name: String,
    /// The node token it registered with: with its key, its identity.
    pub(crate) token_hash: [u8; 32],
    pub(crate) info: NodeInfo,
    /// The price class its attempts are billed in.
    pub(crate) gpu_class: String,
    pub(crate) tx: mpsc::UnboundedSender<ToNode>,
    /// (job, attempt) running there.
    pub(crate) running: HashSet<(u64, u32)>,
    pub(crate) connected_ms: u64,
    pub(crate) jobs_run: u64,
    /// The node said it is draining (it is shutting down).
    pub(crate) draining: bool,
    /// The admin drained its token (kept in the ledger until `node undrain`).
    pub(crate) drained: bool,
    /// Its reported slots clipped to its token's `max_slots`.
    pub(crate) allowed_slots: u32,
    /// Its token's `max_slots`: the most jobs all live sessions of the
    /// token run together (a token may hold several connections).
    pub(crate) token_max_slots: u32,
    /// Why its token is quarantined (kept in the ledger until `node restore`).
    pub(crate) quarantine: Option<String>,
}

impl LiveNode {
    /// Why the node's GPU or caps never allow the job (busy or not).
    pub(crate) fn refusal(&self, spec: &JobSpec) -> Option<String> {
        let offered = self.info.gpu.max_buffer_size;
        if offered < spec.requirements.min_gpu_memory {
            return Some(format!("offers {offered} bytes of GPU memory"));
        }
        self.info.caps.refuses(&spec.limits)
    }

    pub(crate) fn fits(&self, spec: &JobSpec) -> bool {
        self.refusal(spec).is_none()
    }

    /// Whether it is given new jobs at all (busy or not).
    pub(crate) fn takes_work(&self) -> bool {
        !self.draining && !self.drained && self.quarantine.is_none()
    }

    /// Whether it has a slot free for another job.
    pub(crate) fn has_free_slot(&self) -> bool {
        (self.running.len() as u64) < u64::from(self.allowed_slots)
    }
}

/// What the ledger writer owns: the store's write operations, whatever
/// the backend (SQLite's `Ledger` today).
pub(crate) type Store = Box<dyn LedgerWrites>;

/// What the connected nodes add up to (metrics, the overview, the
/// utilisation plot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SlotTotals {
    pub(crate) nodes: u64,
    /// A node that reports no devices counts as one GPU.
    pub(crate) gpus: u64,
    /// The slots it is given work for (clipped to its token's cap).
    pub(crate) slots: u64,
    pub(crate) busy: u64,
}

impl SlotTotals {
    pub(crate) fn of(views: &[NodeView]) -> SlotTotals {
        views.iter().fold(SlotTotals::default(), |t, v| SlotTotals {
            nodes: t.nodes + 1,
            gpus: t.gpus + v.devices.len().max(1) as u64,
            slots: t.slots + u64::from(v.allowed_slots),
            busy: t.busy + u64::from(v.running),
        })
    }
}

pub(crate) struct Shared {
    pub(crate) config: CoordinatorConfig,
    pub(crate) fingerprint: String,
    /// A read-only connection (WAL: it sees what the writer committed).
    reader: Mutex<Ledger>,
    /// Every ledger write goes through the writer thread (group commit),
    /// which owns the store as its write operations (any backend).
    pub(crate) writer: Writer<Store>,
    pub(crate) nodes: Mutex<HashMap<u64, LiveNode>>,
    pub(crate) blobs: BlobStore,
    logs_dir: PathBuf,
    /// The ledger file, which backups copy.
    pub(crate) ledger_path: PathBuf,
    /// Where a backup is written before it is sent (`DATA/backup-tmp`).
    pub(crate) backup_dir: PathBuf,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) wake_scheduler: Notify,
    pub(crate) stats: Counters,
    /// Blob uploads in progress per peer name.
    pub(crate) uploads: Mutex<HashMap<String, u32>>,
    /// Queued jobs the scheduler could not start for their tenant's credit limit, and why.
    pub(crate) credit_waits: Mutex<HashMap<u64, String>>,
    /// Live instruments for `/metrics`.
    pub(crate) metrics: CoordinatorMetrics,
    /// Keeps the data directory's lock for the coordinator's life.
    _data_dir: DataDir,
    /// When this coordinator process started (ms since the epoch): attempts
    /// started before it are timed from it (see `scheduler::deadlines`).
    pub(crate) started_ms: u64,
    /// Whether a shutdown has begun, and the requests it waits for.
    pub(crate) lifecycle: crate::lifecycle::Lifecycle,
    /// Held while a backup is taken (one at a time).
    pub(crate) backup: tokio::sync::Semaphore,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn new(
        config: CoordinatorConfig,
        reader: Ledger,
        writer: Writer<Store>,
        dir: DataDir,
        fingerprint: String,
        metrics: CoordinatorMetrics,
    ) -> Result<Arc<Shared>, CoordinatorError> {
        let (events, _) = broadcast::channel(4096);
        Ok(Arc::new(Shared {
            config,
            fingerprint,
            reader: Mutex::new(reader),
            writer,
            nodes: Mutex::new(HashMap::new()),
            blobs: BlobStore::new(dir.path.join("blobs")),
            logs_dir: dir.path.join("logs"),
            ledger_path: dir.path.join("ledger.db"),
            backup_dir: dir.path.join(crate::data_dir::BACKUP_TMP),
            events,
            wake_scheduler: Notify::new(),
            stats: Counters::default(),
            credit_waits: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
            metrics,
            started_ms: crate::auth::now_ms(),
            _data_dir: dir,
            lifecycle: Default::default(),
            backup: tokio::sync::Semaphore::new(crate::backup::MAX_CONCURRENT_BACKUPS),
        }))
    }

    /// The ledger's read-only connection. Only on blocking threads (SQLite),
    /// never across an await, never while holding `nodes`.
    pub(crate) fn reader(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.reader)
    }

    /// Runs `work` on the writer thread and waits (on a blocking thread:
    /// never from an async task, never while holding `nodes`) until its
    /// batch committed.
    pub(crate) fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Store) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        self.writer.write_blocking(work)
    }

    pub(crate) fn nodes(&self) -> MutexGuard<'_, HashMap<u64, LiveNode>> {
        lock(&self.nodes)
    }

    /// The live node session running (job, attempt), if any (after a
    /// restart, a reconnected node runs attempts of its earlier session).
    pub(crate) fn runner_of(&self, job: u64, attempt: u32) -> Option<u64> {
        self.nodes()
            .iter()
            .find(|(_, n)| n.running.contains(&(job, attempt)))
            .map(|(id, _)| *id)
    }

    pub(crate) fn notify_job(&self, job: u64) {
        let _ = self.events.send(Event::Job(job));
    }

    /// Why a queued job waits, from the nodes connected now.
    pub(crate) fn waiting_reason(&self, view: &JobView) -> Option<String> {
        if view.state != JobState::Queued {
            return None;
        }
        if let Some(reason) = lock(&self.credit_waits).get(&view.id) {
            return Some(reason.clone());
        }
        let nodes = self.nodes();
        if nodes.is_empty() {
            return Some("no node is connected".into());
        }
        let crashed_on = suanli_ledger::crashed_on(view);
        let missed_on = suanli_ledger::missed_deadline_on(view);
        Some(placement_reason(
            &nodes.values().collect::<Vec<_>>(),
            &view.spec,
            &crashed_on,
            &missed_on,
        ))
    }

    pub(crate) fn with_reason(&self, mut view: JobView) -> JobView {
        view.waiting_reason = self.waiting_reason(&view);
        view
    }

    pub(crate) fn node_views(&self) -> Vec<NodeView> {
        let nodes = self.nodes();
        let mut views: Vec<NodeView> = nodes
            .iter()
            .map(|(&id, n)| NodeView {
                id,
                name: n.name.clone(),
                gpu: n.info.gpu.clone(),
                gpu_class: n.gpu_class.clone(),
                public_key: n.info.public_key,
                slots: n.info.slots,
                caps: n.info.caps,
                allowed_slots: n.allowed_slots,
                running: n.running.len() as u32,
                draining: n.draining || n.drained,
                quarantine: n.quarantine.clone(),
                connected: true,
                connected_ms: n.connected_ms,
                jobs_run: n.jobs_run,
                devices: n.info.devices.clone(),
                simulated_faults: n.info.simulated_faults,
            })
            .collect();
        views.sort_by_key(|v| v.id);
        views
    }

    /// Sets a provider's class in the ledger and on its live sessions.
    /// Blocking.
    pub(crate) fn set_node_class(
        &self,
        node: &str,
        class: Option<&str>,
    ) -> Result<(), LedgerError> {
        let ids: Vec<u64> = self
            .nodes()
            .iter()
            .filter(|(_, live)| live.name == node)
            .map(|(id, _)| *id)
            .collect();
        let (node, class) = (node.to_owned(), class.map(str::to_owned));
        self.write(move |l| l.set_node_class(&node, class.as_deref()))?;
        let mut classes = Vec::new();
        for id in ids {
            if let Some(class) = self.reader().node_class(id)? {
                classes.push((id, class));
            }
        }
        let mut nodes = self.nodes();
        for (id, class) in classes {
            if let Some(live) = nodes.get_mut(&id) {
                live.gpu_class = class;
            }
        }
        Ok(())
    }

    /// After a `provider_fault` of node session `node_id`: quarantines its
    /// token (ledger and live sessions) once it has too many faults.
    /// Blocking.
    pub(crate) fn note_fault(&self, node_id: u64) {
        let c = &self.config;
        let (window, max) = (c.quarantine_window.as_millis() as u64, c.quarantine_faults);
        let noted = self.write(move |l| l.note_fault(node_id, now_ms(), window, max));
        match noted {
            Ok(Some(q)) => {
                tracing::warn!(node = %q.name, reason = %q.reason, "node token quarantined");
                for live in self.nodes().values_mut() {
                    if live.token_hash == q.token_hash {
                        live.quarantine = Some(q.reason.clone());
                    }
                }
            }
            Ok(None) => {}
            Err(err) => tracing::error!(node_id, %err, "cannot count a node's fault"),
        }
    }

    /// Counts an upload of `peer` in, unless it has `max` in progress.
    pub(crate) fn start_upload(&self, peer: &str, max: u32) -> Option<UploadGuard<'_>> {
        let mut uploads = lock(&self.uploads);
        let n = uploads.entry(peer.to_owned()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(UploadGuard {
            shared: self,
            peer: peer.to_owned(),
        })
    }

    pub(crate) fn credit_wait(&self, job: u64, reason: Option<String>) {
        let mut waits = lock(&self.credit_waits);
        match reason {
            Some(r) => {
                waits.insert(job, r);
            }
            None => {
                waits.remove(&job);
            }
        }
    }

    fn log_path(&self, job: u64) -> PathBuf {
        self.logs_dir.join(format!("{job}.log"))
    }

    /// Appends to a job's log (bounded) and tells followers.
    pub(crate) fn append_log(&self, job: u64, data: &[u8]) {
        let path = self.log_path(job);
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let room = self.config.max_log_bytes.saturating_sub(offset) as usize;
        let kept = &data[..data.len().min(room)];
        let kept = &kept[..crate::storage::log_room(self, job, offset, kept.len())];
        if kept.is_empty() {
            return;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        // Tenants' data: owner-only whatever the umask (as `suanli-fs`).
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, suanli_fs::PRIVATE_MODE);
        let written = options.open(&path).and_then(|mut f| f.write_all(kept));
        if let Err(err) = written {
            tracing::warn!(job, %err, "cannot append to job log");
            return;
        }
        let _ = self.events.send(Event::Log { job });
    }

    /// At most `max` bytes of `job`'s log from byte `offset` (empty at its
    /// end, or when there is no log).
    pub(crate) fn read_log_chunk(&self, job: u64, offset: u64, max: usize) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = std::fs::File::open(self.log_path(job)) else {
            return Vec::new();
        };
        let mut chunk = Vec::new();
        let read = file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| file.take(max as u64).read_to_end(&mut chunk));
        if read.is_err() {
            chunk.clear();
        }
        chunk
    }
}

/// Why no connected node (there is at least one) runs a queued job now: the
/// first requirement no node meets (GPU memory, then each of the job's
/// limits against the providers' caps, with the most any node offers), else
/// that no single node meets them all, that the nodes that do are ones it
/// crashed on or missed its deadline on, or draining or quarantined, else
/// that they are busy.
fn placement_reason(
    nodes: &[&LiveNode],
    spec: &JobSpec,
    crashed_on: &[String],
    missed_on: &[String],
) -> String {
    let need = spec.requirements.min_gpu_memory;
    let largest = nodes
        .iter()
        .map(|n| n.info.gpu.max_buffer_size)
        .max()
        .unwrap_or(0);
    if largest < need {
        return format!(
            "needs {need} bytes of GPU memory; the largest connected node offers {largest}"
        );
    }
    if let Some(reason) = caps_reason(nodes, &spec.limits) {
        return reason;
    }
    let fitting: Vec<&&LiveNode> = nodes.iter().filter(|n| n.fits(spec)).collect();
    if fitting.is_empty() {
        let why = nodes
            .iter()
            .find_map(|n| Some(format!("node {}: {}", n.name, n.refusal(spec)?)))
            .unwrap_or_default();
        return format!("no connected node meets all of its requirements at once ({why})");
    }
    if fitting.iter().all(|n| crashed_on.contains(&n.name)) {
        return format!(
            "crashed the worker running it on {}; a crashed job runs again only on another \
             node, and none that fits is connected",
            crashed_on.join(" and ")
        );
    }
    if fitting.iter().all(|n| missed_on.contains(&n.name)) {
        return format!(
            "missed its deadline on {}; such a job runs again only on another node token, \
             and none that fits is connected",
            missed_on.join(" and ")
        );
    }
    let avoided = |n: &LiveNode| crashed_on.contains(&n.name) || missed_on.contains(&n.name);
    if fitting.iter().all(|n| n.quarantine.is_some() || avoided(n))
        && fitting.iter().any(|n| n.quarantine.is_some())
    {
        return "every connected node that fits it is quarantined (suanli node restore)".into();
    }
    if fitting.iter().all(|n| !n.takes_work() || avoided(n)) {
        return "every connected node that fits it is draining".into();
    }
    "waiting for a free slot".into()
}

/// The first of the job's limits that no connected node's caps allow, with
/// the most any of them allows.
fn caps_reason(nodes: &[&LiveNode], limits: &JobLimits) -> Option<String> {
    let most = |cap: fn(&NodeCaps) -> u64| nodes.iter().map(|n| cap(&n.info.caps)).max();
    let memory = most(|c| c.max_memory_bytes).unwrap_or(0);
    if limits.max_memory_bytes > memory {
        return Some(format!(
            "asks for {} bytes of memory; the most a connected node allows is {memory}",
            limits.max_memory_bytes
        ));
    }
    let timeout = most(|c| c.max_timeout_ns).unwrap_or(0);
    if limits.timeout_ns > timeout {
        return Some(format!(
            "asks for a timeout of {}; the longest a connected node allows is {}",
            secs(limits.timeout_ns),
            secs(timeout)
        ));
    }
    let dispatch = most(|c| c.max_dispatch_ns).unwrap_or(0);
    if limits.max_dispatch_ns > dispatch {
        return Some(format!(
            "asks for up to {} per dispatch; the longest a connected node allows is {}",
            secs(limits.max_dispatch_ns),
            secs(dispatch)
        ));
    }
    None
}

/// Nanoseconds as seconds for people (`10 s`, `0.25 s`).
fn secs(ns: u64) -> String {
    format!("{} s", ns as f64 / 1e9)
}

/// Attempts that were running when the coordinator stopped: their nodes get
/// `recovery_grace` to reconnect and claim them (reporting them still running
/// or re-sending their results); the rest end `node_lost` and are re-queued.
pub(crate) async fn recover(shared: Arc<Shared>) {
    let reader = shared.clone();
    let open = crate::server::blocking(move || reader.reader().open_attempts())
        .await
        .map_err(LedgerError::NotCommitted)
        .and_then(|r| r);
    let open = match open {
        Ok(open) => open,
        Err(err) => {
            tracing::error!(%err, "cannot read attempts to recover");
            return;
        }
    };
    if open.is_empty() {
        return;
    }
    tracing::info!(attempts = open.len(), grace = ?shared.config.recovery_grace, "waiting for nodes to claim running attempts");
    tokio::time::sleep(shared.config.recovery_grace).await;
    let reason = format!(
        "the coordinator restarted and the node did not come back within {} s",
        shared.config.recovery_grace.as_secs_f64()
    );
    for (job, attempt, _) in open {
        if shared.runner_of(job, attempt).is_some() {
            continue;
        }
        let why = reason.clone();
        let lost = shared
            .writer
            .write(move |l| l.lose_attempt(job, attempt, now_ms(), &why))
            .await;
        match lost {
            Ok(suanli_ledger::Recorded::Ended { state }) => {
                tracing::info!(
                    job,
                    attempt,
                    state = state.as_str(),
                    "attempt not claimed; lost"
                )
            }
            Ok(_) => {}
            Err(err) => tracing::error!(job, %err, "cannot end an unclaimed attempt"),
        }
        shared.notify_job(job);
    }
    shared.wake_scheduler.notify_one();
}

/// An upload in progress; counted out when dropped.
pub(crate) struct UploadGuard<'a> {
    shared: &'a Shared,
    peer: String,
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        let mut uploads = lock(&self.shared.uploads);
        if let Some(n) = uploads.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                uploads.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use suanli_proto::{GpuInfo, JobLimits, Metering, PublicKey, Requirements};

    use super::*;

    fn node(name: &str, gpu_bytes: u64, caps: NodeCaps, draining: bool) -> LiveNode {
        let gpu = GpuInfo {
            name: "Test GPU".into(),
            backend: "vulkan".into(),
            device_type: "cpu".into(),
            driver: "test".into(),
            metering: Metering::Timestamp,
            max_buffer_size: gpu_bytes,
            max_storage_buffer_binding_size: 0,
            max_compute_workgroups_per_dimension: 0,
            features: vec![],
        };
        LiveNode {
            name: name.into(),
            token_hash: [0; 32],
            info: NodeInfo {
                gpu,
                slots: 1,
                caps,
                public_key: PublicKey([0; 32]),
                in_flight: vec![],
                devices: Vec::new(),
                simulated_faults: None,
            },
            gpu_class: "test-gpu".into(),
            tx: mpsc::unbounded_channel().0,
            running: HashSet::new(),
            connected_ms: 0,
            jobs_run: 0,
            draining,
            drained: false,
            allowed_slots: 1,
            token_max_slots: 1,
            quarantine: None,
        }
    }

    fn spec(min_gpu_memory: u64, limits: JobLimits) -> JobSpec {
        JobSpec {
            module: suanli_proto::Hash([0; 32]),
            input: suanli_proto::Hash([0; 32]),
            requirements: Requirements { min_gpu_memory },
            limits,
            max_attempts: 3,
        }
    }

    #[test]
    fn a_waiting_job_is_told_which_requirement_no_node_meets() {
        let s = 1_000_000_000;
        let short = NodeCaps {
            max_timeout_ns: 10 * s,
            ..NodeCaps::default()
        };
        let small = NodeCaps {
            max_memory_bytes: 1 << 20,
            ..NodeCaps::default()
        };
        let (a, b) = (
            node("a", 1 << 30, short, false),
            node("b", 1 << 20, small, false),
        );
        let reason = |nodes: &[&LiveNode], spec: &JobSpec, crashed: &[&str]| {
            let crashed: Vec<String> = crashed.iter().map(|c| c.to_string()).collect();
            placement_reason(nodes, spec, &crashed, &[])
        };
        let long = JobLimits {
            timeout_ns: 60 * s,
            ..JobLimits::default()
        };
        assert_eq!(
            reason(&[&a], &spec(0, long.clone()), &[]),
            "asks for a timeout of 60 s; the longest a connected node allows is 10 s"
        );
        let dispatch = JobLimits {
            max_dispatch_ns: 30 * s,
            timeout_ns: s,
            ..JobLimits::default()
        };
        assert_eq!(
            reason(&[&a, &b], &spec(0, dispatch), &[]),
            "asks for up to 30 s per dispatch; the longest a connected node allows is 10 s"
        );
        // Each limit is met by some node, but not all by one.
        assert_eq!(
            reason(&[&a, &b], &spec(1 << 30, long.clone()), &[]),
            "no connected node meets all of its requirements at once \
             (node a: asks for a 60000000000 ns timeout; the node allows 10000000000)"
        );
        let quick = JobLimits {
            timeout_ns: 5 * s,
            ..JobLimits::default()
        };
        let fits_a = spec(1 << 30, quick);
        assert_eq!(
            reason(&[&a, &b], &fits_a, &["a"]),
            "crashed the worker running it on a; a crashed job runs again only on another \
             node, and none that fits is connected"
        );
        let draining = node("c", 1 << 30, NodeCaps::default(), true);
        assert_eq!(
            reason(&[&a, &draining], &fits_a, &["a"]),
            "every connected node that fits it is draining"
        );
        assert_eq!(reason(&[&a, &b], &fits_a, &[]), "waiting for a free slot");
    }
}
