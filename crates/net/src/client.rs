use std::net::SocketAddr;
use std::time::Duration;

use suanli_proto::usage::{Price, UsageQuery, UsageRecord, UsageReport};
use suanli_proto::{
    ErrorCode, Hash, Hello, JobLimits, JobSpec, JobView, NodeInfo, NodeView, PROTOCOL_VERSION,
    Request, Requirements, Response, Role, TenantView, TokenView, Welcome,
};

use crate::frame::{expect_frame, read_blob, write_frame};
use crate::{NetError, tls};

/// Largest blob a client downloads into memory.
pub const BLOB_LIMIT: u64 = 1 << 30;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A node's control stream, its session id and the attempts it keeps.
pub type Registered = (quinn::SendStream, quinn::RecvStream, u64, Vec<(u64, u32)>);

/// Which way a blob's bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

/// Told `(direction, bytes done, bytes in all)` as a blob's bytes move, so
/// a command line can draw a progress bar.
pub type Progress = std::sync::Arc<dyn Fn(Direction, u64, u64) + Send + Sync>;

/// Bytes written per step of an upload (and per progress report).
const UPLOAD_STEP: usize = 256 << 10;

/// A connection to the coordinator, authenticated as one token.
pub struct Client {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    name: String,
    progress: Option<Progress>,
}

impl Client {
    /// Connects, verifies the coordinator's certificate against `fingerprint`,
    /// and presents `token` for `role`.
    pub async fn connect(
        address: SocketAddr,
        fingerprint: &str,
        token: &str,
        role: Role,
    ) -> Result<Client, NetError> {
        let endpoint = Client::endpoint(address)?;
        Client::connect_via(endpoint, address, fingerprint, token, role).await
    }

    /// A client UDP endpoint able to reach `address`; many clients may share
    /// one (one socket for many connections, as a load generator needs).
    pub fn endpoint(address: SocketAddr) -> Result<quinn::Endpoint, NetError> {
        let bind: SocketAddr = if address.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        Ok(quinn::Endpoint::client(bind)?)
    }

    /// Like [`Client::connect`], on an existing endpoint.
    pub async fn connect_via(
        endpoint: quinn::Endpoint,
        address: SocketAddr,
        fingerprint: &str,
        token: &str,
        role: Role,
    ) -> Result<Client, NetError> {
        let pinned = tls::parse_fingerprint(fingerprint)?;
        let config = tls::client_config(pinned)?;
        let connecting = async {
            Ok::<_, NetError>(
                endpoint
                    .connect_with(config, address, tls::SERVER_NAME)?
                    .await?,
            )
        };
        let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
            .await
            .map_err(|_| NetError::Timeout("handshake with the coordinator"))??;
        let name = match tokio::time::timeout(HANDSHAKE_TIMEOUT, hello(&conn, token, role)).await {
            Ok(Ok(name)) => name,
            // Typed: the caller may reconnect with the token's real role.
            Ok(Err(e @ NetError::WrongRole { .. })) => return Err(e),
            // A coordinator over a connection limit closes with its reason.
            Ok(Err(e)) => return Err(refusal(&conn).unwrap_or(e)),
            Err(_) => return Err(NetError::Timeout("handshake with the coordinator")),
        };
        Ok(Client {
            endpoint,
            conn,
            name,
            progress: None,
        })
    }

