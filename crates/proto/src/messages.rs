//! Every message of the protocol. Ids are coordinator-assigned integers;
//! times are milliseconds since the Unix epoch; durations are nanoseconds.

use serde::{Deserialize, Serialize};

use crate::usage::{Price, UsageQuery, UsageRecord, UsageReport};
use crate::{Hash, Metering, Outcome, PublicKey, Receipt, Signature};

/// Who a token belongs to, and so what it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Manages tokens and nodes, reads everything.
    Admin,
    /// Submits jobs and reads its own.
    Tenant,
    /// A provider's node: registers a GPU and runs jobs.
    Node,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Tenant => "tenant",
            Role::Node => "node",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "tenant" => Some(Role::Tenant),
            "node" => Some(Role::Node),
            _ => None,
        }
    }
}

/// The first frame of every connection.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub role: Role,
    pub token: String,
}

/// Never prints the token: a `{:?}` in a log line must not leak it.
impl std::fmt::Debug for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hello")
            .field("version", &self.version)
            .field("role", &self.role)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The coordinator's answer to [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Welcome {
    /// Accepted; `name` is the token's name (tenant, node owner or admin).
    Accepted {
        name: String,
    },
    Refused {
        reason: String,
    },
    /// Refused because the token has another role than the one claimed:
    /// `actual` lets a client reconnect with the token's real role for
    /// requests every role may make (usage, invoices, prices).
    WrongRole {
        actual: Role,
        reason: String,
    },
}

/// What a job needs from a node's GPU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// Bytes of GPU memory (the node's `max_buffer_size` must reach it).
    pub min_gpu_memory: u64,
}

/// Limits the node enforces on each attempt. A job is assigned only to a
/// node whose [`NodeCaps`] cover all of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLimits {
    /// GPU budget: no dispatch starts once this much GPU time is metered.
    pub max_gpu_ns: Option<u64>,
    pub timeout_ns: u64,
    pub max_memory_bytes: u64,
    /// Longest one dispatch may keep the GPU busy; past it the attempt ends
    /// `gpu_hang`. With the budget it bounds the charge: at most
    /// `min(timeout, budget + max_dispatch)` of GPU time.
    pub max_dispatch_ns: u64,
}

/// Default of [`JobLimits::max_dispatch_ns`] and [`NodeCaps::max_dispatch_ns`]: 10 s.
pub const DEFAULT_MAX_DISPATCH_NS: u64 = 10_000_000_000;

impl Default for JobLimits {
    fn default() -> JobLimits {
        JobLimits {
            max_gpu_ns: None,
            timeout_ns: 60_000_000_000,
            max_memory_bytes: 512 << 20,
            max_dispatch_ns: DEFAULT_MAX_DISPATCH_NS,
        }
    }
}

/// The most a provider lets one job take on its node (`suanli node
/// --max-job-memory --max-job-timeout --max-dispatch-seconds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCaps {
    pub max_memory_bytes: u64,
    pub max_timeout_ns: u64,
    pub max_dispatch_ns: u64,
}

impl Default for NodeCaps {
    /// 4 GiB of wasm memory, 1 hour, 10 s per dispatch.
    fn default() -> NodeCaps {
        NodeCaps {
            max_memory_bytes: 4 << 30,
            max_timeout_ns: 3_600_000_000_000,
            max_dispatch_ns: DEFAULT_MAX_DISPATCH_NS,
        }
    }
}

impl NodeCaps {
    /// Why a job with `limits` cannot run on such a node, if it cannot.
    pub fn refuses(&self, limits: &JobLimits) -> Option<String> {
        if limits.max_memory_bytes > self.max_memory_bytes {
            return Some(format!(
                "asks for {} bytes of memory; the node allows {}",
                limits.max_memory_bytes, self.max_memory_bytes
            ));
        }
        if limits.timeout_ns > self.max_timeout_ns {
            return Some(format!(
                "asks for a {} ns timeout; the node allows {}",
                limits.timeout_ns, self.max_timeout_ns
            ));
        }
        if limits.max_dispatch_ns > self.max_dispatch_ns {
            return Some(format!(
                "asks for {} ns per dispatch; the node allows {}",
                limits.max_dispatch_ns, self.max_dispatch_ns
            ));
        }
        None
    }
}

