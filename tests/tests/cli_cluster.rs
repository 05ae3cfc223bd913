//! The cluster driven as an operator, a provider and a tenant drive it: real
//! `suanli coordinator` and `suanli node` processes, client commands with
//! `--config`, environment variables and `--json`.

use suanli_e2e::procs::{create_token, spawn_node, start_coordinator, toml_lines};
use suanli_e2e::{guest_dir, guest_wasm, ok_json, suanli};

#[test]
fn operator_provider_and_tenant_use_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coordinator");
    let (_coordinator, printed) = start_coordinator(&data, "127.0.0.1:0");
    assert!(
        printed.contains("coordinator listening on 127.0.0.1:"),
        "{printed}"
    );
    assert!(
        printed.contains("certificate fingerprint (sha-256): "),
        "{printed}"
    );
    assert!(
        printed.contains("admin token: new, written to"),
        "{printed}"
    );
    assert!(
        !printed.contains("sl_"),
        "the token is not printed: {printed}"
    );
    let config = data.join("client.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "client.toml is private");
    }
    let config = config.to_str().unwrap();
    let file: std::collections::BTreeMap<String, String> =
        toml_lines(&std::fs::read_to_string(config).unwrap());

    let alice_token = create_token(config, "tenant", "alice");
    let node_token = create_token(config, "node", "prov");

    let conn = [
        ("SUANLI_COORDINATOR", file["address"].as_str()),
        ("SUANLI_FINGERPRINT", file["fingerprint"].as_str()),
    ];
    let node_dir = dir.path().join("node");
    let _node = spawn_node(&node_dir, &conn, &node_token);
    let tenant_env = [conn[0], conn[1], ("SUANLI_TOKEN", alice_token.as_str())];

    guest_wasm("vector_add");
    let job_path = guest_dir().join("vector_add.wasm");
    let input = vector_add::reference::encode_input(&[1.5, 2.5, 3.5], &[10.0, 20.0, 30.0]);
    let input_path = dir.path().join("in.bin");
    std::fs::write(&input_path, &input).unwrap();
    let out_path = dir.path().join("out.bin");
    let done = ok_json(&suanli(
        &[
            "submit",
            job_path.to_str().unwrap(),
            "--input",
            input_path.to_str().unwrap(),
            "--wait",
            "--output",
            out_path.to_str().unwrap(),
            "--json",
        ],
        &tenant_env,
    ));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["tenant"], "alice");
    assert_eq!(done["attempts"][0]["node"], "prov");
    assert!(done["attempts"][0]["gpu_ns"].as_u64().unwrap() > 0);
    let want = vector_add::reference::run(&input).unwrap();
    assert!(std::fs::read(&out_path).unwrap() == want);
    let id = done["id"].as_u64().unwrap().to_string();

    let jobs = ok_json(&suanli(&["jobs", "--json"], &tenant_env));
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    let table = suanli(&["jobs", "--state", "succeeded"], &tenant_env);
    let table = String::from_utf8_lossy(&table.stdout);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &header[..4],
        ["ID", "TENANT", "STATE", "OUTCOME"],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..4],
        [&done["id"].to_string(), "alice", "succeeded", "succeeded"]
    );
    let none = suanli(&["jobs", "--state", "failed", "--json"], &tenant_env);
    assert_eq!(ok_json(&none), serde_json::json!([]));
    let status = ok_json(&suanli(&["status", &id, "--json"], &tenant_env));
    assert_eq!(status["output_bytes"], want.len());
    let again = dir.path().join("again.bin");
    let result = suanli(&["result", &id, "-o", again.to_str().unwrap()], &tenant_env);
    assert!(result.status.success());
    assert!(std::fs::read(&again).unwrap() == want);

    let nodes = ok_json(&suanli(&["--config", config, "nodes", "--json"], &[]));
    assert_eq!(nodes[0]["name"], "prov");
    assert_eq!(nodes[0]["connected"], true);
    assert_eq!(nodes[0]["jobs_run"], 1);

    // A tenant may not list nodes: a clear error, exit code 2.
    let refused = suanli(&["nodes"], &tenant_env);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("it is a tenant token, not an admin token")
    );
    // A submission without a token says how to give one.
    let no_token = suanli(&["jobs"], &[conn[0], conn[1]]);
    assert_eq!(no_token.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&no_token.stderr);
    assert!(
        stderr.contains("no token: install a client file with `suanli login FILE`"),
        "{stderr}"
    );
}

