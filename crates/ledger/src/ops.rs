//! The ledger's write operations as a trait: what the coordinator hands to
//! the writer thread, so that a second backend (PostgreSQL, next) can
//! implement the same operations, with [`WriteBackend`]'s batching, and the
//! coordinator's writer can own either (`Box<dyn LedgerWrites>`).

use suanli_proto::{AttemptResult, Hash, JobSpec, NodeInfo, Role};

use crate::writer::WriteBackend;
use crate::{Admission, Ledger, Quarantined, Recorded, Registration, Result, Start, Stored};

/// Declares the trait and implements it for the SQLite [`Ledger`] by
/// delegating to its methods (same names, same meaning: see them).
macro_rules! ledger_writes {
    ($( $(#[$doc:meta])* fn $name:ident(&mut self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        /// Every write the coordinator makes, each run by the writer thread
        /// inside its own savepoint of a batch's transaction.
        pub trait LedgerWrites: WriteBackend {
            $( $(#[$doc])* fn $name(&mut self $(, $arg: $ty)*) -> Result<$ret>; )*
        }

        impl LedgerWrites for Ledger {
            $( fn $name(&mut self $(, $arg: $ty)*) -> Result<$ret> {
                Ledger::$name(self $(, $arg)*)
            } )*
        }
    };
}

ledger_writes! {
    /// Queues a job unless its worst case passes the tenant's credit limit.
    fn submit(&mut self, tenant: &str, spec: &JobSpec, now_ms: u64) -> Admission;
    /// Starts the next attempt of a queued job on a node session.
    fn start_attempt(&mut self, job: u64, node_id: u64, now_ms: u64) -> Start;
    /// Records a node's signed result once, with its usage row.
    fn finish_attempt(&mut self, session: u64, r: &AttemptResult, now_ms: u64) -> Recorded;
    /// Ends an attempt whose node is gone (`node_lost`, unbilled).
    fn lose_attempt(&mut self, job: u64, attempt: u32, now_ms: u64, reason: &str) -> Recorded;
    /// Ends an attempt `provider_fault` (unbilled, retried).
    fn fault_attempt(&mut self, job: u64, attempt: u32, now_ms: u64, reason: &str) -> Recorded;
    /// Cancels a job that is not final; its running attempt, if any.
    fn cancel(&mut self, job: u64, now_ms: u64) -> Option<Option<(u32, u64)>>;
    /// A new node session, binding its key to its token on first use.
    fn register_node(
        &mut self,
        token_hash: &[u8; 32],
        name: &str,
        info: &NodeInfo,
        now_ms: u64,
    ) -> Registration;
    /// Counts a `provider_fault`; quarantines the token past the limit.
    fn note_fault(
        &mut self,
        node_id: u64,
        now_ms: u64,
        window_ms: u64,
        max_faults: u32,
    ) -> Option<Quarantined>;
    /// Puts a provider's sessions in a price class (or back to derived).
    fn set_node_class(&mut self, node: &str, class: Option<&str>) -> ();
    /// Drains or undrains the node tokens of a name.
    fn set_drained(&mut self, name: &str, drained: bool) -> usize;
    /// Lifts the quarantine of the node tokens of a name.
    fn restore_node(&mut self, name: &str, now_ms: u64) -> usize;
    /// A token (by hash only).
    fn add_token_with_slots(
        &mut self,
        token_hash: &[u8; 32],
        role: Role,
        name: &str,
        now_ms: u64,
        max_slots: u32,
    ) -> ();
    /// Revokes the tokens of a name; their hashes.
    fn revoke_tokens(&mut self, name: &str, now_ms: u64) -> Vec<[u8; 32]>;
    /// Records a token's last use.
    fn touch_token(&mut self, token_hash: &[u8; 32], now_ms: u64) -> ();
    /// A new price of a class (prices are a history).
    fn set_price(&mut self, class: &str, micros: u64, now_ms: u64) -> ();
    /// Sets or lifts a tenant's credit limit.
    fn set_credit_limit(&mut self, tenant: &str, micros: Option<u64>) -> ();
    /// Sets or lifts a tenant's storage quota.
    fn set_storage_quota(&mut self, tenant: &str, bytes: Option<u64>) -> ();
    /// A stored blob's row and the uploader's grant, within its quota.
    fn record_blob(
        &mut self,
        hash: &Hash,
        size: u64,
        tenant: Option<&str>,
        default_quota: u64,
        now_ms: u64,
    ) -> Stored;
    /// Counts a job's log bytes up to `total`, within its tenant's quota.
    fn reserve_log(&mut self, job: u64, total: u64, default_quota: u64) -> Stored;
    /// Garbage collection: grants past the retention.
    fn expire_grants(&mut self, cutoff_ms: u64) -> u64;
    /// Garbage collection: a job's log no longer counted.
    fn release_log(&mut self, job: u64, now_ms: u64) -> ();
    /// Garbage collection: an unreferenced blob's row; its size.
    fn forget_blob(&mut self, hash: &Hash, stored_before_ms: u64) -> Option<u64>;
    /// Garbage collection: a row for a file a grant or live job names.
    fn adopt_blob(&mut self, hash: &Hash, size: u64, now_ms: u64) -> ();
    /// Garbage collection: old node sessions nothing names.
    fn prune_node_sessions(&mut self, cutoff_ms: u64, live: &[u64]) -> u64;
}

impl<B: WriteBackend + ?Sized> WriteBackend for Box<B> {
    fn begin_batch(&mut self) -> Result<()> {
        (**self).begin_batch()
    }
    fn begin_op(&mut self) -> Result<()> {
        (**self).begin_op()
    }
    fn end_op(&mut self, keep: bool) -> Result<()> {
        (**self).end_op(keep)
    }
    fn commit_batch(&mut self) -> Result<()> {
        (**self).commit_batch()
    }
    fn abort_batch(&mut self) {
        (**self).abort_batch()
    }
}