/// A submission: content hashes of blobs already uploaded, and what the job needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub module: Hash,
    pub input: Hash,
    pub requirements: Requirements,
    pub limits: JobLimits,
    pub max_attempts: u32,
}

/// The most jobs one listing returns (and what a `limit` of 0 means).
pub const MAX_LISTED_JOBS: u32 = 1000;

/// Which jobs `Request::ListJobs` returns: newest first, up to `limit`
/// (at most [`MAX_LISTED_JOBS`]) and as many as fit one frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs with a smaller id: the next page starts below the last id
    /// of this one.
    pub before: Option<u64>,
    /// At most this many; 0 means [`MAX_LISTED_JOBS`].
    pub limit: u32,
}

impl JobFilter {
    /// The row limit in force.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => MAX_LISTED_JOBS,
            n => n.min(MAX_LISTED_JOBS),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Queued,
    Running,
    /// The last attempt ended `succeeded`.
    Succeeded,
    /// The last attempt ended otherwise (the job's fault or its limits).
    Failed,
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The state named `name` (as [`JobState::as_str`] writes it).
    pub fn parse(name: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// One run of a job on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    pub attempt: u32,
    pub node_id: u64,
    pub node: String,
    /// `None` while running.
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    pub gpu_ns: u64,
    pub wall_ns: u64,
    pub metering: Option<Metering>,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    /// GPU class of the node, and its price when the attempt started.
    pub gpu_class: String,
    pub price_micros: u64,
    /// GPU time billed (0 while running or when the tenant does not pay).
    pub charged_gpu_ns: u64,
    pub cost_micros: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub id: u64,
    pub tenant: String,
    pub state: JobState,
    pub spec: JobSpec,
    /// Why a queued job has not started (e.g. no node has enough GPU memory).
    pub waiting_reason: Option<String>,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    pub output: Option<Hash>,
    pub output_bytes: u64,
    pub submitted_ms: u64,
    pub finished_ms: Option<u64>,
    pub attempts: Vec<AttemptView>,
}

/// A node's GPU, as the node reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub metering: Metering,
    /// Largest buffer the device allows; the scheduler's measure of GPU memory.
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
    pub features: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub gpu: GpuInfo,
    pub slots: u32,
    /// What one job may take on this node.
    pub caps: NodeCaps,
    /// The key the node signs receipts with. The first registration with a
    /// node token binds it to that token; later ones must present the same.
    pub public_key: PublicKey,
    /// Attempts this node is still running or holds an unacknowledged result
    /// of (from an earlier session): the coordinator adopts those it still
    /// considers running on this node's key, instead of declaring them lost.
    pub in_flight: Vec<(u64, u32)>,
    /// Every GPU the node drives (one entry per `suanli node --gpu N`, or
    /// the one adapter it chose). Bounded by the coordinator
    /// ([`MAX_NODE_DEVICES`]).
    pub devices: Vec<DeviceInfo>,
    /// Set when the node deliberately misbehaves (`suanli node
    /// --simulate-faults`, a testing aid): the coordinator refuses it unless
    /// it runs with `--allow-simulated-faults`.
    pub simulated_faults: Option<FaultSimulation>,
}

/// Faults a node simulates on purpose, so validation can be exercised end
/// to end with real processes (`suanli node --simulate-faults
/// wrong-output=P,inflate-gpu=F`). Integers, so the wire carries no floats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSimulation {
    /// Chance, in parts per million, that a succeeded attempt's output is
    /// corrupted (a byte flipped) before it is hashed and signed.
    pub wrong_output_ppm: u32,
    /// Factor, in thousandths, applied to the GPU time the node reports
    /// (1000: honest; 3000: three times what it metered).
    pub gpu_time_permille: u32,
}

