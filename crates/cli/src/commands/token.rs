use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use suanli_coordinator::ClientFile;
use suanli_proto::Role;

use super::connect::Connection;
use super::units::utc;

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is shown only now.
    Create {
        /// admin, tenant or node.
        #[arg(long)]
        role: String,
        /// The tenant's, node owner's or admin's name.
        #[arg(long)]
        name: String,
        /// Node tokens: the most slots its nodes get work for, whatever they
        /// report (default 8, at most 1024).
        #[arg(long, value_name = "K")]
        max_slots: Option<u32>,
        /// Write a ready client file here (address, fingerprint, token;
        /// mode 0600) instead of printing the token: hand it to its user,
        /// who installs it with `suanli login FILE`.
        #[arg(long, value_name = "FILE")]
        client_config: Option<PathBuf>,
        /// With --client-config: the coordinator's address as the token's
        /// user reaches it (default: the address this command used).
        #[arg(long, value_name = "HOST:PORT", requires = "client_config")]
        address: Option<String>,
        /// Print `{"token", "role", "name"}` as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every token: name, role, created, last used (to the minute),
    /// revoked. Secrets are never shown again.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every token of this name: its live connections are closed
    /// within a second and later handshakes are refused ("token revoked").
    Revoke {
        /// The token's name (as in `suanli token list`).
        name: String,
    },
}

pub async fn run(cmd: TokenCommand, conn: Connection) -> anyhow::Result<ExitCode> {
    let (role, name, max_slots, client_config, address, json) = match cmd {
        TokenCommand::List { json } => return list(conn, json).await,
        TokenCommand::Revoke { name } => return revoke(conn, &name).await,
        TokenCommand::Create {
            role,
            name,
            max_slots,
            client_config,
            address,
            json,
        } => (role, name, max_slots, client_config, address, json),
    };
    let Some(role) = Role::parse(&role) else {
        bail!("--role must be admin, tenant or node, not {role:?}");
    };
    if let Some(path) = &client_config
        && path.exists()
    {
        bail!("{} already exists; choose another file", path.display());
    }
    let target = conn.resolve()?;
    let client = conn.connect(Role::Admin).await?;
    let token = client.create_token_with(role, &name, max_slots).await?;
    if let Some(path) = &client_config {
        let file = ClientFile {
            address: address.unwrap_or(target.address_text),
            fingerprint: target.fingerprint,
            token,
        };
        file.write(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "{} token {name:?} written to {} (install it with `suanli login {}`)",
            role.as_str(),
            path.display(),
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"token": token, "role": role.as_str(), "name": name})
        );
    } else {
        println!("{token}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(conn: Connection, json: bool) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Admin).await?;
    let tokens = client.tokens().await?;
    if json {
        let rows: Vec<_> = tokens
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "role": t.role.as_str(),
                    "created_ms": t.created_ms,
                    "last_used_ms": t.last_used_ms,
                    "revoked_ms": t.revoked_ms,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<7} {:<20} {:<20} REVOKED",
        "NAME", "ROLE", "CREATED", "LAST USED"
    );
    let when = |ms: Option<u64>| ms.map_or_else(|| "-".to_owned(), utc);
    for t in &tokens {
        println!(
            "{:<24} {:<7} {:<20} {:<20} {}",
            t.name,
            t.role.as_str(),
            utc(t.created_ms),
            when(t.last_used_ms),
            when(t.revoked_ms)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(conn: Connection, name: &str) -> anyhow::Result<ExitCode> {
    let client = conn.connect(Role::Admin).await?;
    client.revoke_token(name).await?;
    eprintln!("{name}: revoked (its connections were closed)");
    Ok(ExitCode::SUCCESS)
}
