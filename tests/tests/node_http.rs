//! A provider's monitoring reads the node over HTTP (`suanli node --http`):
//! /healthz, /readyz (connected and every slot live) and /metrics, whose
//! numbers must equal what the ledger recorded. Real processes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use suanli_e2e::http::{get, sample, wait_for};
use suanli_e2e::procs::{ProcCluster, Running};
use suanli_e2e::{NO_CONFIG_HOME, guest_dir, guest_wasm, ok_json, suanli, suanli_bin};

#[test]
fn node_metrics_match_the_ledger_and_readiness_follows_the_connection() {
    let mut cluster = ProcCluster::start(0, 1);
    let token = cluster.token("node", "watched");
    let mut child = Command::new(suanli_bin())
        .args(["node", "--slots", "1", "--http", "127.0.0.1:0", "--data"])
        .arg(cluster.dir.path().join("node"))
        .envs(cluster.conn())
        .env("SUANLI_TOKEN", &token)
        .env("NODEVICE_SELECT", "1")
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _node = Running(child);
    let mut lines = BufReader::new(stdout).lines().map(|l| l.unwrap());
    let addr = lines
        .by_ref()
        .find_map(|l| {
            l.strip_prefix("http: http://")
                .map(|r| r.split('/').next().unwrap().to_owned())
        })
        .expect("the node prints its HTTP address");
    // Keep reading, so the node never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    assert_eq!(get(&addr, "/healthz").0, 200);
    wait_for("the node became ready", || get(&addr, "/readyz").0 == 200);
    let (status, _) = get(&addr, "/nope");
    assert_eq!(status, 404);

    let tenant = cluster.token("tenant", "alice");
    guest_wasm("vector_add");
    let job = guest_dir().join("vector_add.wasm");
    let [address, fingerprint] = cluster.conn();
    let env = [address, fingerprint, ("SUANLI_TOKEN", tenant.as_str())];
    let done = ok_json(&suanli(
        &["submit", job.to_str().unwrap(), "--wait", "--json"],
        &env,
    ));
    assert_eq!(done["state"], "succeeded", "{done}");
    let gpu_ns = done["attempts"][0]["gpu_ns"].as_f64().unwrap();

    let (status, metrics) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sample(&metrics, "suanli_node_slots"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "suanli_node_slots_busy"), Some(0.0));
    assert_eq!(sample(&metrics, "suanli_node_connected"), Some(1.0));
    assert_eq!(
        sample(
            &metrics,
            "suanli_node_gpu_busy_nanoseconds_total{gpu=\"default\"}"
        ),
        Some(gpu_ns),
        "the node's GPU time equals the attempt's in the ledger: {metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "suanli_node_job_duration_seconds_count{outcome=\"succeeded\"}"
        ),
        Some(1.0)
    );
    assert!(metrics.contains("suanli_node_device{name="), "{metrics}");
    assert!(sample(&metrics, "suanli_node_blob_cache_bytes").unwrap() > 0.0);

    // Without its coordinator the node is alive but not ready.
    cluster.kill_coordinator();
    wait_for("readyz turned 503", || get(&addr, "/readyz").0 == 503);
    let (_, body) = get(&addr, "/readyz");
    assert!(body.contains("not connected"), "{body}");
    assert_eq!(get(&addr, "/healthz").0, 200);
}
