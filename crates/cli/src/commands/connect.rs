//! How client commands find and authenticate to the coordinator: flags, then
//! environment variables, then a client file: `--config FILE` (or
//! `SUANLI_CONFIG`), else the profile's file (`--profile NAME`), else the
//! default one, `$XDG_CONFIG_HOME/suanli/client.toml` (`~/.config/...`),
//! which `suanli login FILE` installs.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use suanli_coordinator::ClientFile;
use suanli_net::{Client, NetError};
use suanli_proto::Role;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct Connection {
    /// A client file with `address`, `fingerprint` and `token` (`token create
    /// --client-config` writes one; the coordinator writes DATA/client.toml).
    #[arg(long, global = true, env = "SUANLI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Use the client file installed under this name (`suanli login FILE
    /// --profile NAME`) instead of the default one.
    #[arg(long, global = true, env = "SUANLI_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Coordinator address, HOST:PORT.
    #[arg(long, global = true, env = "SUANLI_COORDINATOR", value_name = "ADDR")]
    pub coordinator: Option<String>,
    /// Token to present. Prefer a client file, --token-file or SUANLI_TOKEN:
    /// anything in argv is visible to every user of the machine (`ps`).
    #[arg(long, global = true, env = "SUANLI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the token (surrounding whitespace ignored; keep it
    /// mode 0600). Takes precedence over --token and SUANLI_TOKEN.
    #[arg(long, global = true, env = "SUANLI_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// SHA-256 fingerprint of the coordinator's certificate (hex).
    #[arg(long, global = true, env = "SUANLI_FINGERPRINT", value_name = "HEX")]
    pub fingerprint: Option<String>,
}

/// `$XDG_CONFIG_HOME/suanli`, else `~/.config/suanli`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("neither XDG_CONFIG_HOME nor HOME is set: pass --config FILE")?;
    Ok(base.join("suanli"))
}

/// The installed client file: the default one, or a profile's.
pub fn installed_client_file(profile: Option<&str>) -> anyhow::Result<PathBuf> {
    let dir = config_dir()?;
    Ok(match profile {
        None => dir.join("client.toml"),
        Some(name) => {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                bail!("--profile is up to 64 letters, digits, `-` and `_`, not {name:?}");
            }
            dir.join("profiles").join(format!("{name}.toml"))
        }
    })
}

/// Reads a client file, warning when other users may read its token.
pub fn read_client_file(path: &Path) -> anyhow::Result<ClientFile> {
    let file = ClientFile::read(path).with_context(|| format!("reading {}", path.display()))?;
    warn_if_shared(path);
    Ok(file)
}

fn warn_if_shared(path: &Path) {
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
}

/// A resolved connection.
pub struct Target {
    pub address: SocketAddr,
    /// The address as given (a host name stays a name).
    pub address_text: String,
    pub fingerprint: String,
    pub token: String,
}

impl Connection {
    /// The client file in force, if any: --config, else the profile's
    /// (which must exist), else the default one when it exists.
    fn client_file(&self) -> anyhow::Result<Option<ClientFile>> {
        if let Some(path) = &self.config {
            return read_client_file(path).map(Some);
        }
        let path = installed_client_file(self.profile.as_deref())?;
        if self.profile.is_some() || path.exists() {
            return read_client_file(&path)
                .with_context(|| "install one with `suanli login FILE`")
                .map(Some);
        }
        Ok(None)
    }

    pub fn resolve(&self) -> anyhow::Result<Target> {
        let file = self.client_file()?;
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
                    "no {what}: install a client file with `suanli login FILE` (or pass --config FILE, or --{what} / SUANLI_{})",
                    what.to_uppercase()
                ),
            }
        };
        let address = pick(
            &self.coordinator,
            file.as_ref().map(|f| &f.address),
            "coordinator",
        )?;
        let address_text = address.clone();
        let address = address
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve coordinator address {address}"))?
            .next()
            .with_context(|| format!("coordinator address {address} resolves to nothing"))?;
        Ok(Target {
            address,
            address_text,
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
        warn_if_shared(path);
        Ok(Some(token.to_owned()))
    }

    /// Connects as `role` (an admin token also passes as a tenant).
    /// Uploads and downloads draw a progress bar on a terminal.
    pub async fn connect(&self, role: Role) -> anyhow::Result<Client> {
        let t = self.resolve()?;
        let mut client = Client::connect(t.address, &t.fingerprint, &t.token, role)
            .await
            .with_context(|| format!("cannot connect to the coordinator at {}", t.address))?;
        client.set_progress(super::progress::transfers());
        Ok(client)
    }

    /// Connects as `preferred`, or, when the coordinator says the token has
    /// another role (`NetError::WrongRole`), as that role: for commands
    /// every role may run (usage, invoice, price list). Returns the role
    /// connected as (an admin token accepted as a tenant reports `Tenant`).
    pub async fn connect_any(&self, preferred: Role) -> anyhow::Result<(Client, Role)> {
        let t = self.resolve()?;
        let context = || format!("cannot connect to the coordinator at {}", t.address);
        match Client::connect(t.address, &t.fingerprint, &t.token, preferred).await {
            Ok(client) => Ok((client, preferred)),
            Err(NetError::WrongRole { actual, .. }) => {
                let client = Client::connect(t.address, &t.fingerprint, &t.token, actual)
                    .await
                    .with_context(context)?;
                Ok((client, actual))
            }
            Err(e) => Err(anyhow::Error::new(e).context(context())),
        }
    }
}