impl FaultSimulation {
    /// Parses `wrong-output=P,inflate-gpu=F` (either or both; P a
    /// probability in 0..=1, F a factor ≥ 1, each with up to 6 and 3
    /// decimals).
    pub fn parse(text: &str) -> Result<FaultSimulation, String> {
        let mut sim = FaultSimulation {
            wrong_output_ppm: 0,
            gpu_time_permille: 1000,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: write KEY=VALUE"))?;
            let number: f64 = value
                .parse()
                .map_err(|_| format!("{part:?}: {value:?} is not a number"))?;
            match key {
                "wrong-output" if (0.0..=1.0).contains(&number) => {
                    sim.wrong_output_ppm = (number * 1e6).round() as u32;
                }
                "wrong-output" => return Err(format!("{part:?}: a probability is 0 to 1")),
                "inflate-gpu" if (1.0..=1000.0).contains(&number) => {
                    sim.gpu_time_permille = (number * 1e3).round() as u32;
                }
                "inflate-gpu" => return Err(format!("{part:?}: a factor is 1 to 1000")),
                _ => {
                    return Err(format!(
                        "{part:?}: unknown fault; use wrong-output=P and/or inflate-gpu=F"
                    ));
                }
            }
        }
        Ok(sim)
    }

    /// As `--simulate-faults` writes it.
    pub fn describe(&self) -> String {
        format!(
            "wrong-output={},inflate-gpu={}",
            f64::from(self.wrong_output_ppm) / 1e6,
            f64::from(self.gpu_time_permille) / 1e3
        )
    }
}

/// Most GPUs one node may report in [`NodeInfo::devices`].
pub const MAX_NODE_DEVICES: usize = 64;

/// One GPU of a node: which adapter it is and how many jobs run on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The adapter index on the node (`suanli gpus`).
    pub index: u32,
    pub name: String,
    /// `DDDD:BB:DD.F` where the driver reports it, else empty.
    pub pci_bus_id: String,
    /// Job slots on this GPU.
    pub slots: u32,
}

/// Slots a node token's nodes are given work for unless its token says
/// otherwise (`suanli token create --role node --max-slots`).
pub const DEFAULT_NODE_MAX_SLOTS: u32 = 8;
/// The most `--max-slots` a node token may be given.
pub const MAX_NODE_SLOTS: u32 = 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: u64,
    /// The name of the node token it connected with.
    pub name: String,
    pub gpu: GpuInfo,
    /// The price class (see `suanli price`).
    pub gpu_class: String,
    pub public_key: PublicKey,
    pub slots: u32,
    pub caps: NodeCaps,
    /// The slots it is given work for: its reported `slots` clipped to its
    /// token's `max_slots` (`suanli token create --max-slots`).
    pub allowed_slots: u32,
    pub running: u32,
    /// Takes no new jobs (drained by the admin or by the node itself).
    pub draining: bool,
    /// Why its token is quarantined (no new jobs until `suanli node restore`).
    pub quarantine: Option<String>,
    pub connected: bool,
    pub connected_ms: u64,
    pub jobs_run: u64,
    /// The GPUs the node reported, each with its slots.
    pub devices: Vec<DeviceInfo>,
    /// The faults it simulates on purpose (a testing aid), if any.
    pub simulated_faults: Option<FaultSimulation>,
}

