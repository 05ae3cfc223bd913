//! suanli over QUIC: the transport shared by coordinator, nodes and clients.
//!
//! - [`tls`]: the coordinator's self-signed certificate, and a client-side
//!   verifier that pins its SHA-256 fingerprint (no CA needed, no trust on
//!   first use: the operator hands out the fingerprint with the token).
//! - [`frame`]: reading and writing `suanli-proto` frames and raw blob bodies
//!   on QUIC streams, with the protocol's size limits.
//! - [`Client`]: the handshake and every request a tenant, admin or node makes.

mod client;
mod error;
pub mod frame;
pub mod tls;

pub mod backoff;
pub use client::{
    BLOB_LIMIT, CLOSE_REFUSED, CLOSE_SHUTDOWN, Client, Direction, Progress, SHUTDOWN_REASON,
};
pub use error::NetError;

use std::time::Duration;

/// Keep-alive interval: a silent connection still exchanges a packet this often.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// Idle timeout: a peer silent this long is dead (a dead node is noticed within it).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// The coordinator's QUIC receive window and send buffer per connection:
/// what one connection's streams together may have in flight each way.
/// quinn's defaults (an unlimited receive window, 10 MB of send buffer) let
/// a peer that sends without waiting for answers, or never reads, grow the
/// coordinator's memory by the connection; this bounds it.
pub const SERVER_WINDOW: u32 = 8 << 20;

/// Transport settings: the idle timeout makes a vanished peer visible within
/// [`IDLE_TIMEOUT`] on both sides. Only the coordinator sends keep-alives
/// (`keep_alive`): their acknowledgements keep the connection live both
/// ways, and a thousand clients sending their own as well starved handshakes
/// in the load test.
pub fn transport_config(max_bidi_streams: u32, keep_alive: bool) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(keep_alive.then_some(KEEP_ALIVE));
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    t.max_concurrent_bidi_streams(max_bidi_streams.into());
    t.max_concurrent_uni_streams(0u32.into());
    t
}
