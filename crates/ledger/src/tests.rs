use rand::{Rng, SeedableRng};
use suanli_proto::usage::{GroupBy, UsageQuery};
use suanli_proto::{
    AttemptResult, GpuInfo, Hash, JobLimits, JobSpec, JobState, MAX_ERROR_BYTES, Metering,
    NodeCaps, NodeInfo, Outcome, Receipt, ReceiptSigner, Requirements, Role,
};

use super::*;
use crate::billing::cost_micros;

fn spec(max_attempts: u32) -> JobSpec {
    JobSpec {
        module: Hash::of(b"module"),
        input: Hash::of(b"input"),
        requirements: Requirements::default(),
        limits: JobLimits::default(),
        max_attempts,
    }
}

fn gpu(name: &str) -> GpuInfo {
    GpuInfo {
        name: name.into(),
        backend: "vulkan".into(),
        device_type: "cpu".into(),
        driver: "none".into(),
        metering: Metering::Timestamp,
        max_buffer_size: 1 << 30,
        max_storage_buffer_binding_size: 1 << 27,
        max_compute_workgroups_per_dimension: 65535,
        features: vec![],
    }
}

/// A node token `name` and a session of a node with key seed `seed`.
fn add_node(l: &mut Ledger, name: &str, adapter: &str, seed: u8) -> (u64, ReceiptSigner) {
    let token = [seed; 32];
    if l.find_token(&token).unwrap().is_none() {
        l.add_token(&token, Role::Node, name, 0).unwrap();
    }
    let signer = ReceiptSigner::from_seed(&[seed; 32]);
    let info = NodeInfo {
        gpu: gpu(adapter),
        slots: 1,
        caps: NodeCaps::default(),
        public_key: signer.public_key(),
        in_flight: Vec::new(),
        devices: Vec::new(),
        simulated_faults: None,
    };
    match l.register_node(&token, name, &info, 0).unwrap() {
        Registration::Registered(s) => (s.id, signer),
        Registration::KeyMismatch(m) | Registration::KeyTaken(m) => panic!("{m}"),
    }
}

fn submit(l: &mut Ledger, tenant: &str, spec: &JobSpec) -> u64 {
    match l.submit(tenant, spec, 0).unwrap() {
        Admission::Accepted(id) => id,
        Admission::OverCredit(m) => panic!("{m}"),
    }
}

fn start(l: &mut Ledger, job: u64, node: u64) -> u32 {
    match l.start_attempt(job, node, 1).unwrap() {
        Start::Started { attempt } => attempt,
        other => panic!("{other:?}"),
    }
}

fn result(
    signer: &ReceiptSigner,
    job: u64,
    attempt: u32,
    node_id: u64,
    outcome: Outcome,
    gpu_ns: u64,
) -> AttemptResult {
    let receipt = Receipt {
        job,
        attempt,
        node_id,
        module: Hash::of(b"module"),
        input: Hash::of(b"input"),
        output: (outcome == Outcome::Succeeded).then(|| Hash::of(b"out")),
        gpu_ns,
        wall_ns: gpu_ns.saturating_add(9_999),
        outcome,
        metering: Metering::Timestamp,
        started_ms: 1,
        ended_ms: 2,
    };
    AttemptResult {
        signature: signer.sign(&receipt),
        receipt,
        error: None,
        output_bytes: 3,
    }
}

fn open(dir: &tempfile::TempDir) -> Ledger {
    Ledger::open(&dir.path().join("ledger.db")).unwrap()
}

#[test]
fn a_result_sent_three_times_is_recorded_and_billed_once_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.set_price("default", 2_000_000, 0).unwrap();
    let (node, signer) = add_node(&mut l, "n1", "Test GPU", 1);
    let (other, _) = add_node(&mut l, "n2", "Test GPU", 2);
    let job = submit(&mut l, "alice", &spec(3));
    assert_eq!(start(&mut l, job, node), 1);
    assert_eq!(
        l.start_attempt(job, node, 1).unwrap(),
        Start::NotQueued,
        "a running job cannot start twice"
    );
    let r = result(&signer, job, 1, node, Outcome::Succeeded, 1_234_567);
    assert_eq!(
        l.finish_attempt(node, &r, 5).unwrap(),
        Recorded::Ended {
            state: JobState::Succeeded
        }
    );
    for _ in 0..2 {
        assert_eq!(l.finish_attempt(node, &r, 6).unwrap(), Recorded::Duplicate);
    }
    assert_eq!(
        l.finish_attempt(other, &r, 6).unwrap(),
        Recorded::Unknown,
        "another node's claim"
    );
    drop(l);
    let l = open(&dir);
    let view = l.job(job).unwrap().unwrap();
    assert_eq!(view.state, JobState::Succeeded);
    assert_eq!(view.attempts.len(), 1);
    let a = &view.attempts[0];
    assert_eq!((a.gpu_ns, a.wall_ns), (1_234_567, 1_244_566));
    assert_eq!(
        (a.gpu_class.as_str(), a.price_micros),
        ("test-gpu", 2_000_000)
    );
    // 1,234,567 ns × 2 micro-units/µs… = 2469.134 → 2469.
    assert_eq!((a.charged_gpu_ns, a.cost_micros), (1_234_567, 2_469));
    let report = l.usage(&UsageQuery::default()).unwrap();
    assert_eq!(report.total.attempts, 1);
    assert_eq!(report.total.cost_micros, 2_469);
    assert!(l.may_read_blob(&Hash::of(b"out"), "alice").unwrap());
    assert!(!l.may_read_blob(&Hash::of(b"out"), "bob").unwrap());
    // The record carries a receipt that verifies against the node's key.
    let records = l.usage_records(&UsageQuery::default(), None, 10).unwrap();
    assert_eq!(records.len(), 1);
    let rec = &records[0];
    assert_eq!(rec.receipt, r.receipt);
    rec.receipt
        .verify(&rec.node_key, rec.signature.as_ref().unwrap())
        .unwrap();
}

#[test]
fn a_receipt_with_a_changed_byte_or_the_wrong_key_is_rejected_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (node, signer) = add_node(&mut l, "n1", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(3));
    start(&mut l, job, node);
    let good = result(&signer, job, 1, node, Outcome::Succeeded, 1_000);
    let mut forged = good.clone();
    forged.receipt.gpu_ns = 999_999; // not what the node signed
    assert!(matches!(
        l.finish_attempt(node, &forged, 5).unwrap(),
        Recorded::Rejected(m) if m.contains("signature")
    ));
    let liar = ReceiptSigner::from_seed(&[77; 32]);
    let wrong_key = result(&liar, job, 1, node, Outcome::Succeeded, 1_000);
    assert!(matches!(
        l.finish_attempt(node, &wrong_key, 5).unwrap(),
        Recorded::Rejected(_)
    ));
    let mut other_module = result(&signer, job, 1, node, Outcome::Succeeded, 1_000);
    other_module.receipt.module = Hash::of(b"other");
    other_module.signature = signer.sign(&other_module.receipt);
    assert!(matches!(
        l.finish_attempt(node, &other_module, 5).unwrap(),
        Recorded::Rejected(m) if m.contains("does not describe")
    ));
    assert_eq!(l.usage(&UsageQuery::default()).unwrap().total.attempts, 0);
    assert_eq!(l.job(job).unwrap().unwrap().state, JobState::Running);
    assert!(matches!(
        l.finish_attempt(node, &good, 5).unwrap(),
        Recorded::Ended { .. }
    ));
}

