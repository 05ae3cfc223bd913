//! Billing on a real cluster: prices per GPU class, signed receipts checked
//! by the coordinator and by `suanli usage --verify`, budgets, credit limits,
//! and reports that add up to the nanosecond and the micro-unit.

use std::collections::BTreeMap;

use suanli_e2e::{FakeNode, TestCluster, guest_wasm, ok_json, suanli, wait_final};
use suanli_net::NetError;
use suanli_proto::usage::{GroupBy, UsageQuery};
use suanli_proto::{AttemptView, ErrorCode, JobLimits, JobState, Outcome, Requirements, Role};

/// The cost rule, written out independently of the implementation.
fn expected_cost(gpu_ns: u64, price: u64) -> u64 {
    ((gpu_ns as u128 * price as u128 + 500_000_000) / 1_000_000_000) as u64
}

const PLAIN_PRICE: u64 = 1_700_003;
const PREMIUM_PRICE: u64 = 4_300_001;

fn input(seed: u64, len: usize) -> Vec<u8> {
    let a: Vec<f32> = (0..len).map(|i| (i as u64 * seed % 1000) as f32).collect();
    let b: Vec<f32> = (0..len).map(|i| (i as f32) * 0.5).collect();
    vector_add::reference::encode_input(&a, &b)
}

#[derive(Default, Debug, PartialEq, Eq)]
struct Sums {
    attempts: u64,
    gpu_ns: u64,
    charged: u64,
    wall_ns: u64,
    cost: u64,
}

