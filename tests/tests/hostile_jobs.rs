//! A hostile tenant against real `suanli coordinator` and `suanli node`
//! processes (two nodes, two slot workers each), while an honest tenant's 50
//! jobs run: every attack of issue 10 ends in its documented outcome and is
//! charged exactly by the rule, the honest jobs all succeed with correct
//! outputs, no node process exits and no node session is lost, `admin check`
//! passes, and a SIGTERM'd node exits within its bound.

use std::time::{Duration, Instant};

use suanli_e2e::components::many_memories;
use suanli_e2e::procs::{NodeExtras, ProcCluster};
use suanli_e2e::{burn_workgroups, guest_wasm};
use suanli_net::Client;
use suanli_proto::usage::UsageQuery;
use suanli_proto::{JobLimits, JobState, JobView, MAX_ERROR_BYTES, Outcome, Requirements, Role};

/// Price of the default class: 1 unit (10^6 µ) per GPU-second.
const PRICE: u64 = 1_000_000;
const MS: u64 = 1_000_000;

fn limits() -> JobLimits {
    JobLimits::default()
}

/// One attack: what the hostile tenant submits and how it must end.
struct Attack {
    name: &'static str,
    module: Vec<u8>,
    input: Vec<u8>,
    limits: JobLimits,
    max_attempts: u32,
    expect: Outcome,
    /// A check of the final view beyond the outcome.
    check: fn(&JobView),
}

fn misdeed(name: &'static str, deed: String, limits: JobLimits, expect: Outcome) -> Attack {
    Attack {
        name,
        module: guest_wasm("misbehave"),
        input: deed.into_bytes(),
        limits,
        max_attempts: 2,
        expect,
        check: |_| {},
    }
}

fn nesting_error(view: &JobView) {
    let error = view.error.as_deref().unwrap_or_default();
    assert!(error.contains("max_nesting_depth"), "{error}");
}

/// Shaders nested 10^2..10^5 deep in each shape the WGSL pre-check bounds.
fn shader_attacks() -> Vec<Attack> {
    let body = |open: &str, close: &str, inner: &str, depth: usize| {
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
    };
    let shader = |statements: String| {
        format!(
            "@group(0) @binding(0) var<storage, read_write> d: array<u32>;\n\
             @compute @workgroup_size(1) fn main() {{ var x = 1u; {statements} d[0] = x; }}"
        )
    };
    let else_if: String = (0..20_000)
        .map(|i| format!("if (x == {i}u) {{ x = {i}u; }} else "))
        .collect::<String>()
        + "{ x = 0u; }";
    let shapes = [
        ("else-if chain of 20,000", shader(else_if)),
        (
            "blocks 10^4 deep",
            shader(body("{", "}", "x = 2u;", 10_000)),
        ),
        (
            "parentheses 10^5 deep",
            shader(format!("x = {};", body("(", ")", "x", 100_000))),
        ),
        (
            "loops 10^3 deep",
            shader(body("loop { ", " break; }", "x = 3u;", 1_000)),
        ),
        (
            "ifs 10^2 deep",
            shader(body("if (x > 0u) { ", "}", "x = 4u;", 200)),
        ),
    ];
    shapes
        .into_iter()
        .map(|(name, wgsl)| {
            let mut a = misdeed(name, format!("wgsl {wgsl}"), limits(), Outcome::JobError);
            a.check = nesting_error;
            a
        })
        .collect()
}