#[test]
fn a_node_token_keeps_the_key_it_first_registered() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (_, first) = add_node(&mut l, "prov", "Test GPU", 1);
    let impostor = ReceiptSigner::from_seed(&[2; 32]);
    let info = NodeInfo {
        gpu: gpu("Test GPU"),
        slots: 1,
        caps: NodeCaps::default(),
        public_key: impostor.public_key(),
        in_flight: Vec::new(),
        devices: Vec::new(),
        simulated_faults: None,
    };
    match l.register_node(&[1; 32], "prov", &info, 0).unwrap() {
        Registration::KeyMismatch(m) => assert!(m.contains(&first.public_key().to_hex()), "{m}"),
        other => panic!("{other:?}"),
    }
    // The same key registers again (a reconnect is a new session).
    add_node(&mut l, "prov", "Test GPU", 1);
}

/// Issue 11: a key is bound to one node token only; a second token
/// presenting it is refused, and it cannot end the first token's attempts.
#[test]
fn a_bound_key_serves_one_node_token_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (victim, signer) = add_node(&mut l, "victim", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(3));
    start(&mut l, job, victim);
    l.add_token(&[7; 32], Role::Node, "thief", 0).unwrap();
    let info = NodeInfo {
        gpu: gpu("Test GPU"),
        slots: 1,
        caps: NodeCaps::default(),
        public_key: signer.public_key(),
        in_flight: vec![(job, 1)],
        devices: Vec::new(),
        simulated_faults: None,
    };
    match l.register_node(&[7; 32], "thief", &info, 0).unwrap() {
        Registration::KeyTaken(m) => assert!(m.contains("bound to another node token"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(
        !l.adoptable(job, 1, &[7; 32], &signer.public_key().0)
            .unwrap()
    );
    // Even a session that got in before the binding rule (same key, other
    // token) cannot end the attempt: results go by token and key.
    l.conn
        .execute(
            "INSERT INTO nodes (name, gpu, slots, connected_ms, public_key, token_hash)
             SELECT 'thief', gpu, 1, 0, public_key, ?1 FROM nodes WHERE id = ?2",
            params![[7u8; 32].as_slice(), victim as i64],
        )
        .unwrap();
    let thief = l.conn.last_insert_rowid() as u64;
    let r = result(&signer, job, 1, victim, Outcome::ProviderFault, 0);
    assert_eq!(l.finish_attempt(thief, &r, 5).unwrap(), Recorded::Unknown);
    assert_eq!(l.open_attempts().unwrap(), vec![(job, 1, victim)]);
}

/// Issue 11: a number above `i64::MAX` is refused, not clamped (a clamped
/// receipt would no longer verify).
#[test]
fn a_receipt_with_a_value_beyond_i64_is_refused_not_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (node, signer) = add_node(&mut l, "n1", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(3));
    start(&mut l, job, node);
    let mut r = result(&signer, job, 1, node, Outcome::JobError, 5);
    r.receipt.wall_ns = u64::MAX;
    r.signature = signer.sign(&r.receipt);
    match l.finish_attempt(node, &r, 5).unwrap() {
        Recorded::Rejected(m) => assert!(m.contains("wall_ns"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(l.open_attempts().unwrap().len(), 1, "nothing recorded");
}

/// Issue 11: the slot cap, drain and quarantine live with the token.
#[test]
fn drain_quarantine_and_slot_caps_live_with_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.add_token_with_slots(&[3; 32], Role::Node, "prov", 0, 2)
        .unwrap();
    let (node, _) = add_node(&mut l, "prov", "Test GPU", 3);
    assert_eq!(l.set_drained("prov", true).unwrap(), 1);
    assert_eq!(l.set_drained("nobody", true).unwrap(), 0);
    for at in [10, 20, 30] {
        let job = submit(&mut l, "alice", &spec(3));
        start(&mut l, job, node);
        l.fault_attempt(job, 1, at, "missed").unwrap();
    }
    let q = l.note_fault(node, 31, 10, 3).unwrap();
    assert_eq!(q, None, "two of the faults are outside the window");
    let q = l
        .note_fault(node, 31, 60_000, 3)
        .unwrap()
        .expect("quarantined");
    assert_eq!((q.token_hash, q.name.as_str()), ([3; 32], "prov"));
    assert!(
        q.reason.contains("3 attempts ended provider_fault"),
        "{}",
        q.reason
    );
    drop(l);
    let mut l = open(&dir);
    let (_, signer) = add_node(&mut l, "prov", "Test GPU", 3);
    let info = NodeInfo {
        gpu: gpu("Test GPU"),
        slots: 64,
        caps: NodeCaps::default(),
        public_key: signer.public_key(),
        in_flight: Vec::new(),
        devices: Vec::new(),
        simulated_faults: None,
    };
    let Registration::Registered(s) = l.register_node(&[3; 32], "prov", &info, 40).unwrap() else {
        panic!("registered")
    };
    assert_eq!((s.max_slots, s.drained), (2, true));
    assert!(s.quarantine.is_some());
    assert_eq!(l.restore_node("prov", 50).unwrap(), 1);
    assert_eq!(l.set_drained("prov", false).unwrap(), 1);
    let Registration::Registered(s) = l.register_node(&[3; 32], "prov", &info, 60).unwrap() else {
        panic!("registered")
    };
    assert_eq!((s.drained, s.quarantine), (false, None));
    // Faults before the restore no longer count.
    assert_eq!(l.note_fault(s.id, 61, 60_000, 3).unwrap(), None);
}

#[test]
fn an_attempt_is_overdue_after_timeout_plus_dispatch_limit_plus_grace() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (node, _) = add_node(&mut l, "n1", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(3));
    start(&mut l, job, node); // at 1 ms
    let s = spec(3);
    let due = 1 + (s.limits.timeout_ns + s.limits.max_dispatch_ns) / 1_000_000 + 500;
    assert_eq!(l.overdue_attempts(due, 500, 0).unwrap(), vec![]);
    let overdue = l.overdue_attempts(due + 1, 500, 0).unwrap();
    let found: Vec<_> = overdue
        .iter()
        .map(|o| (o.job, o.attempt, o.node_id))
        .collect();
    assert_eq!(found, vec![(job, 1, node)]);
    // A coordinator that started at 1,000 ms times the attempt from then:
    // its downtime is not the node's delay.
    assert_eq!(l.overdue_attempts(due + 1, 500, 1_000).unwrap(), vec![]);
    assert_eq!(
        l.overdue_attempts(due + 1_000, 500, 1_000).unwrap().len(),
        1
    );
}

#[test]
fn lost_attempts_cost_nothing_and_requeue_until_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.set_price("default", 1_000_000, 0).unwrap();
    let (node, signer) = add_node(&mut l, "n1", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(2));
    start(&mut l, job, node);
    assert_eq!(
        l.lose_attempt(job, 1, 2, "gone").unwrap(),
        Recorded::Ended {
            state: JobState::Queued
        }
    );
    assert_eq!(
        l.lose_attempt(job, 1, 2, "gone").unwrap(),
        Recorded::Duplicate
    );
    assert_eq!(start(&mut l, job, node), 2);
    assert_eq!(
        l.lose_attempt(job, 2, 4, "gone").unwrap(),
        Recorded::Ended {
            state: JobState::Failed
        }
    );
    let view = l.job(job).unwrap().unwrap();
    assert_eq!(view.outcome, Some(Outcome::NodeLost));
    assert!(view.error.as_deref().unwrap().contains("all 2 attempts"));
    assert!(
        view.attempts
            .iter()
            .all(|a| a.outcome == Some(Outcome::NodeLost) && a.cost_micros == 0)
    );
    // A late result for a lost attempt changes nothing.
    assert_eq!(
        l.finish_attempt(
            node,
            &result(&signer, job, 2, node, Outcome::Succeeded, 5),
            9
        )
        .unwrap(),
        Recorded::Duplicate
    );
    let report = l.usage(&UsageQuery::default()).unwrap();
    assert_eq!((report.total.attempts, report.total.cost_micros), (2, 0));
}

#[test]
fn a_provider_fault_is_retried_and_not_billed_and_a_cancelled_job_pays_what_it_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.set_price("default", 1_000_000, 0).unwrap();
    let (node, signer) = add_node(&mut l, "n1", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(3));
    start(&mut l, job, node);
    let fault = result(&signer, job, 1, node, Outcome::ProviderFault, 7_000_000);
    assert_eq!(
        l.finish_attempt(node, &fault, 3).unwrap(),
        Recorded::Ended {
            state: JobState::Queued
        }
    );
    start(&mut l, job, node);
    l.cancel(job, 4).unwrap().unwrap();
    let cancelled = result(&signer, job, 2, node, Outcome::Cancelled, 3_000_000);
    assert_eq!(
        l.finish_attempt(node, &cancelled, 5).unwrap(),
        Recorded::Ended {
            state: JobState::Cancelled
        }
    );
    let a = l.job(job).unwrap().unwrap().attempts;
    assert_eq!((a[0].charged_gpu_ns, a[0].cost_micros), (0, 0));
    assert_eq!((a[1].charged_gpu_ns, a[1].cost_micros), (3_000_000, 3_000));
}

