//! The cluster on loopback: a real coordinator (QUIC, SQLite, blob store),
//! real nodes (wasmtime, wgpu on the GPU or lavapipe), real clients.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use suanli_e2e::{TestCluster, guest_wasm};
use suanli_net::NetError;
use suanli_proto::{ErrorCode, JobLimits, JobState, Requirements, Role};

fn random_vectors(seed: u64, len: usize) -> (Vec<f32>, Vec<f32>) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 40) as f32 / 1024.0 - 8192.0
    };
    let a = (0..len).map(|_| next()).collect();
    let b = (0..len).map(|_| next()).collect();
    (a, b)
}

async fn submit(client: &suanli_net::Client, module: &[u8], input: &[u8]) -> u64 {
    client
        .submit(
            module,
            input,
            Requirements::default(),
            JobLimits::default(),
            3,
        )
        .await
        .expect("submitted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_jobs_on_two_nodes_all_correct() {
    let cluster = TestCluster::start().await;
    cluster.add_node("node-a", 2, None).await;
    cluster.add_node("node-b", 2, None).await;
    let tenant = cluster.tenant("alice").await;
    let module = guest_wasm("vector_add");
    let mut jobs = Vec::new();
    for seed in 0..50u64 {
        let (a, b) = random_vectors(seed, 1000 + seed as usize * 37);
        let input = vector_add::reference::encode_input(&a, &b);
        jobs.push((submit(&tenant, &module, &input).await, input));
    }
    let mut nodes = HashSet::new();
    for (job, input) in jobs {
        let (view, output) = tenant.result(job).await.expect("result");
        assert_eq!(
            view.state,
            JobState::Succeeded,
            "job {job}: {:?}",
            view.error
        );
        assert!(
            output == vector_add::reference::run(&input).unwrap(),
            "job {job}: wrong output"
        );
        let attempt = view.attempts.last().expect("an attempt");
        assert!(attempt.gpu_ns > 0 && attempt.gpu_ns <= attempt.wall_ns);
        assert_eq!(attempt.metering.as_deref(), Some("timestamp"));
        nodes.insert(attempt.node.clone());
    }
    assert_eq!(nodes.len(), 2, "both nodes ran jobs: {nodes:?}");
    let listed = tenant.jobs().await.unwrap();
    assert_eq!(listed.len(), 50);
    cluster.stop_nodes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_are_isolated_and_roles_enforced() {
    let cluster = TestCluster::start().await;
    cluster.add_node("node-a", 1, None).await;
    let alice = cluster.tenant("alice").await;
    let bob = cluster.tenant("bob").await;
    let module = guest_wasm("vector_add");
    let input = vector_add::reference::encode_input(&[1.0, 2.0], &[3.0, 4.0]);
    let job = submit(&alice, &module, &input).await;
    let (view, output) = alice.result(job).await.unwrap();
    assert_eq!(view.state, JobState::Succeeded);

    let not_found = |r: Result<_, NetError>| {
        matches!(
            r,
            Err(NetError::Remote {
                code: ErrorCode::NotFound,
                ..
            })
        )
    };
    assert!(
        not_found(bob.status(job).await.map(|_| ())),
        "bob reads alice's job"
    );
    assert!(
        not_found(bob.wait(job).await.map(|_| ())),
        "bob waits on alice's job"
    );
    assert!(not_found(bob.cancel(job).await), "bob cancels alice's job");
    assert!(
        not_found(bob.get_blob(view.output.unwrap()).await.map(|_| ())),
        "bob reads alice's output"
    );
    assert!(
        not_found(bob.logs(job, false, |_| {}).await),
        "bob reads alice's log"
    );
    assert!(
        bob.jobs().await.unwrap().is_empty(),
        "bob lists alice's jobs"
    );
    // Bob does not learn that alice uploaded this module: he must upload it himself.
    assert_eq!(
        bob.missing_blobs(vec![view.spec.module]).await.unwrap(),
        vec![view.spec.module]
    );
    assert!(output == vector_add::reference::run(&input).unwrap());

    // A tenant token cannot register a node; a node token cannot submit.
    let tenant_token = cluster.token(Role::Tenant, "carol").await;
    let refused = cluster
        .connect(&tenant_token, Role::Node)
        .await
        .err()
        .expect("refused");
    assert!(
        refused
            .to_string()
            .contains("it is a tenant token, not a node token"),
        "{refused}"
    );
    let node_token = cluster.token(Role::Node, "rogue").await;
    let refused = cluster
        .connect(&node_token, Role::Tenant)
        .await
        .err()
        .expect("refused");
    assert!(
        refused
            .to_string()
            .contains("it is a node token, not a tenant token"),
        "{refused}"
    );
    let wrong = cluster
        .connect("sl_0000", Role::Tenant)
        .await
        .err()
        .expect("refused");
    assert!(wrong.to_string().contains("unknown token"), "{wrong}");
    // Tenants cannot do admin things.
    let err = alice.nodes().await.expect_err("forbidden");
    assert!(
        matches!(
            err,
            NetError::Remote {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{err}"
    );
    let err = alice
        .create_token(Role::Admin, "me")
        .await
        .expect_err("forbidden");
    assert!(
        matches!(
            err,
            NetError::Remote {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{err}"
    );

    // A wrong fingerprint is refused by the client before any token is sent.
    let wrong_fp = "00".repeat(32);
    let err = suanli_net::Client::connect(
        cluster.coordinator.addr(),
        &wrong_fp,
        &tenant_token,
        Role::Tenant,
    )
    .await
    .err()
    .expect("refused");
    assert!(format!("{err}").contains("fingerprint"), "{err}");
    cluster.stop_nodes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_waits_for_a_node_with_enough_gpu_memory() {
    let cluster = TestCluster::start().await;
    cluster.add_node("small", 1, Some(64 << 20)).await;
    let tenant = cluster.tenant("alice").await;
    let module = guest_wasm("vector_add");
    let input = vector_add::reference::encode_input(&[1.0; 64], &[2.0; 64]);
    let job = tenant
        .submit(
            &module,
            &input,
            Requirements {
                min_gpu_memory: 128 << 20,
            },
            JobLimits::default(),
            3,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let view = tenant.status(job).await.unwrap();
    assert_eq!(view.state, JobState::Queued);
    assert_eq!(
        view.waiting_reason.as_deref(),
        Some("needs 134217728 bytes of GPU memory; the largest connected node offers 67108864")
    );
    cluster.add_node("big", 1, None).await;
    let view = tenant.wait(job).await.unwrap();
    assert_eq!(view.state, JobState::Succeeded, "{:?}", view.error);
    assert_eq!(view.attempts[0].node, "big");
    cluster.stop_nodes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_module_twenty_times_is_uploaded_once() {
    let cluster = TestCluster::start().await;
    let tenant = cluster.tenant("alice").await;
    let module = guest_wasm("vector_add");
    let input = vector_add::reference::encode_input(&[1.0; 16], &[2.0; 16]);
    for _ in 0..20 {
        submit(&tenant, &module, &input).await;
    }
    assert_eq!(
        cluster.coordinator.stats().blob_bytes_received,
        (module.len() + input.len()) as u64,
        "module and input each uploaded exactly once"
    );
    assert_eq!(tenant.jobs().await.unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_connection_is_dropped_after_the_handshake_timeout() {
    let cluster =
        TestCluster::start_with(|c| c.handshake_timeout = Duration::from_millis(500)).await;
    let pinned = suanli_net::tls::parse_fingerprint(cluster.coordinator.fingerprint()).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(suanli_net::tls::client_config(pinned).unwrap());
    let conn = endpoint
        .connect(cluster.coordinator.addr(), suanli_net::tls::SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    let started = Instant::now();
    let reason = conn.closed().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        reason.to_string().contains("no hello frame in time"),
        "{reason}"
    );
    // The coordinator still serves others.
    let tenant = cluster.tenant("alice").await;
    assert!(tenant.jobs().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversize_frame_closes_only_its_stream() {
    let cluster = TestCluster::start().await;
    let tenant = cluster.tenant("alice").await;
    let (mut send, mut recv) = tenant.connection().open_bi().await.unwrap();
    let header = ((suanli_proto::MAX_FRAME_BYTES + 1) as u32).to_le_bytes();
    send.write_all(&header).await.unwrap();
    let answer: suanli_proto::Response = suanli_net::frame::expect_frame(&mut recv).await.unwrap();
    match answer {
        suanli_proto::Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::TooLarge);
            assert!(message.contains("exceeds the maximum"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // The same connection, and others, keep working.
    assert!(tenant.jobs().await.unwrap().is_empty());
    let other = cluster.tenant("bob").await;
    assert!(other.jobs().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_stream_and_cancel_stops_a_running_job() {
    let cluster = TestCluster::start().await;
    cluster.add_node("node-a", 1, None).await;
    let tenant = cluster.tenant("alice").await;
    let misbehave = guest_wasm("misbehave");
    let printer = submit(&tenant, &misbehave, b"print 3").await;
    let view = tenant.wait(printer).await.unwrap();
    assert_eq!(view.state, JobState::Succeeded, "{:?}", view.error);
    let mut log = Vec::new();
    tenant
        .logs(printer, true, |chunk| log.extend_from_slice(chunk))
        .await
        .unwrap();
    assert_eq!(
        log,
        format!("{}\n", "x".repeat(1023)).repeat(3).into_bytes()
    );

    let looping = submit(&tenant, &misbehave, b"loop").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while tenant.status(looping).await.unwrap().state != JobState::Running {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cancelled_at = Instant::now();
    tenant.cancel(looping).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let view = tenant.status(looping).await.unwrap();
        assert_eq!(view.state, JobState::Cancelled);
        if view.attempts[0].outcome.is_some() {
            assert_eq!(view.attempts[0].outcome.as_deref(), Some("cancelled"));
            assert!(
                cancelled_at.elapsed() < Duration::from_secs(2),
                "stopped after {:?}",
                cancelled_at.elapsed()
            );
            break;
        }
        assert!(Instant::now() < deadline, "the attempt did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.stop_nodes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_queued_jobs_do_not_starve_another_tenants_one() {
    let cluster = TestCluster::start().await;
    let hog = std::sync::Arc::new(cluster.tenant("hog").await);
    let lone = cluster.tenant("lone").await;
    let module = guest_wasm("vector_add");
    let input = vector_add::reference::encode_input(&[1.0; 8], &[2.0; 8]);
    let (hashes, _) = hog.ensure_blobs(&[&module, &input]).await.unwrap();
    let spec = suanli_proto::JobSpec {
        module: hashes[0],
        input: hashes[1],
        requirements: Requirements::default(),
        limits: JobLimits::default(),
        max_attempts: 1,
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (hog, spec) = (hog.clone(), spec.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..1250 {
                match hog
                    .call(&suanli_proto::Request::Submit(spec.clone()))
                    .await
                    .unwrap()
                {
                    suanli_proto::Response::Submitted { .. } => {}
                    other => panic!("{other:?}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("10,000 submissions in {:?}", started.elapsed());
    let lonely = submit(&lone, &module, &input).await;
    cluster.add_node("node-a", 1, None).await;
    let view = lone.wait(lonely).await.unwrap();
    assert_eq!(view.state, JobState::Succeeded, "{:?}", view.error);
    assert_eq!(lonely, 10_001, "a fresh coordinator numbers jobs from 1");
    // The hog's jobs run oldest first; with one slot and alternating turns,
    // at most two of them may finish before the lone job does.
    let mut hog_done = 0;
    for job in 1..=20 {
        if hog.status(job).await.unwrap().state.is_final() {
            hog_done += 1;
        }
    }
    assert!(
        hog_done <= 2,
        "{hog_done} of the hog's jobs finished before the lone one"
    );
    cluster.stop_nodes();
}
