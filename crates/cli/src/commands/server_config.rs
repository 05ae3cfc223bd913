//! Config files for the two long-running commands: `suanli coordinator
//! --config coordinator.toml` and `suanli node --config node.toml`.
//!
//! Every flag of the command can be set in the file under the flag's own
//! name (`max-connections = 500`, `retention = "7d"`, `gpu = [0, 1]`); a
//! flag given on the command line wins over the file. The file is turned
//! into flags before parsing, so its values go through exactly the parsing
//! and checks the flags do. A node's file is also its client file: its
//! `address`, `fingerprint` and `token` (or `token-file`) say how it reaches
//! the coordinator. Client-only flags given to `suanli coordinator` are
//! refused rather than ignored.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, bail};

/// Global flags that take a value (so the value is not the subcommand).
const GLOBAL_WITH_VALUE: [&str; 7] = [
    "--log-format",
    "--config",
    "--profile",
    "--coordinator",
    "--token",
    "--token-file",
    "--fingerprint",
];

/// Keys of a node's file that belong to its client file, not to flags.
const CLIENT_KEYS: [&str; 3] = ["address", "fingerprint", "token"];

/// `argv` with the settings of a server command's config file added as
/// flags; unchanged for every other command.
pub fn expand(argv: Vec<OsString>, cmd: &clap::Command) -> anyhow::Result<Vec<OsString>> {
    let Some(args) = argv
        .iter()
        .map(|a| a.to_str().map(str::to_owned))
        .collect::<Option<Vec<String>>>()
    else {
        return Ok(argv); // not UTF-8: clap reports it
    };
    let Some(at) = subcommand_index(&args) else {
        return Ok(argv);
    };
    let expanded = match args[at].as_str() {
        "coordinator" => coordinator(args, at, cmd)?,
        "node" if !is_node_admin(&args[at + 1..]) => node(args, at, cmd)?,
        _ => return Ok(argv),
    };
    Ok(expanded.into_iter().map(OsString::from).collect())
}

/// Where the subcommand is: the first word that is neither a flag nor a
/// global flag's value.
fn subcommand_index(args: &[String]) -> Option<usize> {
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if GLOBAL_WITH_VALUE.contains(&a.as_str()) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return Some(i);
        }
    }
    None
}

/// `node drain|undrain|restore NAME` are admin commands, not the node.
fn is_node_admin(rest: &[String]) -> bool {
    rest.iter()
        .find(|a| !a.starts_with('-'))
        .is_some_and(|a| ["drain", "undrain", "restore"].contains(&a.as_str()))
}

/// The value of `--name V` or `--name=V`, and where its tokens are.
fn flag_value(args: &[String], name: &str) -> Option<(String, std::ops::Range<usize>)> {
    let prefix = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            args.get(i + 1).map(|v| (v.clone(), i..i + 2))
        } else {
            a.strip_prefix(&prefix).map(|v| (v.to_owned(), i..i + 1))
        }
    })
}

fn coordinator(
    mut args: Vec<String>,
    at: usize,
    cmd: &clap::Command,
) -> anyhow::Result<Vec<String>> {
    let client_only = GLOBAL_WITH_VALUE
        .iter()
        .filter(|f| !["--config", "--log-format"].contains(*f));
    for flag in client_only {
        if flag_value(&args, flag).is_some() {
            bail!(
                "`suanli coordinator` does not take {flag}: it is a client flag (the coordinator's settings are its own flags, or --config FILE)"
            );
        }
    }
    let Some((path, tokens)) = flag_value(&args, "--config") else {
        return Ok(args);
    };
    // The file is the coordinator's, not a client file.
    args.drain(tokens.clone());
    let at = if tokens.start < at {
        at - tokens.len()
    } else {
        at
    };
    let sub = subcommand(cmd, "coordinator")?;
    let flags = file_flags(Path::new(&path), sub, &args, &[])?;
    args.splice(at + 1..at + 1, flags);
    Ok(args)
}

fn node(mut args: Vec<String>, at: usize, cmd: &clap::Command) -> anyhow::Result<Vec<String>> {
    let path = match flag_value(&args, "--config") {
        Some((path, _)) => path,
        None => match std::env::var("SUANLI_CONFIG") {
            Ok(path) if !path.is_empty() => path,
            _ => return Ok(args),
        },
    };
    let sub = subcommand(cmd, "node")?;
    let flags = file_flags(Path::new(&path), sub, &args, &["token-file"])?;
    args.splice(at + 1..at + 1, flags);
    Ok(args)
}

fn subcommand<'a>(cmd: &'a clap::Command, name: &str) -> anyhow::Result<&'a clap::Command> {
    cmd.find_subcommand(name)
        .with_context(|| format!("no subcommand {name}"))
}