/// The dispatch in flight when the budget ran out kept the GPU busy for the
/// tenant: its overrun is charged, up to `min(timeout, budget + max_dispatch)`.
#[test]
fn the_price_in_force_when_an_attempt_starts_is_charged_with_the_overrun_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.set_price("default", 1_000_000, 0).unwrap();
    l.set_price("test-gpu", 3_000_000, 0).unwrap();
    let (node, signer) = add_node(&mut l, "n1", "Test GPU", 1);
    let mut budget = spec(1);
    budget.limits.max_gpu_ns = Some(50_000_000);
    let job = submit(&mut l, "alice", &budget);
    start(&mut l, job, node);
    l.set_price("test-gpu", 9_000_000, 1).unwrap(); // too late for this attempt
    let r = result(
        &signer,
        job,
        1,
        node,
        Outcome::GpuBudgetExceeded,
        73_456_789,
    );
    l.finish_attempt(node, &r, 3).unwrap();
    let a = &l.job(job).unwrap().unwrap().attempts[0];
    assert_eq!(a.gpu_ns, 73_456_789, "the overrun is recorded");
    assert_eq!(
        a.charged_gpu_ns, 73_456_789,
        "and charged: under 50 ms + 10 s"
    );
    assert_eq!(a.price_micros, 3_000_000);
    assert_eq!(a.cost_micros, 220_370); // 0.073456789 s × 3 units/s = 0.220370367
    // Past the cap, the cap.
    let job = submit(&mut l, "alice", &budget);
    start(&mut l, job, node);
    let r = result(&signer, job, 1, node, Outcome::GpuHang, 99_000_000_000);
    l.finish_attempt(node, &r, 3).unwrap();
    let a = &l.job(job).unwrap().unwrap().attempts[0];
    assert_eq!(a.charged_gpu_ns, 10_050_000_000);
    assert_eq!(a.cost_micros, 9_000_000 * 10_050 / 1_000);
    let prices = l.prices().unwrap();
    assert_eq!(
        prices
            .iter()
            .map(|p| (p.class.as_str(), p.micros))
            .collect::<Vec<_>>(),
        [("default", 1_000_000), ("test-gpu", 9_000_000)]
    );
}

#[test]
fn a_node_class_set_by_the_operator_overrides_the_adapter_and_follows_live_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (node_id, _) = add_node(&mut l, "n1", "llvmpipe (LLVM 15)", 1);
    assert_eq!(l.node_class(node_id).unwrap().as_deref(), Some("llvmpipe"));
    l.set_node_class("n1", Some("premium")).unwrap();
    assert_eq!(l.node_class(node_id).unwrap().as_deref(), Some("premium"));
    let (later, _) = add_node(&mut l, "n1", "llvmpipe (LLVM 15)", 1);
    assert_eq!(l.node_class(later).unwrap().as_deref(), Some("premium"));
    l.set_node_class("n1", None).unwrap();
    assert_eq!(l.node_class(later).unwrap().as_deref(), Some("llvmpipe"));
}

