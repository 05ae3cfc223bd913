//! Bad jobs and bad input end in a readable report, never a panic, and the
//! runtime keeps working: after each case the same slot runs a job correctly.

use std::time::{Duration, Instant};

use suanli_e2e::{guest_wasm, run_job};
use suanli_sandbox::{JobLimits, JobReport, Outcome};

fn misbehave(deed: &str, limits: &JobLimits) -> JobReport {
    let report = run_job(&guest_wasm("misbehave"), deed.as_bytes(), limits);
    assert_next_job_works();
    report
}

/// The slot and sandbox still run a real job and get the right answer.
fn assert_next_job_works() {
    let a: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..1000).map(|i| (i * 3) as f32).collect();
    let input = vector_add::reference::encode_input(&a, &b);
    let r = run_job(&guest_wasm("vector_add"), &input, &JobLimits::default());
    assert_eq!(r.outcome, Outcome::Succeeded, "{:?}", r.error);
    assert!(r.output == vector_add::reference::run(&input).unwrap());
}

fn expect(r: &JobReport, outcome: Outcome, needle: &str) {
    let error = r.error.as_deref().unwrap_or("");
    assert_eq!(r.outcome, outcome, "error was: {error}");
    assert!(
        error.contains(needle),
        "error {error:?} does not mention {needle:?}"
    );
}

#[test]
fn a_file_that_is_not_wasm() {
    let r = run_job(b"#!/bin/sh\necho hi\n", &[], &JobLimits::default());
    expect(&r, Outcome::InvalidJob, "not a WebAssembly file");
    assert_next_job_works();
}

#[test]
fn a_core_module_instead_of_a_component() {
    // The smallest valid core module: magic and version 1.
    let r = run_job(b"\0asm\x01\0\0\0", &[], &JobLimits::default());
    expect(&r, Outcome::InvalidJob, "core wasm module, not a component");
    assert_next_job_works();
}

#[test]
fn a_truncated_component() {
    let wasm = guest_wasm("vector_add");
    let r = run_job(&wasm[..wasm.len() / 2], &[], &JobLimits::default());
    expect(&r, Outcome::InvalidJob, "invalid component");
    assert_next_job_works();
}

#[test]
fn a_component_for_another_world() {
    let r = run_job(&guest_wasm("other-world"), &[], &JobLimits::default());
    expect(&r, Outcome::InvalidJob, "suanli:gpu/job world");
    assert_next_job_works();
}

#[test]
fn a_job_that_traps() {
    let r = misbehave("trap", &JobLimits::default());
    expect(&r, Outcome::Trap, "unreachable");
    assert!(
        r.log.contains("deliberate panic in the job"),
        "panic message not in log: {:?}",
        r.log
    );
}

#[test]
fn a_job_that_returns_an_error() {
    let r = misbehave("err", &JobLimits::default());
    expect(&r, Outcome::JobError, "the job refuses");
}

#[test]
fn an_infinite_loop_is_stopped_by_the_timeout() {
    let limits = JobLimits {
        timeout: Duration::from_millis(300),
        ..JobLimits::default()
    };
    let started = Instant::now();
    let r = misbehave("loop", &limits);
    expect(&r, Outcome::Timeout, "time limit");
    assert!(
        r.wall_ns >= 300_000_000,
        "stopped too early: {} ns",
        r.wall_ns
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout did not stop the loop promptly"
    );
}

#[test]
fn memory_growth_past_the_limit() {
    let limits = JobLimits {
        max_memory_bytes: 64 << 20,
        ..JobLimits::default()
    };
    let r = misbehave("alloc", &limits);
    expect(&r, Outcome::MemoryLimit, "the limit is 67108864 bytes");
}

#[test]
fn invalid_wgsl_comes_back_with_nagas_message() {
    let r = misbehave("wgsl fn main( { let x = ; }", &JobLimits::default());
    expect(&r, Outcome::JobError, "invalid shader");
    // naga's diagnostic, with the source line it points at.
    assert!(
        r.error.as_deref().unwrap().contains("expected"),
        "{:?}",
        r.error
    );
}

#[test]
fn a_missing_entry_point_is_a_validation_error() {
    let r = misbehave(
        "wgsl @compute @workgroup_size(1) fn other() {}",
        &JobLimits::default(),
    );
    expect(&r, Outcome::JobError, "validation error");
}

