//! Frames and raw blob bodies on QUIC streams.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use suanli_proto::{FRAME_HEADER_BYTES, Hash, decode, encode, frame_len};

use crate::NetError;

/// Bytes read from a stream at once while moving a blob.
const CHUNK: usize = 64 * 1024;

/// What [`read_frame`] allocates for a payload before any of it arrived.
pub const INITIAL_FRAME_BUFFER: usize = 16 * 1024;

pub async fn write_frame<T: Serialize>(
    send: &mut quinn::SendStream,
    message: &T,
) -> Result<(), NetError> {
    send.write_all(&encode(message)?).await?;
    Ok(())
}

/// The next frame, or `None` when the peer finished the stream cleanly
/// between frames. A header announcing more than the maximum frame size is an
/// error before anything is allocated, and the payload buffer grows only as
/// bytes arrive (it starts at [`INITIAL_FRAME_BUFFER`]): a peer announcing
/// 1 MiB and sending nothing costs that much less than 1 MiB, so memory
/// follows what peers actually send, not what they promise.
pub async fn read_frame<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
) -> Result<Option<T>, NetError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = frame_len(header)?;
    let mut payload = Vec::with_capacity(len.min(INITIAL_FRAME_BUFFER));
    while payload.len() < len {
        match recv.read_chunk(len - payload.len(), true).await? {
            Some(chunk) => payload.extend_from_slice(&chunk.bytes),
            None => return Err(NetError::ClosedStream),
        }
    }
    Ok(Some(decode(&payload)?))
}

/// [`read_frame`] that must complete within `limit`, measured from the
/// first byte wanted: a peer that opens a stream and drips a frame slowly
/// holds a task and a buffer only this long.
pub async fn read_frame_within<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    limit: Duration,
) -> Result<Option<T>, NetError> {
    tokio::time::timeout(limit, read_frame(recv))
        .await
        .map_err(|_| NetError::Timeout("the request frame did not arrive in time"))?
}

/// Like [`read_frame`], but the end of the stream is an error.
pub async fn expect_frame<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
) -> Result<T, NetError> {
    read_frame(recv).await?.ok_or(NetError::ClosedStream)
}

/// Reads exactly `size` blob bytes, hashing as they come, and checks them
/// against `hash`. `sink` gets every chunk (to a file, or into memory).
pub async fn read_blob(
    recv: &mut quinn::RecvStream,
    size: u64,
    hash: &Hash,
    sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), NetError> {
    read_blob_within(recv, size, hash, None, sink).await
}

/// [`read_blob`] where, with `idle` set, every read must bring some bytes
/// within `idle`: a peer that stalls an upload is cut off, while a slow but
/// steady one is not (uploads in progress are also capped per peer).
pub async fn read_blob_within(
    recv: &mut quinn::RecvStream,
    size: u64,
    hash: &Hash,
    idle: Option<Duration>,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), NetError> {
    let mut body = BlobBody::new(recv, size, hash, idle);
    while let Some(chunk) = body.next().await? {
        sink(chunk)?;
    }
    Ok(())
}

/// [`read_blob_within`] into an async writer: for a file, a
/// `tokio::fs::File`, whose writes run on blocking threads, so a task that
/// drives QUIC never waits on a disk. Flushed before returning.
pub async fn read_blob_to<W: tokio::io::AsyncWrite + Unpin>(
    recv: &mut quinn::RecvStream,
    size: u64,
    hash: &Hash,
    idle: Option<Duration>,
    out: &mut W,
) -> Result<(), NetError> {
    use tokio::io::AsyncWriteExt;
    let mut body = BlobBody::new(recv, size, hash, idle);
    while let Some(chunk) = body.next().await? {
        out.write_all(chunk).await?;
    }
    out.flush().await?;
    Ok(())
}

/// A blob body on its way in: exactly `left` more bytes, hashed as they
/// come and checked against `hash` once all arrived.
struct BlobBody<'a> {
    recv: &'a mut quinn::RecvStream,
    hash: &'a Hash,
    idle: Option<Duration>,
    left: u64,
    hasher: blake3::Hasher,
    buf: Vec<u8>,
}

impl<'a> BlobBody<'a> {
    fn new(
        recv: &'a mut quinn::RecvStream,
        size: u64,
        hash: &'a Hash,
        idle: Option<Duration>,
    ) -> BlobBody<'a> {
        BlobBody {
            recv,
            hash,
            idle,
            left: size,
            hasher: blake3_hasher(),
            buf: vec![0u8; CHUNK],
        }
    }

    /// The next chunk, or `None` once every byte came and the hash matched.
    async fn next(&mut self) -> Result<Option<&[u8]>, NetError> {
        if self.left == 0 {
            let got = Hash(*self.hasher.finalize().as_bytes());
            if &got != self.hash {
                return Err(NetError::HashMismatch(self.hash.to_hex()));
            }
            return Ok(None);
        }
        let want = self.left.min(CHUNK as u64) as usize;
        let read = self.recv.read(&mut self.buf[..want]);
        let got = match self.idle {
            Some(limit) => tokio::time::timeout(limit, read)
                .await
                .map_err(|_| NetError::Timeout("the blob body stalled"))??,
            None => read.await?,
        };
        let Some(n) = got else {
            return Err(NetError::ClosedStream);
        };
        self.hasher.update(&self.buf[..n]);
        self.left -= n as u64;
        Ok(Some(&self.buf[..n]))
    }
}

fn blake3_hasher() -> blake3::Hasher {
    blake3::Hasher::new()
}
