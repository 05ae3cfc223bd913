//! Bulk transfer: a blob uploaded to and downloaded from a coordinator on
//! loopback, beside the same bytes over a raw quinn stream with suanli's TLS
//! and transport configuration (what the wire allows). The suanli side
//! includes what a real transfer costs: hashing on both ends, the
//! coordinator's write, fsync and rename of the blob, its quota and grant
//! rows, and reading the file back from disk.

use std::time::Instant;

use serde::Serialize;
use suanli_coordinator::{Coordinator, CoordinatorConfig};
use suanli_net::Client;
use suanli_proto::Role;

use crate::BenchError;
use crate::floor::percentile;

/// Blob sizes measured by default.
pub const DEFAULT_SIZES: [u64; 3] = [1 << 20, 64 << 20, 256 << 20];

/// Bytes per write on the raw stream (as the client's upload step).
const RAW_STEP: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct TransferBenchConfig {
    pub sizes: Vec<u64>,
    /// Transfers of each size and side; medians are reported.
    pub runs: usize,
}

/// One size, both sides, medians.
#[derive(Clone, Debug, Serialize)]
pub struct TransferSize {
    pub bytes: u64,
    /// `PutBlob` until the coordinator answered `Stored`.
    pub put_ns: u64,
    /// `GetBlob` until the last byte was read and its hash checked.
    pub get_ns: u64,
    /// The same bytes written on a raw stream until the peer acknowledged
    /// having read them all.
    pub raw_put_ns: u64,
    /// The same bytes read from a raw stream the peer writes.
    pub raw_get_ns: u64,
    /// `raw_put_ns / put_ns`: 1.0 is wire speed.
    pub put_ratio: f64,
    pub get_ratio: f64,
    pub put_mib_per_s: f64,
    pub get_mib_per_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TransferReport {
    pub runs: usize,
    pub sizes: Vec<TransferSize>,
}

fn net(e: impl std::fmt::Display) -> BenchError {
    BenchError::Job(format!("transfer benchmark: {e}"))
}

/// Bytes that differ per run (blobs are stored by hash: a repeated blob
/// would not be uploaded again).
fn bytes(size: u64, run: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (run as u64 + 1).wrapping_mul(size | 1);
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub async fn run(config: &TransferBenchConfig) -> Result<TransferReport, BenchError> {
    let dir = std::env::temp_dir().join(format!("suanli-transfer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut coordinator_config =
        CoordinatorConfig::new(([127, 0, 0, 1], 0).into(), dir.join("coordinator"));
    let largest = config.sizes.iter().copied().max().unwrap_or(0);
    coordinator_config.max_blob_bytes = coordinator_config.max_blob_bytes.max(largest);
    coordinator_config.storage_quota = u64::MAX;
    let coordinator = Coordinator::start(coordinator_config)
        .await
        .map_err(|e| BenchError::Job(e.to_string()))?;
    let (addr, fp) = (coordinator.addr(), coordinator.fingerprint().to_owned());
    let admin_token = coordinator.new_admin_token.clone().unwrap_or_default();
    let admin = Client::connect(addr, &fp, &admin_token, Role::Admin).await?;
    let tenant = Client::connect(
        addr,
        &fp,
        &admin.create_token(Role::Tenant, "transfer").await?,
        Role::Tenant,
    )
    .await?;
    let raw = RawPeer::start().await?;
    let mut sizes = Vec::new();
    for &size in &config.sizes {
        sizes.push(measure(&tenant, &raw, size, config.runs.max(1)).await?);
    }
    tenant.close().await;
    admin.close().await;
    coordinator.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(TransferReport {
        runs: config.runs.max(1),
        sizes,
    })
}

async fn measure(
    tenant: &Client,
    raw: &RawPeer,
    size: u64,
    runs: usize,
) -> Result<TransferSize, BenchError> {
    let (mut put, mut get, mut raw_put, mut raw_get) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let blob = bytes(size, run);
        let started = Instant::now();
        let hash = tenant.put_blob(&blob).await?;
        put.push(elapsed_ns(started));
        let started = Instant::now();
        let back = tenant.get_blob(hash).await?;
        get.push(elapsed_ns(started));
        if back.len() != blob.len() {
            return Err(net("the downloaded blob has the wrong size"));
        }
        drop(back);
        raw_put.push(raw.put(&blob).await?);
        raw_get.push(raw.get(size).await?);
    }
    let (put_ns, get_ns) = (percentile(&mut put, 50), percentile(&mut get, 50));
    let (raw_put_ns, raw_get_ns) = (percentile(&mut raw_put, 50), percentile(&mut raw_get, 50));
    let ratio = |raw: u64, ours: u64| raw as f64 / ours.max(1) as f64;
    let mib_per_s = |ns: u64| size as f64 / (1 << 20) as f64 / (ns.max(1) as f64 / 1e9);
    Ok(TransferSize {
        bytes: size,
        put_ns,
        get_ns,
        raw_put_ns,
        raw_get_ns,
        put_ratio: ratio(raw_put_ns, put_ns),
        get_ratio: ratio(raw_get_ns, get_ns),
        put_mib_per_s: mib_per_s(put_ns),
        get_mib_per_s: mib_per_s(get_ns),
    })
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A raw QUIC peer with the coordinator's server configuration: a stream
/// that starts with `P` is read to its end and answered with one byte; one
/// that starts with `G` and an 8-byte size is answered with that many bytes.
struct RawPeer {
    conn: quinn::Connection,
    _client: quinn::Endpoint,
}

impl RawPeer {
    async fn start() -> Result<RawPeer, BenchError> {
        let (conn, client) = crate::floor::raw_quic(|conn| async move {
            while let Ok((send, recv)) = conn.accept_bi().await {
                tokio::spawn(serve_raw(send, recv));
            }
        })
        .await?;
        Ok(RawPeer {
            conn,
            _client: client,
        })
    }

    async fn put(&self, blob: &[u8]) -> Result<u64, BenchError> {
        let started = Instant::now();
        let (mut send, mut recv) = self.conn.open_bi().await.map_err(net)?;
        send.write_all(b"P").await.map_err(net)?;
        for step in blob.chunks(RAW_STEP) {
            send.write_all(step).await.map_err(net)?;
        }
        send.finish().map_err(net)?;
        let mut ack = [0u8; 1];
        recv.read_exact(&mut ack).await.map_err(net)?;
        Ok(elapsed_ns(started))
    }

    async fn get(&self, size: u64) -> Result<u64, BenchError> {
        let started = Instant::now();
        let (mut send, mut recv) = self.conn.open_bi().await.map_err(net)?;
        let mut ask = vec![b'G'];
        ask.extend_from_slice(&size.to_le_bytes());
        send.write_all(&ask).await.map_err(net)?;
        send.finish().map_err(net)?;
        let mut got = 0u64;
        let mut buf = vec![0u8; RAW_STEP];
        while let Some(n) = recv.read(&mut buf).await.map_err(net)? {
            got += n as u64;
        }
        if got != size {
            return Err(net(format!("raw get: {got} of {size} bytes")));
        }
        Ok(elapsed_ns(started))
    }
}

async fn serve_raw(mut send: quinn::SendStream, mut recv: quinn::RecvStream) -> Option<()> {
    let mut kind = [0u8; 1];
    recv.read_exact(&mut kind).await.ok()?;
    let mut buf = vec![0u8; RAW_STEP];
    if kind[0] == b'P' {
        while recv.read(&mut buf).await.ok()?.is_some() {}
        send.write_all(&[1]).await.ok()?;
    } else {
        let mut size = [0u8; 8];
        recv.read_exact(&mut size).await.ok()?;
        let mut left = u64::from_le_bytes(size);
        while left > 0 {
            let n = left.min(RAW_STEP as u64) as usize;
            send.write_all(&buf[..n]).await.ok()?;
            left -= n as u64;
        }
    }
    send.finish().ok()
}
