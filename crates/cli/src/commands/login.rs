//! `suanli login FILE`: installs a client file (address, fingerprint,
//! token) where every client command finds it, so no secret is ever typed
//! on a command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use suanli_coordinator::ClientFile;

use super::connect::{Connection, installed_client_file, read_client_file};

#[derive(clap::Args)]
pub struct Args {
    /// The client file to install (as written by `suanli token create
    /// --client-config FILE`). It is copied, mode 0600, to
    /// `$XDG_CONFIG_HOME/suanli/client.toml`, or to
    /// `$XDG_CONFIG_HOME/suanli/profiles/NAME.toml` with --profile NAME.
    file: PathBuf,
    /// Replace an installed file of the same profile.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args, conn: &Connection) -> anyhow::Result<ExitCode> {
    let file = read_client_file(&args.file)?;
    check_complete(&file)?;
    let target = installed_client_file(conn.profile.as_deref())?;
    if target.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to replace it, or --profile NAME to keep both",
            target.display()
        );
    }
    if let Some(dir) = target.parent() {
        create_private_dir(dir)?;
    }
    file.write(&target)
        .with_context(|| format!("cannot write {}", target.display()))?;
    eprintln!(
        "installed {} for coordinator {}{}",
        target.display(),
        file.address,
        conn.profile
            .as_deref()
            .map(|p| format!(" (use it with --profile {p})"))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// A usable client file names all three values.
pub fn check_complete(file: &ClientFile) -> anyhow::Result<()> {
    for (what, value) in [
        ("address", &file.address),
        ("fingerprint", &file.fingerprint),
        ("token", &file.token),
    ] {
        if value.trim().is_empty() {
            bail!("the client file has no {what}");
        }
    }
    Ok(())
}

/// Creates `dir` (and its parents) readable only by its owner.
pub fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}
