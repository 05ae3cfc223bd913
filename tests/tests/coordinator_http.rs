//! An operator's monitoring reads the coordinator over HTTP (`suanli
//! coordinator --http`): /healthz, /readyz and /metrics, whose numbers must
//! equal what `suanli usage`, `suanli nodes` and the blob directory say
//! after known jobs. Real processes.

use suanli_e2e::http::{get, request, sample, wait_for};
use suanli_e2e::procs::{NodeExtras, ProcCluster};
use suanli_e2e::{guest_dir, guest_wasm, ok_json, suanli};

fn blob_dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += blob_dir_bytes(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

#[test]
fn coordinator_metrics_match_the_ledger_after_known_jobs() {
    let cluster = ProcCluster::start_ext(1, 2, NodeExtras::default(), &["--http", "127.0.0.1:0"]);
    let addr = cluster.http_addr();
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".into()));
    let (status, body) = get(&addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    wait_for("the node registered", || {
        let (_, m) = get(&addr, "/metrics");
        sample(&m, "suanli_nodes") == Some(1.0)
    });

    cluster.set_price("default", "2.5");
    let tenant = cluster.token("tenant", "alice");
    guest_wasm("vector_add");
    let job = guest_dir().join("vector_add.wasm");
    let [address, fingerprint] = cluster.conn();
    let env = [address, fingerprint, ("SUANLI_TOKEN", tenant.as_str())];
    for _ in 0..3 {
        let done = ok_json(&suanli(
            &["submit", job.to_str().unwrap(), "--wait", "--json"],
            &env,
        ));
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    // One job no node can take stays queued.
    let queued = ok_json(&suanli(
        &[
            "submit",
            job.to_str().unwrap(),
            "--min-gpu-memory",
            "1PiB",
            "--json",
        ],
        &env,
    ));
    assert!(queued["job"].as_u64().is_some(), "{queued}");
    // A handshake with an unknown token is refused and counted.
    let bad = [address, fingerprint, ("SUANLI_TOKEN", "sl_0000")];
    assert!(!suanli(&["jobs"], &bad).status.success());

    // The ledger part is a snapshot at most 5 s old (SNAPSHOT_TTL).
    let mut m = String::new();
    wait_for("the snapshot shows the jobs", || {
        let (status, text) = get(&addr, "/metrics");
        assert_eq!(status, 200);
        m = text;
        sample(&m, "suanli_jobs{state=\"queued\"}") == Some(1.0)
    });
    let at = |series: &str| sample(&m, series).unwrap_or_else(|| panic!("no {series} in\n{m}"));
    assert_eq!(at("suanli_jobs{state=\"succeeded\"}"), 3.0);
    assert_eq!(at("suanli_jobs{state=\"queued\"}"), 1.0);
    assert_eq!(at("suanli_jobs{state=\"failed\"}"), 0.0);
    assert_eq!(at("suanli_attempts{outcome=\"succeeded\"}"), 3.0);
    assert_eq!(at("suanli_queue_jobs{tenant=\"alice\"}"), 1.0);
    assert!(at("suanli_queue_oldest_age_seconds{tenant=\"alice\"}") >= 0.0);
    assert_eq!(at("suanli_nodes"), 1.0);
    assert_eq!(at("suanli_gpus"), 1.0);
    assert_eq!(at("suanli_slots"), 2.0);
    assert_eq!(at("suanli_slots_busy"), 0.0);
    assert_eq!(at("suanli_scheduling_delay_seconds_count"), 3.0);
    assert_eq!(at("suanli_request_seconds_count{kind=\"submit\"}"), 4.0);
    assert!(at("suanli_ledger_commit_seconds_count") >= 4.0);
    assert_eq!(at("suanli_refusals_total{reason=\"unknown_token\"}"), 1.0);
    assert_eq!(
        sample(&m, "suanli_refusals_total{reason=\"credit_limit\"}"),
        None
    );
    assert_eq!(at("suanli_connections{role=\"node\"}"), 1.0);

    // Money and GPU time per class equal the ledger's usage report.
    let admin = [address, fingerprint];
    let by_class = ok_json(&suanli(
        &[
            "--config",
            &cluster.config,
            "usage",
            "--group-by",
            "class",
            "--format",
            "json",
        ],
        &admin,
    ));
    let groups: Vec<_> = by_class
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["class"] != "total")
        .collect();
    assert_eq!(groups.len(), 1, "{by_class}");
    assert!(groups[0]["cost_micros"].as_u64().unwrap() > 0, "{by_class}");
    for g in groups {
        let class = g["class"].as_str().unwrap();
        let label = format!("{{class=\"{class}\"}}");
        assert_eq!(
            at(&format!("suanli_revenue_micros_total{label}")),
            g["cost_micros"].as_u64().unwrap() as f64
        );
        assert_eq!(
            at(&format!("suanli_gpu_seconds_billed_total{label}")),
            g["charged_gpu_ns"].as_u64().unwrap() as f64 / 1e9
        );
        assert_eq!(
            at(&format!("suanli_gpu_seconds_metered_total{label}")),
            g["gpu_ns"].as_u64().unwrap() as f64 / 1e9
        );
    }
    // Stored blob bytes equal the files in the blob directory.
    assert_eq!(
        at("suanli_blob_store_bytes"),
        blob_dir_bytes(&cluster.data.join("blobs")) as f64
    );

    let (status, _, _) = request(&addr, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405, "read-only endpoints");
}
