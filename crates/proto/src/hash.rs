use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// BLAKE3 hash of a blob (module, input, output): blobs are stored, uploaded
/// and cached by it, so the same bytes travel once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..12])
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a hash: expected 64 hex digits")]
pub struct BadHash;

impl FromStr for Hash {
    type Err = BadHash;

    fn from_str(s: &str) -> Result<Hash, BadHash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| BadHash)?;
        Ok(Hash(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_matches_blake3() {
        let h = Hash::of(b"abc");
        assert_eq!(h.to_hex(), blake3::hash(b"abc").to_hex().as_str());
        assert_eq!(h.to_hex().parse::<Hash>(), Ok(h));
        assert_eq!("zz".parse::<Hash>(), Err(BadHash));
        assert_eq!("é".repeat(32).parse::<Hash>(), Err(BadHash));
    }
}
