//! The wire decoder on arbitrary bytes: every message type, as a payload and
//! as a framed stream. Decoding may fail; it must never panic or allocate
//! past the frame limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    suanli_proto::fuzzing::decode_everything(data);
});
