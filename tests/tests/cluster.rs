//! The cluster on loopback: a real coordinator (QUIC, SQLite, blob store),
//! real nodes (wasmtime, wgpu on the GPU or lavapipe), real clients.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use suanli_e2e::{FakeNode, TestCluster, guest_wasm, ok_json, suanli, wait_final};
use suanli_net::NetError;
use suanli_proto::usage::UsageQuery;
use suanli_proto::{
    ErrorCode, JobLimits, JobState, MAX_ERROR_BYTES, Metering, NodeCaps, Outcome, Requirements,
    Role,
};

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
        assert_eq!(attempt.metering, Some(Metering::Timestamp));
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
    tenant.cancel(looping).await.unwrap();
    assert_attempt_cancelled(&tenant, looping).await;

    // Cancels racing the placement: each lands while the job is queued,
    // being placed or running. None may be lost (the job would loop on to
    // its 60 s timeout and hold the slot).
    for pause_ms in [0, 1, 2, 5, 10, 20, 40] {
        let job = submit(&tenant, &misbehave, b"loop").await;
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        tenant.cancel(job).await.unwrap();
        assert_attempt_cancelled(&tenant, job).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.admin.nodes().await.unwrap()[0].running != 0 {
        assert!(Instant::now() < deadline, "the node's slot stayed busy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.stop_nodes();
}

/// The job is cancelled and its attempt, if one started, ended `cancelled`
/// (well before the job's 60 s timeout could have ended it).
async fn assert_attempt_cancelled(tenant: &suanli_net::Client, job: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = tenant.status(job).await.unwrap();
        assert_eq!(view.state, JobState::Cancelled);
        match view.attempts.last() {
            None => return,
            Some(a) if a.outcome.is_some() => {
                assert_eq!(a.outcome, Some(Outcome::Cancelled), "{:?}", a.error);
                return;
            }
            Some(_) => {}
        }
        assert!(Instant::now() < deadline, "the attempt did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

/// Polls `status` until `ok` holds for the job's view.
async fn until(
    client: &suanli_net::Client,
    job: u64,
    ok: impl Fn(&suanli_proto::JobView) -> bool,
) -> suanli_proto::JobView {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = client.status(job).await.unwrap();
        if ok(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "job {job}: {view:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A provider's caps bound what runs on its node: a job past them waits
/// with the limit named, and goes to a node that allows it once one comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_go_only_to_nodes_whose_caps_allow_them() {
    let cluster = TestCluster::start().await;
    let tenant = cluster.tenant("alice").await;
    let s = 1_000_000_000;
    let caps = NodeCaps {
        max_timeout_ns: 10 * s,
        max_memory_bytes: 64 << 20,
        max_dispatch_ns: 2 * s,
    };
    let token = cluster.token(Role::Node, "short").await;
    let mut short = FakeNode::register_with_caps(&cluster, &token, 1, caps)
        .await
        .unwrap();
    let submit = |limits: JobLimits| {
        let tenant = &tenant;
        async move {
            tenant
                .submit(b"module", b"input", Requirements::default(), limits, 3)
                .await
                .unwrap()
        }
    };
    let small = JobLimits {
        timeout_ns: 5 * s,
        max_memory_bytes: 1 << 20,
        max_dispatch_ns: s,
        ..JobLimits::default()
    };
    let long = submit(JobLimits {
        timeout_ns: 60 * s,
        ..small.clone()
    })
    .await;
    let big = submit(JobLimits {
        max_memory_bytes: 128 << 20,
        ..small.clone()
    })
    .await;
    let slow = submit(JobLimits {
        max_dispatch_ns: 10 * s,
        ..small.clone()
    })
    .await;
    let fits = submit(small.clone()).await;
    assert_eq!(
        short.next_assignment().await.job,
        fits,
        "only the job that fits"
    );
    for (job, reason) in [
        (
            long,
            "asks for a timeout of 60 s; the longest a connected node allows is 10 s",
        ),
        (
            big,
            "asks for 134217728 bytes of memory; the most a connected node allows is 67108864",
        ),
        (
            slow,
            "asks for up to 10 s per dispatch; the longest a connected node allows is 2 s",
        ),
    ] {
        let view = tenant.status(job).await.unwrap();
        assert_eq!(view.state, JobState::Queued);
        assert_eq!(view.waiting_reason.as_deref(), Some(reason));
    }
    // A node with the default caps (1 h, 4 GiB, 10 s) takes the others.
    let token = cluster.token(Role::Node, "roomy").await;
    let mut roomy = FakeNode::register(&cluster, &token, 2).await.unwrap();
    let mut got = HashSet::new();
    for _ in 0..3 {
        let a = roomy.next_assignment().await;
        got.insert(a.job);
        let receipt = roomy.receipt(&a, Outcome::Succeeded, 1_000, None);
        let signature = roomy.signer.sign(&receipt);
        roomy.finish(receipt, signature).await;
    }
    assert_eq!(got, HashSet::from([long, big, slow]));
    // The caps are shown to the admin, and by `suanli nodes`.
    let nodes = cluster.admin.nodes().await.unwrap();
    let shown = nodes.iter().find(|n| n.name == "short").unwrap();
    assert_eq!(shown.caps, caps);
    let env: Vec<(&str, String)> = cluster.cli_env(&cluster.admin_token());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let json = ok_json(&suanli(&["nodes", "--json"], &env));
    let short_json = json
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "short")
        .unwrap();
    assert_eq!(short_json["caps"]["max_timeout_ns"], 10 * s);
    assert_eq!(short_json["caps"]["max_memory_bytes"], 64 << 20);
    assert_eq!(short_json["caps"]["max_dispatch_ns"], 2 * s);
    let table = suanli(&["nodes"], &env);
    let table = String::from_utf8_lossy(&table.stdout);
    let short_row = table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("short"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        short_row.contains("64.0 MiB mem, 10s timeout, 2s dispatch"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_a_zero_cap_is_refused_with_the_reason() {
    let cluster = TestCluster::start().await;
    let token = cluster.token(Role::Node, "zero").await;
    let caps = NodeCaps {
        max_dispatch_ns: 0,
        ..NodeCaps::default()
    };
    match FakeNode::register_with_caps(&cluster, &token, 1, caps).await {
        Err(NetError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::BadRequest);
            assert!(message.contains("--max-dispatch-seconds"), "{message}");
            assert!(message.contains("would accept no job"), "{message}");
        }
        Ok(_) => panic!("registered"),
        Err(e) => panic!("{e}"),
    }
    assert!(cluster.admin.nodes().await.unwrap().is_empty());
}

/// A job that crashes a worker runs once more, on another node (token
/// name), never again where it crashed, even when that node is free; a
/// second crash is final. Each attempt pays for the GPU time its node
/// measured, and the node's error is kept to 64 KiB whatever it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_job_runs_once_more_elsewhere_then_fails() {
    let cluster = TestCluster::start().await;
    cluster.admin.set_price("default", 1_000_000).await.unwrap();
    let tenant = cluster.tenant("alice").await;
    let token = cluster.token(Role::Node, "first").await;
    let mut first = FakeNode::register(&cluster, &token, 1).await.unwrap();
    let job = tenant
        .submit(
            b"crasher",
            b"",
            Requirements::default(),
            JobLimits::default(),
            5,
        )
        .await
        .unwrap();
    let a = first.next_assignment().await;
    let receipt = first.receipt(&a, Outcome::Crashed, 4_000_000, None);
    let signature = first.signer.sign(&receipt);
    // Near the frame limit: a hostile node may send anything that fits.
    let huge = "x".repeat(900 << 10);
    first
        .finish_with_error(receipt, signature, Some(huge))
        .await;
    let view = until(&tenant, job, |v| {
        v.state == JobState::Queued && v.waiting_reason.is_some()
    })
    .await;
    assert_eq!(
        view.waiting_reason.as_deref(),
        Some(
            "crashed the worker running it on first; a crashed job runs again only on another \
             node, and none that fits is connected"
        )
    );
    let error = view.attempts[0].error.as_deref().unwrap();
    assert!(error.len() <= MAX_ERROR_BYTES, "{}", error.len());
    let kept = MAX_ERROR_BYTES - 64;
    assert!(error.ends_with(&format!("[... {} of 921600 bytes cut]", 921_600 - kept)));
    assert!(
        first
            .assignment_within(Duration::from_millis(1500))
            .await
            .is_none(),
        "never again on the node it crashed"
    );
    let token = cluster.token(Role::Node, "second").await;
    let mut second = FakeNode::register(&cluster, &token, 2).await.unwrap();
    let a = second.next_assignment().await;
    assert_eq!((a.job, a.attempt), (job, 2));
    let receipt = second.receipt(&a, Outcome::Crashed, 6_000_000, None);
    let signature = second.signer.sign(&receipt);
    second.finish(receipt, signature).await;
    let view = wait_final(&tenant, job).await;
    assert_eq!(view.state, JobState::Failed);
    assert_eq!(view.outcome, Some(Outcome::Crashed));
    assert!(
        view.error
            .as_deref()
            .unwrap()
            .contains("twice (on first and second)"),
        "{:?}",
        view.error
    );
    let charged: Vec<(u64, u64)> = view
        .attempts
        .iter()
        .map(|a| (a.charged_gpu_ns, a.cost_micros))
        .collect();
    assert_eq!(charged, [(4_000_000, 4_000), (6_000_000, 6_000)]);
    assert!(
        first
            .assignment_within(Duration::from_millis(1200))
            .await
            .is_none(),
        "final: not assigned again"
    );
    let usage = tenant.usage(UsageQuery::default()).await.unwrap();
    assert_eq!(usage.total.cost_micros, 10_000);
    assert_eq!(cluster.admin.check().await.unwrap(), Vec::<String>::new());
}

/// `max_attempts` is 1 to 10, and a dispatch limit of 0 is refused, at
/// submission, by the API and through the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_attempts_and_the_dispatch_limit_are_checked_at_submission() {
    let cluster = TestCluster::start().await;
    let tenant = cluster.tenant("alice").await;
    let submit = |attempts: u32, limits: JobLimits| {
        let tenant = &tenant;
        async move {
            tenant
                .submit(
                    b"module",
                    b"input",
                    Requirements::default(),
                    limits,
                    attempts,
                )
                .await
        }
    };
    for attempts in [0, suanli_proto::MAX_ATTEMPTS + 1, u32::MAX] {
        match submit(attempts, JobLimits::default()).await {
            Err(NetError::Remote { code, message }) => {
                assert_eq!(code, ErrorCode::BadRequest);
                assert!(
                    message.contains(&format!("between 1 and 10, not {attempts}")),
                    "{message}"
                );
            }
            other => panic!("{attempts} attempts: {other:?}"),
        }
    }
    submit(suanli_proto::MAX_ATTEMPTS, JobLimits::default())
        .await
        .expect("10 attempts are allowed");
    let no_dispatch = JobLimits {
        max_dispatch_ns: 0,
        ..JobLimits::default()
    };
    match submit(1, no_dispatch).await {
        Err(NetError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::BadRequest);
            assert!(message.contains("--max-dispatch-seconds"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tenant.jobs().await.unwrap().len(), 1);

    // The CLI: the refusal with its reason, exit code 2; the flag round-trips.
    let token = cluster.token(Role::Tenant, "bob").await;
    let env: Vec<(&str, String)> = cluster.cli_env(&token);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("job.wasm");
    std::fs::write(&module, b"not really a module").unwrap();
    let module = module.to_str().unwrap();
    let refused = suanli(&["submit", module, "--max-attempts", "11"], &env);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("between 1 and 10"), "{stderr}");
    let job = ok_json(&suanli(
        &["submit", module, "--max-dispatch-seconds", "0.25", "--json"],
        &env,
    ))["job"]
        .as_u64()
        .unwrap();
    let status = ok_json(&suanli(&["status", &job.to_string(), "--json"], &env));
    assert_eq!(status["max_dispatch_ns"], 250_000_000);
    assert_eq!(status["waiting_reason"], "no node is connected");
}

/// `suanli node --gpu 0 --slots 2`: slots are per GPU, each worker opens
/// adapter 0 by index, and the node registers that adapter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_on_gpu_index_zero_runs_slots_per_gpu() {
    let cluster = TestCluster::start().await;
    let token = cluster.token(Role::Node, "by-index").await;
    let mut config = suanli_node::NodeConfig::new(
        cluster.coordinator.addr(),
        cluster.coordinator.fingerprint().to_owned(),
        token,
        cluster.dir.path().join("by-index"),
    );
    config.gpus = vec![0];
    config.slots = 2;
    config.worker = suanli_e2e::worker_command();
    let node = tokio::task::spawn_blocking(move || suanli_node::Node::new(config))
        .await
        .expect("join")
        .expect("node starts");
    let first = suanli_gpu::list_adapters().remove(0);
    assert_eq!(node.info().gpu.name, first.name);
    assert_eq!(node.info().slots, 2);
    let (stop, signal) = tokio::sync::watch::channel(false);
    tokio::spawn(node.run(signal));
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        if let Some(v) = cluster.admin.nodes().await.expect("nodes").pop() {
            break v;
        }
        assert!(Instant::now() < deadline, "node did not register");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (view.slots, view.gpu.name.as_str()),
        (2, first.name.as_str())
    );
    let tenant = cluster.tenant("alice").await;
    let module = guest_wasm("vector_add");
    let mut jobs = Vec::new();
    for seed in 0..4u64 {
        let (a, b) = random_vectors(seed, 500);
        let input = vector_add::reference::encode_input(&a, &b);
        jobs.push((submit(&tenant, &module, &input).await, input));
    }
    for (job, input) in jobs {
        let (view, output) = tenant.result(job).await.expect("result");
        assert_eq!(view.state, JobState::Succeeded, "{:?}", view.error);
        assert!(output == vector_add::reference::run(&input).unwrap());
    }
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_listings_filter_by_state_and_page_without_gaps() {
    let cluster = TestCluster::start().await;
    let tenant = cluster.tenant("alice").await;
    let other = cluster.tenant("bob").await;
    let module = guest_wasm("vector_add");
    let mut ids = Vec::new();
    for i in 0..7u8 {
        ids.push(submit(&tenant, &module, &[i; 8]).await);
    }
    submit(&other, &module, b"bob's").await;
    for id in [ids[1], ids[4]] {
        tenant.cancel(id).await.unwrap();
    }
    let list = |filter: suanli_proto::JobFilter| {
        let tenant = &tenant;
        async move {
            let jobs = tenant.jobs_filtered(filter).await.unwrap();
            jobs.iter().map(|j| j.id).collect::<Vec<u64>>()
        }
    };
    let newest_first: Vec<u64> = ids.iter().rev().copied().collect();
    assert_eq!(
        list(Default::default()).await,
        newest_first,
        "own jobs only"
    );
    let cancelled = suanli_proto::JobFilter {
        state: Some(JobState::Cancelled),
        ..Default::default()
    };
    assert_eq!(list(cancelled).await, vec![ids[4], ids[1]]);
    // Pages of 3 cover every job once, in order.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = list(suanli_proto::JobFilter {
            before,
            limit: 3,
            ..Default::default()
        })
        .await;
        assert!(page.len() <= 3);
        let Some(last) = page.last().copied() else {
            break;
        };
        paged.extend(page);
        before = Some(last);
    }
    assert_eq!(paged, newest_first);
    let admin_all = cluster
        .admin
        .jobs_filtered(suanli_proto::JobFilter {
            state: Some(JobState::Queued),
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        admin_all.len(),
        6,
        "an admin sees both tenants' queued jobs"
    );
}