impl Sums {
    fn add(&mut self, a: &AttemptView) {
        self.attempts += 1;
        self.gpu_ns += a.gpu_ns;
        self.charged += a.charged_gpu_ns;
        self.wall_ns += a.wall_ns;
        self.cost += a.cost_micros;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_on_two_differently_priced_nodes_matches_the_attempts_exactly() {
    let cluster = TestCluster::start().await;
    let admin = &cluster.admin;
    admin.set_price("default", PLAIN_PRICE).await.unwrap();
    admin.set_price("premium", PREMIUM_PRICE).await.unwrap();
    admin.set_node_class("fast", Some("premium")).await.unwrap();
    cluster.add_node("plain", 1, None).await;
    cluster.add_node("fast", 1, None).await;
    let nodes = admin.nodes().await.unwrap();
    let classes: BTreeMap<String, String> = nodes
        .iter()
        .map(|n| (n.name.clone(), n.gpu_class.clone()))
        .collect();
    assert_eq!(classes["fast"], "premium");
    assert_ne!(classes["plain"], "premium", "derived from the adapter");

    let alice = cluster.tenant("alice").await;
    let bob = cluster.tenant("bob").await;
    let module = guest_wasm("vector_add");
    let mut jobs = Vec::new();
    for seed in 0..12u64 {
        let (who, client) = if seed % 2 == 0 {
            ("alice", &alice)
        } else {
            ("bob", &bob)
        };
        let input = input(seed + 1, 20_000 + seed as usize * 5_000);
        let job = client
            .submit(
                &module,
                &input,
                Requirements::default(),
                JobLimits::default(),
                1,
            )
            .await
            .unwrap();
        jobs.push((job, who, input));
    }
    let mut by_tenant: BTreeMap<String, Sums> = BTreeMap::new();
    let mut by_node: BTreeMap<String, Sums> = BTreeMap::new();
    let mut by_class: BTreeMap<String, Sums> = BTreeMap::new();
    let mut total = Sums::default();
    for (job, who, input) in &jobs {
        let client = if *who == "alice" { &alice } else { &bob };
        let (view, output) = client.result(*job).await.unwrap();
        assert_eq!(view.state, JobState::Succeeded, "{:?}", view.error);
        assert!(output == vector_add::reference::run(input).unwrap());
        let a = &view.attempts[0];
        let price = if a.node == "fast" {
            PREMIUM_PRICE
        } else {
            PLAIN_PRICE
        };
        assert_eq!(a.gpu_class, classes[&a.node]);
        assert_eq!(a.price_micros, price);
        assert!(a.gpu_ns > 0);
        assert_eq!(a.charged_gpu_ns, a.gpu_ns, "under every cap");
        assert_eq!(a.cost_micros, expected_cost(a.gpu_ns, price));
        by_tenant.entry(who.to_string()).or_default().add(a);
        by_node.entry(a.node.clone()).or_default().add(a);
        by_class.entry(a.gpu_class.clone()).or_default().add(a);
        total.add(a);
    }
    assert_eq!(by_node.len(), 2, "both nodes ran jobs");

    for (group_by, expected) in [
        (GroupBy::Tenant, &by_tenant),
        (GroupBy::Node, &by_node),
        (GroupBy::Class, &by_class),
    ] {
        let report = admin
            .usage(UsageQuery {
                group_by,
                ..UsageQuery::default()
            })
            .await
            .unwrap();
        let got: BTreeMap<String, Sums> = report
            .groups
            .iter()
            .map(|g| {
                (
                    g.key.clone(),
                    Sums {
                        attempts: g.attempts,
                        gpu_ns: g.gpu_ns,
                        charged: g.charged_gpu_ns,
                        wall_ns: g.wall_ns,
                        cost: g.cost_micros,
                    },
                )
            })
            .collect();
        assert_eq!(&got, expected, "{group_by:?}");
        assert_eq!(report.total.cost_micros, total.cost);
        assert_eq!(report.total.gpu_ns, total.gpu_ns);
    }

    // A tenant sees its own usage only; asking for another's is refused.
    let own = alice.usage(UsageQuery::default()).await.unwrap();
    assert_eq!(own.total.cost_micros, by_tenant["alice"].cost);
    let theirs = alice
        .usage(UsageQuery {
            tenant: Some("bob".into()),
            ..UsageQuery::default()
        })
        .await;
    assert!(matches!(
        theirs,
        Err(NetError::Remote {
            code: ErrorCode::Forbidden,
            ..
        })
    ));
    // A provider sees what its nodes earned.
    let provider_token = cluster.token(Role::Node, "fast").await;
    let provider = cluster.connect(&provider_token, Role::Node).await.unwrap();
    let earned = provider.usage(UsageQuery::default()).await.unwrap();
    assert_eq!(earned.total.cost_micros, by_node["fast"].cost);
    assert_eq!(earned.total.attempts, by_node["fast"].attempts);

    // The CLI: table, CSV and JSON carry the same numbers; receipts verify.
    let token = cluster.admin_token();
    let env_owned = cluster.cli_env(&token);
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let json = ok_json(&suanli(
        &["usage", "--group-by", "node", "--format", "json"],
        &env,
    ));
    let csv = suanli(&["usage", "--group-by", "node", "--format", "csv"], &env);
    let table = suanli(&["usage", "--group-by", "node", "--verify"], &env);
    assert!(csv.status.success() && table.status.success());
    let table_err = String::from_utf8_lossy(&table.stderr);
    assert!(
        table_err.contains("verified 12 receipts (12 signed"),
        "{table_err}"
    );
    let csv = String::from_utf8_lossy(&csv.stdout);
    let table = String::from_utf8_lossy(&table.stdout);
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 3, "two nodes and the total");
    for (row, csv_line) in rows.iter().zip(csv.lines().skip(1)) {
        let key = row["node"].as_str().unwrap();
        let expected = if key == "total" {
            &total
        } else {
            &by_node[key]
        };
        assert_eq!(row["cost_micros"], expected.cost);
        assert_eq!(row["gpu_ns"], expected.gpu_ns);
        assert_eq!(row["wall_ns"], expected.wall_ns);
        assert_eq!(
            csv_line,
            format!(
                "{key},{},{},{},{},{}",
                expected.attempts,
                expected.gpu_ns,
                expected.charged,
                expected.wall_ns,
                expected.cost
            )
        );
        let table_line = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} row in\n{table}"));
        let cells: Vec<&str> = table_line.split_whitespace().collect();
        let ns = |s: &str| -> u64 { s.replace('.', "").parse().unwrap() };
        assert_eq!(cells[1].parse::<u64>().unwrap(), expected.attempts);
        assert_eq!(ns(cells[2]), expected.gpu_ns);
        assert_eq!(ns(cells[3]), expected.charged);
        assert_eq!(ns(cells[4]), expected.wall_ns);
        assert_eq!(ns(cells[5]), expected.cost, "six decimals are micro-units");
    }

