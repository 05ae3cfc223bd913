//! The coordinator's data directory: certificate and key, the ledger, blobs,
//! logs, and `client.toml` for the operator.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use suanli_ledger::Ledger;
use suanli_net::tls::Identity;

use crate::CoordinatorError;

/// What a client needs to reach a coordinator: written to `DATA/client.toml`
/// (mode 0600) with the admin token, read by `suanli --config FILE`.
/// Fields may be missing (a node's config file names a `token-file`
/// instead of a `token`); whoever needs one says so when it is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientFile {
    pub address: String,
    pub fingerprint: String,
    pub token: String,
}

impl ClientFile {
    pub fn read(path: &Path) -> Result<ClientFile, CoordinatorError> {
        let text = std::fs::read_to_string(path).map_err(|source| CoordinatorError::DataDir {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text)
            .map_err(|e| CoordinatorError::Config(format!("{}: {e}", path.display())))
    }

    pub fn write(&self, path: &Path) -> Result<(), CoordinatorError> {
        let text = toml::to_string(self).map_err(|e| CoordinatorError::Config(e.to_string()))?;
        write_private(path, text.as_bytes())
    }
}

/// Where backups are written before they are sent, under the data
/// directory (same file system as the ledger, private like it). Emptied at
/// every start: a backup cut short by a crash is of no use.
pub(crate) const BACKUP_TMP: &str = "backup-tmp";

pub(crate) struct DataDir {
    pub(crate) path: PathBuf,
    /// `DATA/lock`, held for the coordinator's life: no second coordinator
    /// and no `admin restore` works on the same directory meanwhile.
    _lock: std::fs::File,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CoordinatorError + '_ {
    move |source| CoordinatorError::DataDir {
        path: path.to_owned(),
        source,
    }
}

/// Writes a file only its owner can read (keys, tokens), atomically and
/// durably: a crash mid-write leaves the old file whole, never a truncated
/// one (which once cost the admin token in `client.toml`).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CoordinatorError> {
    suanli_fs::write_atomic(path, bytes).map_err(io_err(path))
}

impl DataDir {
    pub(crate) fn open(path: &Path) -> Result<DataDir, CoordinatorError> {
        let stale = path.join(BACKUP_TMP);
        if stale.exists() {
            std::fs::remove_dir_all(&stale).map_err(io_err(&stale))?;
        }
        for sub in ["", "blobs", "blobs/tmp", "logs", BACKUP_TMP] {
            let dir = path.join(sub);
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder.create(&dir).map_err(io_err(&dir))?;
        }
        let lock = suanli_fs::lock_dir(path)
            .map_err(io_err(path))?
            .ok_or_else(|| CoordinatorError::DataDir {
                path: path.join("lock"),
                source: std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "another coordinator (or `suanli admin restore`) is using this data directory",
                ),
            })?;
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The certificate and key, created on first start.
    pub(crate) fn identity(&self) -> Result<Identity, CoordinatorError> {
        let cert = self.path.join("cert.der");
        let key = self.path.join("key.der");
        if cert.exists() && key.exists() {
            return Ok(Identity {
                cert: std::fs::read(&cert).map_err(io_err(&cert))?,
                key: std::fs::read(&key).map_err(io_err(&key))?,
            });
        }
        let identity = Identity::generate()?;
        write_private(&key, &identity.key)?;
        write_private(&cert, &identity.cert)?;
        Ok(identity)
    }

    pub(crate) fn ledger(&self) -> Result<Ledger, CoordinatorError> {
        Ok(Ledger::open(&self.path.join("ledger.db"))?)
    }

    /// A read-only connection to the ledger (after [`DataDir::ledger`]).
    pub(crate) fn reader(&self) -> Result<Ledger, CoordinatorError> {
        Ok(Ledger::open_reader(&self.path.join("ledger.db"))?)
    }

    /// Writes `client.toml` with the reachable address and fingerprint. The
    /// admin token is known only on the start that created it; later starts
    /// keep the token already in the file.
    pub(crate) fn write_client_file(
        &self,
        addr: SocketAddr,
        fingerprint: &str,
        new_admin_token: Option<&str>,
    ) -> Result<PathBuf, CoordinatorError> {
        let path = self.path.join("client.toml");
        let token = match new_admin_token {
            Some(t) => t.to_owned(),
            None => ClientFile::read(&path).map(|c| c.token).unwrap_or_default(),
        };
        let mut reachable = addr;
        if reachable.ip().is_unspecified() {
            reachable.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        ClientFile {
            address: reachable.to_string(),
            fingerprint: fingerprint.to_owned(),
            token,
        }
        .write(&path)?;
        Ok(path)
    }
}
