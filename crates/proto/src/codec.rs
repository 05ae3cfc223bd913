//! Frames: a little-endian `u32` payload length, then a bincode 2 payload.
//! The length is checked against [`MAX_FRAME_BYTES`] before anything is
//! allocated, and bincode decodes with the same allocation limit, so a
//! hostile length or a hostile inner `Vec` length cannot make a peer allocate
//! more than one frame's worth.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest frame payload. Control messages are small; blob bodies do not
/// travel in frames.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
pub const FRAME_HEADER_BYTES: usize = 4;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
        .with_limit::<MAX_FRAME_BYTES>()
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("frame of {0} bytes exceeds the maximum of {MAX_FRAME_BYTES} bytes")]
    TooLarge(usize),
    #[error("cannot encode message: {0}")]
    Encode(String),
    #[error("malformed frame: {0}")]
    Decode(String),
}

/// A whole frame (header and payload) for `message`.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, CodecError> {
    let payload = bincode::serde::encode_to_vec(message, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    if payload.len() > MAX_FRAME_BYTES {
        return Err(CodecError::TooLarge(payload.len()));
    }
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// The payload length a frame header announces, refused past the maximum.
pub fn frame_len(header: [u8; FRAME_HEADER_BYTES]) -> Result<usize, CodecError> {
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(CodecError::TooLarge(len));
    }
    Ok(len)
}

/// Decodes one payload; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, CodecError> {
    if payload.len() > MAX_FRAME_BYTES {
        return Err(CodecError::TooLarge(payload.len()));
    }
    let (value, used) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != payload.len() {
        return Err(CodecError::Decode(format!(
            "{} trailing bytes",
            payload.len() - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Hash, Hello, PROTOCOL_VERSION, Request, Role};

    #[test]
    fn frames_round_trip() {
        let hello = Hello {
            version: PROTOCOL_VERSION,
            role: Role::Tenant,
            token: "secret".into(),
        };
        let frame = encode(&hello).unwrap();
        let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, frame.len() - 4);
        assert_eq!(decode::<Hello>(&frame[4..]).unwrap(), hello);
        let req = Request::HasBlobs(vec![Hash::of(b"a"), Hash::of(b"b")]);
        let frame = encode(&req).unwrap();
        assert_eq!(decode::<Request>(&frame[4..]).unwrap(), req);
    }

    #[test]
    fn oversize_headers_are_refused_before_allocation() {
        let header = ((MAX_FRAME_BYTES + 1) as u32).to_le_bytes();
        assert!(matches!(frame_len(header), Err(CodecError::TooLarge(_))));
        assert!(frame_len(u32::MAX.to_le_bytes()).is_err());
    }

    #[test]
    fn a_huge_inner_length_is_a_decode_error_not_an_allocation() {
        // Variant 0 (HasBlobs) with a vector claiming u64::MAX elements.
        let mut payload = vec![0u8, 255];
        payload.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Request>(&payload),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_errors() {
        assert!(decode::<Hello>(&[0xff; 3]).is_err());
        let mut frame = encode(&Request::ListJobs(crate::JobFilter::default())).unwrap();
        frame.push(0);
        assert!(decode::<Request>(&frame[4..]).is_err());
    }

    #[test]
    fn the_largest_result_and_log_chunk_fit_one_frame() {
        use crate::{AttemptResult, FromNode, Metering, Outcome, Receipt, Signature};
        let error = crate::bounded_error("é".repeat(4 << 20));
        assert!(error.len() <= crate::MAX_ERROR_BYTES);
        let kept = error.find(" [...").unwrap();
        let cut = (8 << 20) - kept;
        assert!(error.ends_with(&format!("[... {cut} of {} bytes cut]", 8 << 20)));
        let result = FromNode::Finished(Box::new(AttemptResult {
            receipt: Receipt {
                job: u64::MAX,
                attempt: u32::MAX,
                node_id: u64::MAX,
                module: Hash([1; 32]),
                input: Hash([2; 32]),
                output: Some(Hash([3; 32])),
                gpu_ns: u64::MAX,
                wall_ns: u64::MAX,
                outcome: Outcome::GpuBudgetExceeded,
                metering: Metering::Timestamp,
                started_ms: u64::MAX,
                ended_ms: u64::MAX,
            },
            signature: Signature {
                r: [9; 32],
                s: [9; 32],
            },
            error: Some(error),
            output_bytes: u64::MAX,
        }));
        assert!(encode(&result).is_ok());
        let log = FromNode::Log {
            job: u64::MAX,
            attempt: u32::MAX,
            data: vec![0xff; crate::MAX_LOG_CHUNK_BYTES],
        };
        assert!(encode(&log).is_ok());
        // Short errors pass untouched.
        assert_eq!(crate::bounded_error("short".into()), "short");
    }

    #[test]
    fn oversize_messages_are_refused_when_encoding() {
        let big = Request::HasBlobs(vec![Hash([7; 32]); MAX_FRAME_BYTES / 32 + 1]);
        assert!(matches!(encode(&big), Err(CodecError::TooLarge(_))));
    }
}