/// What a client or node asks of the coordinator: one per stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Which of these blobs the coordinator lacks (answer: `Missing`).
    HasBlobs(Vec<Hash>),
    /// Upload: `size` raw bytes follow this frame; answer `Stored` once verified.
    PutBlob {
        hash: Hash,
        size: u64,
    },
    /// Download: answer `Blob { size }`, then `size` raw bytes.
    GetBlob(Hash),
    Submit(JobSpec),
    Status(u64),
    /// Answer once the job is final.
    Wait(u64),
    /// Answer `Log` frames; with `follow`, until the job is final, then `LogEnd`.
    Logs {
        job: u64,
        follow: bool,
    },
    Cancel(u64),
    /// Jobs newest first, as `filter` says (a tenant's own; every tenant's
    /// for an admin).
    ListJobs(JobFilter),
    ListNodes,
    CreateToken {
        role: Role,
        name: String,
        /// Node tokens: the most slots its nodes are given work for (default
        /// [`DEFAULT_NODE_MAX_SLOTS`], at most [`MAX_NODE_SLOTS`]).
        max_slots: Option<u32>,
    },
    /// A node's control stream: answer `Registered`, then [`ToNode`] frames
    /// flow down and [`FromNode`] frames flow up the same stream.
    Register(NodeInfo),
    /// Sets the price of a GPU class, in micro-units per GPU-second (admin).
    /// The class `default` prices every class without its own price.
    SetPrice {
        class: String,
        micros: u64,
    },
    /// Prices in force (answer `Prices`).
    ListPrices,
    /// Puts a provider's nodes (by node token name) in a GPU class, or back
    /// to the class derived from their adapter with `None` (admin).
    SetNodeClass {
        node: String,
        class: Option<String>,
    },
    /// A tenant's credit limit in micro-units, or none (admin).
    SetCreditLimit {
        tenant: String,
        micros: Option<u64>,
    },
    /// Totals (answer `Usage`); narrowed to the caller's own for tenants and nodes.
    Usage(UsageQuery),
    /// Per-attempt usage with receipts, in (job, attempt) order after `after`
    /// (answer `UsageRecords`, at most `limit`).
    UsageRecords {
        query: UsageQuery,
        after: Option<(u64, u32)>,
        limit: u32,
    },
    /// Assign no new jobs to the live nodes of this node token name; running
    /// ones finish (admin).
    DrainNode(String),
    /// Lifts an admin's drain of this node token name (admin).
    UndrainNode(String),
    /// Lifts the quarantine of this node token name (admin).
    RestoreNode(String),
    /// Check the ledger's invariants (admin; answer `Check`).
    Check,
    /// Collect garbage now: expire blobs and logs past retention, delete
    /// unreferenced blobs, prune old node sessions (admin; answer `Gc`).
    Gc,
    /// A tenant's storage quota in bytes (blobs granted to it and its job
    /// logs), or back to the coordinator's default with `None` (admin).
    SetStorageQuota {
        tenant: String,
        bytes: Option<u64>,
    },
    /// Every token's name, role, creation, last use and revocation (admin;
    /// answer `Tokens`). Secrets are never shown again.
    ListTokens,
    /// Revokes every token of this name (admin; answer `Ok`): its live
    /// connections are closed within a second and it is refused at every
    /// later handshake with the reason "token revoked".
    RevokeToken(String),
    /// A tenant's account (answer `Tenant`): the admin names any tenant; a
    /// tenant sees its own (`None` or its own name).
    ShowTenant(Option<String>),
    /// A consistent copy of the whole ledger, taken while serving (admin;
    /// answer `Backup { size, hash }`, then `size` raw bytes whose BLAKE3
    /// is `hash`). The copy holds token hashes and every usage row: whoever
    /// keeps it must keep it private.
    Backup,
}