#[test]
fn credit_limits_refuse_submissions_and_starts_that_could_pass_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.set_price("default", 1_000_000, 0).unwrap(); // 1 unit per GPU-second
    let (node, signer) = add_node(&mut l, "n1", "Test GPU", 1);
    let mut small = spec(1);
    small.limits.max_gpu_ns = Some(300_000_000);
    small.limits.max_dispatch_ns = 100_000_000; // worst case 0.3 + 0.1 = 0.4 units
    l.set_credit_limit("alice", Some(1_000_000)).unwrap();
    let a1 = submit(&mut l, "alice", &small);
    let _a2 = submit(&mut l, "alice", &small);
    match l.submit("alice", &small, 0).unwrap() {
        Admission::OverCredit(m) => {
            assert!(m.contains("credit limit reached"), "{m}");
            assert!(m.contains("0.800000 is held"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // Another tenant is unaffected.
    submit(&mut l, "bob", &small);
    submit(&mut l, "bob", &small);
    submit(&mut l, "bob", &small);
    // Spending frees nothing: alice's first job uses 0.3 of its 0.4.
    start(&mut l, a1, node);
    l.finish_attempt(
        node,
        &result(&signer, a1, 1, node, Outcome::Succeeded, 300_000_000),
        2,
    )
    .unwrap();
    // Spent 0.3 + held 0.4 + new 0.4 > 1.0.
    assert!(matches!(
        l.submit("alice", &small, 0).unwrap(),
        Admission::OverCredit(_)
    ));
    // A price rise after submission is caught when the job would start.
    l.set_price("default", 5_000_000, 0).unwrap();
    let queued = l.queued(10).unwrap();
    let a2 = queued.iter().find(|j| j.tenant == "alice").unwrap().id;
    assert!(matches!(
        l.start_attempt(a2, node, 3).unwrap(),
        Start::OverCredit(m) if m.contains("credit limit")
    ));
    assert_eq!(l.job(a2).unwrap().unwrap().state, JobState::Queued);
    l.set_credit_limit("alice", None).unwrap();
    start(&mut l, a2, node);
    assert_eq!(l.credit("alice").unwrap(), None);
}

#[test]
fn usage_rows_are_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (node, signer) = add_node(&mut l, "n1", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(1));
    start(&mut l, job, node);
    l.finish_attempt(
        node,
        &result(&signer, job, 1, node, Outcome::Succeeded, 10),
        2,
    )
    .unwrap();
    let err = l
        .conn
        .execute("UPDATE usage SET cost_micros = 0", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(l.conn.execute("DELETE FROM usage", []).is_err());
}

/// Random workloads: per-attempt costs (each by the rule), the invoice lines
/// (records) and every grouping of the report all add up to the same total.
#[test]
fn invoice_lines_and_every_grouping_sum_to_the_same_total() {
    for seed in 0..8u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let mut l = open(&dir);
        let classes = ["Alpha GPU", "Beta GPU", "Gamma GPU"];
        for c in ["alpha-gpu", "beta-gpu", "default"] {
            l.set_price(c, rng.random_range(0..5_000_000), 0).unwrap();
        }
        let nodes: Vec<(u64, ReceiptSigner)> = (0..3)
            .map(|n| add_node(&mut l, &format!("n{n}"), classes[n], n as u8 + 1))
            .collect();
        let mut expected = 0u64;
        let mut expected_by_tenant = std::collections::BTreeMap::<String, u64>::new();
        let prices: std::collections::HashMap<String, u64> = l
            .prices()
            .unwrap()
            .into_iter()
            .map(|p| (p.class, p.micros))
            .collect();
        for _ in 0..rng.random_range(20..80) {
            let tenant = ["t1", "t2", "t3"][rng.random_range(0..3)].to_owned();
            let mut s = spec(2);
            s.limits.max_gpu_ns = rng
                .random_bool(0.5)
                .then(|| rng.random_range(1..2_000_000_000));
            let job = submit(&mut l, &tenant, &s);
            let n = rng.random_range(0..3);
            let (node_id, signer) = &nodes[n];
            let attempt = start(&mut l, job, *node_id);
            let outcome = Outcome::ALL[rng.random_range(0..Outcome::ALL.len())];
            let gpu_ns = rng.random_range(0..3_000_000_000u64);
            if rng.random_bool(0.1) {
                l.lose_attempt(job, attempt, 5, "gone").unwrap();
                continue;
            }
            l.finish_attempt(
                *node_id,
                &result(signer, job, attempt, *node_id, outcome, gpu_ns),
                5,
            )
            .unwrap();
            let class = crate::billing::gpu_class(classes[n]);
            let price = prices.get(&class).copied().unwrap_or(prices["default"]);
            let charged = crate::billing::charged_gpu_ns(outcome, gpu_ns, &s.limits);
            expected += cost_micros(charged, price);
            *expected_by_tenant.entry(tenant).or_default() += cost_micros(charged, price);
        }
        let mut lines = Vec::new();
        let mut after = None;
        loop {
            let page = l.usage_records(&UsageQuery::default(), after, 7).unwrap();
            let Some(last) = page.last() else { break };
            after = Some((last.receipt.job, last.receipt.attempt));
            lines.extend(page);
        }
        let line_total: u64 = lines.iter().map(|r| r.cost_micros).sum();
        assert_eq!(line_total, expected, "seed {seed}");
        for group_by in [
            GroupBy::Nothing,
            GroupBy::Tenant,
            GroupBy::Node,
            GroupBy::Class,
            GroupBy::Day,
        ] {
            let report = l
                .usage(&UsageQuery {
                    group_by,
                    ..UsageQuery::default()
                })
                .unwrap();
            assert_eq!(
                report.total.cost_micros, expected,
                "seed {seed} {group_by:?}"
            );
            assert_eq!(report.total.attempts, lines.len() as u64);
            if group_by != GroupBy::Nothing {
                let sum: u64 = report.groups.iter().map(|g| g.cost_micros).sum();
                assert_eq!(sum, expected, "seed {seed} {group_by:?}");
            }
        }
        for (tenant, cost) in expected_by_tenant {
            let q = UsageQuery {
                tenant: Some(tenant.clone()),
                ..UsageQuery::default()
            };
            assert_eq!(l.usage(&q).unwrap().total.cost_micros, cost);
            let lines: u64 = l
                .usage_records(&q, None, 10_000)
                .unwrap()
                .iter()
                .map(|r| r.cost_micros)
                .sum();
            assert_eq!(lines, cost);
        }
        assert_eq!(l.check().unwrap(), Vec::<String>::new(), "seed {seed}");
    }
}

#[test]
fn the_queue_is_bounded_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    for _ in 0..50 {
        submit(&mut l, "hog", &spec(1));
    }
    let lone = submit(&mut l, "lone", &spec(1));
    let q = l.queued(4).unwrap();
    assert_eq!(q.len(), 5);
    assert!(q.iter().any(|j| j.id == lone));
}

#[test]
fn tokens_are_found_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    assert!(!l.has_tokens(Role::Admin).unwrap());
    l.add_token(&[1; 32], Role::Admin, "root", 0).unwrap();
    assert!(l.has_tokens(Role::Admin).unwrap());
    assert_eq!(
        l.find_token(&[1; 32]).unwrap(),
        Some((Role::Admin, "root".into(), vec![1; 32]))
    );
    assert_eq!(l.find_token(&[2; 32]).unwrap(), None);
}

