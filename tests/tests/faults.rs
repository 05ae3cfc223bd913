//! Faults with real processes on 127.0.0.1: nodes and the coordinator killed
//! with SIGKILL and restarted, a network cut, drain. No job is lost, none is
//! billed twice, and `suanli admin check` finds the ledger consistent.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use suanli_e2e::matmul_output_ok;
use suanli_e2e::procs::ProcCluster;
use suanli_e2e::proxy::UdpProxy;
use suanli_e2e::{TestCluster, guest_dir, guest_wasm, ok_json, suanli};
use suanli_proto::usage::UsageQuery;
use suanli_proto::{JobLimits, JobState, JobView, Outcome, Requirements, Role};

fn vector_input(seed: u64, len: usize) -> Vec<u8> {
    let a: Vec<f32> = (0..len)
        .map(|i| ((i as u64 * 31 + seed) % 977) as f32)
        .collect();
    let b: Vec<f32> = (0..len).map(|i| (seed as f32) - i as f32 * 0.25).collect();
    vector_add::reference::encode_input(&a, &b)
}

/// Every ended attempt billed at most once and only successes billed for
/// success: per job, at most one `succeeded` usage row, lost ones free.
async fn assert_billed_once(client: &suanli_net::Client, views: &[JobView]) {
    let records = client.usage_records(UsageQuery::default()).await.unwrap();
    let mut per_job: HashMap<u64, Vec<&suanli_proto::usage::UsageRecord>> = HashMap::new();
    for r in &records {
        per_job.entry(r.receipt.job).or_default().push(r);
        if r.receipt.outcome == Outcome::NodeLost {
            assert_eq!(r.cost_micros, 0);
        }
        suanli_ledger::billing::check_record(r).unwrap();
    }
    for v in views {
        let rows = per_job.get(&v.id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            rows.len(),
            v.attempts.len(),
            "job {}: one usage row per attempt",
            v.id
        );
        let succeeded = rows
            .iter()
            .filter(|r| r.receipt.outcome == Outcome::Succeeded)
            .count();
        assert_eq!(
            succeeded,
            usize::from(v.state == JobState::Succeeded),
            "job {}: {rows:?}",
            v.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_survives_its_node_being_killed() {
    let mut cluster = ProcCluster::start(2, 1);
    let token = cluster.token("tenant", "alice");
    let tenant = cluster.client(&token, Role::Tenant).await;
    // A few seconds of GPU work on lavapipe, with an exact reference.
    let p = matmul::reference::problem(384);
    let job = tenant
        .submit(
            &guest_wasm("matmul"),
            &matmul::reference::encode_input(&p),
            Requirements::default(),
            JobLimits::default(),
            3,
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        let v = tenant.status(job).await.unwrap();
        if v.state == JobState::Running {
            break v.attempts[0].node.clone();
        }
        assert!(Instant::now() < deadline, "never started: {v:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let index: usize = victim.trim_start_matches("node-").parse().unwrap();
    cluster.kill_node(index);
    let killed = Instant::now();
    let moved = loop {
        let v = tenant.status(job).await.unwrap();
        if v.attempts.len() == 2 {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "{v:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("node death -> job running elsewhere: {moved:?}");
    assert!(moved < Duration::from_secs(5), "took {moved:?}");
    let (view, output) = tenant.result(job).await.unwrap();
    assert_eq!(view.state, JobState::Succeeded, "{view:?}");
    assert!(matmul_output_ok(&p, &output), "wrong output");
    let (lost, done) = (&view.attempts[0], &view.attempts[1]);
    assert_eq!(lost.outcome, Some(Outcome::NodeLost));
    assert_eq!((lost.charged_gpu_ns, lost.cost_micros), (0, 0));
    assert_eq!(lost.node, victim);
    assert_ne!(done.node, victim);
    assert_billed_once(&tenant, &[view]).await;
    cluster.admin_check();
}

/// Attempts started so far over all the tenant's jobs.
async fn attempts_started(tenant: &suanli_net::Client) -> usize {
    let jobs = tenant.jobs().await.unwrap();
    jobs.iter().map(|j| j.attempts.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coordinator_killed_with_jobs_queued_and_running_loses_none() {
    let mut cluster = ProcCluster::start(2, 2);
    let token = cluster.token("tenant", "alice");
    let tenant = cluster.client(&token, Role::Tenant).await;
    let module = guest_wasm("vector_add");
    // A CLI client waiting on a job of its own (seconds of matmul, running
    // when the coordinator dies), across the restart.
    guest_wasm("matmul");
    let job_file = guest_dir().join("matmul.wasm");
    let dir = tempfile::tempdir().unwrap();
    let input_file = dir.path().join("in.bin");
    let cli_problem = matmul::reference::problem(512);
    std::fs::write(&input_file, matmul::reference::encode_input(&cli_problem)).unwrap();
    let out_file = dir.path().join("out.bin");
    let conn = cluster.conn();
    let mut waiting = std::process::Command::new(suanli_e2e::suanli_bin())
        .args(["submit", job_file.to_str().unwrap(), "--input"])
        .arg(&input_file)
        .arg("--wait")
        .arg("--output")
        .arg(&out_file)
        .envs(conn.iter().copied())
        .env("SUANLI_TOKEN", &token)
        .env("NODEVICE_SELECT", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tenant.jobs().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the CLI did not submit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut jobs = Vec::new();
    for seed in 0..100u64 {
        let input = vector_input(seed, 20_000 + (seed as usize % 7) * 10_000);
        let job = tenant
            .submit(
                &module,
                &input,
                Requirements::default(),
                JobLimits::default(),
                5,
            )
            .await
            .unwrap();
        jobs.push((job, input));
    }
    // Kill it once some jobs are done and others run.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = tenant.jobs().await.unwrap();
        let done = listed.iter().filter(|j| j.state.is_final()).count();
        let running = listed
            .iter()
            .filter(|j| j.state == JobState::Running)
            .count();
        if done >= 3 && running > 0 {
            eprintln!("killing the coordinator with {done} done and {running} running");
            break;
        }
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill_coordinator();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = Instant::now();
    cluster.start_coordinator();
    let tenant = cluster.client(&token, Role::Tenant).await;
    let before = attempts_started(&tenant).await;
    // The jobs may all have been done or running at the kill (group commit
    // drains a queue fast): then one more job gives a dispatch to time.
    let queued = tenant.jobs().await.unwrap();
    if !queued.iter().any(|j| j.state == JobState::Queued) {
        let input = vector_input(1000, 20_000);
        let job = tenant
            .submit(
                &module,
                &input,
                Requirements::default(),
                JobLimits::default(),
                5,
            )
            .await
            .unwrap();
        jobs.push((job, input));
    }
    let first_dispatch = loop {
        if attempts_started(&tenant).await > before {
            break restarted.elapsed();
        }
        assert!(restarted.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("coordinator restart -> first job dispatched: {first_dispatch:?}");

    let ids: Vec<u64> = jobs.iter().map(|(j, _)| *j).collect();
    let views = cluster.wait_all(&token, &ids).await;
    for ((job, input), view) in jobs.iter().zip(&views) {
        assert_eq!(view.state, JobState::Succeeded, "job {job}: {view:?}");
        let output = tenant.get_blob(view.output.unwrap()).await.unwrap();
        assert!(
            output == vector_add::reference::run(input).unwrap(),
            "job {job}: wrong output"
        );
    }
    assert_billed_once(&tenant, &views).await;
    let lost: usize = views
        .iter()
        .flat_map(|v| &v.attempts)
        .filter(|a| a.outcome == Some(Outcome::NodeLost))
        .count();
    eprintln!("attempts lost to the restart: {lost} (the rest were adopted or re-sent)");
    let status = waiting.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(waiting.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "submit --wait: {err}");
    assert!(matmul_output_ok(
        &cli_problem,
        &std::fs::read(&out_file).unwrap()
    ));
    cluster.admin_check();
}

/// Seeded chaos: 3 nodes, 200 jobs, random kill -9 and restart of nodes and
/// of the coordinator. Replay with SUANLI_CHAOS_SEED=N.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_loses_no_job_and_bills_nothing_twice() {
    let seed: u64 = std::env::var("SUANLI_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        });
    eprintln!("chaos seed {seed} (replay: SUANLI_CHAOS_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut cluster = ProcCluster::start(3, 1);
    let token = cluster.token("tenant", "alice");
    let tenant = cluster.client(&token, Role::Tenant).await;
    // Matmuls of 128..320: about 20 s of lavapipe work on three nodes, so
    // the chaos hits jobs in every state.
    let module = guest_wasm("matmul");
    let mut jobs = Vec::new();
    for _ in 0..200u64 {
        let p = matmul::reference::problem(rng.random_range(128..320));
        let job = tenant
            .submit(
                &module,
                &matmul::reference::encode_input(&p),
                Requirements::default(),
                JobLimits::default(),
                suanli_proto::MAX_ATTEMPTS,
            )
            .await
            .unwrap();
        jobs.push((job, p));
    }
    drop(tenant);
    let chaos_until = Instant::now() + Duration::from_secs(25);
    let mut events = Vec::new();
    while Instant::now() < chaos_until {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..2_000))).await;
        let target = rng.random_range(0..=cluster.nodes());
        if target == cluster.nodes() {
            if cluster.coordinator_alive() && rng.random_bool(0.5) {
                cluster.kill_coordinator();
                events.push("kill coordinator".to_owned());
            } else {
                cluster.start_coordinator();
                events.push("start coordinator".to_owned());
            }
        } else if cluster.node_alive(target) {
            cluster.kill_node(target);
            events.push(format!("kill node-{target}"));
        } else {
            cluster.start_node(target);
            events.push(format!("start node-{target}"));
        }
    }
    eprintln!("chaos events: {events:?}");
    cluster.start_coordinator();
    for i in 0..cluster.nodes() {
        cluster.start_node(i);
    }
    let ids: Vec<u64> = jobs.iter().map(|(j, _)| *j).collect();
    let views = cluster.wait_all(&token, &ids).await;
    let tenant = cluster.client(&token, Role::Tenant).await;
    let mut lost = 0;
    for ((job, p), view) in jobs.iter().zip(&views) {
        lost += view
            .attempts
            .iter()
            .filter(|a| a.outcome == Some(Outcome::NodeLost))
            .count();
        match view.state {
            JobState::Succeeded => {
                let output = tenant.get_blob(view.output.unwrap()).await.unwrap();
                assert!(
                    matmul_output_ok(p, &output),
                    "seed {seed}: job {job}: wrong output"
                );
            }
            _ => assert!(
                view.error.is_some(),
                "seed {seed}: job {job} ended without a reason: {view:?}"
            ),
        }
    }
    eprintln!(
        "chaos: {} jobs succeeded, {lost} attempts lost to the chaos",
        views
            .iter()
            .filter(|v| v.state == JobState::Succeeded)
            .count()
    );
    assert_billed_once(&tenant, &views).await;
    cluster.admin_check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_behind_a_cut_network_is_noticed_within_five_seconds() {
    let cluster = TestCluster::start().await;
    let proxy = UdpProxy::start(cluster.coordinator.addr()).await;
    let token = cluster.token(Role::Node, "remote").await;
    let mut config = suanli_node::NodeConfig::new(
        proxy.addr,
        cluster.coordinator.fingerprint().to_owned(),
        token,
        cluster.dir.path().join("remote"),
    );
    config.max_backoff = Duration::from_millis(500);
    config.worker = suanli_e2e::worker_command();
    let node = tokio::task::spawn_blocking(move || suanli_node::Node::new(config))
        .await
        .unwrap()
        .unwrap();
    let (_stop, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(node.run(stop));
    let tenant = cluster.tenant("alice").await;
    let job = tenant
        .submit(
            &guest_wasm("misbehave"),
            b"loop",
            Requirements::default(),
            JobLimits::default(),
            1,
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tenant.status(job).await.unwrap().state != JobState::Running {
        assert!(Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.cut();
    let cut = Instant::now();
    let view = tenant.wait(job).await.unwrap();
    let noticed = cut.elapsed();
    eprintln!("network cut noticed after {noticed:?}");
    assert_eq!(view.attempts[0].outcome, Some(Outcome::NodeLost));
    assert!(noticed < Duration::from_secs(5), "took {noticed:?}");
    assert!(cluster.admin.nodes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drained_node_finishes_its_job_and_takes_no_new_ones() {
    let cluster = TestCluster::start().await;
    cluster.add_node("busy", 1, None).await;
    let tenant = cluster.tenant("alice").await;
    let spin = |rounds: &'static [u8]| {
        let tenant = &tenant;
        async move {
            tenant
                .submit(
                    &guest_wasm("misbehave"),
                    rounds,
                    Requirements::default(),
                    JobLimits::default(),
                    1,
                )
                .await
                .unwrap()
        }
    };
    let first = spin(b"spin 100").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tenant.status(first).await.unwrap().state != JobState::Running {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.admin.drain_node("busy").await.unwrap();
    let second = spin(b"ok").await;
    assert_eq!(tenant.wait(first).await.unwrap().state, JobState::Succeeded);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = tenant.status(second).await.unwrap();
    assert_eq!(waiting.state, JobState::Queued, "a drained node took a job");
    assert!(cluster.admin.nodes().await.unwrap()[0].draining);
    // A fresh node picks it up.
    cluster.add_node("fresh", 1, None).await;
    let done = tenant.wait(second).await.unwrap();
    assert_eq!(done.attempts[0].node, "fresh");
    assert!(matches!(
        cluster.admin.drain_node("nobody").await,
        Err(suanli_net::NetError::Remote { .. })
    ));
    // A tenant cannot drain nodes, nor run the check.
    assert!(tenant.drain_node("fresh").await.is_err());
    assert!(tenant.check().await.is_err());
    assert_eq!(cluster.admin.check().await.unwrap(), Vec::<String>::new());
    cluster.stop_nodes();
}

#[test]
fn sigterm_drains_a_node_process_and_it_exits_after_its_job() {
    let mut cluster = ProcCluster::start(1, 1);
    let token = cluster.token("tenant", "alice");
    let (address, fingerprint) = (cluster.address.clone(), cluster.fingerprint.clone());
    let env = [
        ("SUANLI_COORDINATOR", address.as_str()),
        ("SUANLI_FINGERPRINT", fingerprint.as_str()),
        ("SUANLI_TOKEN", token.as_str()),
    ];
    let job_file = guest_dir().join("misbehave.wasm");
    guest_wasm("misbehave");
    let dir = tempfile::tempdir().unwrap();
    let deed = dir.path().join("deed");
    std::fs::write(&deed, "spin 200").unwrap();
    let submitted = ok_json(&suanli(
        &[
            "submit",
            job_file.to_str().unwrap(),
            "--input",
            deed.to_str().unwrap(),
            "--json",
        ],
        &env,
    ));
    let id = submitted["job"].as_u64().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ok_json(&suanli(&["status", &id, "--json"], &env))["state"] != "running" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.terminate_node(0);
    let exited = cluster.wait_node(0, Duration::from_secs(60));
    assert!(exited.is_some(), "the drained node did not exit");
    let done = ok_json(&suanli(&["status", &id, "--json"], &env));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempts"].as_array().unwrap().len(), 1);
    cluster.admin_check();
}