impl Request {
    /// A short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::HasBlobs(_) => "has-blobs",
            Request::PutBlob { .. } => "put-blob",
            Request::GetBlob(_) => "get-blob",
            Request::Submit(_) => "submit",
            Request::Status(_) => "status",
            Request::Wait(_) => "wait",
            Request::Logs { .. } => "logs",
            Request::Cancel(_) => "cancel",
            Request::ListJobs(_) => "list-jobs",
            Request::ListNodes => "list-nodes",
            Request::CreateToken { .. } => "create-token",
            Request::Register(_) => "register",
            Request::SetPrice { .. } => "set-price",
            Request::ListPrices => "list-prices",
            Request::SetNodeClass { .. } => "set-node-class",
            Request::SetCreditLimit { .. } => "set-credit-limit",
            Request::Usage(_) => "usage",
            Request::UsageRecords { .. } => "usage-records",
            Request::DrainNode(_) => "drain-node",
            Request::UndrainNode(_) => "undrain-node",
            Request::RestoreNode(_) => "restore-node",
            Request::Check => "check",
            Request::Gc => "gc",
            Request::SetStorageQuota { .. } => "set-storage-quota",
            Request::ListTokens => "list-tokens",
            Request::RevokeToken(_) => "revoke-token",
            Request::ShowTenant(_) => "show-tenant",
            Request::Backup => "backup",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The request is not allowed for this token's role.
    Forbidden,
    /// No such job (or not yours: the two are indistinguishable on purpose).
    NotFound,
    BadRequest,
    TooLarge,
    /// The tenant's credit limit does not cover the job's worst case.
    CreditLimit,
    /// A per-peer limit on work in progress (e.g. uploads); retry later.
    Overloaded,
    /// The tenant's storage quota (its blobs and job logs) does not hold
    /// this upload; the message gives used, this upload and the quota.
    QuotaExceeded,
    Internal,
    /// The coordinator is shutting down (a restart, usually): the request
    /// was not carried out; retry shortly, on a new connection.
    ShuttingDown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Ok,
    Error {
        code: ErrorCode,
        message: String,
    },
    Missing(Vec<Hash>),
    Stored,
    Blob {
        size: u64,
    },
    Submitted {
        job: u64,
    },
    Job(Box<JobView>),
    Jobs(Vec<JobView>),
    Nodes(Vec<NodeView>),
    Token {
        token: String,
        role: Role,
        name: String,
    },
    Log(Vec<u8>),
    LogEnd,
    Registered {
        node_id: u64,
        /// Of the node's `in_flight` attempts, those still assigned to it;
        /// it should stop the others (they were declared lost).
        adopted: Vec<(u64, u32)>,
    },
    /// Invariant violations found (empty: the ledger is consistent).
    Check(Vec<String>),
    Prices(Vec<Price>),
    Usage(UsageReport),
    UsageRecords(Vec<UsageRecord>),
    /// What one garbage collection deleted.
    Gc(GcReport),
    Tokens(Vec<TokenView>),
    /// A setting was stored (price, node class, credit limit, storage
    /// quota, drain, restore). `known`: the name it applies to exists (a
    /// tenant or node token of that name, or a GPU class seen on a node or
    /// priced before); a setting for an unknown name waits for it.
    Applied {
        known: bool,
    },
    Tenant(TenantView),
    /// A ledger backup follows: `size` raw bytes whose BLAKE3 is `hash`.
    Backup {
        size: u64,
        hash: Hash,
    },
}

/// A tenant's account (`suanli tenant show`). Money in micro-units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantView {
    pub name: String,
    /// A tenant token of this name exists (revoked or not).
    pub known: bool,
    pub credit_limit_micros: Option<u64>,
    /// The sum of its usage costs.
    pub spent_micros: u64,
    /// What its queued and running jobs may still cost, each at its worst
    /// case at the highest price in force (what admission holds back).
    pub held_micros: u64,
    pub storage_used_bytes: u64,
    pub storage_quota_bytes: u64,
    /// How many of its jobs are in each state (states with none left out).
    pub jobs: Vec<(JobState, u64)>,
}

impl TenantView {
    /// What a new job may still take: limit − spent − held (0 when
    /// overdrawn), or `None` without a limit.
    pub fn available_micros(&self) -> Option<u64> {
        self.credit_limit_micros.map(|limit| {
            limit
                .saturating_sub(self.spent_micros)
                .saturating_sub(self.held_micros)
        })
    }
}