#[test]
fn the_check_passes_on_a_consistent_ledger_and_names_each_violation() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.set_price("default", 1_000_000, 0).unwrap();
    let (node, signer) = add_node(&mut l, "n1", "Test GPU", 1);
    let done = submit(&mut l, "alice", &spec(3));
    start(&mut l, done, node);
    l.finish_attempt(
        node,
        &result(&signer, done, 1, node, Outcome::Succeeded, 10_000),
        2,
    )
    .unwrap();
    let lost = submit(&mut l, "bob", &spec(3));
    start(&mut l, lost, node);
    l.lose_attempt(lost, 1, 3, "gone").unwrap();
    let running = submit(&mut l, "bob", &spec(3));
    start(&mut l, running, node);
    assert_eq!(l.check().unwrap(), Vec::<String>::new());
    let key = signer.public_key().0;
    assert!(l.adoptable(running, 1, &[1; 32], &key).unwrap());
    assert!(!l.adoptable(running, 1, &[1; 32], &[0; 32]).unwrap());
    assert!(
        !l.adoptable(running, 1, &[9; 32], &key).unwrap(),
        "the key alone adopts nothing"
    );
    assert!(!l.adoptable(lost, 1, &[1; 32], &key).unwrap());

    // A job both queued and running.
    l.conn
        .execute(
            "UPDATE jobs SET state = 'queued' WHERE id = ?1",
            [running as i64],
        )
        .unwrap();
    // A billed row whose signature no longer matches (bypassing the triggers).
    l.conn
        .execute_batch(
            "DROP TRIGGER usage_is_append_only_update;
             UPDATE usage SET gpu_ns = gpu_ns + 1, charged_gpu_ns = charged_gpu_ns + 1 WHERE outcome = 'succeeded';
             UPDATE attempts SET gpu_ns = gpu_ns + 1 WHERE outcome = 'succeeded';",
        )
        .unwrap();
    let found = l.check().unwrap();
    assert!(
        found
            .iter()
            .any(|v| v.contains(&format!("job {running} has 1 running attempts"))),
        "{found:?}"
    );
    assert!(found.iter().any(|v| v.contains("signature")), "{found:?}");
}

#[test]
fn limits_and_caps_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let mut s = spec(4);
    s.limits = JobLimits {
        max_gpu_ns: Some(123),
        timeout_ns: 456,
        max_memory_bytes: 789,
        max_dispatch_ns: 1_011,
    };
    let job = submit(&mut l, "alice", &s);
    assert_eq!(l.job(job).unwrap().unwrap().spec, s);
    let token = [9; 32];
    l.add_token(&token, Role::Node, "capped", 0).unwrap();
    let caps = NodeCaps {
        max_memory_bytes: 1 << 30,
        max_timeout_ns: 5_000_000_000,
        max_dispatch_ns: 1_000_000_000,
    };
    let info = NodeInfo {
        gpu: gpu("Test GPU"),
        slots: 2,
        caps,
        public_key: ReceiptSigner::from_seed(&[9; 32]).public_key(),
        in_flight: Vec::new(),
        devices: Vec::new(),
        simulated_faults: None,
    };
    let Registration::Registered(session) = l.register_node(&token, "capped", &info, 0).unwrap()
    else {
        panic!("refused")
    };
    assert_eq!(l.node_caps(session.id).unwrap(), Some(caps));
    assert_eq!(l.node_caps(session.id + 100).unwrap(), None);
}

/// A `crashed` attempt is retried once, never on the node (token name) it
/// crashed on, and that survives reopening the ledger; a second crash is
/// final. Both attempts are charged the GPU time their nodes measured.
#[test]
fn a_crash_is_retried_once_elsewhere_then_final() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.set_price("default", 1_000_000, 0).unwrap();
    let (n1, s1) = add_node(&mut l, "n1", "Test GPU", 1);
    let (n2, s2) = add_node(&mut l, "n2", "Test GPU", 2);
    let job = submit(&mut l, "alice", &spec(5));
    start(&mut l, job, n1);
    let crashed = result(&s1, job, 1, n1, Outcome::Crashed, 4_000_000);
    assert_eq!(
        l.finish_attempt(n1, &crashed, 2).unwrap(),
        Recorded::Ended {
            state: JobState::Queued
        }
    );
    drop(l);
    let mut l = open(&dir);
    let queued = l.queued(10).unwrap();
    assert_eq!(queued[0].crashed_on, ["n1"], "kept across a restart");
    // A lost attempt in between does not reset it.
    start(&mut l, job, n2);
    l.lose_attempt(job, 2, 3, "gone").unwrap();
    assert_eq!(l.queued(10).unwrap()[0].crashed_on, ["n1"]);
    start(&mut l, job, n2);
    let again = result(&s2, job, 3, n2, Outcome::Crashed, 6_000_000);
    assert_eq!(
        l.finish_attempt(n2, &again, 4).unwrap(),
        Recorded::Ended {
            state: JobState::Failed
        }
    );
    let view = l.job(job).unwrap().unwrap();
    assert_eq!(view.outcome, Some(Outcome::Crashed));
    let error = view.error.unwrap();
    assert!(error.contains("twice (on n1 and n2)"), "{error}");
    let charged: Vec<(u64, u64)> = view
        .attempts
        .iter()
        .map(|a| (a.charged_gpu_ns, a.cost_micros))
        .collect();
    assert_eq!(charged, [(4_000_000, 4_000), (0, 0), (6_000_000, 6_000)]);
    assert_eq!(l.check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_crash_without_attempts_left_is_final_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (n1, s1) = add_node(&mut l, "n1", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(1));
    start(&mut l, job, n1);
    let r = result(&s1, job, 1, n1, Outcome::Crashed, 0);
    l.finish_attempt(n1, &r, 2).unwrap();
    let view = l.job(job).unwrap().unwrap();
    assert_eq!(view.state, JobState::Failed);
    assert!(
        view.error
            .unwrap()
            .contains("no attempts left (--max-attempts 1)"),
        "the reason names the limit"
    );
}

/// `gpu_hang` is the job's own kernel: final at once (attempts remain),
/// charged up to the cap. A node claiming `node_lost` is treated as the
/// provider's fault: unbilled and retried.
#[test]
fn a_gpu_hang_is_final_and_charged_and_a_claimed_node_loss_is_retried_unbilled() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.set_price("default", 2_000_000, 0).unwrap();
    let (n1, s1) = add_node(&mut l, "n1", "Test GPU", 1);
    let mut s = spec(3);
    s.limits.max_gpu_ns = Some(1_000_000_000);
    s.limits.max_dispatch_ns = 2_000_000_000;
    let job = submit(&mut l, "alice", &s);
    start(&mut l, job, n1);
    let r = result(&s1, job, 1, n1, Outcome::GpuHang, 3_500_000_000);
    assert_eq!(
        l.finish_attempt(n1, &r, 2).unwrap(),
        Recorded::Ended {
            state: JobState::Failed
        }
    );
    let view = l.job(job).unwrap().unwrap();
    assert_eq!(view.outcome, Some(Outcome::GpuHang));
    assert_eq!(view.attempts.len(), 1);
    assert_eq!(
        view.attempts[0].charged_gpu_ns, 3_000_000_000,
        "budget + dispatch"
    );
    assert_eq!(view.attempts[0].cost_micros, 6_000_000);

    let job = submit(&mut l, "alice", &s);
    start(&mut l, job, n1);
    let r = result(&s1, job, 1, n1, Outcome::NodeLost, 1_000);
    assert_eq!(
        l.finish_attempt(n1, &r, 2).unwrap(),
        Recorded::Ended {
            state: JobState::Queued
        }
    );
    assert_eq!(l.job(job).unwrap().unwrap().attempts[0].cost_micros, 0);
    assert_eq!(l.check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_huge_error_from_a_node_is_stored_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (n1, s1) = add_node(&mut l, "n1", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(1));
    start(&mut l, job, n1);
    let mut r = result(&s1, job, 1, n1, Outcome::JobError, 10);
    r.error = Some("e".repeat(2 << 20));
    l.finish_attempt(n1, &r, 2).unwrap();
    let view = l.job(job).unwrap().unwrap();
    for error in [view.error.unwrap(), view.attempts[0].error.clone().unwrap()] {
        assert!(error.len() <= MAX_ERROR_BYTES, "{}", error.len());
        let kept = MAX_ERROR_BYTES - 64;
        assert!(error.ends_with(&format!("[... {} of 2097152 bytes cut]", (2 << 20) - kept)));
    }
}

