//! Frames and raw blob bodies on QUIC streams.

use serde::Serialize;
use serde::de::DeserializeOwned;
use suanli_proto::{FRAME_HEADER_BYTES, Hash, decode, encode, frame_len};

use crate::NetError;

/// Bytes read from a stream at once while moving a blob.
const CHUNK: usize = 64 * 1024;

pub async fn write_frame<T: Serialize>(
    send: &mut quinn::SendStream,
    message: &T,
) -> Result<(), NetError> {
    send.write_all(&encode(message)?).await?;
    Ok(())
}

/// The next frame, or `None` when the peer finished the stream cleanly
/// between frames. A header announcing more than the maximum frame size is an
/// error before anything is allocated.
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
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload).await?;
    Ok(Some(decode(&payload)?))
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
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), NetError> {
    let mut hasher = blake3_hasher();
    let mut left = size;
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        recv.read_exact(&mut buf[..want]).await?;
        hasher.update(&buf[..want]);
        sink(&buf[..want])?;
        left -= want as u64;
    }
    let got = Hash(*hasher.finalize().as_bytes());
    if &got != hash {
        return Err(NetError::HashMismatch(hash.to_hex()));
    }
    Ok(())
}

fn blake3_hasher() -> blake3::Hasher {
    blake3::Hasher::new()
}
