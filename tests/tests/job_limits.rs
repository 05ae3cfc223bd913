//! The sandbox's limits under attack, on the real sandbox and GPU: memories
//! counted together, instance/memory counts, the GPU budget as a stop
//! signal, a kernel still running at the deadline metered, a kernel past the
//! dispatch limit ending `gpu_hang`, read-back staging within the quota,
//! error text bounded, and staging of buffer writes within the quota.

use std::time::Duration;

use suanli_e2e::components::many_memories;
use suanli_e2e::{burn_workgroups, guest_wasm, run_job};
use suanli_sandbox::{JobLimits, JobReport, MAX_MEMORIES, Outcome};

fn misbehave(deed: &str, limits: &JobLimits) -> JobReport {
    run_job(&guest_wasm("misbehave"), deed.as_bytes(), limits)
}

fn small_memory() -> JobLimits {
    JobLimits {
        max_memory_bytes: 64 << 20,
        ..JobLimits::default()
    }
}

#[test]
fn memories_are_limited_together_not_each() {
    // Three memories of 20 MiB fit 64 MiB together: the job runs (and traps
    // in `run`, which is `unreachable`).
    let fits = run_job(&many_memories(3, 320), b"", &small_memory());
    assert_eq!(fits.outcome, Outcome::Trap, "{:?}", fits.error);
    // Four do not, though each alone would.
    let r = run_job(&many_memories(4, 320), b"", &small_memory());
    assert_eq!(r.outcome, Outcome::MemoryLimit, "{:?}", r.error);
    let error = r.error.unwrap();
    assert!(error.contains("all its memories together"), "{error}");
    assert!(error.contains("limit is 67108864"), "{error}");
}

#[test]
fn more_memories_than_a_job_may_have_is_a_memory_limit() {
    let r = run_job(
        &many_memories(MAX_MEMORIES as u32 + 1, 1),
        b"",
        &small_memory(),
    );
    assert_eq!(r.outcome, Outcome::MemoryLimit, "{:?}", r.error);
    assert!(r.error.unwrap().contains("memories"));
}

#[test]
fn no_dispatch_starts_once_the_budget_is_spent_and_the_overrun_is_metered() {
    let workgroups = burn_workgroups(0.2);
    let limits = JobLimits {
        max_gpu_ns: Some(1),
        ..JobLimits::default()
    };
    // One dispatch of ~0.2 s with a 1 ns budget: it ran, it is metered whole.
    let r = misbehave(&format!("burn {workgroups}"), &limits);
    assert_eq!(r.outcome, Outcome::GpuBudgetExceeded, "{:?}", r.error);
    assert_eq!(r.dispatches, 1);
    assert!(r.gpu_ns > 50_000_000, "metered {} ns", r.gpu_ns);
    // Many short dispatches: the first that crosses the budget is the last.
    let limits = JobLimits {
        max_gpu_ns: Some(20_000_000),
        ..JobLimits::default()
    };
    let r = misbehave("spin 100000", &limits);
    assert_eq!(r.outcome, Outcome::GpuBudgetExceeded);
    assert!(r.gpu_ns >= 20_000_000);
    let per_dispatch = r.gpu_ns / r.dispatches;
    assert!(
        r.gpu_ns - 20_000_000 <= per_dispatch * 3,
        "stopped within a dispatch or so of the budget: {} ns over {} dispatches",
        r.gpu_ns,
        r.dispatches
    );
}

#[test]
fn a_kernel_running_at_the_deadline_is_metered_then_the_job_times_out() {
    let workgroups = burn_workgroups(1.5);
    let limits = JobLimits {
        timeout: Duration::from_millis(500),
        ..JobLimits::default()
    };
    let r = misbehave(&format!("burn {workgroups}"), &limits);
    assert_eq!(r.outcome, Outcome::Timeout, "{:?}", r.error);
    assert_eq!(r.dispatches, 1);
    assert!(
        r.gpu_ns > 700_000_000,
        "the kernel that outlived the deadline is metered: {} ns",
        r.gpu_ns
    );
    assert!(!r.slot_hung);
    assert!(
        misbehave("ok", &JobLimits::default()).outcome == Outcome::Succeeded,
        "the slot is free for the next job"
    );
}

#[test]
fn a_kernel_past_the_dispatch_limit_is_a_gpu_hang_charged_the_limit() {
    let workgroups = burn_workgroups(1.5);
    let limits = JobLimits {
        max_dispatch: Duration::from_millis(300),
        ..JobLimits::default()
    };
    let r = misbehave(&format!("burn {workgroups}"), &limits);
    assert_eq!(r.outcome, Outcome::GpuHang, "{:?}", r.error);
    assert!(r.slot_hung, "the slot must be recovered");
    assert_eq!(r.gpu_ns, 300_000_000, "charged exactly the dispatch limit");
    assert!(r.error.unwrap().contains("dispatch limit"));
    // In-process, the next job waits for the device to be idle.
    let next = misbehave("ok", &JobLimits::default());
    assert_eq!(next.outcome, Outcome::Succeeded);
}

#[test]
fn reading_back_counts_its_staging_memory_against_the_quota() {
    let mut limits = JobLimits::default();
    // `peek` holds a 4 KiB buffer and reads it whole: 8 KiB at the peak.
    limits.gpu.max_buffer_bytes = 6 << 10;
    let r = misbehave("peek", &limits);
    assert_eq!(r.outcome, Outcome::JobError, "{:?}", r.error);
    assert!(r.error.unwrap().contains("staging"));
    limits.gpu.max_buffer_bytes = 8 << 10;
    assert_eq!(misbehave("peek", &limits).outcome, Outcome::Succeeded);
}

#[test]
fn a_huge_error_is_cut_to_the_limit_with_a_note() {
    let r = misbehave("bigerr 2097152", &JobLimits::default());
    assert_eq!(r.outcome, Outcome::JobError);
    let error = r.error.unwrap();
    assert!(
        error.len() <= suanli_proto::MAX_ERROR_BYTES,
        "{}",
        error.len()
    );
    assert!(
        error.ends_with("bytes cut]"),
        "{}",
        &error[error.len() - 40..]
    );
    let small = misbehave("bigerr 100", &JobLimits::default());
    assert_eq!(small.error.unwrap(), "e".repeat(100));
}

/// Peak resident memory of this process (Linux), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb << 10)
}

#[test]
fn buffer_writes_never_submitted_keep_host_memory_within_the_quota() {
    let mut limits = JobLimits::default();
    limits.gpu.max_buffer_bytes = 64 << 20;
    // 128 writes of 16 MiB and no dispatch: 2 GiB of staging memory if
    // nothing submits it.
    for deed in ["writes 16 128", "churn 16 128"] {
        let before = peak_rss();
        let r = misbehave(deed, &limits);
        assert_eq!(r.outcome, Outcome::Succeeded, "{deed}: {:?}", r.error);
        assert_eq!(r.output, [7u8; 16], "{deed}");
        let grew = peak_rss().saturating_sub(before);
        assert!(
            grew < 768 << 20,
            "{deed}: the process's peak memory grew by {} MiB with a 64 MiB GPU quota",
            grew >> 20
        );
    }
}
