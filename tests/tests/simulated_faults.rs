//! `suanli node --simulate-faults`, the testing aid validation is exercised
//! with (issue 14): real coordinator and node processes. A coordinator
//! refuses such a node unless it runs with `--allow-simulated-faults`;
//! allowed, the node lies exactly as asked (a corrupted output, inflated
//! GPU time in its signed receipt).

use suanli_e2e::http::{get, sample, try_get, wait_for};
use suanli_e2e::procs::{NodeExtras, ProcCluster};
use suanli_e2e::{guest_dir, guest_wasm, ok_json, suanli};

fn liar(faults: &str, http: Option<&str>) -> NodeExtras {
    let mut args = vec!["--simulate-faults".to_owned(), faults.to_owned()];
    if let Some(addr) = http {
        args.extend(["--http".to_owned(), addr.to_owned()]);
    }
    NodeExtras {
        args,
        env: Vec::new(),
    }
}

/// A free TCP port on 127.0.0.1 (bound and let go: nothing else here
/// takes ports meanwhile).
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn a_node_simulating_faults_is_refused_unless_the_coordinator_allows_it() {
    let cluster = ProcCluster::start_ext(1, 1, liar("wrong-output=1", None), &[]);
    wait_for("the node heard the refusal", || {
        cluster.node_log(0).contains("simulates faults")
    });
    let nodes = ok_json(&suanli(
        &["--config", &cluster.config, "nodes", "--json"],
        &[],
    ));
    assert_eq!(nodes.as_array().unwrap().len(), 0, "{nodes}");
    assert!(
        cluster.node_log(0).contains("--allow-simulated-faults"),
        "the refusal says how to allow it: {}",
        cluster.node_log(0)
    );
}

#[test]
fn an_allowed_liar_corrupts_outputs_and_inflates_gpu_time_in_its_receipts() {
    let http = free_addr();
    let cluster = ProcCluster::start_ext(
        1,
        1,
        liar("wrong-output=1,inflate-gpu=3", Some(&http)),
        &["--allow-simulated-faults"],
    );
    wait_for("the liar registered", || {
        try_get(&http, "/readyz").is_some_and(|(status, _)| status == 200)
    });
    let nodes = ok_json(&suanli(
        &["--config", &cluster.config, "nodes", "--json"],
        &[],
    ));
    assert_eq!(
        nodes[0]["simulated_faults"]["gpu_time_permille"], 3000,
        "operators see the simulation: {nodes}"
    );

    guest_wasm("vector_add");
    let job = guest_dir().join("vector_add.wasm");
    let input = vector_add::reference::encode_default_problem();
    let input_file = cluster.dir.path().join("input");
    std::fs::write(&input_file, &input).unwrap();
    let out = cluster.dir.path().join("out");
    let tenant = cluster.token("tenant", "alice");
    let [address, fingerprint] = cluster.conn();
    let env = [address, fingerprint, ("SUANLI_TOKEN", tenant.as_str())];
    let done = ok_json(&suanli(
        &[
            "submit",
            job.to_str().unwrap(),
            "--input",
            input_file.to_str().unwrap(),
            "--wait",
            "--json",
            "--output",
            out.to_str().unwrap(),
        ],
        &env,
    ));
    assert_eq!(done["state"], "succeeded", "{done}");
    // The output is wrong in exactly the way asked: its first byte flipped.
    let honest = vector_add::reference::run(&input).unwrap();
    let got = std::fs::read(&out).unwrap();
    assert_ne!(got, honest);
    let mut repaired = got.clone();
    repaired[0] ^= 0xff;
    assert_eq!(repaired, honest);
    // The signed receipt claims three times the GPU time the node metered.
    let (_, metrics) = get(&http, "/metrics");
    let metered = sample(
        &metrics,
        "suanli_node_gpu_busy_nanoseconds_total{gpu=\"default\",slot=\"0\"}",
    )
    .unwrap_or_else(|| panic!("{metrics}")) as u64;
    let claimed = done["attempts"][0]["gpu_ns"].as_u64().unwrap();
    assert!(metered > 0);
    assert_eq!(claimed, metered * 3, "{done}");
}

#[test]
fn simulated_faults_are_parsed_strictly() {
    for (bad, says) in [
        ("wrong-output=2", "0 to 1"),
        ("inflate-gpu=0.5", "1 to 1000"),
        ("lie=1", "unknown fault"),
        ("wrong-output", "KEY=VALUE"),
    ] {
        let out = suanli(&["node", "--simulate-faults", bad], &[]);
        assert!(!out.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{bad}: {stderr}");
    }
}