#[test]
fn a_killed_node_is_noticed_within_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coordinator");
    let (_coordinator, _) = start_coordinator(&data, "127.0.0.1:0");
    let config = data.join("client.toml");
    let config = config.to_str().unwrap();
    let file = toml_lines(&std::fs::read_to_string(config).unwrap());
    let (node_token, tenant_token) = (
        create_token(config, "node", "doomed"),
        create_token(config, "tenant", "alice"),
    );
    let conn = [
        ("SUANLI_COORDINATOR", file["address"].as_str()),
        ("SUANLI_FINGERPRINT", file["fingerprint"].as_str()),
    ];
    let mut node = spawn_node(&dir.path().join("node"), &conn, &node_token);
    let tenant_env = [conn[0], conn[1], ("SUANLI_TOKEN", tenant_token.as_str())];
    guest_wasm("misbehave");
    let job_path = guest_dir().join("misbehave.wasm");
    let deed = dir.path().join("deed");
    std::fs::write(&deed, "loop").unwrap();
    let submitted = ok_json(&suanli(
        &[
            "submit",
            job_path.to_str().unwrap(),
            "--input",
            deed.to_str().unwrap(),
            "--max-attempts",
            "1",
            "--json",
        ],
        &tenant_env,
    ));
    let id = submitted["job"].as_u64().unwrap().to_string();
    let status = || ok_json(&suanli(&["status", &id, "--json"], &tenant_env));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while status()["state"] != "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    node.0.kill().expect("kill -9 the node");
    let killed = std::time::Instant::now();
    loop {
        let s = status();
        if s["state"] == "failed" {
            assert_eq!(s["outcome"], "node_lost");
            assert_eq!(s["attempts"][0]["outcome"], "node_lost");
            assert_eq!(s["attempts"][0]["gpu_ns"], 0);
            break;
        }
        assert!(
            killed.elapsed() < std::time::Duration::from_secs(5),
            "node loss not noticed in 5 s: {s}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let noticed = killed.elapsed();
    eprintln!("node loss noticed after {noticed:?}");
    let nodes = ok_json(&suanli(&["--config", config, "nodes", "--json"], &[]));
    assert!(nodes.as_array().unwrap().is_empty());
}

#[test]
fn queued_jobs_survive_a_coordinator_kill_and_nodes_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coordinator");
    let (mut coordinator, _) = start_coordinator(&data, "127.0.0.1:0");
    let config = data.join("client.toml");
    let config = config.to_str().unwrap();
    let file = toml_lines(&std::fs::read_to_string(config).unwrap());
    let (node_token, tenant_token) = (
        create_token(config, "node", "provider"),
        create_token(config, "tenant", "alice"),
    );
    let conn = [
        ("SUANLI_COORDINATOR", file["address"].as_str()),
        ("SUANLI_FINGERPRINT", file["fingerprint"].as_str()),
    ];
    let _node = spawn_node(&dir.path().join("node"), &conn, &node_token);
    let tenant_env = [conn[0], conn[1], ("SUANLI_TOKEN", tenant_token.as_str())];
    guest_wasm("vector_add");
    let job_path = guest_dir().join("vector_add.wasm");
    let job_path = job_path.to_str().unwrap();
    // A job no node can take (it needs more GPU memory than exists) stays queued.
    let stuck = ok_json(&suanli(
        &[
            "submit",
            job_path,
            "--min-gpu-memory",
            &u64::MAX.to_string(),
            "--json",
        ],
        &tenant_env,
    ));
    let stuck = stuck["job"].as_u64().unwrap().to_string();

    coordinator.0.kill().expect("kill -9 the coordinator");
    let _ = coordinator.0.wait();
    let _coordinator = start_coordinator(&data, &file["address"]);
    let after = toml_lines(&std::fs::read_to_string(config).unwrap());
    assert_eq!(
        after, file,
        "address, fingerprint and admin token survive the restart"
    );

    let status = ok_json(&suanli(&["status", &stuck, "--json"], &tenant_env));
    assert_eq!(
        status["state"], "queued",
        "the queued job survived: {status}"
    );
    // The node reconnects by itself (backoff ≤ 5 s) and runs new work.
    let started = std::time::Instant::now();
    let done = ok_json(&suanli(
        &["submit", job_path, "--wait", "--json"],
        &tenant_env,
    ));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempts"][0]["node"], "provider");
    eprintln!(
        "first job after the restart done in {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// Issue 11: secrets stay out of argv (`--token-file`, `SUANLI_TOKEN_FILE`),
/// and `token list` / `token revoke` work from the command line.
#[test]
fn tokens_come_from_files_and_are_listed_and_revoked() {
    let cluster = suanli_e2e::procs::ProcCluster::start(0, 1);
    let token = cluster.token("tenant", "filed");
    let file = cluster.dir.path().join("filed.token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let path = file.to_str().unwrap();
    let [addr, fp] = cluster.conn();
    let by_flag = suanli(&["--token-file", path, "jobs", "--json"], &[addr, fp]);
    ok_json(&by_flag);
    let by_env = suanli(
        &["jobs", "--json"],
        &[addr, fp, ("SUANLI_TOKEN_FILE", path)],
    );
    ok_json(&by_env);
    let config = cluster.config.as_str();
    let listed = ok_json(&suanli(
        &["--config", config, "token", "list", "--json"],
        &[],
    ));
    let row = |listed: &serde_json::Value| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "filed")
            .cloned()
            .unwrap()
    };
    let filed = row(&listed);
    assert_eq!(filed["role"], "tenant");
    assert!(
        filed["last_used_ms"].is_u64() && filed["revoked_ms"].is_null(),
        "{filed}"
    );
    assert!(
        !listed.to_string().contains(&token[3..]),
        "a secret was listed"
    );
    let revoked = suanli(&["--config", config, "token", "revoke", "filed"], &[]);
    assert!(revoked.status.success(), "{revoked:?}");
    let refused = suanli(&["--token-file", path, "jobs"], &[addr, fp]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("token revoked"), "{stderr}");
    let listed = ok_json(&suanli(
        &["--config", config, "token", "list", "--json"],
        &[],
    ));
    assert!(row(&listed)["revoked_ms"].is_u64());
}

/// Prices and credit limits are typed as decimal units and stored exactly as
/// micro-units; more than six decimals or a malformed amount is refused
/// before anything is sent.
#[test]
fn amounts_are_typed_in_units_and_stored_exactly() {
    let cluster = suanli_e2e::procs::ProcCluster::start(0, 1);
    let config = cluster.config.as_str();
    let admin = |args: &[&str]| {
        let mut all = vec!["--config", config];
        all.extend_from_slice(args);
        suanli(&all, &[])
    };
    let set = admin(&["price", "set", "h100", "2.5"]);
    assert!(set.status.success(), "{set:?}");
    assert!(String::from_utf8_lossy(&set.stderr).contains("h100: 2.500000 per GPU-second"));
    let prices = ok_json(&admin(&["price", "list", "--json"]));
    let h100 = prices
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["class"] == "h100")
        .expect("h100 listed");
    assert_eq!(h100["micros"], 2_500_000);
    for (bad, why) in [
        ("1.0000001", "more than six decimals"),
        ("2,5", "not an amount"),
    ] {
        let out = admin(&["price", "set", "h100", bad]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{bad}: {err}");
    }
    let limit = admin(&["tenant", "limit", "bob", "5"]);
    assert!(limit.status.success(), "{limit:?}");
    assert!(String::from_utf8_lossy(&limit.stderr).contains("bob: credit limit 5.000000"));
}