/// Admission holds `min(timeout, budget + max_dispatch)` at the highest
/// price: a limit of exactly that admits one job, not two.
#[test]
fn credit_admission_holds_the_cap_with_the_dispatch_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.set_price("default", 1_000_000, 0).unwrap();
    let mut s = spec(1);
    s.limits.max_gpu_ns = Some(60_000_000);
    s.limits.max_dispatch_ns = 40_000_000; // worst case 0.1 units
    l.set_credit_limit("alice", Some(100_000)).unwrap();
    submit(&mut l, "alice", &s);
    match l.submit("alice", &s, 0).unwrap() {
        Admission::OverCredit(m) => {
            assert!(m.contains("0.100000 is held"), "{m}");
            assert!(m.contains("up to 0.100000 (0.100000000 GPU-seconds"), "{m}");
            assert!(m.contains("--max-dispatch-seconds"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // A timeout under budget + dispatch bounds it instead: 0.05 units.
    l.set_credit_limit("bob", Some(100_000)).unwrap();
    let mut short = s.clone();
    short.limits.timeout_ns = 50_000_000;
    submit(&mut l, "bob", &short);
    submit(&mut l, "bob", &short);
    assert!(matches!(
        l.submit("bob", &short, 0).unwrap(),
        Admission::OverCredit(_)
    ));
}

#[test]
fn the_check_finds_a_job_run_again_where_it_crashed_and_a_cap_above_the_worst_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (n1, s1) = add_node(&mut l, "n1", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(3));
    start(&mut l, job, n1);
    l.finish_attempt(n1, &result(&s1, job, 1, n1, Outcome::Crashed, 5), 2)
        .unwrap();
    // The scheduler would never do this; the ledger alone does not stop it.
    start(&mut l, job, n1);
    l.conn
        .execute_batch(
            "DROP TRIGGER usage_is_append_only_update;
             UPDATE usage SET charge_cap_ns = 999999999999999 WHERE attempt = 1;",
        )
        .unwrap();
    let found = l.check().unwrap();
    assert!(
        found
            .iter()
            .any(|v| v.contains("attempt 2 ran on a node its job had crashed on")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|v| v.contains("above its job's worst case")),
        "{found:?}"
    );
}

#[test]
fn check_record_holds_the_charge_to_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (n1, s1) = add_node(&mut l, "n1", "Test GPU", 1);
    let mut s = spec(1);
    s.limits.max_gpu_ns = Some(1_000);
    s.limits.max_dispatch_ns = 1_000;
    let job = submit(&mut l, "alice", &s);
    start(&mut l, job, n1);
    l.finish_attempt(
        n1,
        &result(&s1, job, 1, n1, Outcome::GpuBudgetExceeded, 5_000),
        2,
    )
    .unwrap();
    let record = l.usage_records(&UsageQuery::default(), None, 10).unwrap()[0].clone();
    assert_eq!(
        (record.charged_gpu_ns, record.charge_cap_ns),
        (2_000, 2_000)
    );
    crate::billing::check_record(&record).unwrap();
    let mut under = record.clone();
    under.charged_gpu_ns = 1_000; // the old rule's charge
    let err = crate::billing::check_record(&under).unwrap_err();
    assert!(err.contains("the rule gives 2000"), "{err}");
}

/// A ledger written by schema version 2 (outcomes as free text, `none`
/// metering for coordinator-ended attempts, no dispatch limit, overruns not
/// charged) migrates with every row kept and passes the check.
#[test]
fn a_version_2_ledger_migrates_with_its_rows_and_passes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let signer = v2_fixture(&dir, "gpu_budget_exceeded");
    let mut l = open(&dir);
    assert_eq!(l.check().unwrap(), Vec::<String>::new());
    let done = l.job(1).unwrap().unwrap();
    assert_eq!(done.outcome, Some(Outcome::GpuBudgetExceeded));
    assert_eq!(done.spec.limits.max_dispatch_ns, 10_000_000_000);
    assert_eq!(done.attempts[0].metering, Some(Metering::Timestamp));
    let lost = l.job(2).unwrap().unwrap();
    assert_eq!(lost.attempts[0].outcome, Some(Outcome::NodeLost));
    assert_eq!(lost.attempts[0].metering, None);
    let records = l.usage_records(&UsageQuery::default(), None, 10).unwrap();
    assert_eq!(records.len(), 2);
    // The old row keeps the cap it was charged under: the budget.
    assert_eq!(
        (records[0].charged_gpu_ns, records[0].charge_cap_ns),
        (50_000_000, 50_000_000)
    );
    records[0]
        .receipt
        .verify(&signer.public_key(), records[0].signature.as_ref().unwrap())
        .unwrap();
    assert!(records[1].signature.is_none());
    // Ids keep counting; foreign keys, triggers and constraints are there.
    let seq: i64 = l
        .conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(seq, 2);
    let fk: i64 = l
        .conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    assert_eq!(submit(&mut l, "alice", &spec(1)), 3);
    assert!(l.conn.execute("DELETE FROM usage", []).is_err());
    let bad = l
        .conn
        .execute("UPDATE jobs SET outcome = 'bogus' WHERE id = 1", [])
        .unwrap_err();
    assert!(bad.to_string().contains("CHECK"), "{bad}");
    assert!(
        l.conn
            .execute("UPDATE attempts SET metering = 'none' WHERE job = 1", [])
            .is_err()
    );
    // New attempts run on after the migration (on another node: the
    // fixture's token holds key 1, and a key serves one token).
    let (node, s) = add_node(&mut l, "n2", "Test GPU", 2);
    start(&mut l, 3, node);
    l.finish_attempt(node, &result(&s, 3, 1, node, Outcome::Succeeded, 7), 9)
        .unwrap();
    assert_eq!(l.check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_version_2_ledger_with_an_unknown_outcome_is_not_migrated_and_the_rows_are_named() {
    let dir = tempfile::tempdir().unwrap();
    v2_fixture(&dir, "exploded");
    let Err(err) = Ledger::open(&dir.path().join("ledger.db")) else {
        panic!("migrated")
    };
    let text = err.to_string();
    assert!(text.contains("schema version 3"), "{text}");
    assert!(text.contains("usage row 1/1 has \"exploded\""), "{text}");
    assert!(text.contains("job 1 has \"exploded\""), "{text}");
    let conn = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2, "left unchanged");
}

/// What the code of schema version 2 wrote: job 1 ended `outcome` (signed)
/// after overrunning its 50 ms budget (charged the budget), job 2's attempt
/// was lost (`none` metering, unsigned).
fn v2_fixture(dir: &tempfile::TempDir, outcome: &str) -> ReceiptSigner {
    let conn = rusqlite::Connection::open(dir.path().join("ledger.db")).unwrap();
    for sql in &crate::schema::MIGRATIONS[..2] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 2).unwrap();
    let signer = ReceiptSigner::from_seed(&[1; 32]);
    let key = signer.public_key().0.to_vec();
    let (module, input) = (
        Hash::of(b"module").0.to_vec(),
        Hash::of(b"input").0.to_vec(),
    );
    conn.execute(
        "INSERT INTO tokens (hash, role, name, created_ms, node_key) VALUES (x'01', 'node', 'n1', 0, ?1)",
        [&key],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO nodes (name, gpu, slots, connected_ms, gpu_class, public_key)
         VALUES ('n1', '{\"name\":\"Test GPU\"}', 1, 0, 'test-gpu', ?1)",
        [&key],
    )
    .unwrap();
    for (id, state) in [(1, "failed"), (2, "failed")] {
        conn.execute(
            "INSERT INTO jobs (id, tenant, state, module, input, min_gpu_memory, max_gpu_ns, timeout_ns,
                               max_memory, max_attempts, outcome, submitted_ms)
             VALUES (?1, 'alice', ?2, ?3, ?4, 0, 50000000, 60000000000, 1024, 1, ?5, 0)",
            rusqlite::params![id, state, module, input, if id == 1 { outcome } else { "node_lost" }],
        )
        .unwrap();
    }
    let receipt = Receipt {
        job: 1,
        attempt: 1,
        node_id: 1,
        module: Hash::of(b"module"),
        input: Hash::of(b"input"),
        output: None,
        gpu_ns: 73_000_000,
        wall_ns: 80_000_000,
        outcome: Outcome::GpuBudgetExceeded,
        metering: Metering::Timestamp,
        started_ms: 1,
        ended_ms: 2,
    };
    let signature = signer.sign(&receipt).to_bytes().to_vec();
    conn.execute_batch(&format!(
        "INSERT INTO attempts (job, attempt, node_id, outcome, gpu_ns, wall_ns, metering, started_ms,
                               ended_ms, gpu_class, price_micros)
         VALUES (1, 1, 1, '{outcome}', 73000000, 80000000, 'timestamp', 1, 2, 'test-gpu', 1000000),
                (2, 1, 1, 'node_lost', 0, 0, NULL, 1, 3, 'test-gpu', 1000000);"
    ))
    .unwrap();
    for (job, outcome, metering, gpu, charged, cost, sig) in [
        (
            1,
            outcome,
            "timestamp",
            73_000_000,
            50_000_000,
            50_000,
            Some(signature),
        ),
        (2, "node_lost", "none", 0, 0, 0, None),
    ] {
        conn.execute(
            "INSERT INTO usage (job, attempt, tenant, node, node_id, node_key, gpu_class, module, input,
                                outcome, metering, gpu_ns, charged_gpu_ns, wall_ns, price_micros,
                                cost_micros, started_ms, ended_ms, recorded_ms, signature)
             VALUES (?1, 1, 'alice', 'n1', 1, ?2, 'test-gpu', ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1000000,
                     ?10, 1, ?11, 5, ?12)",
            rusqlite::params![
                job,
                key,
                module,
                input,
                outcome,
                metering,
                gpu,
                charged,
                if job == 1 { 80_000_000 } else { 0 },
                cost,
                if job == 1 { 2 } else { 3 },
                sig
            ],
        )
        .unwrap();
    }
    signer
}