    // The invoice itemises alice's attempts and totals to her usage.
    let month = month_of(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    let invoice = ok_json(&suanli(
        &[
            "invoice", "--tenant", "alice", "--month", &month, "--format", "json",
        ],
        &env,
    ));
    assert_eq!(invoice["lines"].as_array().unwrap().len(), 6);
    assert_eq!(invoice["total_micros"], by_tenant["alice"].cost);
    let line_sum: u64 = invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["cost_micros"].as_u64().unwrap())
        .sum();
    assert_eq!(line_sum, by_tenant["alice"].cost);
    cluster.stop_nodes();
}

/// `YYYY-MM` of a Unix time (UTC).
fn month_of(secs: u64) -> String {
    // Civil from days (H. Hinnant), enough for a test.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn re_sent_results_are_billed_once_and_forged_receipts_never() {
    let cluster = TestCluster::start().await;
    cluster.admin.set_price("default", 2_000_000).await.unwrap();
    let tenant = cluster.tenant("alice").await;
    let token = cluster.token(Role::Node, "shifty").await;
    let mut node = FakeNode::register(&cluster, &token, 1).await.unwrap();
    let submit = |input: &'static [u8]| {
        let tenant = &tenant;
        async move {
            tenant
                .submit(
                    b"not really a module",
                    input,
                    Requirements::default(),
                    JobLimits::default(),
                    1,
                )
                .await
                .unwrap()
        }
    };

    // An honest result, sent three times: recorded and billed once.
    let job = submit(b"one").await;
    let a = node.next_assignment().await;
    assert_eq!(a.job, job);
    let output = node.client.put_blob(b"result").await.unwrap();
    let receipt = node.receipt(&a, Outcome::Succeeded, 123_456_789, Some(output));
    let signature = node.signer.sign(&receipt);
    for _ in 0..3 {
        node.finish(receipt.clone(), signature).await;
    }
    let view = wait_final(&tenant, job).await;
    assert_eq!(view.state, JobState::Succeeded);
    // Let the duplicates arrive before counting.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let usage = tenant.usage(UsageQuery::default()).await.unwrap();
    assert_eq!(usage.total.attempts, 1);
    assert_eq!(
        usage.total.cost_micros,
        expected_cost(123_456_789, 2_000_000)
    );

    // One byte changed after signing: rejected, nothing billed, job retried
    // (here: out of attempts, so it fails as the provider's fault).
    let job = submit(b"two").await;
    let a = node.next_assignment().await;
    let honest = node.receipt(&a, Outcome::Succeeded, 5_000_000, None);
    let signature = node.signer.sign(&honest);
    let mut changed = honest.clone();
    changed.gpu_ns = 5_000_001;
    node.finish(changed, signature).await;
    let view = wait_final(&tenant, job).await;
    assert_eq!(view.state, JobState::Failed);
    assert_eq!(view.attempts[0].outcome, Some(Outcome::ProviderFault));
    assert!(
        view.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("receipt was rejected"),
        "{:?}",
        view.attempts[0].error
    );
    assert_eq!(view.attempts[0].cost_micros, 0);

    // A node that signs with a key other than the one it registered.
    let job = submit(b"three").await;
    let a = node.next_assignment().await;
    let liar = suanli_proto::ReceiptSigner::from_seed(&[99; 32]);
    let receipt = node.receipt(&a, Outcome::Succeeded, 9_000_000, None);
    node.finish(receipt.clone(), liar.sign(&receipt)).await;
    let view = wait_final(&tenant, job).await;
    assert_eq!(view.attempts[0].outcome, Some(Outcome::ProviderFault));

    // And one that presents another key with the same token is refused.
    match FakeNode::register(&cluster, &token, 99).await {
        Err(NetError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::Forbidden);
            assert!(message.contains("bound to receipt key"), "{message}");
        }
        Ok(_) => panic!("a second key was accepted"),
        Err(e) => panic!("{e}"),
    }

    let usage = tenant.usage(UsageQuery::default()).await.unwrap();
    assert_eq!(usage.total.attempts, 3);
    assert_eq!(
        usage.total.cost_micros,
        expected_cost(123_456_789, 2_000_000),
        "only the honest receipt is billed"
    );
    let records = tenant.usage_records(UsageQuery::default()).await.unwrap();
    for r in &records {
        suanli_ledger::billing::check_record(r).unwrap();
    }
    assert_eq!(records.iter().filter(|r| r.signature.is_some()).count(), 1);
}

