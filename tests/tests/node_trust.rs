//! Issue 11, part A: what a node says about itself is not trusted. A node's
//! identity is its token and key together; its slots are clipped to its
//! token's cap; an attempt it never reports ends at a coordinator-side
//! deadline; repeated faults quarantine its token; drain and quarantine
//! live in the ledger. Hand-driven nodes (`FakeNode`) play the hostile and
//! silent providers against a real coordinator.

use std::time::{Duration, Instant};

use suanli_e2e::procs::ProcCluster;
use suanli_e2e::{FakeNode, TestCluster, guest_wasm, ok_json, suanli, wait_final};
use suanli_ledger::DEADLINE_MISSED;
use suanli_net::NetError;
use suanli_proto::{ErrorCode, FromNode, JobLimits, JobState, Outcome, Requirements, Role, ToNode};

/// A change to what a fake node reports about itself.
type Tweak<'a> = dyn FnOnce(&mut suanli_proto::NodeInfo) + 'a;

/// Limits that make the deadline `started + 1 s + 1 s + grace`.
fn short() -> JobLimits {
    JobLimits {
        timeout_ns: 1_000_000_000,
        max_dispatch_ns: 1_000_000_000,
        ..JobLimits::default()
    }
}

fn refused(r: Result<FakeNode, NetError>) -> (ErrorCode, String) {
    match r {
        Err(NetError::Remote { code, message }) => (code, message),
        Ok(_) => panic!("registration was accepted"),
        Err(e) => panic!("{e}"),
    }
}

/// The next control message other than an ack, within `wait`.
async fn next_message(node: &mut FakeNode, wait: Duration) -> Option<ToNode> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(
            deadline,
            suanli_net::frame::read_frame::<ToNode>(&mut node.recv),
        )
        .await
        .ok()?
        .expect("a frame")?;
        if !matches!(frame, ToNode::Ack { .. }) {
            return Some(frame);
        }
    }
}

