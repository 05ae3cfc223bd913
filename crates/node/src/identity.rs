//! The node's receipt key: an ed25519 seed in `DATA/node.key`, created on
//! first start (mode 0600) and kept, because the coordinator binds the first
//! key a node token presents to that token.

use std::path::Path;

use suanli_proto::ReceiptSigner;

const FILE: &str = "node.key";

/// Loads the node's key from `data_dir`, creating it if there is none.
pub(crate) fn load_or_create(data_dir: &Path) -> std::io::Result<ReceiptSigner> {
    let path = data_dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a 32-byte key", path.display()),
                )
            })?;
            Ok(ReceiptSigner::from_seed(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed: [u8; 32] = rand::random();
            // Durable before use: the coordinator binds this key for good.
            suanli_fs::write_atomic(&path, &seed)?;
            Ok(ReceiptSigner::from_seed(&seed))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap().public_key();
        let again = load_or_create(dir.path()).unwrap().public_key();
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(FILE), b"short").unwrap();
        let err = load_or_create(dir.path()).err().unwrap();
        assert!(err.to_string().contains("32-byte key"));
    }
}