#[test]
fn a_job_cancelled_before_any_attempt_passes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let job = submit(&mut l, "alice", &spec(3));
    assert_eq!(l.cancel(job, 1).unwrap(), Some(None));
    assert_eq!(l.check().unwrap(), Vec::<String>::new());
}

/// Issue 11: a ledger where two node tokens hold the same receipt key (the
/// takeover schema 4 closes) is not migrated; the tokens are named.
#[test]
fn a_ledger_with_a_key_bound_to_two_tokens_is_not_migrated_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &crate::schema::MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO tokens (hash, role, name, created_ms, node_key)
                 VALUES (x'01', 'node', 'victim', 0, x'aa'), (x'02', 'node', 'thief', 1, x'aa');",
        )
        .unwrap();
    }
    match Ledger::open(&path) {
        Err(LedgerError::Migration { version, reason }) => {
            assert_eq!(version, 4);
            assert!(reason.contains("victim, thief"), "{reason}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("migrated"),
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3, "left unchanged");
}

/// A running job cancelled by its tenant keeps its attempt open until the
/// node reports (or the attempt's deadline passes): that is consistent, and
/// `admin check` must not report it (a silent node would otherwise make the
/// check fail until the deadline, up to the job's timeout plus grace).
#[test]
fn a_running_job_cancelled_before_its_node_reports_passes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (node, _signer) = add_node(&mut l, "n1", "Test GPU", 1);
    let job = submit(&mut l, "alice", &spec(3));
    start(&mut l, job, node);
    assert!(l.cancel(job, 2).unwrap().unwrap().is_some());
    assert_eq!(l.check().unwrap(), Vec::<String>::new());
}

