//! Shutting down (SIGTERM, Ctrl-C): stop taking work, let what is in flight
//! finish, tell every peer with a close code of its own, commit what the
//! ledger writer holds, and be done within `shutdown_timeout`.
//!
//! Order matters. New connections and requests are refused first (with
//! [`SHUTDOWN_REASON`]), so the set of work in flight only shrinks; the
//! requests already running finish while the writer still commits, so
//! their answers go out; then every connection is closed with
//! [`CLOSE_SHUTDOWN`], which nodes take as "reconnect soon" and clients
//! report as "retry shortly"; node sessions ended this way leave their
//! attempts running (they are not `node_lost`: the node keeps running
//! them and claims them after the restart, within `recovery_grace`);
//! last the writer drains: operations already queued commit, later ones
//! fail, so nothing is acknowledged that is not on disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use suanli_net::{CLOSE_SHUTDOWN, SHUTDOWN_REASON};
use tokio::sync::Notify;

use crate::state::Shared;

/// Whether the coordinator is stopping, and the requests still running.
#[derive(Default)]
pub(crate) struct Lifecycle {
    stopping: AtomicBool,
    /// Woken when the shutdown begins.
    stop: Notify,
    busy: AtomicUsize,
    idle: Notify,
}

/// Once a shutdown began, how long an answer already written may still wait
/// for the peer to acknowledge it (see `server::delivered`). A live peer
/// acknowledges within a round trip; a CLI process that exited right after
/// reading its answer never does, and would otherwise hold the shutdown
/// until its connection's idle timeout.
pub(crate) const SHUTDOWN_DELIVERY_GRACE: Duration = Duration::from_millis(500);

/// A request in flight, counted until dropped.
pub(crate) struct Busy<'a>(&'a Lifecycle);

impl Lifecycle {
    /// Whether a shutdown has begun.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Admits a request, unless a shutdown has begun. A `counted` one holds
    /// the shutdown back (up to its timeout) until it finishes; long-lived
    /// ones (a node's session, `wait`, `logs`) are ended by the close.
    /// Counted before the flag is read, so a shutdown that saw no request
    /// in flight cannot miss one admitted concurrently.
    pub(crate) fn enter(&self, counted: bool) -> Result<Option<Busy<'_>>, ()> {
        self.busy.fetch_add(1, Ordering::SeqCst);
        let busy = Busy(self);
        if self.stopping() {
            return Err(());
        }
        if counted {
            Ok(Some(busy))
        } else {
            drop(busy);
            Ok(None)
        }
    }

    /// Returns once a shutdown has begun.
    pub(crate) async fn stopped(&self) {
        loop {
            let woken = self.stop.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.stopping() {
                return;
            }
            woken.await;
        }
    }

    fn in_flight(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// Returns once no counted request is in flight.
    async fn quiet(&self) {
        loop {
            let woken = self.idle.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            woken.await;
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// What one shutdown did, for the operator's log and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Requests still running when the timeout cut them off.
    pub requests_cut_off: usize,
    /// Node sessions told to reconnect.
    pub nodes_told: usize,
    /// Ledger operations committed by the final drain.
    pub writes_drained: usize,
    /// Whether every step finished within the timeout.
    pub clean: bool,
    pub elapsed: Duration,
}

/// The whole shutdown, bounded by `shutdown_timeout` (each step gets what
/// the earlier ones left).
pub(crate) async fn shutdown(shared: &Arc<Shared>, endpoint: &quinn::Endpoint) -> ShutdownReport {
    let started = Instant::now();
    let limit = shared.config.shutdown_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    let mut report = ShutdownReport {
        clean: true,
        ..ShutdownReport::default()
    };
    shared.lifecycle.stopping.store(true, Ordering::SeqCst);
    shared.lifecycle.stop.notify_waiters();
    shared.wake_scheduler.notify_one();
    tracing::info!(
        timeout = ?limit,
        in_flight = shared.lifecycle.in_flight(),
        "shutting down: refusing new connections and requests, no new placements"
    );
    if tokio::time::timeout_at(deadline, shared.lifecycle.quiet())
        .await
        .is_err()
    {
        report.requests_cut_off = shared.lifecycle.in_flight();
        report.clean = false;
        tracing::warn!(
            requests = report.requests_cut_off,
            "requests still running at the shutdown timeout are cut off (unacknowledged)"
        );
    } else {
        tracing::info!("requests in flight finished");
    }
    report.nodes_told = shared.nodes().len();
    endpoint.close(CLOSE_SHUTDOWN.into(), SHUTDOWN_REASON.as_bytes());
    tracing::info!(
        nodes = report.nodes_told,
        "closed every connection with the shutdown code: nodes keep their jobs and reconnect"
    );
    match tokio::time::timeout_at(deadline, shared.writer.drain()).await {
        Ok(Ok(ops)) => {
            report.writes_drained = ops;
            tracing::info!(
                ops,
                "ledger writer drained: queued writes committed, ledger closed"
            );
        }
        Ok(Err(err)) => {
            report.clean = false;
            tracing::warn!(%err, "ledger writer already stopped");
        }
        Err(_) => {
            report.clean = false;
            tracing::warn!(
                "the ledger writer did not drain within the shutdown timeout; \
                 writes it had not committed were never acknowledged"
            );
        }
    }
    // Lets the close frames leave; bounded like the rest.
    let _ = tokio::time::timeout_at(deadline, endpoint.wait_idle()).await;
    report.elapsed = started.elapsed();
    tracing::info!(elapsed = ?report.elapsed, clean = report.clean, "shutdown complete");
    report
}
