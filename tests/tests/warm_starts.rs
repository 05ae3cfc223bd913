//! Warm starts on the real sandbox and GPU: the same job run many times on
//! one sandbox (prepared component, pooled instance) is correct every time,
//! the limits still end misbehaving jobs between good ones, the slot's
//! pipeline cache is hit by a second job with the same shader (and missed by
//! a changed one), a refused shader is refused again with the same error,
//! and a sandbox whose instance pool is full says so instead of panicking.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use suanli_e2e::{guest_wasm, run_job, runtime};
use suanli_gpu::{Gpu, GpuOptions, PipelineCacheStats};
use suanli_sandbox::{
    CacheHit, JobLimits, JobProbe, JobReport, Outcome, PoolingConfig, RunHooks, Sandbox,
    SandboxConfig, SandboxError,
};

fn vector_add_is_correct(round: usize) {
    let a: Vec<f32> = (0..3000).map(|i| (i + round) as f32).collect();
    let b: Vec<f32> = (0..3000).map(|i| (i * 2) as f32).collect();
    let input = vector_add::reference::encode_input(&a, &b);
    let r = run_job(&guest_wasm("vector_add"), &input, &JobLimits::default());
    assert_eq!(
        r.outcome,
        Outcome::Succeeded,
        "round {round}: {:?}",
        r.error
    );
    assert!(
        r.output == vector_add::reference::run(&input).unwrap(),
        "round {round}: wrong result"
    );
}

fn misbehave(deed: &str, limits: &JobLimits) -> JobReport {
    run_job(&guest_wasm("misbehave"), deed.as_bytes(), limits)
}

#[test]
fn the_same_job_many_times_is_correct_and_limits_still_hold_between_runs() {
    for round in 0..12 {
        vector_add_is_correct(round);
    }
    let again = misbehave("ok", &JobLimits::default());
    assert_eq!(again.outcome, Outcome::Succeeded, "{:?}", again.error);
    let warm = misbehave("ok", &JobLimits::default());
    assert_eq!(warm.cache, CacheHit::Memory);
    assert_eq!(warm.output, b"fine");

    let small = JobLimits {
        max_memory_bytes: 64 << 20,
        ..JobLimits::default()
    };
    let r = misbehave("alloc", &small);
    assert_eq!(r.outcome, Outcome::MemoryLimit, "{:?}", r.error);
    vector_add_is_correct(100);
    let r = misbehave("trap", &JobLimits::default());
    assert_eq!(r.outcome, Outcome::Trap, "{:?}", r.error);
    vector_add_is_correct(101);
    let short = JobLimits {
        timeout: Duration::from_millis(300),
        ..JobLimits::default()
    };
    let r = misbehave("loop", &short);
    assert_eq!(r.outcome, Outcome::Timeout, "{:?}", r.error);
    // The memory of the job that hit its limit was reset, not inherited:
    // the same limit is hit again, and a small job still fits after it.
    let r = misbehave("alloc", &small);
    assert_eq!(r.outcome, Outcome::MemoryLimit, "{:?}", r.error);
    let r = misbehave("ok", &small);
    assert_eq!(r.outcome, Outcome::Succeeded, "{:?}", r.error);
    vector_add_is_correct(102);
}

/// A shader unique to one test (the pipeline cache is shared by the slot).
fn doubling_shader(constant: u32) -> String {
    format!(
        "@group(0) @binding(0) var<storage, read_write> d: array<u32>;\n\
         @compute @workgroup_size(1) fn main(@builtin(global_invocation_id) id: vec3<u32>) {{\n\
         d[id.x] = id.x * 2u + {constant}u;\n}}\n"
    )
}

/// Runs `misbehave shader SRC` on the shared slot, with the cache's counters
/// before and after (the runtime stays locked between them).
fn shader_job(src: &str) -> (JobReport, PipelineCacheStats, PipelineCacheStats) {
    let rt = runtime();
    let before = rt.slot.pipeline_cache_stats();
    let r = rt
        .sandbox
        .run(
            &rt.slot,
            &guest_wasm("misbehave"),
            format!("shader {src}").as_bytes(),
            &JobLimits::default(),
        )
        .expect("the slot is free");
    let after = rt.slot.pipeline_cache_stats();
    (r, before, after)
}

