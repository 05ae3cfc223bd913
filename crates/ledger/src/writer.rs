//! The ledger writer: one thread owns the write connection, and every write
//! reaches it over a bounded queue.
//!
//! **Group commit.** The thread takes what is queued (up to
//! [`WriterConfig::max_batch`] operations), runs them in one transaction,
//! each inside its own savepoint, and commits once: with `synchronous =
//! FULL` that is one fsync per batch instead of one per operation. An
//! operation that fails is rolled back to its savepoint alone; the others
//! commit, and it gets its own error.
//!
//! **Durability.** An operation's result is handed back only after its batch
//! committed (its `after` callback runs on this thread then, in queue
//! order), so whatever depends on a write (a response, an assignment, an
//! ack) is released only once the write is on disk, as before batching.
//! If the commit fails, every operation of the batch gets
//! [`LedgerError::NotCommitted`] and none of its effects are visible.
//!
//! **Backends.** The thread knows a backend only through [`WriteBackend`]
//! (begin a batch, a savepoint per operation, commit): the SQLite
//! [`Ledger`](crate::Ledger) implements it, and a PostgreSQL backend can
//! implement it the same way (one transaction, `SAVEPOINT` per operation).

use std::panic::AssertUnwindSafe;

use tokio::sync::{mpsc, oneshot};

use crate::{LedgerError, Result};

/// Operations queued for the writer before senders wait: bounded, so a burst
/// of requests holds its callers back instead of growing memory.
pub const WRITE_QUEUE_CAPACITY: usize = 4096;
/// Most operations committed together in one transaction (one fsync).
pub const MAX_BATCH_OPS: usize = 512;

/// The writer's limits.
#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    /// Capacity of the queue of operations ([`WRITE_QUEUE_CAPACITY`]).
    pub queue_capacity: usize,
    /// Most operations per transaction ([`MAX_BATCH_OPS`]).
    pub max_batch: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_capacity: WRITE_QUEUE_CAPACITY,
            max_batch: MAX_BATCH_OPS,
        }
    }
}

/// What the writer needs of a store: batches are transactions, each
/// operation runs inside a savepoint of its own.
pub trait WriteBackend: Send + 'static {
    /// Starts the batch's transaction (taking the write lock now).
    fn begin_batch(&mut self) -> Result<()>;
    /// Starts one operation's savepoint.
    fn begin_op(&mut self) -> Result<()>;
    /// Ends one operation's savepoint: kept (`true`) or rolled back.
    fn end_op(&mut self, keep: bool) -> Result<()>;
    /// Commits the batch (durably, before returning).
    fn commit_batch(&mut self) -> Result<()>;
    /// Rolls the whole batch back (after a failure of the machinery itself).
    fn abort_batch(&mut self);
}

/// One queued operation, type-erased.
trait Pending<B>: Send {
    /// Runs the work inside the batch; whether its savepoint is kept.
    fn apply(&mut self, backend: &mut B) -> bool;
    /// Hands the result over once the batch's fate is known.
    fn finish(self: Box<Self>, committed: std::result::Result<(), String>);
}

struct Op<B, T, F, D> {
    work: Option<F>,
    result: Option<Result<T>>,
    after: Option<D>,
    _backend: std::marker::PhantomData<fn(&mut B)>,
}