/// Every attack of issue 10 but cancel and the oversize request (which
/// need a conversation) and the SIGTERM.
fn attacks(burn_1s: u32) -> Vec<Attack> {
    let mut all = shader_attacks();
    let crash = Attack {
        max_attempts: 3,
        check: |view| {
            // Crashed twice, on two different nodes, then final.
            assert_eq!(view.attempts.len(), 2, "{:?}", view.attempts);
            assert!(
                view.attempts
                    .iter()
                    .all(|a| a.outcome == Some(Outcome::Crashed))
            );
            assert_ne!(view.attempts[0].node, view.attempts[1].node);
            assert!(
                view.error
                    .as_deref()
                    .unwrap_or_default()
                    .contains("SIGABRT")
            );
        },
        ..misdeed(
            "crash failpoint",
            "crash".into(),
            limits(),
            Outcome::Crashed,
        )
    };
    all.push(crash);
    let tiny_budget = JobLimits {
        max_gpu_ns: Some(1),
        ..limits()
    };
    all.push(misdeed(
        "spinning kernel, 1 ns budget",
        format!("burn {}", burn_1s / 2),
        tiny_budget,
        Outcome::GpuBudgetExceeded,
    ));
    let short = JobLimits {
        timeout_ns: 300 * MS,
        ..limits()
    };
    let mut late = misdeed(
        "kernel past the deadline",
        format!("burn {}", burn_1s * 3 / 2),
        short,
        Outcome::Timeout,
    );
    late.check = |view| {
        // Ended by the sandbox once the kernel was metered, not by the
        // watchdog (which would have restarted the worker).
        let error = view.error.as_deref().unwrap_or_default();
        assert!(error.contains("waiting for the GPU"), "{error}");
    };
    all.push(late);
    let hang = JobLimits {
        max_dispatch_ns: 300 * MS,
        ..limits()
    };
    all.push(misdeed(
        "kernel past the dispatch limit",
        format!("burn {}", burn_1s * 3 / 2),
        hang,
        Outcome::GpuHang,
    ));
    let mut huge = misdeed(
        "2 MiB error",
        "bigerr 2097152".into(),
        limits(),
        Outcome::JobError,
    );
    huge.check = |view| {
        let error = view.error.as_deref().unwrap_or_default();
        assert!(error.len() <= MAX_ERROR_BYTES, "{}", error.len());
        assert!(error.ends_with("bytes cut]"));
    };
    all.push(huge);
    let one_second = JobLimits {
        timeout_ns: 1_000 * MS,
        ..limits()
    };
    let mut sleep = misdeed(
        "sleep, 1 s timeout",
        "sleep 30".into(),
        one_second,
        Outcome::Timeout,
    );
    sleep.check = |view| {
        let wall = view.attempts[0].wall_ns;
        assert!(
            wall < 1_500 * MS,
            "the sleeping job held its slot {wall} ns"
        );
    };
    all.push(sleep);
    let small_memory = JobLimits {
        max_memory_bytes: 64 << 20,
        ..limits()
    };
    all.push(Attack {
        module: many_memories(9, 1),
        input: Vec::new(),
        ..misdeed("9 memories", String::new(), limits(), Outcome::MemoryLimit)
    });
    all.push(Attack {
        module: many_memories(4, 320),
        input: Vec::new(),
        ..misdeed(
            "4 memories of 20 MiB, 64 MiB limit",
            String::new(),
            small_memory.clone(),
            Outcome::MemoryLimit,
        )
    });
    all.push(misdeed(
        "allocate past the limit",
        "alloc".into(),
        small_memory,
        Outcome::MemoryLimit,
    ));
    all
}