/// A token as `suanli token list` shows it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub name: String,
    pub role: Role,
    pub created_ms: u64,
    /// The last accepted handshake, to the minute (recorded at most once a
    /// minute so that handshakes do not each cost an fsync).
    pub last_used_ms: Option<u64>,
    pub revoked_ms: Option<u64>,
}

/// Coordinator → node, on the node's control stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToNode {
    Run(Assignment),
    Cancel {
        job: u64,
        attempt: u32,
    },
    /// The result of this attempt is dealt with: recorded now or before
    /// (`accepted`), or refused with `reason`. Either way the node forgets it.
    Ack {
        job: u64,
        attempt: u32,
        accepted: bool,
        reason: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub job: u64,
    pub attempt: u32,
    pub spec: JobSpec,
}

/// Node → coordinator, on the node's control stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromNode {
    Log {
        job: u64,
        attempt: u32,
        data: Vec<u8>,
    },
    /// Sent after the output blob is uploaded; re-sent until acknowledged.
    Finished(Box<AttemptResult>),
    /// The node is draining: assign it nothing new.
    Draining,
}

/// The end of an attempt: its signed receipt, and what is not billed on.
/// Fits one frame by construction: the error is at most [`MAX_ERROR_BYTES`]
/// (see [`bounded_error`]) and the output travels as a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptResult {
    pub receipt: Receipt,
    pub signature: Signature,
    pub error: Option<String>,
    pub output_bytes: u64,
}

/// Longest error text a job hands back (64 KiB); longer ones are cut.
pub const MAX_ERROR_BYTES: usize = 64 << 10;

/// Longest log chunk in one [`FromNode::Log`] frame (64 KiB).
pub const MAX_LOG_CHUNK_BYTES: usize = 64 << 10;

/// `text` cut to at most [`MAX_ERROR_BYTES`] bytes on a character boundary,
/// with a note saying how much was cut.
pub fn bounded_error(text: String) -> String {
    cut_text(text, MAX_ERROR_BYTES)
}

/// `text` cut to at most `max` bytes (at least 128) on a character
/// boundary, ending with a note `[... N of M bytes cut]`.
pub fn cut_text(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    // Room for the note: " [... N of M bytes cut]" with two u64s is < 64 bytes.
    let mut end = max.max(128) - 64;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{} [... {} of {} bytes cut]",
        &text[..end],
        text.len() - end,
        text.len()
    )
}

/// What one garbage collection deleted (`suanli admin gc`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Tenants' grants of blobs past retention that were withdrawn.
    pub grants_expired: u64,
    /// Blob files deleted (unreferenced rows, or files no row knows).
    pub blobs_deleted: u64,
    /// Their bytes.
    pub blob_bytes_deleted: u64,
    /// Job logs of jobs finished before the retention deleted.
    pub logs_deleted: u64,
    /// Their bytes.
    pub log_bytes_deleted: u64,
    /// Disconnected node-session rows no attempt refers to, pruned.
    pub node_sessions_pruned: u64,
}

#[cfg(test)]
mod fault_simulation_tests {
    use super::FaultSimulation;

    #[test]
    fn faults_parse_to_integers_and_describe_themselves_back() {
        let sim = FaultSimulation::parse("wrong-output=0.25, inflate-gpu=3").unwrap();
        assert_eq!(
            sim,
            FaultSimulation {
                wrong_output_ppm: 250_000,
                gpu_time_permille: 3000
            }
        );
        assert_eq!(FaultSimulation::parse(&sim.describe()).unwrap(), sim);
        let honest_gpu = FaultSimulation::parse("wrong-output=1").unwrap();
        assert_eq!(honest_gpu.gpu_time_permille, 1000, "GPU time untouched");
        assert!(FaultSimulation::parse("wrong-output=-0.1").is_err());
        assert!(FaultSimulation::parse("inflate-gpu=nan").is_err());
    }
}
