//! Connections and requests: the handshake, the role table, and one task per
//! request stream.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use suanli_net::CLOSE_REFUSED;
use suanli_net::NetError;
use suanli_net::frame::{expect_frame, read_blob_to, read_frame_within, write_frame};
use suanli_proto::{
    CodecError, ErrorCode, Hello, JobSpec, JobView, MAX_ATTEMPTS, PROTOCOL_VERSION, Request,
    Response, Role, Welcome,
};
use tokio::sync::broadcast::error::RecvError;

use suanli_ledger::{Admission, billing};
use suanli_proto::usage::UsageQuery;

use crate::auth::{Identity, allowed, now_ms, role_mismatch, token_hash};
use crate::connections::{Connections, REVOKED, TokenSlot, refuse};
use crate::metrics::Refused;
use crate::node_session;
use crate::state::{Event, Shared};

/// Who is on the other end of a connection.
#[derive(Clone)]
pub(crate) struct Peer {
    pub(crate) role: Role,
    pub(crate) name: String,
    pub(crate) conn: quinn::Connection,
    /// Hash of the token it presented (a node token binds its receipt key).
    pub(crate) token_hash: [u8; 32],
    /// Set once a node registered on this connection.
    pub(crate) node_id: Arc<std::sync::OnceLock<u64>>,
    /// Every live connection, to close a revoked token's.
    pub(crate) connections: Arc<Connections>,
    /// Blobs this connection uploaded (nodes: a result may name as its
    /// output only a blob its node proved it holds by uploading it).
    pub(crate) uploaded: Arc<std::sync::Mutex<RecentUploads>>,
}

/// Who asks, as the role table and the scoping of jobs and usage see it:
/// a QUIC peer or a dashboard session alike.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) role: Role,
    pub(crate) name: String,
}

impl Peer {
    pub(crate) fn caller(&self) -> Caller {
        Caller {
            role: self.role,
            name: self.name.clone(),
        }
    }
}

/// How many uploads per connection a node's results may refer to. A node
/// uploads an output just before sending the result that names it.
pub(crate) const MAX_REMEMBERED_UPLOADS: usize = 1024;

/// The last [`MAX_REMEMBERED_UPLOADS`] blobs a connection uploaded.
#[derive(Default)]
pub(crate) struct RecentUploads {
    order: std::collections::VecDeque<suanli_proto::Hash>,
    set: std::collections::HashSet<suanli_proto::Hash>,
}

impl RecentUploads {
    pub(crate) fn record(&mut self, hash: suanli_proto::Hash) {
        if !self.set.insert(hash) {
            return;
        }
        self.order.push_back(hash);
        if self.order.len() > MAX_REMEMBERED_UPLOADS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
    }

    pub(crate) fn contains(&self, hash: &suanli_proto::Hash) -> bool {
        self.set.contains(hash)
    }
}

/// Connection close code: no `Hello` in time (refusals use `CLOSE_REFUSED`).
const CLOSE_HANDSHAKE_TIMEOUT: u32 = 2;

pub(crate) async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    let open = Arc::new(tokio::sync::Semaphore::new(shared.config.max_connections));
    let connections = Connections::new(
        shared.config.max_connections_per_address,
        shared.config.max_connections_per_token,
    );
    while let Some(incoming) = endpoint.accept().await {
        // Under load, a connection must first prove it owns its source
        // address (a QUIC Retry round trip): spoofed Initials from forged
        // addresses then cannot take the connection permits or a per-address
        // share of someone else's.
        let taken = shared.config.max_connections - open.available_permits();
        let busy = taken * 2 > shared.config.max_connections;
        if busy && !incoming.remote_address_validated() && incoming.may_retry() {
            shared.stats.address_retries.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = incoming.retry() {
                tracing::debug!(%e, "cannot send a retry");
            }
            continue;
        }
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::warn!(remote = %incoming.remote_address(), "connection limit reached; refusing");
            incoming.refuse();
            continue;
        };
        let (shared, connections) = (shared.clone(), connections.clone());
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            // Counted before the TLS handshake finishes, so an address
            // cannot hold more than its share even unauthenticated.
            let address = connections.admit_address(remote.ip());
            match incoming.await {
                Ok(conn) => {
                    shared
                        .stats
                        .connections_accepted
                        .fetch_add(1, Ordering::Relaxed);
                    match address {
                        Ok(_slot) => serve_connection(conn, shared, connections).await,
                        Err(reason) => refuse_over_limit(&conn, &shared, &reason).await,
                    }
                }
                Err(err) => tracing::debug!(%remote, %err, "handshake failed"),
            }
            drop(permit);
        });
    }
}

/// Refuses a connection past a connection limit, with the reason for the
/// peer (the client library reports it as a refusal) and in the log.
async fn refuse_over_limit(conn: &quinn::Connection, shared: &Shared, reason: &str) {
    shared.metrics.refused(Refused::ConnectionLimit);
    shared
        .stats
        .handshakes_refused
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(remote = %conn.remote_address(), %reason, "connection refused");
    refuse(conn, reason);
}