/// The budget is a stop signal: no dispatch starts once it is spent, and the
/// dispatch in flight when it ran out is charged too (it kept the GPU busy
/// for the tenant), up to `min(timeout, budget + max_dispatch)`. Before
/// protocol 2 only the budget was charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gpu_budget_stops_a_long_kernel_and_the_overrun_is_charged_up_to_the_cap() {
    let cluster = TestCluster::start().await;
    cluster.admin.set_price("default", 3_000_000).await.unwrap();
    cluster.add_node("node-a", 1, None).await;
    let tenant = cluster.tenant("alice").await;
    let budget = 50_000_000;
    let limits = JobLimits {
        max_gpu_ns: Some(budget),
        ..JobLimits::default()
    };
    let job = tenant
        .submit(
            &guest_wasm("misbehave"),
            b"spin 100000",
            Requirements::default(),
            limits.clone(),
            1,
        )
        .await
        .unwrap();
    let view = tenant.wait(job).await.unwrap();
    assert_eq!(view.outcome, Some(Outcome::GpuBudgetExceeded));
    let a = &view.attempts[0];
    assert!(
        a.gpu_ns > budget,
        "the dispatch in flight is recorded: {}",
        a.gpu_ns
    );
    let cap = budget + limits.max_dispatch_ns;
    assert!(a.gpu_ns < cap, "one short dispatch past the budget");
    assert_eq!(a.charged_gpu_ns, a.gpu_ns, "and charged: under the cap");
    assert_eq!(a.cost_micros, expected_cost(a.gpu_ns, 3_000_000));
    cluster.stop_nodes();
}

