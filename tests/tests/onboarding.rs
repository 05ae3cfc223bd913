//! A new job developer's first hour, as the README tells it: `suanli new`
//! in an empty directory outside the repository, `cargo build`, `suanli
//! run`, then the same job on a cluster with a client file an admin wrote
//! (`token create --client-config`) and `suanli login` installed.

use std::path::Path;
use std::process::{Command, Output};

use suanli_e2e::procs::ProcCluster;
use suanli_e2e::suanli_bin;

/// Runs `program` in `dir` with `env` (and no inherited suanli settings).
fn run_in(dir: &Path, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir)
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    for (k, _) in std::env::vars() {
        if k.starts_with("SUANLI_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied())
        .output()
        .expect("the command starts")
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn cargo_build(dir: &Path, target_dir: Option<&Path>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["build", "--release", "--target", "wasm32-wasip2"];
    let shared;
    if let Some(t) = target_dir {
        shared = t.to_str().unwrap().to_owned();
        args.extend(["--target-dir", &shared]);
    }
    ok(run_in(dir, Path::new(&cargo), &args, &[]), "cargo build");
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_new_job_builds_runs_locally_and_on_a_cluster_with_a_client_file() {
    let home = tempfile::tempdir().unwrap();
    let work = home.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let config_home = home.path().join("config");
    let cache = home.path().join("cache");
    let user_env = [
        ("HOME", home.path().to_str().unwrap()),
        ("XDG_CONFIG_HOME", config_home.to_str().unwrap()),
        ("XDG_CACHE_HOME", cache.to_str().unwrap()),
    ];
    let suanli = suanli_bin();
    let created = ok(run_in(&work, &suanli, &["new", "hello"], &user_env), "new");
    let printed = String::from_utf8_lossy(&created.stdout);
    assert!(
        printed.contains("suanli run target/wasm32-wasip2/release/hello.wasm"),
        "{printed}"
    );
    let krate = work.join("hello");
    cargo_build(&krate, None);
    let wasm = krate.join("target/wasm32-wasip2/release/hello.wasm");
    assert!(wasm.is_file(), "the README's path");

    let (a, b): (Vec<f32>, Vec<f32>) = (0..3000)
        .map(|i| (i as f32 * 0.5, 1000.0 - i as f32))
        .unzip();
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    std::fs::write(krate.join("in.bin"), le(&[a, b].concat())).unwrap();
    let args = [
        "run",
        "target/wasm32-wasip2/release/hello.wasm",
        "--input",
        "in.bin",
        "--output",
        "local.bin",
    ];
    ok(run_in(&krate, &suanli, &args, &user_env), "run");
    assert_eq!(f32s(&std::fs::read(krate.join("local.bin")).unwrap()), want);

    // An admin hands the developer a client file; login installs it.
    let cluster = ProcCluster::start(1, 1);
    let handed = home.path().join("dev.toml");
    let create = [
        "--config",
        cluster.config.as_str(),
        "token",
        "create",
        "--role",
        "tenant",
        "--name",
        "dev",
        "--client-config",
        handed.to_str().unwrap(),
    ];
    let created = ok(
        run_in(home.path(), &suanli, &create, &user_env),
        "token create",
    );
    assert!(created.stdout.is_empty(), "the token is not printed");
    #[cfg(unix)]
    assert_eq!(mode(&handed), 0o600);
    let file: toml::Table = toml::from_str(&std::fs::read_to_string(&handed).unwrap()).unwrap();
    assert_eq!(file["address"].as_str(), Some(cluster.address.as_str()));
    assert_eq!(
        file["fingerprint"].as_str(),
        Some(cluster.fingerprint.as_str())
    );
    assert!(file["token"].as_str().unwrap().starts_with("sl_"));
    let login = ["login", handed.to_str().unwrap()];
    ok(run_in(home.path(), &suanli, &login, &user_env), "login");
    let installed = config_home.join("suanli/client.toml");
    #[cfg(unix)]
    assert_eq!(mode(&installed), 0o600);
    let again = run_in(home.path(), &suanli, &login, &user_env);
    assert_eq!(again.status.code(), Some(2), "no silent overwrite");

    // No address, fingerprint or token on the command line or in the
    // environment: the installed file is found by itself.
    let submit = [
        "submit",
        "target/wasm32-wasip2/release/hello.wasm",
        "--input",
        "in.bin",
        "--wait",
        "--output",
        "remote.bin",
        "--json",
    ];
    let done = ok(run_in(&krate, &suanli, &submit, &user_env), "submit");
    let view: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(view["state"], "succeeded", "{view}");
    assert_eq!(view["tenant"], "dev");
    assert_eq!(
        f32s(&std::fs::read(krate.join("remote.bin")).unwrap()),
        want
    );

    // A profile holds a second file beside the default one.
    let profile = ["login", handed.to_str().unwrap(), "--profile", "work"];
    ok(
        run_in(home.path(), &suanli, &profile, &user_env),
        "login --profile",
    );
    assert!(config_home.join("suanli/profiles/work.toml").is_file());
    let jobs = ["--profile", "work", "jobs", "--json"];
    let listed = ok(run_in(home.path(), &suanli, &jobs, &user_env), "jobs");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let missing = ["--profile", "nope", "jobs"];
    let out = run_in(home.path(), &suanli, &missing, &user_env);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("suanli login"));
}

#[test]
fn the_matmul_and_empty_templates_build_and_run() {
    let home = tempfile::tempdir().unwrap();
    let shared = home.path().join("target");
    let env = [("XDG_CACHE_HOME", home.path().to_str().unwrap())];
    let suanli = suanli_bin();
    for template in ["matmul", "empty"] {
        let args = ["new", template, "--template", template];
        ok(run_in(home.path(), &suanli, &args, &env), "new");
        cargo_build(&home.path().join(template), Some(&shared));
    }
    let wasm = |name: &str| {
        shared
            .join(format!("wasm32-wasip2/release/{name}.wasm"))
            .to_str()
            .unwrap()
            .to_owned()
    };

    // matmul's default problem against a CPU product (small integers: exact).
    let run = ["run", &wasm("matmul"), "--output", "c.bin"];
    ok(run_in(home.path(), &suanli, &run, &env), "run matmul");
    let n = 64;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32).collect();
    let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 - 2.0).collect();
    let mut c = vec![0f32; n * n];
    for row in 0..n {
        for col in 0..n {
            c[row * n + col] = (0..n).map(|k| a[row * n + k] * b[k * n + col]).sum();
        }
    }
    assert_eq!(f32s(&std::fs::read(home.path().join("c.bin")).unwrap()), c);

    std::fs::write(home.path().join("in.txt"), b"echo me").unwrap();
    let run = [
        "run",
        &wasm("empty"),
        "--input",
        "in.txt",
        "--output",
        "out.txt",
    ];
    ok(run_in(home.path(), &suanli, &run, &env), "run empty");
    assert_eq!(
        std::fs::read(home.path().join("out.txt")).unwrap(),
        b"echo me"
    );
}