async fn serve_connection(
    conn: quinn::Connection,
    shared: Arc<Shared>,
    connections: Arc<Connections>,
) {
    let remote = conn.remote_address();
    if shared.lifecycle.stopping() {
        tracing::debug!(%remote, "connection closed: shutting down");
        conn.close(
            suanli_net::CLOSE_SHUTDOWN.into(),
            suanli_net::SHUTDOWN_REASON.as_bytes(),
        );
        return;
    }
    let hello = tokio::time::timeout(
        shared.config.handshake_timeout,
        handshake(&conn, &shared, &connections),
    )
    .await;
    let (peer, _token_slot) = match hello {
        Ok(Ok(admitted)) => admitted,
        Ok(Err(reason)) => {
            shared
                .stats
                .handshakes_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(%remote, %reason, "connection refused");
            // Give the refusal frame a moment to leave before closing.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            conn.close(CLOSE_REFUSED.into(), reason.as_bytes());
            return;
        }
        Err(_) => {
            shared
                .stats
                .handshakes_refused
                .fetch_add(1, Ordering::Relaxed);
            shared.metrics.refused(Refused::HandshakeTimeout);
            tracing::info!(%remote, "no hello in time; closing");
            conn.close(CLOSE_HANDSHAKE_TIMEOUT.into(), b"no hello frame in time");
            return;
        }
    };
    tracing::debug!(%remote, role = peer.role.as_str(), name = %peer.name, "connection accepted");
    let _counted = shared.metrics.connected(peer.role);
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                let shared = shared.clone();
                let peer = peer.clone();
                tokio::spawn(async move {
                    if let Err(err) = serve_request(&shared, &peer, send, recv).await {
                        tracing::debug!(%err, name = %peer.name, "request failed");
                    }
                });
            }
            Err(_) => return,
        }
    }
}