    /// Reports the bytes of every later upload and download to `progress`.
    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = Some(progress);
    }

    fn report(&self, direction: Direction, done: u64, total: u64) {
        if let Some(p) = &self.progress {
            p(direction, done, total);
        }
    }

    /// The name of the token this client presented.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Opens a stream and sends `request`; the caller goes on with the streams.
    pub async fn open(
        &self,
        request: &Request,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), NetError> {
        let (mut send, recv) = self.conn.open_bi().await?;
        write_frame(&mut send, request).await?;
        Ok((send, recv))
    }

    /// One request, one answer; an `Error` answer becomes `NetError::Remote`.
    pub async fn call(&self, request: &Request) -> Result<Response, NetError> {
        let (mut send, mut recv) = self.open(request).await?;
        send.finish()?;
        answer(expect_frame(&mut recv).await?)
    }

    pub async fn missing_blobs(&self, hashes: Vec<Hash>) -> Result<Vec<Hash>, NetError> {
        match self.call(&Request::HasBlobs(hashes)).await? {
            Response::Missing(m) => Ok(m),
            other => Err(unexpected(other)),
        }
    }

    /// Uploads `bytes` as a blob; returns its hash. When the coordinator
    /// says too many of our uploads are in progress, waits and retries (with
    /// backoff, for up to about a minute).
    pub async fn put_blob(&self, bytes: &[u8]) -> Result<Hash, NetError> {
        self.put_blob_hashed(bytes, Hash::of(bytes)).await
    }

    /// [`Client::put_blob`] for bytes whose hash the caller already has, so
    /// a blob is hashed once on its way out (the coordinator checks it).
    async fn put_blob_hashed(&self, bytes: &[u8], hash: Hash) -> Result<Hash, NetError> {
        let mut pauses =
            crate::backoff::pauses(Duration::from_millis(50), Duration::from_secs(2), Some(40));
        loop {
            match self.put_blob_once(bytes, hash).await {
                Err(NetError::Remote {
                    code: ErrorCode::Overloaded,
                    ..
                }) if let Some(pause) = pauses.next() => tokio::time::sleep(pause).await,
                other => return other,
            }
        }
    }

    async fn put_blob_once(&self, bytes: &[u8], hash: Hash) -> Result<Hash, NetError> {
        let (mut send, mut recv) = self
            .open(&Request::PutBlob {
                hash,
                size: bytes.len() as u64,
            })
            .await?;
        // The answer may come before the body is taken (a refusal).
        let total = bytes.len() as u64;
        let written = async {
            let mut done = 0;
            for step in bytes.chunks(UPLOAD_STEP) {
                send.write_all(step).await?;
                done += step.len() as u64;
                self.report(Direction::Upload, done, total);
            }
            send.finish()?;
            Ok::<(), NetError>(())
        };
        let answered = expect_frame::<Response>(&mut recv);
        tokio::pin!(answered);
        let reply: Response = tokio::select! {
            a = &mut answered => a?,
            w = written => match w {
                Ok(()) => answered.await?,
                // A refusal (quota, size) stops our stream: its answer,
                // not the broken write, says why.
                Err(write_error) => answered.await.map_err(|_| write_error)?,
            }
        };
        match answer(reply)? {
            Response::Stored => Ok(hash),
            other => Err(unexpected(other)),
        }
    }

    /// Uploads those of `blobs` the coordinator lacks. Returns their hashes
    /// and how many bytes were sent.
    pub async fn ensure_blobs(&self, blobs: &[&[u8]]) -> Result<(Vec<Hash>, u64), NetError> {
        let hashes: Vec<Hash> = blobs.iter().map(|b| Hash::of(b)).collect();
        let missing = self.missing_blobs(hashes.clone()).await?;
        let mut sent = 0;
        for (blob, hash) in blobs.iter().zip(&hashes) {
            if missing.contains(hash) {
                self.put_blob_hashed(blob, *hash).await?;
                sent += blob.len() as u64;
            }
        }
        Ok((hashes, sent))
    }

    pub async fn get_blob(&self, hash: Hash) -> Result<Vec<u8>, NetError> {
        let (mut send, mut recv) = self.open(&Request::GetBlob(hash)).await?;
        send.finish()?;
        let size = match answer(expect_frame(&mut recv).await?)? {
            Response::Blob { size } => size,
            other => return Err(unexpected(other)),
        };
        if size > BLOB_LIMIT {
            return Err(NetError::BlobTooLarge {
                size,
                limit: BLOB_LIMIT,
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        read_blob(&mut recv, size, &hash, |chunk| {
            out.extend_from_slice(chunk);
            self.report(Direction::Download, out.len() as u64, size);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Asks for a ledger backup and writes its bytes to `out` (checked
    /// against the BLAKE3 the coordinator announced); returns its size.
    /// The body may stall at most `stall` at a time. The caller makes the
    /// file durable and private (it holds token hashes).
    pub async fn backup<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        out: &mut W,
        stall: Duration,
    ) -> Result<u64, NetError> {
        let (mut send, mut recv) = self.open(&Request::Backup).await?;
        send.finish()?;
        let (size, hash) = match answer(expect_frame(&mut recv).await?)? {
            Response::Backup { size, hash } => (size, hash),
            other => return Err(unexpected(other)),
        };
        crate::frame::read_blob_to(&mut recv, size, &hash, Some(stall), out).await?;
        self.report(Direction::Download, size, size);
        Ok(size)
    }

    /// Uploads what is missing and submits the job; returns its id.
    pub async fn submit(
        &self,
        module: &[u8],
        input: &[u8],
        requirements: Requirements,
        limits: JobLimits,
        max_attempts: u32,
    ) -> Result<u64, NetError> {
        let (hashes, _) = self.ensure_blobs(&[module, input]).await?;
        let spec = JobSpec {
            module: hashes[0],
            input: hashes[1],
            requirements,
            limits,
            max_attempts,
        };
        match self.call(&Request::Submit(spec)).await? {
            Response::Submitted { job } => Ok(job),
            other => Err(unexpected(other)),
        }
    }

    pub async fn status(&self, job: u64) -> Result<JobView, NetError> {
        job_view(self.call(&Request::Status(job)).await?)
    }

    /// Waits until the job is final.
    pub async fn wait(&self, job: u64) -> Result<JobView, NetError> {
        job_view(self.call(&Request::Wait(job)).await?)
    }

    /// The job (waiting until it is final) and its output.
    pub async fn result(&self, job: u64) -> Result<(JobView, Vec<u8>), NetError> {
        let view = self.wait(job).await?;
        let output = match view.output {
            Some(hash) => self.get_blob(hash).await?,
            None => Vec::new(),
        };
        Ok((view, output))
    }

    /// Calls `on_chunk` with the job's log; with `follow`, until the job is final.
    pub async fn logs(
        &self,
        job: u64,
        follow: bool,
        mut on_chunk: impl FnMut(&[u8]),
    ) -> Result<(), NetError> {
        let (mut send, mut recv) = self.open(&Request::Logs { job, follow }).await?;
        send.finish()?;
        loop {
            match answer(expect_frame(&mut recv).await?)? {
                Response::Log(data) => on_chunk(&data),
                Response::LogEnd => return Ok(()),
                other => return Err(unexpected(other)),
            }
        }
    }

    pub async fn cancel(&self, job: u64) -> Result<(), NetError> {
        match self.call(&Request::Cancel(job)).await? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The newest jobs (up to `MAX_LISTED_JOBS`).
    pub async fn jobs(&self) -> Result<Vec<JobView>, NetError> {
        self.jobs_filtered(suanli_proto::JobFilter::default()).await
    }

    /// Jobs newest first, as `filter` says (state, page, limit).
    pub async fn jobs_filtered(
        &self,
        filter: suanli_proto::JobFilter,
    ) -> Result<Vec<JobView>, NetError> {
        match self.call(&Request::ListJobs(filter)).await? {
            Response::Jobs(jobs) => Ok(jobs),
            other => Err(unexpected(other)),
        }
    }

    pub async fn nodes(&self) -> Result<Vec<NodeView>, NetError> {
        match self.call(&Request::ListNodes).await? {
            Response::Nodes(nodes) => Ok(nodes),
            other => Err(unexpected(other)),
        }
    }

    /// Every token, without secrets (admin).
    pub async fn tokens(&self) -> Result<Vec<TokenView>, NetError> {
        match self.call(&Request::ListTokens).await? {
            Response::Tokens(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// Revokes every token named `name` (admin): their connections close
    /// within a second and later handshakes are refused.
    pub async fn revoke_token(&self, name: &str) -> Result<(), NetError> {
        self.ok(&Request::RevokeToken(name.to_owned())).await
    }

    /// Creates a token (admin only); the secret is shown only now.
    pub async fn create_token(&self, role: Role, name: &str) -> Result<String, NetError> {
        self.create_token_with(role, name, None).await
    }

    /// Creates a token; a node token's nodes get work for at most
    /// `max_slots` slots (the coordinator's default when `None`).
    pub async fn create_token_with(
        &self,
        role: Role,
        name: &str,
        max_slots: Option<u32>,
    ) -> Result<String, NetError> {
        match self
            .call(&Request::CreateToken {
                role,
                name: name.to_owned(),
                max_slots,
            })
            .await?
        {
            Response::Token { token, .. } => Ok(token),
            other => Err(unexpected(other)),
        }
    }

    /// Opens a node's control stream; returns it, the node's session id and
    /// which of its in-flight attempts the coordinator still assigns to it.
    pub async fn register(&self, info: NodeInfo) -> Result<Registered, NetError> {
        let (send, mut recv) = self.open(&Request::Register(info)).await?;
        match answer(expect_frame(&mut recv).await?)? {
            Response::Registered { node_id, adopted } => Ok((send, recv, node_id, adopted)),
            other => Err(unexpected(other)),
        }
    }

    /// Stops assigning jobs to the live nodes of a node token name (admin).
    /// An unknown name is refused (`NotFound`): the drain is stored on the
    /// tokens. `Ok(true)`: stored.
    pub async fn drain_node(&self, node: &str) -> Result<bool, NetError> {
        self.applied(&Request::DrainNode(node.to_owned())).await
    }

    /// Lifts an admin's drain of a node token name (admin).
    pub async fn undrain_node(&self, node: &str) -> Result<bool, NetError> {
        self.applied(&Request::UndrainNode(node.to_owned())).await
    }

    /// Lifts the quarantine of a node token name (admin).
    pub async fn restore_node(&self, node: &str) -> Result<bool, NetError> {
        self.applied(&Request::RestoreNode(node.to_owned())).await
    }

    /// A tenant's account (admin: `Some(name)`; a tenant: its own).
    pub async fn tenant(&self, name: Option<&str>) -> Result<TenantView, NetError> {
        match self
            .call(&Request::ShowTenant(name.map(str::to_owned)))
            .await?
        {
            Response::Tenant(view) => Ok(view),
            other => Err(unexpected(other)),
        }
    }

    /// Sets a tenant's storage quota in bytes, or back to the coordinator's
    /// default with `None` (admin). Returns whether the tenant is known.
    pub async fn set_storage_quota(
        &self,
        tenant: &str,
        bytes: Option<u64>,
    ) -> Result<bool, NetError> {
        self.applied(&Request::SetStorageQuota {
            tenant: tenant.to_owned(),
            bytes,
        })
        .await
    }

    /// The ledger's invariant violations (admin); empty when consistent.
    pub async fn check(&self) -> Result<Vec<String>, NetError> {
        match self.call(&Request::Check).await? {
            Response::Check(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    /// Sets a GPU class's price in micro-units per GPU-second (admin).
    /// Returns whether the class is known (`default`, priced before, or
    /// some node's class).
    pub async fn set_price(&self, class: &str, micros: u64) -> Result<bool, NetError> {
        self.applied(&Request::SetPrice {
            class: class.to_owned(),
            micros,
        })
        .await
    }

    pub async fn prices(&self) -> Result<Vec<Price>, NetError> {
        match self.call(&Request::ListPrices).await? {
            Response::Prices(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    /// Puts a provider's nodes in a class, or back to the derived one
    /// (admin). Returns whether a node token of that name exists.
    pub async fn set_node_class(&self, node: &str, class: Option<&str>) -> Result<bool, NetError> {
        self.applied(&Request::SetNodeClass {
            node: node.to_owned(),
            class: class.map(str::to_owned),
        })
        .await
    }

    /// Sets or clears a tenant's credit limit in micro-units (admin).
    /// Returns whether a tenant token of that name exists.
    pub async fn set_credit_limit(
        &self,
        tenant: &str,
        micros: Option<u64>,
    ) -> Result<bool, NetError> {
        self.applied(&Request::SetCreditLimit {
            tenant: tenant.to_owned(),
            micros,
        })
        .await
    }

    pub async fn usage(&self, query: UsageQuery) -> Result<UsageReport, NetError> {
        match self.call(&Request::Usage(query)).await? {
            Response::Usage(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Every usage record `query` selects, fetched page by page.
    pub async fn usage_records(&self, query: UsageQuery) -> Result<Vec<UsageRecord>, NetError> {
        let mut out: Vec<UsageRecord> = Vec::new();
        loop {
            let after = out.last().map(|r| (r.receipt.job, r.receipt.attempt));
            let page = match self
                .call(&Request::UsageRecords {
                    query: query.clone(),
                    after,
                    limit: 1000,
                })
                .await?
            {
                Response::UsageRecords(page) => page,
                other => return Err(unexpected(other)),
            };
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }

    /// A setter's answer: whether the name it applies to is known.
    async fn applied(&self, request: &Request) -> Result<bool, NetError> {
        match self.call(request).await? {
            Response::Applied { known } => Ok(known),
            other => Err(unexpected(other)),
        }
    }

    async fn ok(&self, request: &Request) -> Result<(), NetError> {
        match self.call(request).await? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn close(self) {
        self.conn.close(0u32.into(), b"bye");
        self.endpoint.wait_idle().await;
    }
}

/// The close code a coordinator uses when it refuses a connection (bad
/// token, a connection limit); the close reason says why.
pub const CLOSE_REFUSED: u32 = 1;

/// The close code a coordinator uses when it shuts down (SIGTERM, Ctrl-C):
/// clients report [`NetError::ShuttingDown`], nodes reconnect soon instead
/// of backing off as after a failure. (2 and 3 are the coordinator's own:
/// no hello in time, token revoked.)
pub const CLOSE_SHUTDOWN: u32 = 4;

/// The reason sent with [`CLOSE_SHUTDOWN`], for peers that only show it.
pub const SHUTDOWN_REASON: &str = "the coordinator is shutting down; retry shortly";

/// Presents `token` for `role`; the token's name once accepted.
async fn hello(conn: &quinn::Connection, token: &str, role: Role) -> Result<String, NetError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    let hello = Hello {
        version: PROTOCOL_VERSION,
        role,
        token: token.to_owned(),
    };
    write_frame(&mut send, &hello).await?;
    send.finish()?;
    match expect_frame::<Welcome>(&mut recv).await? {
        Welcome::Accepted { name } => Ok(name),
        Welcome::Refused { reason } => Err(NetError::Refused(reason)),
        Welcome::WrongRole { actual, reason } => Err(NetError::WrongRole { actual, reason }),
    }
}

/// The coordinator's reason, when it closed `conn` as a refusal (or
/// because it is shutting down).
fn refusal(conn: &quinn::Connection) -> Option<NetError> {
    match conn.close_reason()? {
        quinn::ConnectionError::ApplicationClosed(close)
            if close.error_code == quinn::VarInt::from_u32(CLOSE_SHUTDOWN) =>
        {
            Some(NetError::ShuttingDown { cut: false })
        }
        quinn::ConnectionError::ApplicationClosed(close)
            if close.error_code == quinn::VarInt::from_u32(CLOSE_REFUSED) =>
        {
            Some(NetError::Refused(
                String::from_utf8_lossy(&close.reason).into_owned(),
            ))
        }
        _ => None,
    }
}

fn answer(r: Response) -> Result<Response, NetError> {
    match r {
        Response::Error {
            code: ErrorCode::ShuttingDown,
            ..
        } => Err(NetError::ShuttingDown { cut: false }),
        Response::Error { code, message } => Err(NetError::Remote { code, message }),
        other => Ok(other),
    }
}

fn job_view(r: Response) -> Result<JobView, NetError> {
    match r {
        Response::Job(view) => Ok(*view),
        other => Err(unexpected(other)),
    }
}

fn unexpected(r: Response) -> NetError {
    NetError::Unexpected(format!("{r:?}").chars().take(200).collect())
}