async fn submit(client: &Client, a: &Attack) -> u64 {
    client
        .submit(
            &a.module,
            &a.input,
            Requirements::default(),
            a.limits.clone(),
            a.max_attempts,
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", a.name))
}

/// 50 vector additions of different sizes; returns (job, input) pairs.
async fn honest_jobs(client: &Client) -> Vec<(u64, Vec<u8>)> {
    let module = guest_wasm("vector_add");
    let mut jobs = Vec::new();
    for i in 0..50u32 {
        let n = 256 + i as usize * 97;
        let a: Vec<f32> = (0..n).map(|k| (k as f32) * 0.5 + i as f32).collect();
        let b: Vec<f32> = (0..n).map(|k| 3.0 - k as f32).collect();
        let input = vector_add::reference::encode_input(&a, &b);
        let job = client
            .submit(&module, &input, Requirements::default(), limits(), 3)
            .await
            .expect("honest submit");
        jobs.push((job, input));
    }
    jobs
}

/// The charge rule, written out: metered GPU time up to
/// `min(timeout, budget + dispatch limit)`, paid by the tenant for every
/// outcome but node_lost/provider_fault; cost rounded half up.
fn expected_charge(outcome: Outcome, gpu_ns: u64, limits: &JobLimits) -> (u64, u64) {
    let cap = match limits.max_gpu_ns {
        Some(budget) => limits
            .timeout_ns
            .min(budget.saturating_add(limits.max_dispatch_ns)),
        None => limits.timeout_ns,
    };
    let charged = match outcome {
        Outcome::NodeLost | Outcome::ProviderFault => 0,
        _ => gpu_ns.min(cap),
    };
    let cost = (u128::from(charged) * u128::from(PRICE) + 500_000_000) / 1_000_000_000;
    (charged, cost as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_tenant_cannot_hurt_nodes_or_other_tenants() {
    let burn_1s = burn_workgroups(1.0);
    let mut cluster = ProcCluster::start_with(
        2,
        2,
        NodeExtras {
            args: vec!["--max-job-memory".into(), (1u64 << 30).to_string()],
            env: vec![("SUANLI_TEST_FAILPOINTS".into(), "1".into())],
        },
    );
    let admin_token = cluster.token("admin", "ops");
    let admin = cluster.client(&admin_token, Role::Admin).await;
    admin.set_price("default", PRICE).await.expect("price");
    let nodes_before = live_nodes(&admin, 2).await;
    let honest = cluster
        .client(&cluster.token("tenant", "honest"), Role::Tenant)
        .await;
    let hostile = cluster
        .client(&cluster.token("tenant", "mallory"), Role::Tenant)
        .await;

    let attacks = attacks(burn_1s);
    let honest_run = honest_jobs(&honest);
    let hostile_run = async {
        let mut ids = Vec::new();
        for a in &attacks {
            ids.push(submit(&hostile, a).await);
        }
        ids
    };
    let (honest_ids, hostile_ids) = tokio::join!(honest_run, hostile_run);
    let (cancelled, oversize) = cancel_and_oversize(&hostile).await;

    check_honest(&honest, &honest_ids).await;
    let mut views = Vec::new();
    for (a, &id) in attacks.iter().zip(&hostile_ids) {
        let view = hostile.wait(id).await.expect("final");
        let last = view.attempts.last().expect("an attempt");
        assert_eq!(last.outcome, Some(a.expect), "{}: {:?}", a.name, view.error);
        (a.check)(&view);
        views.push(view);
    }
    check_charges(&admin, &attacks, &views).await;
    for view in views.iter().chain([&cancelled, &oversize]) {
        for a in &view.attempts {
            assert_ne!(a.outcome, Some(Outcome::NodeLost), "job {}", view.id);
        }
    }
    for i in 0..2 {
        assert!(cluster.node_running(i), "node-{i} exited");
    }
    assert_eq!(
        live_nodes(&admin, 2).await,
        nodes_before,
        "a node session was lost"
    );
    cluster.admin_check();
    sigterm_ends_within_the_running_jobs_deadline(&mut cluster, &hostile).await;
}

/// The ids of the connected nodes, once `count` are.
async fn live_nodes(admin: &Client, count: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut ids: Vec<u64> = admin
            .nodes()
            .await
            .expect("nodes")
            .iter()
            .filter(|n| n.connected)
            .map(|n| n.id)
            .collect();
        if ids.len() >= count {
            ids.sort_unstable();
            return ids;
        }
        assert!(Instant::now() < deadline, "nodes did not register");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The job's view once its first attempt started (it may have ended since).
async fn wait_running(client: &Client, job: u64) -> JobView {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view = client.status(job).await.expect("status");
        if !view.attempts.is_empty() {
            return view;
        }
        assert!(Instant::now() < deadline, "job {job} never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sleeping job cancelled while it sleeps ends within a second; a job
/// asking more memory than any node allows waits with the reason.
async fn cancel_and_oversize(hostile: &Client) -> (JobView, JobView) {
    let sleeper = misdeed(
        "sleep then cancel",
        "sleep 30".into(),
        limits(),
        Outcome::Cancelled,
    );
    let id = submit(hostile, &sleeper).await;
    wait_running(hostile, id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled_at = Instant::now();
    hostile.cancel(id).await.expect("cancel");
    let ended = loop {
        let view = hostile.status(id).await.expect("status");
        if view.attempts.last().is_some_and(|a| a.outcome.is_some()) {
            break view;
        }
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(2),
            "the cancelled sleeper still runs"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(ended.attempts[0].outcome, Some(Outcome::Cancelled));
    let oversize = misdeed(
        "2 GiB of memory on 1 GiB nodes",
        "ok".into(),
        JobLimits {
            max_memory_bytes: 2 << 30,
            ..limits()
        },
        Outcome::Cancelled,
    );
    let id = submit(hostile, &oversize).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = hostile.status(id).await.expect("status");
    assert_eq!(waiting.state, JobState::Queued);
    let reason = waiting.waiting_reason.unwrap_or_default();
    assert!(reason.contains("memory"), "{reason}");
    hostile.cancel(id).await.expect("cancel");
    (ended, hostile.wait(id).await.expect("final"))
}

async fn check_honest(honest: &Client, jobs: &[(u64, Vec<u8>)]) {
    for (job, input) in jobs {
        let (view, output) = honest.result(*job).await.expect("result");
        assert_eq!(view.state, JobState::Succeeded, "{:?}", view.error);
        assert_eq!(view.attempts.len(), 1, "job {job} ran more than once");
        let expected = vector_add::reference::run(input).expect("reference");
        assert!(output == expected, "job {job}: wrong output");
    }
}

/// Every hostile attempt is billed exactly by the rule, and the ones whose
/// charge is known in advance are checked to the nanosecond.
async fn check_charges(admin: &Client, attacks: &[Attack], views: &[JobView]) {
    let records = admin
        .usage_records(UsageQuery {
            tenant: Some("mallory".into()),
            ..UsageQuery::default()
        })
        .await
        .expect("usage");
    for (a, view) in attacks.iter().zip(views) {
        for r in records.iter().filter(|r| r.receipt.job == view.id) {
            let (charged, cost) = expected_charge(r.receipt.outcome, r.receipt.gpu_ns, &a.limits);
            assert_eq!(r.charged_gpu_ns, charged, "{}", a.name);
            assert_eq!(r.cost_micros, cost, "{}", a.name);
            assert_eq!(r.price_micros, PRICE);
            match r.receipt.outcome {
                // Ran past the 300 ms deadline, charged the deadline.
                Outcome::Timeout if a.name == "kernel past the deadline" => {
                    assert!(r.receipt.gpu_ns > 300 * MS, "{}", r.receipt.gpu_ns);
                    assert_eq!(charged, 300 * MS);
                }
                // Charged the dispatch limit exactly.
                Outcome::GpuHang => assert_eq!(r.receipt.gpu_ns, 300 * MS),
                // The whole overrun of the one dispatch is charged.
                Outcome::GpuBudgetExceeded => {
                    assert!(r.receipt.gpu_ns > 100 * MS);
                    assert_eq!(charged, r.receipt.gpu_ns);
                }
                _ => {}
            }
        }
    }
}

/// SIGTERM drains a node running a job that sleeps past its 2 s timeout:
/// the node exits once that job's deadline passed, not 30 s later.
async fn sigterm_ends_within_the_running_jobs_deadline(cluster: &mut ProcCluster, c: &Client) {
    let two_seconds = JobLimits {
        timeout_ns: 2_000 * MS,
        ..limits()
    };
    let sleeper = misdeed("sleep", "sleep 30".into(), two_seconds, Outcome::Timeout);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(submit(c, &sleeper).await);
    }
    let mut on_node_0 = false;
    for &id in &ids {
        on_node_0 |= wait_running(c, id).await.attempts[0].node == "node-0";
    }
    assert!(on_node_0, "four sleepers fill both nodes' slots");
    let term = Instant::now();
    cluster.terminate_node(0);
    let exited = cluster.wait_node(0, Duration::from_secs(30));
    assert!(exited.is_some(), "the node did not exit");
    assert!(
        term.elapsed() < Duration::from_secs(6),
        "drain took {:?} for jobs with a 2 s timeout",
        term.elapsed()
    );
    for id in ids {
        let view = c.wait(id).await.expect("final");
        assert_eq!(view.attempts[0].outcome, Some(Outcome::Timeout));
    }
}

/// An output larger than the coordinator's blob limit cannot be delivered:
/// the node reports the attempt `job_error` (signed again, without output)
/// instead of re-sending it forever, and the node takes the next job.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_output_over_the_blob_limit_ends_the_job_instead_of_looping() {
    let cluster = suanli_e2e::TestCluster::start_with(|c| c.max_blob_bytes = 200 << 10).await;
    cluster.add_node("node-a", 1, None).await;
    let tenant = cluster.tenant("alice").await;
    let too_big = misdeed(
        "output",
        format!("output {}", 300 << 10),
        limits(),
        Outcome::JobError,
    );
    let id = submit(&tenant, &too_big).await;
    let view = tokio::time::timeout(Duration::from_secs(30), tenant.wait(id))
        .await
        .expect("the job ends")
        .expect("final");
    assert_eq!(view.state, JobState::Failed);
    assert_eq!(view.attempts.len(), 1);
    assert_eq!(view.attempts[0].outcome, Some(Outcome::JobError));
    let error = view.error.unwrap_or_default();
    assert!(error.contains("refused by the coordinator"), "{error}");
    // The same node goes on: a small output comes through.
    let fits = misdeed("output", "output 1000".into(), limits(), Outcome::Succeeded);
    let (view, output) = tenant.result(submit(&tenant, &fits).await).await.unwrap();
    assert_eq!(view.state, JobState::Succeeded);
    assert_eq!(output, vec![7u8; 1000]);
}
