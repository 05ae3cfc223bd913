//! The suanli wire protocol: every message between client, coordinator and
//! node, and the one codec that frames them.
//!
//! **Architecture invariant:** no I/O. Everything here is plain data and pure
//! functions over bytes, so the codec can be unit-tested and fuzzed alone.
//!
//! A connection uses ALPN [`ALPN`]. Each request is one bidirectional QUIC
//! stream: the client writes one [`Request`] frame, the server answers with
//! [`Response`] frames. The first stream of a connection carries [`Hello`]
//! (protocol version, role, token). Blob bodies follow their header frame as
//! raw bytes on the same stream and are verified against their BLAKE3 hash.

mod codec;
#[doc(hidden)]
pub mod fuzzing;
mod hash;
mod messages;
mod outcome;
mod receipt;
pub mod usage;

pub use codec::{CodecError, FRAME_HEADER_BYTES, MAX_FRAME_BYTES, decode, encode, frame_len};
pub use hash::Hash;
pub use messages::*;
pub use outcome::{Metering, Outcome};
pub use receipt::{PublicKey, Receipt, ReceiptError, ReceiptSigner, Signature};

/// ALPN protocol id of suanli over QUIC.
pub const ALPN: &[u8] = b"suanli/1";
/// Version carried in [`Hello`]; a peer with another version is refused.
pub const PROTOCOL_VERSION: u32 = 5;
/// Most attempts a job may ask for: a job that keeps failing must not keep
/// taking provider time (and, when it crashes workers, providers' machines).
pub const MAX_ATTEMPTS: u32 = 10;