/// Random workloads written through the writer from several threads at
/// once (so batches hold many operations): every tenant's running spend
/// total (what credit checks read) equals the sum of its usage rows, the
/// check agrees, and it names a total that drifts from its rows.
#[test]
fn running_spend_totals_equal_the_sum_of_usage_rows_after_random_batched_writes() {
    use crate::writer::{Writer, WriterConfig};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut l = Ledger::open(&path).unwrap();
    for (c, p) in [("alpha-gpu", 1_700_000), ("default", 3_100_000)] {
        l.set_price(c, p, 0).unwrap();
    }
    let nodes: Vec<(u64, ReceiptSigner)> = (0..3)
        .map(|n| {
            add_node(
                &mut l,
                &format!("n{n}"),
                ["Alpha GPU", "Beta GPU"][n % 2],
                n as u8 + 1,
            )
        })
        .collect();
    let tenants = ["t1", "t2", "t3", "t4"];
    for t in tenants {
        l.set_credit_limit(t, Some(u64::MAX / 4)).unwrap();
    }
    let (w, thread) = Writer::start(l, WriterConfig::default()).unwrap();
    let nodes = std::sync::Arc::new(nodes);
    let workers: Vec<_> = (0..4u64)
        .map(|seed| {
            let (w, nodes) = (w.clone(), nodes.clone());
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                for _ in 0..60 {
                    let tenant = tenants[rng.random_range(0..tenants.len())];
                    let n = rng.random_range(0..nodes.len());
                    let node_id = nodes[n].0;
                    let key = ReceiptSigner::from_seed(&[n as u8 + 1; 32]);
                    let outcome = Outcome::ALL[rng.random_range(0..Outcome::ALL.len())];
                    let gpu_ns = rng.random_range(0..3_000_000_000u64);
                    let lose = rng.random_bool(0.1);
                    w.write_blocking(move |l: &mut Ledger| {
                        let job = submit(l, tenant, &spec(2));
                        let attempt = start(l, job, node_id);
                        if lose {
                            l.lose_attempt(job, attempt, 5, "gone")?;
                        } else {
                            let r = result(&key, job, attempt, node_id, outcome, gpu_ns);
                            l.finish_attempt(node_id, &r, 5)?;
                        }
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in workers {
        t.join().unwrap();
    }
    drop(w);
    thread.join();
    let mut l = Ledger::open(&path).unwrap();
    assert_eq!(l.check().unwrap(), Vec::<String>::new());
    for t in tenants {
        let q = UsageQuery {
            tenant: Some(t.to_owned()),
            ..UsageQuery::default()
        };
        let rows: u64 = l
            .usage_records(&q, None, 10_000)
            .unwrap()
            .iter()
            .map(|r| r.cost_micros)
            .sum();
        assert_eq!(
            l.credit(t).unwrap().map(|(_, spent)| spent),
            Some(rows),
            "{t}"
        );
    }
    l.conn
        .execute(
            "UPDATE tenant_spend SET micros = micros + 1 WHERE tenant = 't2'",
            [],
        )
        .unwrap();
    let found = l.check().unwrap();
    assert!(
        found.len() == 1 && found[0].starts_with("tenant t2: its running spend total"),
        "{found:?}"
    );
}

/// The scheduler's batched view of the queue says what the per-job views
/// say: attempts made, nodes crashed on and deadlines missed on.
#[test]
fn the_batched_queue_agrees_with_each_job_view() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    let (a, ka) = add_node(&mut l, "a", "Alpha GPU", 1);
    let (b, _) = add_node(&mut l, "b", "Alpha GPU", 2);
    let crashed = submit(&mut l, "t", &spec(5));
    let attempt = start(&mut l, crashed, a);
    l.finish_attempt(
        a,
        &result(&ka, crashed, attempt, a, Outcome::Crashed, 10),
        5,
    )
    .unwrap();
    let missed = submit(&mut l, "t", &spec(5));
    let attempt = start(&mut l, missed, b);
    let why = format!("{DEADLINE_MISSED}: late");
    l.fault_attempt(missed, attempt, 5, &why).unwrap();
    let attempt = start(&mut l, missed, a);
    l.lose_attempt(missed, attempt, 6, "gone").unwrap();
    let fresh = submit(&mut l, "u", &spec(1));
    let queued = l.queued(32).unwrap();
    assert_eq!(queued.len(), 3);
    for q in &queued {
        let view = l.job(q.id).unwrap().unwrap();
        assert_eq!(q.attempts as usize, view.attempts.len(), "job {}", q.id);
        assert_eq!(q.crashed_on, crashed_on(&view), "job {}", q.id);
        assert_eq!(q.missed_on, missed_deadline_on(&view), "job {}", q.id);
        assert_eq!(q.spec, view.spec);
        assert_eq!(q.tenant, view.tenant);
    }
    assert_eq!(queued[0].crashed_on, ["a"]);
    assert_eq!(queued[1].missed_on, ["b"]);
    assert_eq!(queued[1].attempts, 2);
    assert_eq!(queued[2].id, fresh);
    let running = l.running_per_tenant().unwrap();
    assert!(running.is_empty(), "{running:?}");
    start(&mut l, fresh, b);
    assert_eq!(l.running_per_tenant().unwrap().get("u"), Some(&1));
}

#[test]
fn monitoring_stats_and_usage_series_add_up_to_the_usage_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir);
    l.set_price("default", 2_000_000, 0).unwrap();
    let (node, signer) = add_node(&mut l, "n1", "Test GPU", 1);
    const HOUR: u64 = 3_600_000;
    // Two attempts ended in the first hour, one in the third; one running;
    // one queued since 0.
    for (tenant, ended_ms, gpu_ns) in [
        ("a", 10, 1_000),
        ("b", 20, 2_000),
        ("a", 2 * HOUR + 5, 4_000),
    ] {
        let job = submit(&mut l, tenant, &spec(1));
        let attempt = start(&mut l, job, node);
        let r = result(&signer, job, attempt, node, Outcome::Succeeded, gpu_ns);
        l.finish_attempt(node, &r, ended_ms).unwrap();
    }
    let running = submit(&mut l, "b", &spec(1));
    start(&mut l, running, node);
    submit(&mut l, "a", &spec(1));

    let stats = l.stats().unwrap();
    assert_eq!(
        stats.jobs_by_state,
        vec![
            ("queued".into(), 1),
            ("running".into(), 1),
            ("succeeded".into(), 3)
        ]
    );
    assert_eq!(
        stats.attempts_by_outcome,
        vec![("running".into(), 1), ("succeeded".into(), 3)]
    );
    assert_eq!(stats.queued.len(), 1);
    assert_eq!(
        (stats.queued[0].tenant.as_str(), stats.queued[0].jobs),
        ("a", 1)
    );
    let by_class = l
        .usage(&UsageQuery {
            group_by: GroupBy::Class,
            ..UsageQuery::default()
        })
        .unwrap();
    assert_eq!(stats.usage_by_class, by_class.groups);

    let q = UsageQuery {
        group_by: GroupBy::Tenant,
        ..UsageQuery::default()
    };
    let series = l.usage_series(&q, HOUR).unwrap();
    let buckets = |t: &str| -> Vec<(u64, u64)> {
        series[t]
            .iter()
            .map(|p| (p.bucket_ms, p.usage.gpu_ns))
            .collect()
    };
    assert_eq!(buckets("a"), vec![(0, 1_000), (2 * HOUR, 4_000)]);
    assert_eq!(buckets("b"), vec![(0, 2_000)]);
    let report = l.usage(&q).unwrap();
    for g in &report.groups {
        let cost: u64 = series[&g.key].iter().map(|p| p.usage.cost_micros).sum();
        assert_eq!(cost, g.cost_micros, "{}", g.key);
    }
    // A bucket of 0 is taken as 1 ms, not a division by zero.
    assert_eq!(l.usage_series(&q, 0).unwrap()["a"].len(), 2);
}