#[test]
fn too_few_and_too_many_bindings() {
    let few = misbehave("bindings 1", &JobLimits::default());
    expect(&few, Outcome::JobError, "validation error");
    let many = misbehave("bindings 3", &JobLimits::default());
    expect(&many, Outcome::JobError, "validation error");
    let right = misbehave("bindings 2", &JobLimits::default());
    assert_eq!(right.outcome, Outcome::Succeeded, "{:?}", right.error);
}

#[test]
fn a_workgroup_count_over_the_limit() {
    let r = misbehave("workgroups 70000", &JobLimits::default());
    expect(&r, Outcome::JobError, "per dimension");
}

#[test]
fn a_buffer_larger_than_the_quota() {
    let mut limits = JobLimits::default();
    limits.gpu.max_buffer_bytes = 1 << 20;
    let r = misbehave(&format!("buffer {}", 2 << 20), &limits);
    expect(&r, Outcome::JobError, "the quota is 1048576 bytes");
    let fits = misbehave(&format!("buffer {}", 1 << 20), &limits);
    assert_eq!(fits.outcome, Outcome::Succeeded, "{:?}", fits.error);
}

#[test]
fn reading_a_dropped_buffer_through_a_stale_handle() {
    let r = misbehave("forge", &JobLimits::default());
    expect(&r, Outcome::Trap, "unknown handle");
}

#[test]
fn megabytes_of_output_truncate_the_log_but_do_not_kill_the_job() {
    let limits = JobLimits {
        max_log_bytes: 64 << 10,
        ..JobLimits::default()
    };
    // 8192 lines of 1 KiB = 8 MiB.
    let r = misbehave("print 8192", &limits);
    assert_eq!(r.outcome, Outcome::Succeeded, "{:?}", r.error);
    assert_eq!(r.output, b"printed");
    assert_eq!(r.log.len(), 64 << 10);
    assert_eq!(r.log_truncated_bytes, (8192 << 10) - (64 << 10));
}

#[test]
fn log_overflow_kills_the_job_when_configured() {
    let limits = JobLimits {
        max_log_bytes: 64 << 10,
        kill_on_log_overflow: true,
        ..JobLimits::default()
    };
    let r = misbehave("print 8192", &limits);
    expect(&r, Outcome::LogLimit, "more than 65536 bytes");
}

#[test]
fn the_gpu_budget_stops_a_job_and_records_the_overrun() {
    let limits = JobLimits {
        max_gpu_ns: Some(5_000_000),
        ..JobLimits::default()
    };
    let r = misbehave("spin 100000", &limits);
    expect(&r, Outcome::GpuBudgetExceeded, "budget is 5000000 ns");
    assert!(
        r.gpu_ns > 5_000_000,
        "the measured time includes the dispatch in flight"
    );
    assert!(r.dispatches < 100_000, "the job was not stopped early");
}

#[test]
fn the_next_job_sees_none_of_the_previous_jobs_data() {
    let secret = misbehave("secret", &JobLimits::default());
    assert_eq!(secret.outcome, Outcome::Succeeded);
    assert_eq!(&secret.output[..4], &0xdead_0000u32.to_le_bytes());
    let peek = misbehave("peek", &JobLimits::default());
    assert_eq!(peek.outcome, Outcome::Succeeded);
    assert_eq!(peek.output.len(), 4096);
    assert!(
        peek.output.iter().all(|&b| b == 0),
        "a new buffer held old data"
    );
}

#[test]
fn the_second_run_of_a_job_skips_compilation() {
    let wasm = guest_wasm("misbehave");
    // A private copy with a trailing custom section makes a hash no other test uses.
    let mut unique = wasm.clone();
    unique.extend_from_slice(&[0, 4, 3, b'a', b'b', b'c']);
    let first = run_job(&unique, b"ok", &JobLimits::default());
    let second = run_job(&unique, b"ok", &JobLimits::default());
    assert_eq!(first.outcome, Outcome::Succeeded, "{:?}", first.error);
    assert_eq!(first.cache, suanli_sandbox::CacheHit::Miss);
    assert_eq!(second.cache, suanli_sandbox::CacheHit::Memory);
    assert!(
        second.load_ns * 10 < first.load_ns,
        "cached load {} ns vs compile {} ns",
        second.load_ns,
        first.load_ns
    );
}

#[test]
fn jobs_see_their_adapter_and_quotas() {
    let r = misbehave("info", &JobLimits::default());
    assert_eq!(r.outcome, Outcome::Succeeded, "{:?}", r.error);
    let text = String::from_utf8(r.output).unwrap();
    assert!(
        text.ends_with(&format!("{} {}", r.metering.as_str(), 1u64 << 30)),
        "{text}"
    );
    assert!(text.starts_with(&r.adapter.name));
}
