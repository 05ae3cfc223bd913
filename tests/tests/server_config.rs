//! Operators configure the coordinator and the node with files (every flag
//! under its own name, flags winning), never see the admin token on
//! stdout, and stop the coordinator with SIGTERM: real processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use suanli_e2e::procs::Running;
use suanli_e2e::{NO_CONFIG_HOME, guest_dir, guest_wasm, ok_json, suanli, suanli_bin};

/// `suanli coordinator ARGS` and what it printed up to `client config:`.
fn start(args: &[&str]) -> (Running, String) {
    let mut child = Command::new(suanli_bin())
        .args(args)
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("client config:") {
            break;
        }
    }
    (Running(child), printed)
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn coordinator_and_node_take_config_files_and_the_coordinator_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coord");
    let file = write(
        &dir.path().join("coordinator.toml"),
        &format!(
            "# a comment\nlisten = \"127.0.0.1:0\"\ndata = {:?}\nstorage-quota = \"1MiB\"\nrequest-timeout = \"20s\"\n",
            data.to_str().unwrap()
        ),
    );
    let (mut coordinator, printed) = start(&["coordinator", "--config", &file]);
    assert!(
        printed.contains("coordinator listening on 127.0.0.1:"),
        "{printed}"
    );
    assert!(
        printed.contains("admin token: new, written to"),
        "{printed}"
    );
    assert!(!printed.contains("sl_"), "no token on stdout: {printed}");
    let admin = data.join("client.toml");
    let admin = admin.to_str().unwrap();
    let conn: toml::Table = toml::from_str(&std::fs::read_to_string(admin).unwrap()).unwrap();

    // The node's file: its client file (token from a file) and its flags.
    let token = ok_json(&suanli(
        &[
            "--config", admin, "token", "create", "--role", "node", "--name", "prov", "--json",
        ],
        &[],
    ))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_file = write(&dir.path().join("node.token"), &token);
    let node_file = write(
        &dir.path().join("node.toml"),
        &format!(
            "address = {}\nfingerprint = {}\ntoken-file = {token_file:?}\ndata = {:?}\nslots = 2\nmax-job-timeout = \"10m\"\n",
            conn["address"],
            conn["fingerprint"],
            dir.path().join("node").to_str().unwrap()
        ),
    );
    let _node = Running(
        Command::new(suanli_bin())
            .args(["node", "--config", &node_file])
            .env("NODEVICE_SELECT", "1")
            .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let node = loop {
        let nodes = ok_json(&suanli(&["--config", admin, "nodes", "--json"], &[]));
        if let Some(n) = nodes.as_array().unwrap().first() {
            break n.clone();
        }
        assert!(Instant::now() < deadline, "the node did not register");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(node["name"], "prov");
    assert_eq!(node["slots"], 2);
    assert_eq!(node["caps"]["max_timeout_ns"], 600_000_000_000u64);

    // The file's storage quota holds: a 2 MiB input does not fit 1 MiB.
    guest_wasm("vector_add");
    let input = write(&dir.path().join("big.bin"), &"x".repeat(2 << 20));
    let job = guest_dir().join("vector_add.wasm");
    let tenant = dir.path().join("alice.toml");
    let create = [
        "--config", admin, "token", "create", "--role", "tenant", "--name", "alice",
    ];
    let tenant_file = ["--client-config", tenant.to_str().unwrap()];
    let made = suanli(&[&create[..], &tenant_file[..]].concat(), &[]);
    assert!(made.status.success());
    let refused = suanli(
        &[
            "--config",
            tenant.to_str().unwrap(),
            "submit",
            job.to_str().unwrap(),
            "--input",
            &input,
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("storage quota exceeded"), "{stderr}");

    // Client flags and unknown settings are refused, not ignored.
    let bad = suanli(&["coordinator", "--config", &file, "--token", "x"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("does not take --token"));
    let typo = write(&dir.path().join("typo.toml"), "lisen = \"127.0.0.1:0\"\n");
    let bad = suanli(&["coordinator", "--config", &typo], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown setting `lisen`"));

    // SIGTERM: the coordinator closes its connections and exits 0.
    let pid = coordinator.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = coordinator.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
