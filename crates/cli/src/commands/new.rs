//! `suanli new`: a standalone job crate, outside any workspace, that builds
//! with `cargo build --release --target wasm32-wasip2` and runs with
//! `suanli run`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// The directory to create; its last component is the crate's name
    /// (letters, digits, `-` and `_`, starting with a letter).
    path: PathBuf,
    /// What the job starts as: `vector-add` (two f32 vectors summed on the
    /// GPU), `matmul` (tiled matrix product) or `empty` (echoes its input).
    #[arg(long, value_enum, default_value = "vector-add")]
    template: Template,
    /// Depend on the guest SDK (`suanli-guest`) in this directory. Default:
    /// the SDK of the source tree this binary was built from, if it is
    /// still there.
    #[arg(long, value_name = "DIR", conflicts_with = "sdk_git")]
    sdk_path: Option<PathBuf>,
    /// Depend on the guest SDK from this git repository instead (the
    /// repository's workspace holds `suanli-guest`).
    #[arg(long, value_name = "URL")]
    sdk_git: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Template {
    VectorAdd,
    Matmul,
    Empty,
}

impl Template {
    /// The crate's source files: (path in the crate, contents). The
    /// shaders are the examples' own, so template and example never drift.
    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Template::VectorAdd => &[
                (
                    "src/lib.rs",
                    include_str!("../../templates/vector-add/lib.rs"),
                ),
                (
                    "src/add.wgsl",
                    include_str!("../../../../examples/vector-add/src/add.wgsl"),
                ),
            ],
            Template::Matmul => &[
                ("src/lib.rs", include_str!("../../templates/matmul/lib.rs")),
                (
                    "src/matmul.wgsl",
                    include_str!("../../../../examples/matmul/src/matmul.wgsl"),
                ),
            ],
            Template::Empty => &[("src/lib.rs", include_str!("../../templates/empty/lib.rs"))],
        }
    }
}

/// Where this binary's own guest SDK was, at build time.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../guest-sdk");

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = crate_name(&args.path)?;
    let sdk = sdk_dependency(&args)?;
    if args.path.exists() {
        bail!(
            "{} already exists; choose a new directory",
            args.path.display()
        );
    }
    write_crate(&args.path, &name, &sdk, args.template)?;
    let wasm = format!(
        "target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    println!(
        "created {} ({name}), depending on {sdk}",
        args.path.display()
    );
    println!();
    println!("  cd {}", args.path.display());
    println!("  cargo build --release --target wasm32-wasip2");
    println!("  suanli run {wasm}");
    Ok(ExitCode::SUCCESS)
}

/// The crate name: the path's last component, as cargo accepts it.
fn crate_name(path: &Path) -> anyhow::Result<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no usable last component", path.display()))?;
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid || name.len() > 64 {
        bail!(
            "{name:?} is not a crate name: use up to 64 letters, digits, `-` and `_`, starting with a letter"
        );
    }
    Ok(name.to_owned())
}

/// The `suanli-guest = …` value for Cargo.toml.
fn sdk_dependency(args: &Args) -> anyhow::Result<String> {
    if let Some(url) = &args.sdk_git {
        return Ok(format!("{{ git = {} }}", toml_string(url)));
    }
    let dir = args
        .sdk_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(BUILT_SDK));
    let dir = dir.canonicalize().map_err(|_| {
        anyhow::anyhow!(
            "no guest SDK at {}: pass --sdk-path DIR (the guest-sdk directory of a suanli checkout) or --sdk-git URL",
            dir.display()
        )
    })?;
    if !dir.join("Cargo.toml").is_file() {
        bail!("{} is not a crate (no Cargo.toml)", dir.display());
    }
    let dir = dir
        .to_str()
        .with_context(|| format!("{} is not UTF-8", dir.display()))?;
    Ok(format!("{{ path = {} }}", toml_string(dir)))
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn write_crate(dir: &Path, name: &str, sdk: &str, template: Template) -> anyhow::Result<()> {
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# A job is a WebAssembly component: build with
#   cargo build --release --target wasm32-wasip2
crate-type = ["cdylib"]

[dependencies]
suanli-guest = {sdk}

# A crate of its own, not a member of any enclosing workspace.
[workspace]
"#
    );
    let wasm = format!(
        "target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    let readme = format!(
        "# {name}\n\nA suanli GPU job.\n\n```sh\ncargo build --release --target wasm32-wasip2\nsuanli run {wasm}\nsuanli submit {wasm} --wait   # on a cluster\n```\n"
    );
    let mut files: Vec<(&str, &str)> = vec![
        ("Cargo.toml", &manifest),
        ("README.md", &readme),
        (".gitignore", "/target\n"),
        (
            ".cargo/config.toml",
            "[build]\ntarget = \"wasm32-wasip2\"\n",
        ),
    ];
    files.extend_from_slice(template.files());
    for (path, contents) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_follow_cargo() {
        assert_eq!(crate_name(Path::new("/tmp/x/hello")).unwrap(), "hello");
        assert_eq!(crate_name(Path::new("my-job_2")).unwrap(), "my-job_2");
        for bad in ["2fast", "a b", "é", "-x", "."] {
            assert!(crate_name(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_quoted_for_toml() {
        for path in [r#"C:\a "b""#, "/home/o'neil/sdk", "/tmp/x y/é"] {
            let doc: toml::Table = toml::from_str(&format!("p = {}", toml_string(path))).unwrap();
            assert_eq!(doc["p"].as_str(), Some(path));
        }
    }
}
