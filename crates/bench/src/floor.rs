//! What a round trip cannot beat, measured beside it: a raw QUIC
//! request/response with suanli's TLS and transport configuration, and a
//! 4 KiB write + fdatasync in the coordinator's data directory.

use std::io::Write;
use std::time::Instant;

use suanli_net::tls;

use crate::BenchError;

/// Bytes each way per echo: about a `Submit` request and its answer.
pub const ECHO_BYTES: usize = 160;
/// Bytes written before each fdatasync.
pub const FSYNC_BYTES: usize = 4096;

fn net(e: impl std::fmt::Display) -> BenchError {
    BenchError::Job(format!("echo benchmark: {e}"))
}

/// Median of `samples` (sorted in place).
pub(crate) fn percentile(samples: &mut [u64], p: usize) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

/// The physical baseline of suanli's QUIC: a raw server with the
/// coordinator's server configuration on loopback, running `serve` on its
/// first connection, and a connection to it with the clients' configuration
/// (returned with its endpoint, which must outlive it).
pub(crate) async fn raw_quic<F, Fut>(
    serve: F,
) -> Result<(quinn::Connection, quinn::Endpoint), BenchError>
where
    F: FnOnce(quinn::Connection) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let identity = tls::Identity::generate()?;
    let server = quinn::Endpoint::server(
        tls::server_config(&identity, 64)?,
        ([127, 0, 0, 1], 0).into(),
    )
    .map_err(net)?;
    let addr = server.local_addr().map_err(net)?;
    tokio::spawn(async move {
        let Some(incoming) = server.accept().await else {
            return;
        };
        if let Ok(conn) = incoming.await {
            serve(conn).await;
        }
    });
    let client = suanli_net::Client::endpoint(addr)?;
    let pinned = tls::parse_fingerprint(&identity.fingerprint())?;
    let conn = client
        .connect_with(tls::client_config(pinned)?, addr, tls::SERVER_NAME)
        .map_err(net)?
        .await
        .map_err(net)?;
    Ok((conn, client))
}

/// p50 of `rounds` echoes of [`ECHO_BYTES`] on one persistent stream over
/// loopback, with the coordinator's server config and the clients' config.
pub async fn echo_rtt_p50_ns(rounds: usize) -> Result<u64, BenchError> {
    let (conn, _client) = raw_quic(|conn| async move {
        let Ok((mut send, mut recv)) = conn.accept_bi().await else {
            return;
        };
        let mut buf = [0u8; ECHO_BYTES];
        while recv.read_exact(&mut buf).await.is_ok() {
            if send.write_all(&buf).await.is_err() {
                return;
            }
        }
    })
    .await?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(net)?;
    let mut samples = Vec::with_capacity(rounds);
    let mut buf = [7u8; ECHO_BYTES];
    for round in 0..rounds.max(1) + 10 {
        let started = Instant::now();
        send.write_all(&buf).await.map_err(net)?;
        recv.read_exact(&mut buf).await.map_err(net)?;
        if round >= 10 {
            samples.push(started.elapsed().as_nanos() as u64);
        }
    }
    let _ = send.finish();
    conn.close(0u32.into(), b"done");
    Ok(percentile(&mut samples, 50))
}

/// p50 of `rounds` writes of [`FSYNC_BYTES`] + fdatasync to a file in `dir`
/// (on a blocking thread).
pub async fn fsync_p50_ns(dir: std::path::PathBuf, rounds: usize) -> Result<u64, BenchError> {
    let measured = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let path = dir.join("bench-fsync.tmp");
        let mut file = std::fs::File::create(&path)?;
        let block = [1u8; FSYNC_BYTES];
        let mut samples = Vec::with_capacity(rounds);
        for _ in 0..rounds.max(1) {
            let started = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            samples.push(started.elapsed().as_nanos() as u64);
        }
        drop(file);
        std::fs::remove_file(&path)?;
        Ok(percentile(&mut samples, 50))
    })
    .await
    .map_err(net)?;
    measured.map_err(net)
}