impl<B, T, F, D> Pending<B> for Op<B, T, F, D>
where
    T: Send,
    F: FnOnce(&mut B) -> Result<T> + Send,
    D: FnOnce(Result<T>) + Send,
{
    fn apply(&mut self, backend: &mut B) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panicking operation must not take the writer (and every later
        // write) down with it: it fails alone, like an error.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(backend)))
            .unwrap_or_else(|_| Err(LedgerError::Corrupt("a ledger operation panicked".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(mut self: Box<Self>, committed: std::result::Result<(), String>) {
        let result = match (committed, self.result.take()) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(LedgerError::NotCommitted(
                "the operation did not run".into(),
            )),
            (Err(why), Some(Err(e))) => Err(LedgerError::NotCommitted(format!("{e}; {why}"))),
            (Err(why), _) => Err(LedgerError::NotCommitted(why)),
        };
        if let Some(after) = self.after.take() {
            after(result);
        }
    }
}

type Queued<B> = Box<dyn Pending<B>>;

/// What reaches the writer thread: an operation, or a request to drain.
enum Message<B> {
    Op(Queued<B>),
    /// Stop taking new operations, commit every one already queued, close
    /// the store, then answer (see [`Writer::drain`]).
    Drain(oneshot::Sender<usize>),
}

/// A handle to the writer thread; cheap to clone. The thread ends once
/// every handle is dropped and the queue is drained.
pub struct Writer<B> {
    queue: mpsc::Sender<Message<B>>,
}

impl<B> Clone for Writer<B> {
    fn clone(&self) -> Self {
        Writer {
            queue: self.queue.clone(),
        }
    }
}

/// The writer thread, to wait for after the last [`Writer`] is dropped.
pub struct WriterThread(std::thread::JoinHandle<()>);

impl WriterThread {
    /// Waits for the thread to drain its queue and end.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

impl<B: WriteBackend> Writer<B> {
    /// Starts the writer thread, which owns `backend` from now on.
    pub fn start(backend: B, config: WriterConfig) -> Result<(Writer<B>, WriterThread)> {
        let (queue, rx) = mpsc::channel(config.queue_capacity.max(1));
        let max_batch = config.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("suanli-ledger-writer".into())
            .spawn(move || run(backend, rx, max_batch))
            .map_err(|e| LedgerError::NotCommitted(format!("cannot start the writer: {e}")))?;
        Ok((Writer { queue }, WriterThread(thread)))
    }

    /// Queues `work` and waits, without blocking the runtime, for its result
    /// once its batch committed. Waits for room while the queue is full.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut B) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.then(work, move |r| {
            let _ = tx.send(r);
        })
        .await?;
        rx.await.map_err(|_| LedgerError::WriterStopped)?
    }

    /// As [`Writer::write`], from a thread that may block (never from an
    /// async task, and never from an `after` callback: that would wait on
    /// itself).
    pub fn write_blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut B) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let op = op(work, move |r| {
            let _ = tx.send(r);
        });
        self.queue
            .blocking_send(Message::Op(op))
            .map_err(|_| LedgerError::WriterStopped)?;
        rx.blocking_recv().map_err(|_| LedgerError::WriterStopped)?
    }

    /// Queues `work`; `after` gets its result on the writer thread once the
    /// batch committed, in queue order (so effects released there, such as
    /// messages to a node, keep the order of the writes). `after` must not
    /// block. Returns once queued.
    pub async fn then<T, F, D>(&self, work: F, after: D) -> Result<()>
    where
        T: Send + 'static,
        F: FnOnce(&mut B) -> Result<T> + Send + 'static,
        D: FnOnce(Result<T>) + Send + 'static,
    {
        self.queue
            .send(Message::Op(op(work, after)))
            .await
            .map_err(|_| LedgerError::WriterStopped)
    }

    /// Drains the writer for a shutdown: from now on it takes no new
    /// operation (they fail [`LedgerError::WriterStopped`], so nothing is
    /// acknowledged that will not be committed), commits every operation
    /// already queued (so nothing acknowledged-to-be is dropped), closes
    /// the store (SQLite checkpoints its WAL) and then returns how many
    /// operations the batches it ran from the drain on held. Waits for
    /// room while the queue is full.
    pub async fn drain(&self) -> Result<usize> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send(Message::Drain(tx))
            .await
            .map_err(|_| LedgerError::WriterStopped)?;
        rx.await.map_err(|_| LedgerError::WriterStopped)
    }

    /// As [`Writer::then`], from a thread that may block.
    pub fn then_blocking<T, F, D>(&self, work: F, after: D) -> Result<()>
    where
        T: Send + 'static,
        F: FnOnce(&mut B) -> Result<T> + Send + 'static,
        D: FnOnce(Result<T>) + Send + 'static,
    {
        self.queue
            .blocking_send(Message::Op(op(work, after)))
            .map_err(|_| LedgerError::WriterStopped)
    }

    /// Queues `work` if there is room now; [`LedgerError::Busy`] otherwise
    /// (the queue is bounded; callers that must not wait use this).
    pub fn try_then<T, F, D>(&self, work: F, after: D) -> Result<()>
    where
        T: Send + 'static,
        F: FnOnce(&mut B) -> Result<T> + Send + 'static,
        D: FnOnce(Result<T>) + Send + 'static,
    {
        let message = Message::Op(op(work, after));
        self.queue.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => LedgerError::Busy,
            mpsc::error::TrySendError::Closed(_) => LedgerError::WriterStopped,
        })
    }
}

fn op<B, T, F, D>(work: F, after: D) -> Queued<B>
where
    B: WriteBackend,
    T: Send + 'static,
    F: FnOnce(&mut B) -> Result<T> + Send + 'static,
    D: FnOnce(Result<T>) + Send + 'static,
{
    Box::new(Op {
        work: Some(work),
        result: None,
        after: Some(after),
        _backend: std::marker::PhantomData,
    })
}

