//! How client commands find and authenticate to the coordinator: flags, then
//! environment variables, then the config file (`--config` or `SUANLI_CONFIG`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{Context, bail};
use suanli_coordinator::ClientFile;
use suanli_net::Client;
use suanli_proto::Role;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct Connection {
    /// A client.toml with `address`, `fingerprint` and `token` (the coordinator writes DATA/client.toml).
    #[arg(long, global = true, env = "SUANLI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Coordinator address, HOST:PORT.
    #[arg(long, global = true, env = "SUANLI_COORDINATOR", value_name = "ADDR")]
    pub coordinator: Option<String>,
    /// Token to present. Prefer --token-file or SUANLI_TOKEN: anything in
    /// argv is visible to every user of the machine (`ps`).
    #[arg(long, global = true, env = "SUANLI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the token (surrounding whitespace ignored; keep it
    /// mode 0600). Takes precedence over --token and SUANLI_TOKEN.
    #[arg(long, global = true, env = "SUANLI_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// SHA-256 fingerprint of the coordinator's certificate.
    #[arg(long, global = true, env = "SUANLI_FINGERPRINT")]
    pub fingerprint: Option<String>,
}

/// A resolved connection.
pub struct Target {
    pub address: SocketAddr,
    pub fingerprint: String,
    pub token: String,
}

impl Connection {
    pub fn resolve(&self) -> anyhow::Result<Target> {
        let file = match &self.config {
            Some(path) => Some(
                ClientFile::read(path).with_context(|| format!("reading {}", path.display()))?,
            ),
            None => None,
        };
        let pick = |flag: &Option<String>,
                    from_file: Option<&String>,
                    what: &str|
         -> anyhow::Result<String> {
            match flag
                .clone()
                .or_else(|| from_file.cloned().filter(|v| !v.is_empty()))
            {
                Some(v) => Ok(v),
                None => bail!(
                    "no {what}: pass --{what} (or SUANLI_{}), or --config FILE",
                    what.to_uppercase()
                ),
            }
        };
        let address = pick(
            &self.coordinator,
            file.as_ref().map(|f| &f.address),
            "coordinator",
        )?;
        let address = address
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve coordinator address {address}"))?
            .next()
            .with_context(|| format!("coordinator address {address} resolves to nothing"))?;
        Ok(Target {
            address,
            fingerprint: pick(
                &self.fingerprint,
                file.as_ref().map(|f| &f.fingerprint),
                "fingerprint",
            )?,
            token: pick(&self.token()?, file.as_ref().map(|f| &f.token), "token")?,
        })
    }

    /// The token from --token-file, else --token (or SUANLI_TOKEN).
    fn token(&self) -> anyhow::Result<Option<String>> {
        let Some(path) = &self.token_file else {
            return Ok(self.token.clone());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --token-file {}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            bail!("--token-file {} is empty", path.display());
        }
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "warning: {} is readable by other users; chmod 600 it",
                    path.display()
                );
            }
        }
        Ok(Some(token.to_owned()))
    }

    /// Connects as `role` (an admin token also passes as a tenant).
    pub async fn connect(&self, role: Role) -> anyhow::Result<Client> {
        let t = self.resolve()?;
        Client::connect(t.address, &t.fingerprint, &t.token, role)
            .await
            .with_context(|| format!("cannot connect to the coordinator at {}", t.address))
    }
}
