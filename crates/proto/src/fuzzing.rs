//! The `proto_decode` fuzz target's body, shared with the corpus replay in
//! the test suite.

use crate::{FromNode, Hello, Request, Response, ToNode, Welcome, decode, frame_len};

/// Decodes `data` as every message type, as a payload and as a stream of
/// frames, and re-encodes what decodes (the round trip must agree).
pub fn decode_everything(data: &[u8]) {
    fn round_trip<T>(data: &[u8])
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        if let Ok(value) = decode::<T>(data) {
            let frame = crate::encode(&value).expect("a decoded message encodes");
            let again: T = decode(&frame[crate::FRAME_HEADER_BYTES..]).expect("and decodes");
            assert_eq!(again, value);
        }
    }
    round_trip::<Hello>(data);
    round_trip::<Welcome>(data);
    round_trip::<Request>(data);
    round_trip::<Response>(data);
    round_trip::<ToNode>(data);
    round_trip::<FromNode>(data);
    // As a stream: header, payload, header, payload, ...
    let mut rest = data;
    while rest.len() >= crate::FRAME_HEADER_BYTES {
        let header: [u8; 4] = [rest[0], rest[1], rest[2], rest[3]];
        let Ok(len) = frame_len(header) else { return };
        rest = &rest[crate::FRAME_HEADER_BYTES..];
        if rest.len() < len {
            return;
        }
        let _ = decode::<Request>(&rest[..len]);
        rest = &rest[len..];
    }
}
