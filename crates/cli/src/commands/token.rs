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
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: TokenCommand, conn: Connection) -> anyhow::Result<ExitCode> {
    let TokenCommand::Create { role, name, json } = cmd;
    let Some(role) = Role::parse(&role) else {
        bail!("--role must be admin, tenant or node, not {role:?}");
    };
    let client = conn.connect(Role::Admin).await?;
    let token = client.create_token(role, &name).await?;
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
