use std::process::ExitCode;

use anyhow::bail;
use suanli_proto::Role;

use super::connect::Connection;

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
        #[arg(long)]
        json: bool,
    },
    /// List every token: name, role, created, last used (to the minute),
    /// revoked. Secrets are never shown again.
    List {
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
    let (role, name, max_slots, json) = match cmd {
        TokenCommand::List { json } => return list(conn, json).await,
        TokenCommand::Revoke { name } => return revoke(conn, &name).await,
        TokenCommand::Create {
            role,
            name,
            max_slots,
            json,
        } => (role, name, max_slots, json),
    };
    let Some(role) = Role::parse(&role) else {
        bail!("--role must be admin, tenant or node, not {role:?}");
    };
    let client = conn.connect(Role::Admin).await?;
    let token = client.create_token_with(role, &name, max_slots).await?;
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

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (H. Hinnant's civil_from_days).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(1_798_761_599_000), "2026-12-31T23:59:59Z");
    }
}