/// Reads `Hello`, checks version, token, role, revocation and the token's
/// connection limit; answers `Welcome`. The slot holds the token's place
/// for the life of the connection.
async fn handshake(
    conn: &quinn::Connection,
    shared: &Arc<Shared>,
    connections: &Arc<Connections>,
) -> Result<(Peer, TokenSlot), String> {
    let (mut send, mut recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
    let hello: Hello = expect_frame(&mut recv).await.map_err(|e| {
        shared.metrics.refused(Refused::BadHello);
        format!("bad hello: {e}")
    })?;
    let verdict = {
        let (shared, hello) = (shared.clone(), hello.clone());
        blocking(move || check_hello(&shared, &hello))
            .await
            .unwrap_or_else(|e| Err(e.into()))
    };
    let presented = token_hash(&hello.token);
    let verdict = verdict.and_then(|(role, name)| {
        let slot = connections
            .admit_token(presented, &name, conn)
            .inspect_err(|reason| {
                shared.metrics.refused(if reason.starts_with(REVOKED) {
                    Refused::Revoked
                } else {
                    Refused::ConnectionLimit
                })
            })?;
        Ok((role, name, slot))
    });
    if verdict.is_ok() {
        let now = now_ms();
        if connections.should_touch(presented, now, suanli_ledger::LAST_USED_RESOLUTION_MS) {
            // At most once a minute per token, so bursts never wait on it;
            // before the welcome, so a client sees its use listed.
            let shared = shared.clone();
            let _ = blocking(move || crate::auth::touch(&shared, &presented, now)).await;
        }
    }
    let welcome = match &verdict {
        Ok((_, name, _)) => Welcome::Accepted { name: name.clone() },
        Err(Refusal::Reason(reason) | Refusal::Counted(_, reason)) => Welcome::Refused {
            reason: reason.clone(),
        },
        Err(Refusal::WrongRole { actual, reason }) => Welcome::WrongRole {
            actual: *actual,
            reason: reason.clone(),
        },
    };
    write_frame(&mut send, &welcome)
        .await
        .map_err(|e| e.to_string())?;
    let _ = send.finish();
    let (role, name, slot) = verdict.map_err(Refusal::into_reason)?;
    let peer = Peer {
        role,
        name,
        conn: conn.clone(),
        token_hash: presented,
        node_id: Arc::default(),
        connections: connections.clone(),
        uploaded: Arc::default(),
    };
    Ok((peer, slot))
}

/// Why a handshake is refused. A token of another role hears its real role
/// (typed, in `Welcome::WrongRole`) so a client can reconnect as that role
/// for requests every role may make; the token was already proven valid.
enum Refusal {
    Reason(String),
    /// A refusal with its reason for `/metrics`.
    Counted(Refused, String),
    WrongRole {
        actual: Role,
        reason: String,
    },
}

impl From<String> for Refusal {
    fn from(reason: String) -> Refusal {
        Refusal::Reason(reason)
    }
}

impl Refusal {
    fn into_reason(self) -> String {
        match self {
            Refusal::Reason(reason)
            | Refusal::Counted(_, reason)
            | Refusal::WrongRole { reason, .. } => reason,
        }
    }

    /// What `/metrics` counts it as; an uncounted reason is an internal error.
    fn counted_as(&self) -> Refused {
        match self {
            Refusal::Reason(_) => Refused::Request(ErrorCode::Internal),
            Refusal::Counted(why, _) => *why,
            Refusal::WrongRole { .. } => Refused::WrongRole,
        }
    }
}

/// The token's role and name. An admin token may also connect as a tenant
/// (admins can do whatever tenants can); every other mismatch is refused.
fn check_hello(shared: &Shared, hello: &Hello) -> Result<(Role, String), Refusal> {
    let verdict = judge_hello(shared, hello);
    if let Err(refusal) = &verdict {
        shared.metrics.refused(refusal.counted_as());
    }
    verdict
}

fn judge_hello(shared: &Shared, hello: &Hello) -> Result<(Role, String), Refusal> {
    if hello.version != PROTOCOL_VERSION {
        return Err(Refusal::Counted(
            Refused::ProtocolVersion,
            format!(
                "protocol version {} is not supported; this coordinator speaks version {PROTOCOL_VERSION}",
                hello.version
            ),
        ));
    }
    let presented = token_hash(&hello.token);
    let identity =
        crate::auth::identify(shared, &presented).map_err(|e| format!("internal error: {e}"))?;
    let Caller { role, name } = match identity {
        Identity::Known(caller) => caller,
        Identity::Unknown => {
            return Err(Refusal::Counted(
                Refused::UnknownToken,
                "token rejected: unknown token".into(),
            ));
        }
        Identity::Revoked(reason) => return Err(Refusal::Counted(Refused::Revoked, reason)),
    };
    let accepted = match (role, name) {
        (Role::Admin, name) if hello.role == Role::Tenant => (Role::Admin, name),
        (role, _) if role != hello.role => {
            return Err(Refusal::WrongRole {
                actual: role,
                reason: role_mismatch(hello.role, role),
            });
        }
        found => found,
    };
    Ok(accepted)
}

fn error(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error {
        code,
        message: message.into(),
    }
}

fn not_found(job: u64) -> Response {
    error(ErrorCode::NotFound, format!("job {job} not found"))
}

/// A request stream's request frame, with the stream back; `None` when it
/// was answered already (malformed, too large, or too slow to arrive).
async fn read_request(
    shared: &Arc<Shared>,
    peer: &Peer,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<Option<(Request, quinn::SendStream, quinn::RecvStream)>, NetError> {
    let read = read_frame_within(&mut recv, shared.config.request_timeout).await;
    match read.and_then(|r| r.ok_or(NetError::ClosedStream)) {
        Ok(request) => Ok(Some((request, send, recv))),
        Err(NetError::Timeout(_)) => {
            cut_off_slow_request(shared, peer, send, recv).await?;
            Ok(None)
        }
        Err(NetError::Codec(err)) => {
            let code = match err {
                CodecError::TooLarge(_) => ErrorCode::TooLarge,
                _ => ErrorCode::BadRequest,
            };
            tracing::info!(name = %peer.name, %err, "bad request frame");
            write_frame(&mut send, &error(code, err.to_string())).await?;
            let _ = send.finish();
            let _ = recv.stop(0u32.into());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Answers a refused request (counted in `/metrics`) and ends its stream.
async fn refuse_request(
    shared: &Shared,
    send: &mut quinn::SendStream,
    code: ErrorCode,
    reason: impl Into<String>,
) -> Result<(), NetError> {
    shared.metrics.refused(Refused::Request(code));
    write_frame(send, &error(code, reason)).await?;
    let _ = send.finish();
    Ok(())
}

async fn serve_request(
    shared: &Arc<Shared>,
    peer: &Peer,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) -> Result<(), NetError> {
    let Some((request, mut send, mut recv)) = read_request(shared, peer, send, recv).await? else {
        return Ok(());
    };
    let (kind, started) = (request.kind(), std::time::Instant::now());
    if let Err(reason) = allowed(peer.role, &request) {
        return refuse_request(shared, &mut send, ErrorCode::Forbidden, reason).await;
    }
    let long_lived = matches!(
        request,
        Request::Register(_) | Request::Wait(_) | Request::Logs { .. }
    );
    let Ok(_busy) = shared.lifecycle.enter(!long_lived) else {
        let reason = suanli_net::SHUTDOWN_REASON;
        return refuse_request(shared, &mut send, ErrorCode::ShuttingDown, reason).await;
    };
    match request {
        Request::Register(info) => {
            return node_session::run(shared.clone(), peer.clone(), info, send, recv).await;
        }
        Request::PutBlob { hash, size } => {
            let answer = put_blob(shared, peer, hash, size, &mut recv).await;
            write_frame(&mut send, &answer).await?;
            shared.metrics.answered(kind, started, &answer);
        }
        Request::GetBlob(hash) => get_blob(shared, peer, hash, &mut send).await?,
        Request::Backup => crate::backup::serve(shared, peer, &mut send).await?,
        Request::RevokeToken(name) => {
            let answer = crate::auth::revoke(shared, peer, name).await;
            write_frame(&mut send, &answer).await?;
            shared.metrics.answered(kind, started, &answer);
        }
        Request::Logs { job, follow } => return logs(shared, peer, job, follow, send).await,
        Request::Wait(job) => {
            let answer = wait(shared, peer, job).await;
            write_frame(&mut send, &answer).await?;
        }
        other => {
            let (on_worker, caller) = (shared.clone(), peer.caller());
            let answer = blocking(move || {
                handle(&on_worker, &caller, other)
                    .unwrap_or_else(|e| error(ErrorCode::Internal, e.to_string()))
            })
            .await
            .unwrap_or_else(|e| error(ErrorCode::Internal, e));
            write_frame(&mut send, &answer).await?;
            shared.metrics.answered(kind, started, &answer);
        }
    }
    let _ = send.finish();
    delivered(shared, &mut send).await;
    Ok(())
}

/// Waits (at most `request_timeout`) until the peer acknowledged the whole
/// answer. The request stays counted as in flight meanwhile, so a shutdown
/// closes the connection only once its answer arrived, not while its last
/// bytes sit in a send buffer (a node fetching a module would otherwise
/// lose it mid-way); once a shutdown began, at most
/// [`SHUTDOWN_DELIVERY_GRACE`](crate::lifecycle::SHUTDOWN_DELIVERY_GRACE)
/// more.
async fn delivered(shared: &Shared, send: &mut quinn::SendStream) {
    let grace = async {
        shared.lifecycle.stopped().await;
        tokio::time::sleep(crate::lifecycle::SHUTDOWN_DELIVERY_GRACE).await;
    };
    tokio::select! {
        _ = send.stopped() => {}
        _ = tokio::time::sleep(shared.config.request_timeout) => {}
        _ = grace => {}
    }
}

/// Stream error code of a request stream cut off for being too slow.
const STREAM_TIMED_OUT: u32 = 2;

/// Ends a stream whose request frame did not arrive within the request
/// timeout (a peer dripping bytes holds a task and a buffer only that long),
/// telling the peer why when it still listens.
async fn cut_off_slow_request(
    shared: &Shared,
    peer: &Peer,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), NetError> {
    let limit = shared.config.request_timeout;
    tracing::info!(name = %peer.name, ?limit, "request frame not received in time; stream cut off");
    let _ = recv.stop(STREAM_TIMED_OUT.into());
    let answer = error(
        ErrorCode::BadRequest,
        format!(
            "no complete request frame within {limit:?} (the coordinator's \
             --request-timeout); stream closed"
        ),
    );
    // Bounded too: a peer that reads nothing must not hold this task.
    let _ = tokio::time::timeout(limit, write_frame(&mut send, &answer)).await;
    let _ = send.finish();
    Ok(())
}

/// Runs ledger work (SQLite, fsync on every commit) on a blocking thread, so
/// a burst of submissions never stalls the tasks that drive QUIC: the load
/// test saw clients' connections time out while workers waited on fsyncs.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("internal error: {e}"))
}

/// The job, if `peer` may see it.
pub(crate) fn visible_job(
    shared: &Shared,
    peer: &Caller,
    job: u64,
) -> Result<Option<JobView>, suanli_ledger::LedgerError> {
    let view = shared.reader().job(job)?;
    Ok(view.filter(|v| peer.role == Role::Admin || v.tenant == peer.name))
}

pub(crate) fn handle(
    shared: &Arc<Shared>,
    peer: &Caller,
    request: Request,
) -> Result<Response, suanli_ledger::LedgerError> {
    Ok(match request {
        Request::HasBlobs(hashes) => {
            // Grants first, in one query; files only for granted hashes: a
            // tenant learns nothing (not even by timing) of others' blobs.
            let granted = shared.reader().granted_blobs(&hashes, &peer.name)?;
            let missing = hashes
                .into_iter()
                .filter(|h| !granted.contains(h) || !shared.blobs.has(h))
                .collect();
            Response::Missing(missing)
        }
        Request::Submit(spec) => {
            for (what, h) in [("module", &spec.module), ("input", &spec.input)] {
                // Grant first, file second (as `HasBlobs`): the answer's
                // timing must not tell whether another tenant's blob exists.
                let granted = shared.reader().may_read_blob(h, &peer.name)?;
                if !granted || !shared.blobs.has(h) {
                    return Ok(error(
                        ErrorCode::BadRequest,
                        format!("upload the {what} blob {h} before submitting"),
                    ));
                }
            }
            if let Some(reason) = refuse_spec(&spec) {
                return Ok(error(ErrorCode::BadRequest, reason));
            }
            let tenant = peer.name.clone();
            // Answered only once its batch committed (the writer's promise).
            let admission = shared.write(move |l| l.submit(&tenant, &spec, now_ms()))?;
            let job = match admission {
                Admission::Accepted(job) => job,
                Admission::OverCredit(reason) => {
                    tracing::info!(tenant = %peer.name, %reason, "submission refused");
                    return Ok(error(ErrorCode::CreditLimit, reason));
                }
            };
            tracing::info!(job, tenant = %peer.name, "job submitted");
            shared.wake_scheduler.notify_one();
            Response::Submitted { job }
        }
        Request::Status(job) => match visible_job(shared, peer, job)? {
            Some(view) => Response::Job(Box::new(shared.with_reason(view))),
            None => not_found(job),
        },
        Request::Cancel(job) => {
            if visible_job(shared, peer, job)?.is_none() {
                return Ok(not_found(job));
            }
            match cancel(shared, job)? {
                None => error(
                    ErrorCode::BadRequest,
                    format!("job {job} has already finished"),
                ),
                Some(()) => {
                    shared.notify_job(job);
                    Response::Ok
                }
            }
        }
        Request::ListJobs(filter) => {
            let tenant = (peer.role != Role::Admin).then_some(peer.name.as_str());
            let jobs = shared.reader().jobs(tenant, &filter)?;
            Response::Jobs(listing(
                jobs.into_iter().map(|v| shared.with_reason(v)).collect(),
            ))
        }
        Request::ListNodes => Response::Nodes(shared.node_views()),
        Request::CreateToken {
            role,
            name,
            max_slots,
        } => {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Ok(error(
                    ErrorCode::BadRequest,
                    "a token name is 1-64 of [A-Za-z0-9._-]",
                ));
            }
            let max_slots = match (role, max_slots) {
                (Role::Node, None) => suanli_proto::DEFAULT_NODE_MAX_SLOTS,
                (Role::Node, Some(n)) if (1..=suanli_proto::MAX_NODE_SLOTS).contains(&n) => n,
                (Role::Node, Some(n)) => {
                    return Ok(error(
                        ErrorCode::BadRequest,
                        format!(
                            "--max-slots {n} is out of range: 1 to {}",
                            suanli_proto::MAX_NODE_SLOTS
                        ),
                    ));
                }
                (_, Some(_)) => {
                    return Ok(error(
                        ErrorCode::BadRequest,
                        "--max-slots applies to node tokens only",
                    ));
                }
                (_, None) => suanli_proto::DEFAULT_NODE_MAX_SLOTS,
            };
            let token = crate::auth::new_token();
            let (hash, token_name) = (token_hash(&token), name.clone());
            shared.write(move |l| {
                l.add_token_with_slots(&hash, role, &token_name, now_ms(), max_slots)
            })?;
            tracing::info!(role = role.as_str(), %name, "token created");
            Response::Token { token, role, name }
        }
        Request::SetPrice { class, micros } => {
            if !billing::valid_class(&class) {
                return Ok(bad_class(&class));
            }
            let known = shared.reader().class_known(&class)?;
            let price_class = class.clone();
            shared.write(move |l| l.set_price(&price_class, micros, now_ms()))?;
            tracing::info!(%class, micros, known, "price set");
            Response::Applied { known }
        }
        Request::ListPrices => Response::Prices(shared.reader().prices()?),
        Request::SetNodeClass { node, class } => {
            if let Some(c) = &class
                && !billing::valid_class(c)
            {
                return Ok(bad_class(c));
            }
            let known = shared.reader().node_token_known(&node)?;
            shared.set_node_class(&node, class.as_deref())?;
            tracing::info!(%node, class = class.as_deref().unwrap_or("(derived)"), known, "node class set");
            Response::Applied { known }
        }
        Request::SetCreditLimit { tenant, micros } => {
            let known = shared.reader().tenant_known(&tenant)?;
            let who = tenant.clone();
            shared.write(move |l| l.set_credit_limit(&who, micros))?;
            tracing::info!(%tenant, ?micros, known, "credit limit set");
            Response::Applied { known }
        }
        Request::Usage(query) => match narrow(peer, query) {
            Ok(q) => Response::Usage(shared.reader().usage(&q)?),
            Err(refusal) => refusal,
        },
        Request::UsageRecords {
            query,
            after,
            limit,
        } => match narrow(peer, query) {
            Ok(q) => Response::UsageRecords(shared.reader().usage_records(
                &q,
                after,
                limit.min(USAGE_PAGE),
            )?),
            Err(refusal) => refusal,
        },
        Request::DrainNode(name) => node_flag(shared, &name, NodeFlag::Drain)?,
        Request::UndrainNode(name) => node_flag(shared, &name, NodeFlag::Undrain)?,
        Request::RestoreNode(name) => node_flag(shared, &name, NodeFlag::Restore)?,
        Request::Check => Response::Check(shared.reader().check()?),
        Request::Gc => Response::Gc(crate::gc::collect(shared)?),
        Request::SetStorageQuota { tenant, bytes } => {
            let known = shared.reader().tenant_known(&tenant)?;
            let who = tenant.clone();
            shared.write(move |l| l.set_storage_quota(&who, bytes))?;
            tracing::info!(%tenant, ?bytes, known, "storage quota set");
            Response::Applied { known }
        }
        Request::ListTokens => Response::Tokens(shared.reader().tokens()?),
        Request::ShowTenant(name) => show_tenant(shared, peer, name)?,
        Request::Register(_)
        | Request::PutBlob { .. }
        | Request::GetBlob(_)
        | Request::RevokeToken(_)
        | Request::Logs { .. }
        | Request::Backup
        | Request::Wait(_) => error(ErrorCode::BadRequest, "not a simple request"),
    })
}

/// Cancels `job` on the writer thread; `None` when it had already
/// finished. The node running it is told after the commit, on the writer
/// thread, in write order: an attempt started before the cancel had its
/// assignment sent already (see `scheduler::place`), so the `Cancel`
/// follows its `Run` and the job never runs on to its timeout. Blocking.
fn cancel(shared: &Arc<Shared>, job: u64) -> Result<Option<()>, suanli_ledger::LedgerError> {
    let (answer, cancelled) = std::sync::mpsc::sync_channel(1);
    let s = shared.clone();
    shared.writer.then_blocking(
        move |l| l.cancel(job, now_ms()),
        move |r: Result<Option<Option<(u32, u64)>>, suanli_ledger::LedgerError>| {
            if let Ok(Some(Some((attempt, _)))) = &r
                && let Some(node_id) = s.runner_of(job, *attempt)
                && let Some(node) = s.nodes().get(&node_id)
            {
                let _ = node.tx.send(suanli_proto::ToNode::Cancel {
                    job,
                    attempt: *attempt,
                });
            }
            let _ = answer.send(r.map(|found| found.map(|_| ())));
        },
    )?;
    cancelled
        .recv()
        .map_err(|_| suanli_ledger::LedgerError::WriterStopped)?
}

/// An admin's change to the node tokens of a name.
#[derive(Clone, Copy, Debug)]
enum NodeFlag {
    Drain,
    Undrain,
    Restore,
}

/// Drains, undrains or restores the node tokens named `name`: in the ledger
/// first (so it survives a restart), then on their live sessions.
fn node_flag(
    shared: &Shared,
    name: &str,
    flag: NodeFlag,
) -> Result<Response, suanli_ledger::LedgerError> {
    let owned = name.to_owned();
    let tokens = shared.write(move |l| match flag {
        NodeFlag::Drain => l.set_drained(&owned, true),
        NodeFlag::Undrain => l.set_drained(&owned, false),
        NodeFlag::Restore => l.restore_node(&owned, now_ms()),
    })?;
    if tokens == 0 {
        return Ok(error(
            ErrorCode::NotFound,
            format!("no node token is named {name}"),
        ));
    }
    let mut sessions = 0;
    for node in shared.nodes().values_mut().filter(|n| n.name == name) {
        match flag {
            NodeFlag::Drain => node.drained = true,
            NodeFlag::Undrain => node.drained = false,
            NodeFlag::Restore => node.quarantine = None,
        }
        sessions += 1;
    }
    tracing::info!(node = %name, ?flag, sessions, "node token changed by the admin");
    shared.wake_scheduler.notify_one();
    // Stored on the node tokens of that name, so the name is known.
    Ok(Response::Applied { known: true })
}

/// A tenant's account: any tenant's for the admin (who must name one), a
/// tenant's own otherwise; naming another tenant is refused, not narrowed.
fn show_tenant(
    shared: &Shared,
    peer: &Caller,
    name: Option<String>,
) -> Result<Response, suanli_ledger::LedgerError> {
    let tenant = match (peer.role, name) {
        (Role::Admin, Some(name)) => name,
        (Role::Admin, None) => {
            return Ok(error(
                ErrorCode::BadRequest,
                "name the tenant to show (suanli tenant show NAME)",
            ));
        }
        (_, None) => peer.name.clone(),
        (_, Some(name)) if name == peer.name => name,
        (_, Some(_)) => {
            return Ok(error(
                ErrorCode::Forbidden,
                "tenants see only their own account",
            ));
        }
    };
    let quota = shared.config.storage_quota;
    Ok(Response::Tenant(
        shared.reader().tenant_account(&tenant, quota)?,
    ))
}

/// Why a submission's own values are refused, before the ledger sees it.
fn refuse_spec(spec: &JobSpec) -> Option<String> {
    if !(1..=MAX_ATTEMPTS).contains(&spec.max_attempts) {
        return Some(format!(
            "max_attempts (--max-attempts) must be between 1 and {MAX_ATTEMPTS}, not {}: \
             a job that keeps failing must not keep taking providers' time",
            spec.max_attempts
        ));
    }
    if spec.limits.max_dispatch_ns == 0 {
        return Some(
            "max_dispatch_ns (--max-dispatch-seconds) must be more than 0: \
             a job whose dispatches may not run cannot use the GPU"
                .into(),
        );
    }
    None
}

/// Usage records per answer: well under a frame (a record is ~400 bytes).
const USAGE_PAGE: u32 = 1000;

fn bad_class(class: &str) -> Response {
    error(
        ErrorCode::BadRequest,
        format!("{class:?} is not a GPU class: use 1-64 of [a-z0-9-] (e.g. nvidia-h200, default)"),
    )
}

/// A tenant sees only its own usage, a provider only its nodes'; asking
/// for someone else's is refused rather than silently narrowed.
pub(crate) fn narrow(peer: &Caller, mut q: UsageQuery) -> Result<UsageQuery, Response> {
    let (field, what) = match peer.role {
        Role::Admin => return Ok(q),
        Role::Tenant => (&mut q.tenant, "tenants see only their own usage"),
        Role::Node => (&mut q.node, "providers see only their own nodes' usage"),
    };
    match field {
        Some(asked) if *asked != peer.name => Err(error(ErrorCode::Forbidden, what)),
        _ => {
            *field = Some(peer.name.clone());
            Ok(q)
        }
    }
}

async fn put_blob(
    shared: &Arc<Shared>,
    peer: &Peer,
    hash: suanli_proto::Hash,
    size: u64,
    recv: &mut quinn::RecvStream,
) -> Response {
    if size > shared.config.max_blob_bytes {
        let _ = recv.stop(0u32.into());
        tracing::warn!(name = %peer.name, size, "upload refused: blob too large");
        return error(
            ErrorCode::TooLarge,
            format!(
                "blob of {size} bytes exceeds the limit of {} bytes",
                shared.config.max_blob_bytes
            ),
        );
    }
    let Some(_upload) = shared.start_upload(&peer.name, shared.config.max_uploads_per_peer) else {
        let _ = recv.stop(0u32.into());
        tracing::warn!(name = %peer.name, limit = shared.config.max_uploads_per_peer, "upload refused: too many in progress");
        return error(
            ErrorCode::Overloaded,
            format!(
                "{} already has {} uploads in progress (the limit); wait for one to finish",
                peer.name, shared.config.max_uploads_per_peer
            ),
        );
    };
    let refusal = {
        let (s, p) = (shared.clone(), peer.clone());
        blocking(move || crate::storage::refuse_upload(&s, &p, &hash, size))
            .await
            .unwrap_or_else(|e| Some(error(ErrorCode::Internal, e)))
    };
    if let Some(refusal) = refusal {
        let _ = recv.stop(0u32.into());
        return refusal;
    }
    let temp = {
        let s = shared.clone();
        blocking(move || s.blobs.temp().map_err(|e| e.to_string()))
            .await
            .and_then(|t| t)
    };
    let (tmp, file) = match temp {
        Ok(t) => t,
        Err(e) => return error(ErrorCode::Internal, format!("cannot store blob: {e}")),
    };
    // Written through tokio's file, whose writes run on blocking threads.
    let mut file = tokio::fs::File::from_std(file);
    let idle = Some(shared.config.request_timeout);
    let received = read_blob_to(recv, size, &hash, idle, &mut file).await;
    shared
        .stats
        .blob_bytes_received
        .fetch_add(size, Ordering::Relaxed);
    if let Err(e) = received {
        let _ = tokio::fs::remove_file(&tmp).await;
        return error(ErrorCode::BadRequest, e.to_string());
    }
    let file = file.into_std().await;
    // The fsync, the ledger row and the rename, on a blocking thread.
    let stored = {
        let (s, p) = (shared.clone(), peer.clone());
        blocking(move || crate::storage::store_upload(&s, &p, tmp, file, &hash, size))
            .await
            .unwrap_or_else(|e| error(ErrorCode::Internal, e))
    };
    if matches!(stored, Response::Stored) {
        peer.uploaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(hash);
    }
    stored
}

/// Longest error text per job or attempt in a job listing (`status` has
/// the whole text, up to 64 KiB).
const LISTED_ERROR_BYTES: usize = 256;

/// Jobs for a listing: error texts shortened, and only as many jobs (newest
/// first, as the ledger lists them) as fit one frame, whatever texts and
/// attempts a hostile node left on them.
fn listing(jobs: Vec<suanli_proto::JobView>) -> Vec<suanli_proto::JobView> {
    let shorten = |e: Option<String>| e.map(|e| suanli_proto::cut_text(e, LISTED_ERROR_BYTES));
    let budget = suanli_proto::MAX_FRAME_BYTES - (16 << 10);
    let mut used = 0;
    let mut out = Vec::with_capacity(jobs.len());
    for mut job in jobs {
        job.error = shorten(job.error.take());
        for a in &mut job.attempts {
            a.error = shorten(a.error.take());
        }
        used += suanli_proto::encode(&job).map_or(budget, |f| f.len());
        if used > budget {
            break;
        }
        out.push(job);
    }
    out
}

/// Whether `peer` may download `hash`: a tenant its own blobs, an admin all,
/// a node the module and input of a job it runs now.
fn may_get(shared: &Shared, peer: &Peer, hash: &suanli_proto::Hash) -> bool {
    match peer.role {
        Role::Admin => true,
        Role::Tenant => shared
            .reader()
            .may_read_blob(hash, &peer.name)
            .unwrap_or(false),
        Role::Node => {
            let Some(node_id) = peer.node_id.get() else {
                return false;
            };
            let jobs: Vec<u64> = match shared.nodes().get(node_id) {
                Some(n) => n.running.iter().map(|(j, _)| *j).collect(),
                None => return false,
            };
            let ledger = shared.reader();
            jobs.iter().any(|j| {
                matches!(ledger.job(*j), Ok(Some(v)) if v.spec.module == *hash || v.spec.input == *hash)
            })
        }
    }
}

async fn get_blob(
    shared: &Arc<Shared>,
    peer: &Peer,
    hash: suanli_proto::Hash,
    send: &mut quinn::SendStream,
) -> Result<(), NetError> {
    let allowed = {
        let (s, p) = (shared.clone(), peer.clone());
        blocking(move || may_get(&s, &p, &hash) && s.blobs.has(&hash))
            .await
            .unwrap_or(false)
    };
    if !allowed {
        write_frame(
            send,
            &error(ErrorCode::NotFound, format!("blob {hash} not found")),
        )
        .await?;
        return Ok(());
    }
    let path = shared.blobs.path(&hash);
    let stall = shared.config.request_timeout;
    if let Err(err) = crate::blobs::send_file(&path, send, stall).await {
        tracing::info!(name = %peer.name, %hash, %err, "blob download ended early");
        let _ = send.reset(STREAM_TIMED_OUT.into());
        return Err(err);
    }
    Ok(())
}

/// [`visible_job`] on a blocking thread, for async tasks.
async fn visible_job_off(
    shared: &Arc<Shared>,
    peer: &Peer,
    job: u64,
) -> Result<Option<JobView>, String> {
    let (s, p) = (shared.clone(), peer.clone());
    blocking(move || visible_job(&s, &p.caller(), job).map_err(|e| e.to_string()))
        .await
        .and_then(|r| r)
}

async fn wait(shared: &Arc<Shared>, peer: &Peer, job: u64) -> Response {
    let mut events = shared.events.subscribe();
    loop {
        match visible_job_off(shared, peer, job).await {
            Ok(Some(view)) if view.state.is_final() => return Response::Job(Box::new(view)),
            Ok(Some(_)) => {}
            Ok(None) => return not_found(job),
            Err(e) => return error(ErrorCode::Internal, e),
        }
        // Re-check on this job's events, on lag, and at least every second.
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(1), events.recv()).await {
                Ok(Ok(Event::Job(j))) if j == job => break,
                Ok(Ok(_)) => continue,
                Ok(Err(RecvError::Lagged(_))) | Err(_) => break,
                Ok(Err(RecvError::Closed)) => return error(ErrorCode::Internal, "shutting down"),
            }
        }
    }
}

async fn logs(
    shared: &Arc<Shared>,
    peer: &Peer,
    job: u64,
    follow: bool,
    mut send: quinn::SendStream,
) -> Result<(), NetError> {
    let mut events = shared.events.subscribe();
    match visible_job_off(shared, peer, job).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            write_frame(&mut send, &not_found(job)).await?;
            let _ = send.finish();
            return Ok(());
        }
        Err(e) => {
            write_frame(&mut send, &error(ErrorCode::Internal, e)).await?;
            let _ = send.finish();
            return Ok(());
        }
    }
    // Sent from the file in chunks of at most `LOG_CHUNK`, each taken by
    // the peer within the request timeout: a follower that never reads
    // holds one chunk for that long, not the whole log (up to 1 MiB) for
    // ever; and no frame outgrows the frame limit.
    let stall = shared.config.request_timeout;
    let mut sent = 0u64;
    send_log_from(shared, job, &mut sent, &mut send, stall).await?;
    if follow {
        loop {
            let finished = matches!(
                visible_job_off(shared, peer, job).await,
                Ok(Some(v)) if v.state.is_final()
            );
            if finished {
                // Whatever arrived since the last read.
                send_log_from(shared, job, &mut sent, &mut send, stall).await?;
                break;
            }
            match tokio::time::timeout(std::time::Duration::from_secs(1), events.recv()).await {
                Ok(Ok(Event::Log { job: j, .. })) if j == job => {
                    send_log_from(shared, job, &mut sent, &mut send, stall).await?;
                }
                Ok(Ok(Event::Job(j))) if j != job => {}
                Ok(Ok(_)) | Err(_) | Ok(Err(RecvError::Lagged(_))) => {
                    // Quiet or lagging: catch up from the file.
                    send_log_from(shared, job, &mut sent, &mut send, stall).await?;
                }
                Ok(Err(RecvError::Closed)) => break,
            }
        }
    }
    timed_write(&mut send, &Response::LogEnd, stall).await?;
    let _ = send.finish();
    Ok(())
}

/// Log bytes read from the file and sent at a time.
const LOG_CHUNK: usize = 64 * 1024;

/// [`write_frame`] that the peer must take within `stall`.
async fn timed_write(
    send: &mut quinn::SendStream,
    message: &Response,
    stall: std::time::Duration,
) -> Result<(), NetError> {
    tokio::time::timeout(stall, write_frame(send, message))
        .await
        .map_err(|_| NetError::Timeout("the peer stopped reading the log"))?
}

/// Sends `job`'s log from byte `sent` to its current end, chunk by chunk,
/// advancing `sent`.
async fn send_log_from(
    shared: &Arc<Shared>,
    job: u64,
    sent: &mut u64,
    send: &mut quinn::SendStream,
    stall: std::time::Duration,
) -> Result<(), NetError> {
    loop {
        let (s, from) = (shared.clone(), *sent);
        let chunk = blocking(move || s.read_log_chunk(job, from, LOG_CHUNK))
            .await
            .unwrap_or_default();
        if chunk.is_empty() {
            return Ok(());
        }
        *sent += chunk.len() as u64;
        timed_write(send, &Response::Log(chunk), stall).await?;
    }
}
