//! Usage receipts: what a node signs for every attempt it ends, so that a
//! tenant (or anyone holding the node's public key) can check what it was
//! billed for without trusting the coordinator's arithmetic or its database.
//!
//! The signed bytes are a fixed, documented layout (not a serde encoding), so
//! another implementation can rebuild them:
//!
//! ```text
//! "suanli-receipt-v1\0"
//! job u64 | attempt u32 | node_id u64 | module [32] | input [32]
//! output: 0u8, or 1u8 then [32]
//! gpu_ns u64 | wall_ns u64 | outcome str | metering str | started_ms u64 | ended_ms u64
//! ```
//! Integers are big-endian; `str` is a `u32` big-endian byte length then UTF-8.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{Hash, Metering, Outcome};

const DOMAIN: &[u8] = b"suanli-receipt-v1\0";

/// One attempt's usage as its node measured it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub job: u64,
    pub attempt: u32,
    /// The node session the attempt was assigned to.
    pub node_id: u64,
    pub module: Hash,
    pub input: Hash,
    pub output: Option<Hash>,
    /// Metered GPU time (may exceed the job's budget by the dispatch in flight).
    pub gpu_ns: u64,
    /// Time the attempt held its slot.
    pub wall_ns: u64,
    /// Signed as its canonical name.
    pub outcome: Outcome,
    /// Signed as its canonical name (`timestamp` or `wall`).
    pub metering: Metering,
    pub started_ms: u64,
    pub ended_ms: u64,
}

/// A node's ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &self.to_hex()[..16])
    }
}

/// An ed25519 signature, as two halves (serde has no 64-byte arrays).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub r: [u8; 32],
    pub s: [u8; 32],
}

impl Signature {
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.r);
        out[32..].copy_from_slice(&self.s);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Signature> {
        let bytes: &[u8; 64] = bytes.try_into().ok()?;
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        s.copy_from_slice(&bytes[32..]);
        Some(Signature { r, s })
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.r[..8]))
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the node's public key is not a valid ed25519 key")]
    BadKey,
    #[error("the receipt's signature does not match its contents and the node's key")]
    BadSignature,
}

/// A node's signing key: 32 secret bytes (the ed25519 seed).
pub struct ReceiptSigner {
    key: SigningKey,
}

impl ReceiptSigner {
    pub fn from_seed(seed: &[u8; 32]) -> ReceiptSigner {
        ReceiptSigner {
            key: SigningKey::from_bytes(seed),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    pub fn sign(&self, receipt: &Receipt) -> Signature {
        let sig = self.key.sign(&receipt.signed_bytes());
        Signature {
            r: *sig.r_bytes(),
            s: *sig.s_bytes(),
        }
    }
}

impl Receipt {
    /// The canonical bytes a node signs (layout in the module docs).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(DOMAIN);
        out.extend_from_slice(&self.job.to_be_bytes());
        out.extend_from_slice(&self.attempt.to_be_bytes());
        out.extend_from_slice(&self.node_id.to_be_bytes());
        out.extend_from_slice(&self.module.0);
        out.extend_from_slice(&self.input.0);
        match &self.output {
            None => out.push(0),
            Some(h) => {
                out.push(1);
                out.extend_from_slice(&h.0);
            }
        }
        out.extend_from_slice(&self.gpu_ns.to_be_bytes());
        out.extend_from_slice(&self.wall_ns.to_be_bytes());
        for s in [self.outcome.as_str(), self.metering.as_str()] {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&self.started_ms.to_be_bytes());
        out.extend_from_slice(&self.ended_ms.to_be_bytes());
        out
    }

    /// Whether `signature` is `key`'s signature over this receipt.
    pub fn verify(&self, key: &PublicKey, signature: &Signature) -> Result<(), ReceiptError> {
        let key = VerifyingKey::from_bytes(&key.0).map_err(|_| ReceiptError::BadKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.to_bytes());
        key.verify_strict(&self.signed_bytes(), &sig)
            .map_err(|_| ReceiptError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            job: 7,
            attempt: 2,
            node_id: 3,
            module: Hash::of(b"m"),
            input: Hash::of(b"i"),
            output: Some(Hash::of(b"o")),
            gpu_ns: 1_234_567,
            wall_ns: 9_000_000,
            outcome: Outcome::Succeeded,
            metering: Metering::Timestamp,
            started_ms: 1_700_000_000_000,
            ended_ms: 1_700_000_000_010,
        }
    }

    #[test]
    fn a_signed_receipt_verifies_and_any_changed_byte_does_not() {
        let signer = ReceiptSigner::from_seed(&[9; 32]);
        let r = receipt();
        let sig = signer.sign(&r);
        assert_eq!(r.verify(&signer.public_key(), &sig), Ok(()));

        let mut changed = r.clone();
        changed.gpu_ns += 1;
        assert_eq!(
            changed.verify(&signer.public_key(), &sig),
            Err(ReceiptError::BadSignature)
        );
        let mut changed = r.clone();
        changed.output = None;
        assert!(changed.verify(&signer.public_key(), &sig).is_err());

        // Every byte of the signature matters.
        for i in 0..64 {
            let mut bytes = sig.to_bytes();
            bytes[i] ^= 1;
            let bad = Signature::from_bytes(&bytes).unwrap();
            assert!(r.verify(&signer.public_key(), &bad).is_err(), "byte {i}");
        }
        let other = ReceiptSigner::from_seed(&[8; 32]);
        assert!(r.verify(&other.public_key(), &sig).is_err());
    }

    #[test]
    fn signed_bytes_name_the_outcome_and_metering_canonically() {
        let r = receipt();
        let bytes = r.signed_bytes();
        assert!(bytes.starts_with(DOMAIN));
        // `outcome str | metering str`: u32 big-endian length, then the name.
        let mut tail = Vec::new();
        for name in ["succeeded", "timestamp"] {
            tail.extend_from_slice(&(name.len() as u32).to_be_bytes());
            tail.extend_from_slice(name.as_bytes());
        }
        let at = bytes.len() - 16 - tail.len();
        assert_eq!(&bytes[at..bytes.len() - 16], &tail[..]);
        let mut other = r.clone();
        other.outcome = Outcome::Crashed;
        assert_ne!(other.signed_bytes(), bytes);
    }
}
