//! The coordinator as a service: SIGTERM with real processes. It exits 0
//! within --shutdown-timeout, a running job is neither lost nor billed
//! twice (the node keeps it and delivers it to the restarted coordinator),
//! and clients that ask during the shutdown hear why.

use std::time::{Duration, Instant};

use suanli_e2e::matmul_output_ok;
use suanli_e2e::procs::ProcCluster;
use suanli_e2e::{guest_dir, guest_wasm, suanli};
use suanli_net::NetError;
use suanli_proto::usage::UsageQuery;
use suanli_proto::{Hash, JobState, Outcome, Request, Role};

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_a_job_running_loses_nothing_and_bills_once() {
    let cluster = ProcCluster::start(1, 1);
    let token = cluster.token("tenant", "alice");
    let tenant = cluster.client(&token, Role::Tenant).await;
    // Long enough to be running across the whole restart, with an exact
    // reference; submitted by `suanli submit --wait`, which waits across it.
    let p = matmul::reference::problem(640);
    guest_wasm("matmul");
    let files = tempfile::tempdir().unwrap();
    let (input, out) = (files.path().join("in.bin"), files.path().join("out.bin"));
    std::fs::write(&input, matmul::reference::encode_input(&p)).unwrap();
    let mut waiting = std::process::Command::new(suanli_e2e::suanli_bin())
        .arg("submit")
        .arg(guest_dir().join("matmul.wasm"))
        .arg("--input")
        .arg(&input)
        .args(["--wait", "--output"])
        .arg(&out)
        .envs(cluster.conn().iter().copied())
        .env("SUANLI_TOKEN", &token)
        .env("XDG_CONFIG_HOME", suanli_e2e::NO_CONFIG_HOME)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        if let Some(j) = tenant.jobs().await.unwrap().first() {
            break j.id;
        }
        assert!(Instant::now() < deadline, "the CLI did not submit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = tenant.status(job).await.unwrap();
        if v.state == JobState::Running {
            break;
        }
        assert!(Instant::now() < deadline, "never started: {v:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sigterm = Instant::now();
    // Off the runtime: a blocked worker would hold back this process's
    // QUIC acknowledgements, and the coordinator waits for those.
    let (mut cluster, status, took) = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        let (status, took) = cluster.terminate_coordinator(Duration::from_secs(15));
        (cluster, status, took)
    })
    .await
    .unwrap();
    eprintln!("SIGTERM -> exit: {took:?}");
    let status = status.expect("the coordinator exits within the shutdown timeout");
    assert!(status.success(), "exit status {status:?}");
    // Default --shutdown-timeout is 10 s; with no request in flight it is quick.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let log = cluster.coordinator_log();
    assert!(log.contains("shutdown complete"), "{log}");
    assert!(log.contains("attempts stay open"), "{log}");
    // The client's connection was closed with the shutdown code.
    match tenant.status(job).await {
        Err(NetError::ShuttingDown { .. }) => {}
        other => panic!("expected the shutdown error, got {other:?}"),
    }
    // The node heard it, and reconnects to the restarted coordinator.
    let heard = Instant::now();
    while !cluster
        .node_log(0)
        .contains("the coordinator is shutting down")
    {
        assert!(
            heard.elapsed() < Duration::from_secs(10),
            "{}",
            cluster.node_log(0)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.start_coordinator();
    let views = cluster.wait_all(&token, &[job]).await;
    eprintln!(
        "SIGTERM -> job finished after the restart: {:?}",
        sigterm.elapsed()
    );
    let view = &views[0];
    assert_eq!(view.state, JobState::Succeeded, "{view:?}");
    // The same attempt, adopted: not lost and run again.
    assert_eq!(view.attempts.len(), 1, "{view:?}");
    let tenant = cluster.client(&token, Role::Tenant).await;
    let (_, output) = tenant.result(job).await.unwrap();
    assert!(matmul_output_ok(&p, &output), "wrong output");
    // The CLI heard why, waited on across the restart, got the output.
    let status = waiting.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(waiting.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    // It heard the shutdown: as a refusal (its progress poll came after
    // the shutdown began) or as a cut (its wait was in flight); which one
    // depends on timing, and either message names the shutdown.
    assert!(
        err.contains("the coordinator is shutting down; retry shortly")
            || err.contains("the coordinator shut down while this request was in flight"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), output);
    let records = tenant.usage_records(UsageQuery::default()).await.unwrap();
    let rows: Vec<_> = records.iter().filter(|r| r.receipt.job == job).collect();
    assert_eq!(rows.len(), 1, "one usage row: {rows:?}");
    assert_eq!(rows[0].receipt.outcome, Outcome::Succeeded);
    let registered = cluster
        .node_log(0)
        .matches("registered with the coordinator")
        .count();
    assert!(registered >= 2, "{}", cluster.node_log(0));
    assert!(
        !cluster.node_log(0).contains("provider fault"),
        "a restart is not the provider's fault: {}",
        cluster.node_log(0)
    );
    cluster.admin_check();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shutdown_waits_for_requests_in_flight_only_up_to_its_timeout_and_says_why() {
    // A timeout long enough that the probes below (a CLI process among
    // them) finish inside it on a loaded 2-core CI machine.
    let cluster = ProcCluster::start_ext(0, 1, Default::default(), &["--shutdown-timeout", "8s"]);
    let token = cluster.token("tenant", "bob");
    let uploader = cluster.client(&token, Role::Tenant).await;
    let asker = cluster.client(&token, Role::Tenant).await;
    // An upload in flight that never completes: the shutdown waits for it
    // until --shutdown-timeout, then cuts it off.
    let body = vec![7u8; 1 << 20];
    let (mut send, _recv) = uploader
        .open(&Request::PutBlob {
            hash: Hash::of(&body),
            size: body.len() as u64,
        })
        .await
        .unwrap();
    send.write_all(&body[..4096]).await.unwrap();
    // Time for the request frame to be read and the upload admitted.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = cluster.coordinator_pid().unwrap();
    let config = cluster.config.clone();
    let terminate = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        let (status, took) = cluster.terminate_coordinator(Duration::from_secs(20));
        (cluster, status, took)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Still up (held by the upload), refusing work with the reason: a
    // request on a connection it had, a new connection, the CLI.
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    match asker.jobs().await {
        Err(NetError::ShuttingDown { .. }) => {}
        other => panic!("expected the shutdown error, got {other:?}"),
    }
    let address = asker.connection().remote_address();
    let fingerprint =
        suanli_e2e::procs::toml_lines(&std::fs::read_to_string(&config).unwrap())["fingerprint"]
            .clone();
    match suanli_net::Client::connect(address, &fingerprint, &token, Role::Tenant).await {
        Err(NetError::ShuttingDown { .. }) => {}
        other => panic!("expected the shutdown error, got {:?}", other.map(|_| ())),
    }
    let out = suanli(&["--config", &config, "jobs"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("shutting down; retry shortly"), "{stderr}");
    let (cluster, status, took) = terminate.await.unwrap();
    eprintln!("SIGTERM with an upload in flight -> exit: {took:?}");
    let status = status.expect("exits within the timeout");
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(7500),
        "did not wait: {took:?}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let log = cluster.coordinator_log();
    assert!(log.contains("cut off"), "{log}");
}