/// A kernel past the dispatch limit ends the job `gpu_hang`: final (its
/// own kernel; not retried though attempts remain) and charged up to
/// `min(timeout, budget + max_dispatch)`, as the node measured it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_kernel_is_final_and_charged_up_to_the_cap() {
    let cluster = TestCluster::start().await;
    cluster.admin.set_price("default", 2_000_000).await.unwrap();
    let tenant = cluster.tenant("alice").await;
    let token = cluster.token(Role::Node, "honest").await;
    let mut node = FakeNode::register(&cluster, &token, 1).await.unwrap();
    let limits = JobLimits {
        max_gpu_ns: Some(1_000_000_000),
        max_dispatch_ns: 2_000_000_000,
        ..JobLimits::default()
    };
    let job = tenant
        .submit(b"hangs", b"", Requirements::default(), limits, 3)
        .await
        .unwrap();
    let a = node.next_assignment().await;
    assert_eq!(
        a.spec.limits.max_dispatch_ns, 2_000_000_000,
        "sent to the node"
    );
    // Metered once the device was idle: past budget + dispatch limit.
    let receipt = node.receipt(&a, Outcome::GpuHang, 5_000_000_000, None);
    let signature = node.signer.sign(&receipt);
    node.finish(receipt, signature).await;
    let view = wait_final(&tenant, job).await;
    assert_eq!(view.state, JobState::Failed);
    assert_eq!(view.outcome, Some(Outcome::GpuHang));
    assert_eq!(view.attempts.len(), 1, "not retried");
    let a = &view.attempts[0];
    assert_eq!((a.gpu_ns, a.charged_gpu_ns), (5_000_000_000, 3_000_000_000));
    assert_eq!(a.cost_micros, 6_000_000);
    assert!(
        node.assignment_within(std::time::Duration::from_millis(1500))
            .await
            .is_none(),
        "a hung job is not assigned again"
    );
    for r in tenant.usage_records(UsageQuery::default()).await.unwrap() {
        suanli_ledger::billing::check_record(&r).unwrap();
        assert_eq!(r.charge_cap_ns, 3_000_000_000);
    }
    assert_eq!(cluster.admin.check().await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_at_its_credit_limit_is_refused_and_another_is_not() {
    let cluster = TestCluster::start().await;
    cluster.admin.set_price("default", 1_000_000).await.unwrap();
    cluster
        .admin
        .set_credit_limit("alice", Some(100_000))
        .await
        .unwrap();
    let alice = cluster.tenant("alice").await;
    let bob = cluster.tenant("bob").await;
    // Worst case min(timeout, budget + max_dispatch) = 60 ms + 40 ms of GPU
    // time at 1 unit per GPU-second: 0.1 units, the whole limit. (With the
    // default 10 s dispatch limit the first job alone would not fit.)
    let limits = JobLimits {
        max_gpu_ns: Some(60_000_000),
        max_dispatch_ns: 40_000_000,
        ..JobLimits::default()
    };
    let module = guest_wasm("vector_add");
    async fn submit_to(
        client: &suanli_net::Client,
        module: &[u8],
        limits: &JobLimits,
    ) -> Result<u64, NetError> {
        client
            .submit(module, b"", Requirements::default(), limits.clone(), 1)
            .await
    }
    let submit = |client| submit_to(client, &module, &limits);
    submit(&alice).await.expect("the first fits");
    match submit(&alice).await {
        Err(NetError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::CreditLimit);
            assert!(message.contains("credit limit reached"), "{message}");
            assert!(message.contains("0.100000 is held"), "{message}");
            assert!(message.contains("up to 0.100000"), "{message}");
        }
        other => panic!("not refused: {other:?}"),
    }
    for _ in 0..3 {
        submit(&bob).await.expect("bob has no limit");
    }
    // The default dispatch limit counts: 60 ms + 10 s is far past 0.1 units.
    cluster
        .admin
        .set_credit_limit("carol", Some(100_000))
        .await
        .unwrap();
    let carol = cluster.tenant("carol").await;
    let default_dispatch = JobLimits {
        max_gpu_ns: Some(60_000_000),
        ..JobLimits::default()
    };
    assert!(matches!(
        submit_to(&carol, &module, &default_dispatch).await,
        Err(NetError::Remote {
            code: ErrorCode::CreditLimit,
            ..
        })
    ));
    // A timeout under budget + dispatch bounds the worst case instead.
    let short = JobLimits {
        timeout_ns: 50_000_000,
        ..default_dispatch
    };
    submit_to(&carol, &module, &short)
        .await
        .expect("0.05 units fit");
    submit_to(&carol, &module, &short)
        .await
        .expect("0.1 units fit");
    assert!(submit_to(&carol, &module, &short).await.is_err());
    // Raising the limit lets alice submit again.
    cluster
        .admin
        .set_credit_limit("alice", Some(1_000_000))
        .await
        .unwrap();
    submit(&alice).await.expect("fits the new limit");
    // Setting prices and limits is the admin's.
    assert!(matches!(
        alice.set_credit_limit("alice", None).await,
        Err(NetError::Remote {
            code: ErrorCode::Forbidden,
            ..
        })
    ));
    assert!(alice.set_price("default", 0).await.is_err());
}