/// The writer thread: batch after batch until every handle is gone, or
/// until a drain was asked for and the queue is empty.
fn run<B: WriteBackend>(mut backend: B, mut rx: mpsc::Receiver<Message<B>>, max_batch: usize) {
    let mut batch: Vec<Queued<B>> = Vec::with_capacity(max_batch);
    let mut drains: Vec<oneshot::Sender<usize>> = Vec::new();
    let mut after_drain = 0usize;
    while let Some(first) = rx.blocking_recv() {
        take(first, &mut batch, &mut drains, &mut rx);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(message) => take(message, &mut batch, &mut drains, &mut rx),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        if !drains.is_empty() {
            after_drain += batch.len();
        }
        let committed = run_batch(&mut backend, &mut batch).map_err(|e| {
            tracing::error!(%e, ops = batch.len(), "a ledger batch did not commit");
            format!("the batch did not commit: {e}")
        });
        for op in batch.drain(..) {
            op.finish(committed.clone());
        }
    }
    // Closing the store before answering: SQLite checkpoints the WAL
    // into the database file as its last connection closes.
    drop(backend);
    for drain in drains {
        let _ = drain.send(after_drain);
    }
}

/// Adds an operation to the batch; a drain request closes the queue to
/// new operations (those already in it are still taken).
fn take<B>(
    message: Message<B>,
    batch: &mut Vec<Queued<B>>,
    drains: &mut Vec<oneshot::Sender<usize>>,
    rx: &mut mpsc::Receiver<Message<B>>,
) {
    match message {
        Message::Op(op) => batch.push(op),
        Message::Drain(reply) => {
            rx.close();
            drains.push(reply);
        }
    }
}

/// One transaction for the whole batch, a savepoint for each operation.
fn run_batch<B: WriteBackend>(backend: &mut B, batch: &mut [Queued<B>]) -> Result<()> {
    backend.begin_batch()?;
    for op in batch.iter_mut() {
        let step = backend.begin_op().and_then(|()| {
            let keep = op.apply(backend);
            backend.end_op(keep)
        });
        if let Err(e) = step {
            backend.abort_batch();
            return Err(e);
        }
    }
    backend
        .commit_batch()
        .inspect_err(|_| backend.abort_batch())
}