/// Issue 11: a second node token presenting a bound key is refused naming
/// the binding; with a key of its own it adopts nothing of the victim's,
/// fetches none of its blobs and cannot end its attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_token_with_a_bound_key_can_neither_adopt_nor_fetch_nor_fault() {
    let cluster = TestCluster::start().await;
    let tenant = cluster.tenant("alice").await;
    let victim_token = cluster.token(Role::Node, "victim").await;
    let mut victim = FakeNode::register(&cluster, &victim_token, 1)
        .await
        .unwrap();
    let job = tenant
        .submit(
            b"module",
            b"input",
            Requirements::default(),
            JobLimits::default(),
            1,
        )
        .await
        .unwrap();
    let a = victim.next_assignment().await;
    assert_eq!(
        victim.client.get_blob(a.spec.module).await.unwrap(),
        b"module"
    );

    let thief_token = cluster.token(Role::Node, "thief").await;
    // Its key (the strongest case: it even holds the private key).
    let (code, message) = refused(
        FakeNode::register_with(&cluster, &thief_token, 1, |i| i.in_flight = vec![(job, 1)]).await,
    );
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(
        message.contains("is bound to another node token"),
        "{message}"
    );
    // A key of its own, claiming the victim's attempt: adopts nothing.
    let client = cluster.connect(&thief_token, Role::Node).await.unwrap();
    let signer = suanli_proto::ReceiptSigner::from_seed(&[2; 32]);
    let info = suanli_proto::NodeInfo {
        gpu: suanli_e2e::fake_gpu(),
        slots: 1,
        caps: suanli_proto::NodeCaps::default(),
        public_key: signer.public_key(),
        in_flight: vec![(job, 1)],
        devices: Vec::new(),
        simulated_faults: None,
    };
    let (mut send, mut recv, _, adopted) = client.register(info).await.unwrap();
    assert!(adopted.is_empty(), "adopted {adopted:?}");
    for hash in [a.spec.module, a.spec.input] {
        match client.get_blob(hash).await {
            Err(NetError::Remote { code, .. }) => assert_eq!(code, ErrorCode::NotFound),
            other => panic!("the thief fetched a blob: {other:?}"),
        }
    }
    // Results for the victim's attempt: refused, the attempt runs on.
    let receipt = victim.receipt(&a, Outcome::ProviderFault, 0, None);
    let forged = FromNode::Finished(Box::new(suanli_proto::AttemptResult {
        signature: signer.sign(&receipt),
        receipt,
        error: Some("garbage".into()),
        output_bytes: 0,
    }));
    suanli_net::frame::write_frame(&mut send, &forged)
        .await
        .unwrap();
    match suanli_net::frame::read_frame::<ToNode>(&mut recv)
        .await
        .unwrap()
    {
        Some(ToNode::Ack {
            accepted, reason, ..
        }) => {
            assert!(!accepted);
            assert_eq!(reason.as_deref(), Some("no such attempt of this node"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tenant.status(job).await.unwrap().state, JobState::Running);
    let output = victim.client.put_blob(b"out").await.unwrap();
    let receipt = victim.receipt(&a, Outcome::Succeeded, 1_000, Some(output));
    let signature = victim.signer.sign(&receipt);
    victim.finish(receipt, signature).await;
    let view = wait_final(&tenant, job).await;
    assert_eq!(view.state, JobState::Succeeded);
    assert_eq!(view.attempts.len(), 1);
    assert_eq!(cluster.admin.check().await.unwrap(), Vec::<String>::new());
}

/// Issue 11: a node's reported slots are clipped to its token's
/// `max_slots` and both are shown; reported strings and numbers are bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reported_slots_are_clipped_and_reported_values_bounded() {
    let cluster = TestCluster::start().await;
    let tenant = cluster.tenant("alice").await;
    let token = cluster
        .admin
        .create_token_with(Role::Node, "greedy", Some(2))
        .await
        .unwrap();
    for bad in [Some(0), Some(suanli_proto::MAX_NODE_SLOTS + 1)] {
        let e = cluster.admin.create_token_with(Role::Node, "x", bad).await;
        assert!(
            matches!(
                e,
                Err(NetError::Remote {
                    code: ErrorCode::BadRequest,
                    ..
                })
            ),
            "{e:?}"
        );
    }
    let e = cluster
        .admin
        .create_token_with(Role::Tenant, "x", Some(2))
        .await;
    assert!(
        matches!(
            e,
            Err(NetError::Remote {
                code: ErrorCode::BadRequest,
                ..
            })
        ),
        "{e:?}"
    );

    let long = "x".repeat(257);
    let cases: [(&str, Box<Tweak<'_>>); 4] = [
        ("GPU name", Box::new(|i| i.gpu.name = long.clone())),
        ("feature", Box::new(|i| i.gpu.features = vec![long.clone()])),
        (
            "GPU features",
            Box::new(|i| i.gpu.features = vec!["f".into(); 257]),
        ),
        (
            "max_timeout_ns",
            Box::new(|i| i.caps.max_timeout_ns = u64::MAX),
        ),
    ];
    for (what, tweak) in cases {
        let (code, message) = refused(FakeNode::register_with(&cluster, &token, 3, tweak).await);
        assert_eq!(code, ErrorCode::BadRequest, "{what}");
        assert!(message.contains(what), "{what}: {message}");
    }
    let mut node = FakeNode::register_with(&cluster, &token, 3, |i| {
        i.slots = u32::MAX;
        i.gpu.max_buffer_size = u64::MAX;
    })
    .await
    .unwrap();
    let view = &cluster.admin.nodes().await.unwrap()[0];
    assert_eq!((view.slots, view.allowed_slots), (u32::MAX, 2));
    assert_eq!(view.gpu.max_buffer_size, 1 << 40, "clipped to 1 TiB");
    for input in [b"1", b"2", b"3"] {
        tenant
            .submit(
                b"m",
                input,
                Requirements::default(),
                JobLimits::default(),
                1,
            )
            .await
            .unwrap();
    }
    node.next_assignment().await;
    node.next_assignment().await;
    assert!(
        node.assignment_within(Duration::from_millis(1500))
            .await
            .is_none(),
        "a third job went to a node allowed two slots"
    );
    let out = suanli(
        &["nodes", "--json"],
        &cluster
            .cli_env(&cluster.admin_token())
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let nodes = ok_json(&out);
    assert_eq!(nodes[0]["allowed_slots"], 2);
    assert_eq!(nodes[0]["slots"], u32::MAX);
}

/// Issue 11: GPU time above the wall time since assignment (coordinator's
/// clock) is refused: `provider_fault`, unbilled, retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gpu_time_above_the_wall_time_since_assignment_is_refused() {
    let cluster = TestCluster::start().await;
    cluster.admin.set_price("default", 1_000_000).await.unwrap();
    let tenant = cluster.tenant("alice").await;
    let token = cluster.token(Role::Node, "fast-talker").await;
    let mut node = FakeNode::register(&cluster, &token, 4).await.unwrap();
    let job = tenant
        .submit(b"m", b"i", Requirements::default(), JobLimits::default(), 2)
        .await
        .unwrap();
    let a = node.next_assignment().await;
    let receipt = node.receipt(&a, Outcome::JobError, 5_000_000_000, None);
    let signature = node.signer.sign(&receipt);
    node.finish_now(receipt, signature).await;
    let again = node.next_assignment().await;
    assert_eq!((again.job, again.attempt), (job, 2), "retried");
    let receipt = node.receipt(&again, Outcome::JobError, 1_000_000, None);
    let signature = node.signer.sign(&receipt);
    node.finish(receipt, signature).await;
    let view = wait_final(&tenant, job).await;
    assert_eq!(view.attempts[0].outcome, Some(Outcome::ProviderFault));
    let error = view.attempts[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("gpu_ns (5000000000) is more than"),
        "{error}"
    );
    assert_eq!(view.attempts[0].cost_micros, 0);
    assert_eq!(view.attempts[1].outcome, Some(Outcome::JobError));
    assert_eq!(cluster.admin.check().await.unwrap(), Vec::<String>::new());
}

/// Issue 11: an attempt its node never reports ends `provider_fault` at
/// `started + timeout + dispatch limit + grace`, the node is told to cancel
/// it, and the job runs on another node token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreported_attempt_ends_at_its_deadline_and_runs_elsewhere() {
    let cluster = TestCluster::start_with(|c| c.attempt_grace = Duration::from_secs(1)).await;
    let tenant = cluster.tenant("alice").await;
    let silent_token = cluster.token(Role::Node, "silent").await;
    let mut silent = FakeNode::register(&cluster, &silent_token, 5)
        .await
        .unwrap();
    let job = tenant
        .submit(b"m", b"i", Requirements::default(), short(), 3)
        .await
        .unwrap();
    let a = silent.next_assignment().await;
    let started = Instant::now();
    let honest_token = cluster.token(Role::Node, "honest").await;
    let mut honest = FakeNode::register(&cluster, &honest_token, 6)
        .await
        .unwrap();
    match next_message(&mut silent, Duration::from_secs(10)).await {
        Some(ToNode::Cancel { job: j, attempt }) => assert_eq!((j, attempt), (a.job, a.attempt)),
        other => panic!("expected a cancel, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2900),
        "ended early: {waited:?}"
    );
    let b = honest.next_assignment().await;
    assert_eq!((b.job, b.attempt), (job, 2));
    let receipt = honest.receipt(&b, Outcome::JobError, 1_000, None);
    let signature = honest.signer.sign(&receipt);
    honest.finish(receipt, signature).await;
    let view = wait_final(&tenant, job).await;
    assert_eq!(view.attempts[0].outcome, Some(Outcome::ProviderFault));
    assert!(
        view.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with(DEADLINE_MISSED)
    );
    assert_eq!(view.attempts[0].cost_micros, 0);
    assert_eq!(view.attempts[1].node, "honest");
    // Its late result is refused as already ended.
    let receipt = silent.receipt(&a, Outcome::JobError, 1_000, None);
    let signature = silent.signer.sign(&receipt);
    silent.finish(receipt, signature).await;
    match suanli_net::frame::read_frame::<ToNode>(&mut silent.recv)
        .await
        .unwrap()
    {
        Some(ToNode::Ack { reason, .. }) => {
            assert!(reason.unwrap_or_default().contains("already ended"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cluster.admin.check().await.unwrap(), Vec::<String>::new());
}

/// Issue 11: three missed deadlines quarantine a node token (no new jobs,
/// shown in `nodes`); `node restore` lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_missed_deadlines_quarantine_a_node_until_restored() {
    let cluster = TestCluster::start_with(|c| c.attempt_grace = Duration::from_millis(500)).await;
    let tenant = cluster.tenant("alice").await;
    let token = cluster.token(Role::Node, "flaky").await;
    let mut node = FakeNode::register_with(&cluster, &token, 7, |i| i.slots = 3)
        .await
        .unwrap();
    let mut jobs = Vec::new();
    for input in [b"1", b"2", b"3"] {
        let job = tenant
            .submit(b"m", input, Requirements::default(), short(), 1)
            .await
            .unwrap();
        jobs.push(job);
    }
    for _ in 0..3 {
        node.next_assignment().await;
    }
    for job in &jobs {
        let view = wait_final(&tenant, *job).await;
        assert_eq!(view.outcome, Some(Outcome::ProviderFault));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let quarantine = loop {
        if let Some(q) = cluster.admin.nodes().await.unwrap()[0].quarantine.clone() {
            break q;
        }
        assert!(Instant::now() < deadline, "not quarantined");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        quarantine.contains("3 attempts ended provider_fault"),
        "{quarantine}"
    );
    let waiting = tenant
        .submit(b"m", b"4", Requirements::default(), short(), 1)
        .await
        .unwrap();
    assert!(
        node.assignment_within(Duration::from_millis(1500))
            .await
            .is_none()
    );
    let reason = tenant
        .status(waiting)
        .await
        .unwrap()
        .waiting_reason
        .unwrap_or_default();
    assert!(reason.contains("quarantined"), "{reason}");
    cluster.admin.restore_node("flaky").await.unwrap();
    let a = node.next_assignment().await;
    assert_eq!(a.job, waiting);
    assert_eq!(cluster.admin.nodes().await.unwrap()[0].quarantine, None);
}

/// Issue 11: an admin's drain is kept in the ledger: after the coordinator
/// process is killed and restarted, the node is still drained until
/// `suanli node undrain`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_survives_a_coordinator_restart_until_undrained() {
    let mut cluster = ProcCluster::start(1, 1);
    let admin = |args: &[&str]| {
        let mut all = vec!["--config", cluster.config.as_str()];
        all.extend_from_slice(args);
        suanli(&all, &[])
    };
    let out = admin(&["node", "drain", "node-0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.kill_coordinator();
    cluster.start_coordinator();
    let nodes = |c: &ProcCluster| {
        ok_json(&suanli(
            &["--config", c.config.as_str(), "nodes", "--json"],
            &[],
        ))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes(&cluster).as_array().is_none_or(|n| n.is_empty()) {
        assert!(Instant::now() < deadline, "the node did not reconnect");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(nodes(&cluster)[0]["draining"], true, "drain kept");
    let token = cluster.token("tenant", "alice");
    let tenant = cluster.client(&token, Role::Tenant).await;
    let job = tenant
        .submit(
            &guest_wasm("vector_add"),
            &[],
            Requirements::default(),
            JobLimits::default(),
            1,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let view = tenant.status(job).await.unwrap();
    assert_eq!(view.state, JobState::Queued, "a drained node took a job");
    let out = suanli(
        &[
            "--config",
            cluster.config.as_str(),
            "node",
            "undrain",
            "node-0",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view = tenant.wait(job).await.unwrap();
    assert!(view.state.is_final(), "{view:?}");
    assert_eq!(view.attempts.len(), 1);
    assert_eq!(nodes(&cluster)[0]["draining"], false);
    cluster.admin_check();
}

/// A token's slot cap holds across its sessions: a node token that opens
/// several connections and registers on each (same key) must not get its
/// `--max-slots` once per session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tokens_slot_cap_holds_across_its_sessions() {
    let cluster = TestCluster::start().await;
    let tenant = cluster.tenant("alice").await;
    let token = cluster
        .admin
        .create_token_with(Role::Node, "greedy", Some(2))
        .await
        .unwrap();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(
            FakeNode::register_with(&cluster, &token, 9, |i| i.slots = 2)
                .await
                .unwrap(),
        );
    }
    for n in 0..6u8 {
        tenant
            .submit(b"m", &[n], Requirements::default(), JobLimits::default(), 1)
            .await
            .unwrap();
    }
    let mut assigned = 0;
    for node in &mut sessions {
        while node
            .assignment_within(Duration::from_millis(1500))
            .await
            .is_some()
        {
            assigned += 1;
        }
    }
    assert_eq!(assigned, 2, "a token allowed two slots ran {assigned} jobs");
}

/// A node that sends results and never reads its control stream is held
/// back by flow control: the coordinator stops reading it once a bounded
/// number of acks wait, instead of queueing an ack per result without
/// bound (before, each result queued one in an unbounded channel).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_never_reads_its_acks_is_held_back() {
    let cluster = TestCluster::start().await;
    let token = cluster.token(Role::Node, "flood").await;
    let mut node = FakeNode::register(&cluster, &token, 11).await.unwrap();
    let a = suanli_proto::Assignment {
        job: 0,
        attempt: 1,
        spec: suanli_proto::JobSpec {
            module: suanli_proto::Hash([1; 32]),
            input: suanli_proto::Hash([2; 32]),
            requirements: Requirements::default(),
            limits: JobLimits::default(),
            max_attempts: 1,
        },
    };
    // Batches of results for attempts nobody ran, each answered by an ack.
    const BATCH: u64 = 1000;
    const BATCHES: u64 = 200;
    let mut blocked_after = None;
    // Signed once: unknown attempts are refused before any signature check.
    let signature = node
        .signer
        .sign(&node.receipt(&a, Outcome::Succeeded, 0, None));
    for b in 0..BATCHES {
        let mut bytes = Vec::new();
        for n in 0..BATCH {
            let mut receipt = node.receipt(&a, Outcome::Succeeded, 0, None);
            receipt.job = 1_000_000 + b * BATCH + n;
            let message = FromNode::Finished(Box::new(suanli_proto::AttemptResult {
                receipt,
                signature,
                error: None,
                output_bytes: 0,
            }));
            bytes.extend(suanli_proto::encode(&message).unwrap());
        }
        let sent = tokio::time::timeout(Duration::from_secs(5), node.send.write_all(&bytes)).await;
        if sent.is_err() {
            blocked_after = Some(b * BATCH);
            break;
        }
    }
    let blocked_after = blocked_after.unwrap_or_else(|| {
        panic!(
            "the coordinator read {} results from a node that reads nothing",
            BATCH * BATCHES
        )
    });
    eprintln!("held back after about {blocked_after} results");
    // The coordinator still serves others.
    let tenant = cluster.tenant("alice").await;
    tenant.jobs().await.unwrap();
}

/// A colluding node cannot hand its job's tenant another tenant's blob by
/// naming its hash as the job's output: a result may name only a blob that
/// node uploaded on its connection. The attempt ends `provider_fault` and
/// the tenant gets no grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_result_may_name_as_output_only_a_blob_its_node_uploaded() {
    let cluster = TestCluster::start().await;
    let alice = cluster.tenant("alice").await;
    let mallory = cluster.tenant("mallory").await;
    let secret = alice.put_blob(b"alice's secret").await.unwrap();
    let token = cluster.token(Role::Node, "colluder").await;
    let mut node = FakeNode::register(&cluster, &token, 7).await.unwrap();
    let job = mallory
        .submit(b"m", b"i", Requirements::default(), JobLimits::default(), 1)
        .await
        .unwrap();
    let a = node.next_assignment().await;
    let receipt = node.receipt(&a, Outcome::Succeeded, 1_000, Some(secret));
    let signature = node.signer.sign(&receipt);
    node.finish(receipt, signature).await;
    let view = wait_final(&mallory, job).await;
    assert_eq!(view.attempts[0].outcome, Some(Outcome::ProviderFault));
    let error = view.attempts[0].error.clone().unwrap_or_default();
    assert!(error.contains("did not upload"), "{error}");
    assert!(view.output.is_none());
    assert!(
        mallory.get_blob(secret).await.is_err(),
        "mallory got the blob"
    );
    // The same node, uploading its output first, is believed.
    let job = mallory
        .submit(
            b"m",
            b"i2",
            Requirements::default(),
            JobLimits::default(),
            1,
        )
        .await
        .unwrap();
    let a = node.next_assignment().await;
    let output = node.client.put_blob(b"honest output").await.unwrap();
    let receipt = node.receipt(&a, Outcome::Succeeded, 1_000, Some(output));
    let signature = node.signer.sign(&receipt);
    node.finish(receipt, signature).await;
    let view = wait_final(&mallory, job).await;
    assert_eq!(view.state, JobState::Succeeded);
    assert_eq!(mallory.get_blob(output).await.unwrap(), b"honest output");
}

/// A hostile node that leaves 64 KiB error texts on many jobs does not
/// break its tenant's job listing (the errors are shortened there and the
/// listing fits one frame); `status` still has the whole text.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_node_errors_do_not_break_the_job_listing() {
    let cluster = TestCluster::start().await;
    let tenant = cluster.tenant("alice").await;
    let token = cluster.token(Role::Node, "verbose").await;
    let mut node = FakeNode::register(&cluster, &token, 9).await.unwrap();
    let mut jobs = Vec::new();
    for n in 0..20u32 {
        let input = n.to_le_bytes();
        let job = tenant
            .submit(
                b"m",
                &input,
                Requirements::default(),
                JobLimits::default(),
                1,
            )
            .await
            .unwrap();
        let a = node.next_assignment().await;
        let receipt = node.receipt(&a, Outcome::JobError, 1_000, None);
        let signature = node.signer.sign(&receipt);
        let error = Some("x".repeat(suanli_proto::MAX_ERROR_BYTES));
        node.finish_with_error(receipt, signature, error).await;
        jobs.push(job);
    }
    for &job in &jobs {
        wait_final(&tenant, job).await;
    }
    let listed = tenant.jobs().await.expect("the listing fits a frame");
    assert_eq!(listed.len(), 20);
    for view in &listed {
        assert!(view.error.as_deref().unwrap_or_default().len() <= 256);
    }
    let full = tenant.status(jobs[0]).await.unwrap();
    assert!(full.error.unwrap().len() > 60_000);
}