/// The file's settings as flags, leaving out those given on the command
/// line. `extra` are global flags the file may also set.
fn file_flags(
    path: &Path,
    sub: &clap::Command,
    args: &[String],
    extra: &[&str],
) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let known: Vec<&str> = sub
        .get_arguments()
        .filter(|a| !a.is_global_set() && !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "help")
        .chain(extra.iter().copied())
        .collect();
    let is_node = sub.get_name() == "node";
    let mut flags = Vec::new();
    for (key, value) in &table {
        if is_node && CLIENT_KEYS.contains(&key.as_str()) {
            continue; // read by the client-file lookup
        }
        if !known.contains(&key.as_str()) {
            bail!(
                "{}: unknown setting `{key}`; the settings are the flags of `suanli {}`: {}",
                path.display(),
                sub.get_name(),
                known.join(", ")
            );
        }
        let flag = format!("--{key}");
        if flag_value(args, &flag).is_some() || args.contains(&flag) {
            continue; // the command line wins
        }
        push_flag(&mut flags, &flag, value)
            .with_context(|| format!("{}: setting `{key}`", path.display()))?;
    }
    Ok(flags)
}

fn push_flag(flags: &mut Vec<String>, flag: &str, value: &toml::Value) -> anyhow::Result<()> {
    match value {
        toml::Value::Boolean(true) => flags.push(flag.to_owned()),
        toml::Value::Boolean(false) => {}
        toml::Value::String(s) => flags.extend([flag.to_owned(), s.clone()]),
        toml::Value::Integer(n) => flags.extend([flag.to_owned(), n.to_string()]),
        toml::Value::Float(x) => flags.extend([flag.to_owned(), x.to_string()]),
        toml::Value::Array(items) => {
            for item in items {
                if matches!(item, toml::Value::Array(_) | toml::Value::Table(_)) {
                    bail!("a list holds plain values");
                }
                push_flag(flags, flag, item)?;
            }
        }
        toml::Value::Table(_) | toml::Value::Datetime(_) => {
            bail!("takes a string, a number, true/false or a list of them")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn expand_with(file: &str, args: &[&str]) -> anyhow::Result<Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, file).unwrap();
        let argv: Vec<OsString> = args
            .iter()
            .map(|a| a.replace("FILE", path.to_str().unwrap()).into())
            .collect();
        let out = expand(argv, &crate::Cli::command())?;
        Ok(out
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .map(|a| {
                if a == path.to_str().unwrap() {
                    "FILE".into()
                } else {
                    a
                }
            })
            .collect())
    }

    #[test]
    fn file_settings_become_flags_and_flags_win() {
        let file = "listen = \"0.0.0.0:7878\"\nretention = \"7d\"\nmax-connections = 500\n";
        let out = expand_with(
            file,
            &[
                "suanli",
                "coordinator",
                "--config",
                "FILE",
                "--listen",
                "127.0.0.1:1",
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            [
                "suanli",
                "coordinator",
                "--max-connections",
                "500",
                "--retention",
                "7d",
                "--listen",
                "127.0.0.1:1"
            ]
        );
    }

    #[test]
    fn node_files_hold_the_client_file_and_lists() {
        let file = "address = \"h:1\"\nfingerprint = \"ab\"\ntoken-file = \"/t\"\ngpu = [0, 1]\nslots = 2\n";
        let out = expand_with(file, &["suanli", "--config", "FILE", "node"]).unwrap();
        assert_eq!(
            out,
            [
                "suanli",
                "--config",
                "FILE",
                "node",
                "--gpu",
                "0",
                "--gpu",
                "1",
                "--slots",
                "2",
                "--token-file",
                "/t"
            ]
        );
        // `node drain` is an admin command: its --config is a client file.
        let out = expand_with(file, &["suanli", "--config", "FILE", "node", "drain", "x"]).unwrap();
        assert_eq!(out, ["suanli", "--config", "FILE", "node", "drain", "x"]);
    }

    #[test]
    fn unknown_settings_and_client_flags_are_refused() {
        let err = expand_with(
            "lisen = \"x\"\n",
            &["suanli", "coordinator", "--config", "FILE"],
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown setting `lisen`"),
            "{err:#}"
        );
        let err = expand_with("", &["suanli", "--token", "t", "coordinator"]).unwrap_err();
        assert!(
            format!("{err:#}").contains("does not take --token"),
            "{err:#}"
        );
        let err = expand_with(
            "data = { a = 1 }\n",
            &["suanli", "coordinator", "--config", "FILE"],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("setting `data`"), "{err:#}");
        let out = expand_with("", &["suanli", "submit", "--config", "FILE", "x.wasm"]).unwrap();
        assert_eq!(
            out,
            ["suanli", "submit", "--config", "FILE", "x.wasm"],
            "clients untouched"
        );
    }
}

#[cfg(test)]
mod deploy_examples {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// The examples in deploy/ set every setting they show to a valid value.
    #[test]
    fn the_deploy_examples_parse() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        for (command, file) in [("coordinator", "coordinator.toml"), ("node", "node.toml")] {
            let path = deploy.join(file);
            let argv: Vec<OsString> = ["suanli", command, "--config", path.to_str().unwrap()]
                .iter()
                .map(OsString::from)
                .collect();
            let argv = expand(argv, &crate::Cli::command()).unwrap();
            assert!(argv.len() > 8, "{file}: settings became flags");
            if let Err(e) = crate::Cli::try_parse_from(&argv) {
                panic!("{file}: {e}");
            }
        }
    }
}