impl WriteBackend for crate::Ledger {
    fn begin_batch(&mut self) -> Result<()> {
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn begin_op(&mut self) -> Result<()> {
        Ok(self.conn.execute_batch("SAVEPOINT writer_op")?)
    }

    fn end_op(&mut self, keep: bool) -> Result<()> {
        let sql = if keep {
            "RELEASE writer_op"
        } else {
            "ROLLBACK TO writer_op; RELEASE writer_op"
        };
        Ok(self.conn.execute_batch(sql)?)
    }

    fn commit_batch(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        self.conn.execute_batch("COMMIT")?;
        if let Some(observe) = &self.commit_observer {
            observe(started.elapsed());
        }
        Ok(())
    }

    fn abort_batch(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use suanli_proto::Role;

    use super::*;
    use crate::Ledger;

    /// The SQLite ledger, counting the batches it committed.
    struct Counted {
        ledger: Ledger,
        commits: Arc<AtomicUsize>,
        /// Commits fail (after rolling back) while set.
        fail_commit: bool,
    }

    impl WriteBackend for Counted {
        fn begin_batch(&mut self) -> Result<()> {
            self.ledger.begin_batch()
        }
        fn begin_op(&mut self) -> Result<()> {
            self.ledger.begin_op()
        }
        fn end_op(&mut self, keep: bool) -> Result<()> {
            self.ledger.end_op(keep)
        }
        fn commit_batch(&mut self) -> Result<()> {
            if self.fail_commit {
                self.ledger.abort_batch();
                return Err(LedgerError::Corrupt("injected commit failure".into()));
            }
            self.commits.fetch_add(1, Ordering::SeqCst);
            self.ledger.commit_batch()
        }
        fn abort_batch(&mut self) {
            self.ledger.abort_batch()
        }
    }

    fn token(n: u32) -> [u8; 32] {
        let mut t = [7u8; 32];
        t[..4].copy_from_slice(&n.to_le_bytes());
        t
    }

    fn counted(
        dir: &tempfile::TempDir,
        config: WriterConfig,
        fail_commit: bool,
    ) -> (Writer<Counted>, WriterThread, Arc<AtomicUsize>) {
        let ledger = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        let commits = Arc::new(AtomicUsize::new(0));
        let backend = Counted {
            ledger,
            commits: commits.clone(),
            fail_commit,
        };
        let (w, t) = Writer::start(backend, config).unwrap();
        (w, t, commits)
    }

    /// Holds the writer inside an operation until the returned sender is
    /// dropped or sent to, so what is queued meanwhile forms the next batch.
    fn hold(w: &Writer<Counted>) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (entered, inside) = std::sync::mpsc::channel::<()>();
        w.then_blocking(
            move |_: &mut Counted| {
                let _ = entered.send(());
                let _ = held.recv();
                Ok(())
            },
            |_| {},
        )
        .unwrap();
        inside.recv().unwrap();
        release
    }

    #[test]
    fn a_failing_operation_is_rolled_back_alone_and_the_batch_commits_once() {
        let dir = tempfile::tempdir().unwrap();
        let (w, thread, commits) = counted(&dir, WriterConfig::default(), false);
        let release = hold(&w);
        let (tx, rx) = std::sync::mpsc::channel();
        for n in 0..10u32 {
            let tx = tx.clone();
            w.then_blocking(
                move |b: &mut Counted| {
                    b.ledger
                        .add_token(&token(n), Role::Tenant, &format!("t{n}"), 0)?;
                    if n == 4 {
                        // Wrote, then failed: its write must not survive.
                        b.ledger.add_token(&token(0), Role::Tenant, "again", 0)?;
                    }
                    Ok(n)
                },
                move |r| tx.send((n, r)).unwrap(),
            )
            .unwrap();
        }
        drop(release);
        let mut results: Vec<(u32, Result<u32>)> = (0..10).map(|_| rx.recv().unwrap()).collect();
        results.sort_by_key(|(n, _)| *n);
        for (n, r) in &results {
            match (n, r) {
                (4, Err(LedgerError::Sqlite(_))) => {}
                (4, other) => panic!("op 4 should fail on its own: {other:?}"),
                (n, Ok(v)) => assert_eq!(n, v),
                (n, Err(e)) => panic!("op {n} failed: {e}"),
            }
        }
        // The held operation's batch, then one batch for all ten.
        assert_eq!(commits.load(Ordering::SeqCst), 2);
        drop(w);
        thread.join();
        let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        for n in 0..10u32 {
            assert_eq!(
                l.find_token(&token(n)).unwrap().is_some(),
                n != 4,
                "token {n}"
            );
        }
    }

    #[test]
    fn a_result_is_handed_over_only_once_another_connection_sees_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let (w, thread, _) = counted(&dir, WriterConfig::default(), false);
        let reader = Arc::new(std::sync::Mutex::new(Ledger::open_reader(&path).unwrap()));
        let (tx, rx) = std::sync::mpsc::channel();
        for n in 0..200u32 {
            let (tx, reader) = (tx.clone(), reader.clone());
            w.then_blocking(
                move |b: &mut Counted| b.ledger.add_token(&token(n), Role::Tenant, "t", 0),
                move |r| {
                    r.unwrap();
                    let seen = reader.lock().unwrap().find_token(&token(n)).unwrap();
                    tx.send(seen.is_some()).unwrap();
                },
            )
            .unwrap();
        }
        assert!(
            (0..200).all(|_| rx.recv().unwrap()),
            "a result came before its commit"
        );
        drop(w);
        thread.join();
    }