fn words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn a_second_job_with_the_same_shader_hits_the_pipeline_cache() {
    let src = doubling_shader(70_001);
    let (first, before, after) = shader_job(&src);
    assert_eq!(first.outcome, Outcome::Succeeded, "{:?}", first.error);
    assert_eq!(words(&first.output), [70_001, 70_003, 70_005, 70_007]);
    assert_eq!(after.shader_misses, before.shader_misses + 1);
    assert_eq!(after.pipeline_misses, before.pipeline_misses + 1);

    let (second, before, after) = shader_job(&src);
    assert_eq!(second.outcome, Outcome::Succeeded, "{:?}", second.error);
    assert_eq!(second.output, first.output);
    assert_eq!(after.shader_hits, before.shader_hits + 1);
    assert_eq!(after.pipeline_hits, before.pipeline_hits + 1);
    assert_eq!(after.shader_misses, before.shader_misses);

    // One byte changed: another shader, compiled and checked anew.
    let changed = doubling_shader(70_002);
    assert_eq!(changed.len(), src.len());
    let (third, before, after) = shader_job(&changed);
    assert_eq!(third.outcome, Outcome::Succeeded, "{:?}", third.error);
    assert_eq!(words(&third.output), [70_002, 70_004, 70_006, 70_008]);
    assert_eq!(after.shader_misses, before.shader_misses + 1);
    assert_eq!(after.pipeline_misses, before.pipeline_misses + 1);
}

#[test]
fn a_refused_shader_is_refused_again_with_the_same_error() {
    // 4 MiB of private memory per invocation: refused by the shader check.
    let src = "@group(0) @binding(0) var<storage, read_write> d: array<u32>;\n\
               var<private> hoard: array<u32, 1048577>;\n\
               @compute @workgroup_size(1) fn main() { hoard[3] = 1u; d[0] = hoard[3]; }\n";
    let (first, before, after) = shader_job(src);
    assert_eq!(first.outcome, Outcome::JobError);
    let error = first.error.clone().unwrap();
    assert!(error.contains("invalid shader"), "{error}");
    assert_eq!(after.shader_misses, before.shader_misses + 1);

    let (second, before, after) = shader_job(src);
    assert_eq!(second.outcome, Outcome::JobError);
    assert_eq!(second.error.unwrap(), error);
    assert_eq!(after.shader_hits, before.shader_hits + 1);
    assert_eq!(after.pipeline_misses, before.pipeline_misses);

    // A job with stricter quotas is not answered with a verdict reached
    // under others: a valid shader still runs, the slot is fine.
    let (ok, _, _) = shader_job(&doubling_shader(70_100));
    assert_eq!(ok.outcome, Outcome::Succeeded, "{:?}", ok.error);
}

#[test]
fn a_full_instance_pool_is_a_clear_error_and_frees_up_after() {
    let gpu = Gpu::open(&GpuOptions::default()).expect("a GPU adapter");
    let (first_slot, second_slot) = (gpu.new_slot().unwrap(), gpu.new_slot().unwrap());
    let sandbox = Sandbox::new(SandboxConfig {
        pooling: Some(PoolingConfig {
            concurrent_jobs: 1,
            ..PoolingConfig::default()
        }),
        ..SandboxConfig::default()
    })
    .expect("a sandbox");
    let wasm = guest_wasm("misbehave");
    let ok = sandbox
        .run(&second_slot, &wasm, b"ok", &JobLimits::default())
        .unwrap();
    assert_eq!(ok.outcome, Outcome::Succeeded, "{:?}", ok.error);

    let sleeping_done = AtomicBool::new(false);
    let probe = Arc::new(JobProbe::default());
    let hooks = RunHooks {
        probe: Some(probe.clone()),
        ..RunHooks::default()
    };
    let mut refused = None;
    std::thread::scope(|s| {
        let sleeper = s.spawn(|| {
            let limits = JobLimits::default();
            let r = sandbox.run_with(&first_slot, &wasm, b"sleep 2", &limits, &hooks);
            sleeping_done.store(true, Ordering::Release);
            r
        });
        // Its clock starts just before it is instantiated; give it the pool.
        while probe.deadline().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        // While the sleeping job holds the only instance, another job is
        // refused (the host's capacity, not the job's fault).
        while !sleeping_done.load(Ordering::Acquire) && refused.is_none() {
            match sandbox.run(&second_slot, &wasm, b"ok", &JobLimits::default()) {
                Err(e @ SandboxError::PoolExhausted(_)) => refused = Some(e.to_string()),
                Err(other) => panic!("unexpected error: {other}"),
                Ok(r) => assert_eq!(r.outcome, Outcome::Succeeded, "{:?}", r.error),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let slept = sleeper.join().unwrap().unwrap();
        assert_eq!(slept.outcome, Outcome::Succeeded, "{:?}", slept.error);
    });
    let refused = refused.expect("a job was refused while the pool was full");
    assert!(refused.contains("concurrent"), "{refused}");
    // The pool has room again.
    let after = sandbox
        .run(&second_slot, &wasm, b"ok", &JobLimits::default())
        .unwrap();
    assert_eq!(after.outcome, Outcome::Succeeded, "{:?}", after.error);
}