    #[test]
    fn a_failed_commit_fails_every_operation_of_its_batch_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (w, thread, commits) = counted(&dir, WriterConfig::default(), true);
        for n in 0..3u32 {
            let r = w.write_blocking(move |b: &mut Counted| {
                b.ledger.add_token(&token(n), Role::Tenant, "t", 0)
            });
            assert!(matches!(r, Err(LedgerError::NotCommitted(_))), "{r:?}");
        }
        assert_eq!(commits.load(Ordering::SeqCst), 0);
        drop(w);
        thread.join();
        let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        assert!((0..3).all(|n| l.find_token(&token(n)).unwrap().is_none()));
    }

    #[test]
    fn the_queue_is_bounded_and_a_full_queue_is_an_error_not_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let config = WriterConfig {
            queue_capacity: 3,
            max_batch: 2,
        };
        let (w, thread, commits) = counted(&dir, config, false);
        let release = hold(&w);
        let (tx, rx) = std::sync::mpsc::channel();
        let queue = |n: u32| {
            let tx = tx.clone();
            w.try_then(
                move |b: &mut Counted| b.ledger.add_token(&token(n), Role::Tenant, "t", 0),
                move |r| tx.send(r.is_ok()).unwrap(),
            )
        };
        for n in 0..3 {
            queue(n).unwrap();
        }
        assert!(matches!(queue(3), Err(LedgerError::Busy)));
        drop(release);
        assert!((0..3).all(|_| rx.recv().unwrap()));
        // Held op, then 3 ops in batches of at most 2.
        assert_eq!(commits.load(Ordering::SeqCst), 3);
        queue(3).unwrap();
        assert!(rx.recv().unwrap());
        drop(w);
        thread.join();
    }

    #[test]
    fn a_panicking_operation_fails_alone_and_the_writer_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        let (w, thread, _) = counted(&dir, WriterConfig::default(), false);
        let r = w.write_blocking(|b: &mut Counted| -> Result<()> {
            b.ledger.add_token(&token(1), Role::Tenant, "t", 0)?;
            panic!("boom")
        });
        assert!(r.is_err());
        w.write_blocking(|b: &mut Counted| b.ledger.add_token(&token(2), Role::Tenant, "t", 0))
            .unwrap();
        drop(w);
        thread.join();
        let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        assert!(l.find_token(&token(1)).unwrap().is_none());
        assert!(l.find_token(&token(2)).unwrap().is_some());
    }

    /// Child side of the kill test: writes tokens from 4 threads and prints
    /// each one acknowledged, until killed.
    fn child_writes(path: &std::path::Path) {
        let ledger = Ledger::open(path).unwrap();
        let (w, _thread) = Writer::start(ledger, WriterConfig::default()).unwrap();
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..1_000_000u32 {
                        let n = t * 1_000_000 + i;
                        w.write_blocking(move |l: &mut Ledger| {
                            l.add_token(&token(n), Role::Tenant, "t", 0)
                        })
                        .unwrap();
                        println!("acked {n}");
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }

    /// Acknowledged writes survive a SIGKILL of the process in the middle
    /// of writing: the acknowledgement comes after the commit.
    #[test]
    fn acknowledged_writes_survive_a_kill() {
        const CHILD: &str = "SUANLI_WRITER_KILL_CHILD";
        if let Some(path) = std::env::var_os(CHILD) {
            child_writes(std::path::Path::new(&path));
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "writer::tests::acknowledged_writes_survive_a_kill",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, &path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut acked = Vec::new();
        for line in out.lines() {
            if let Some(n) = line.unwrap().strip_prefix("acked ") {
                acked.push(n.parse::<u32>().unwrap());
                if acked.len() == 400 {
                    child.kill().unwrap();
                    break;
                }
            }
        }
        let _ = child.wait();
        assert_eq!(acked.len(), 400, "the child stopped early");
        let l = Ledger::open(&path).unwrap();
        for n in acked {
            assert!(l.find_token(&token(n)).unwrap().is_some(), "acked {n} lost");
        }
    }

    #[test]
    fn a_drain_commits_what_is_queued_and_refuses_what_comes_after() {
        let dir = tempfile::tempdir().unwrap();
        let (w, thread, _) = counted(&dir, WriterConfig::default(), false);
        let release = hold(&w);
        let (tx, rx) = std::sync::mpsc::channel();
        for n in 1..=20u32 {
            let tx = tx.clone();
            w.then_blocking(
                move |b: &mut Counted| {
                    b.ledger
                        .add_token(&token(n), Role::Tenant, &format!("t{n}"), 0)
                },
                move |r| {
                    let _ = tx.send(r.is_ok());
                },
            )
            .unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let drainer = {
            let w = w.clone();
            std::thread::spawn(move || rt.block_on(w.drain()))
        };
        // Wait until the drain is queued behind the 20, then let them run.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while w.queue.max_capacity() - w.queue.capacity() < 21 {
            assert!(
                std::time::Instant::now() < deadline,
                "the drain never queued"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(release);
        let drained = drainer.join().unwrap().unwrap();
        assert_eq!(drained, 20, "the 20 queued before the drain, in its batch");
        drop(tx);
        assert_eq!(rx.iter().filter(|ok| *ok).count(), 20);
        assert!(matches!(
            w.write_blocking(|_: &mut Counted| Ok(())),
            Err(LedgerError::WriterStopped)
        ));
        thread.join();
        let ledger = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        for n in 1..=20u32 {
            assert!(ledger.find_token(&token(n)).unwrap().is_some(), "token {n}");
        }
    }
}
