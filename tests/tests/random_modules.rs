//! Hundreds of random valid wasm modules and components (wasm-smith,
//! seeded) fed to the sandbox: each is refused with a reason or runs to an
//! outcome within its limits, and the slot still runs a real job correctly.

use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use rand::{Rng, SeedableRng};
use suanli_e2e::components::{job_core_module, try_job_component};
use suanli_e2e::{guest_wasm, run_job};
use suanli_sandbox::{JobLimits, Outcome};
use wasm_encoder::MemoryType;

const SEED: u64 = 0x5a11;

fn limits() -> JobLimits {
    JobLimits {
        timeout: Duration::from_millis(250),
        max_memory_bytes: 64 << 20,
        ..JobLimits::default()
    }
}

/// The exports a core module needs to become a `job` component; wasm-smith
/// fills in random bodies.
fn job_exports_template() -> Vec<u8> {
    job_core_module(&[MemoryType {
        minimum: 1,
        maximum: Some(64),
        memory64: false,
        shared: false,
        page_size_log2: None,
    }])
}

fn random_module(rng: &mut rand::rngs::StdRng, exports: Option<Vec<u8>>) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; rng.random_range(64..16_384)];
    rng.fill(bytes.as_mut_slice());
    let mut u = Unstructured::new(&bytes);
    let mut config = wasm_smith::Config {
        max_imports: 0,
        min_memories: 0,
        max_memories: 1,
        max_memory32_bytes: 64 << 16,
        max_funcs: 20,
        max_instructions: 500,
        // The proposals this sandbox's wasmtime enables.
        exceptions_enabled: false,
        gc_enabled: false,
        memory64_enabled: false,
        threads_enabled: false,
        reference_types_enabled: false,
        ..wasm_smith::Config::default()
    };
    if exports.is_some() {
        config.exports = exports;
    }
    wasm_smith::Module::new(config, &mut u)
        .ok()
        .map(|m| m.to_bytes())
}

#[test]
fn random_core_modules_are_refused_as_not_components() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let mut fed = 0;
    while fed < 200 {
        let Some(module) = random_module(&mut rng, None) else {
            continue;
        };
        fed += 1;
        let r = run_job(&module, b"", &limits());
        assert_eq!(
            r.outcome,
            Outcome::InvalidJob,
            "module {fed}: {:?}",
            r.error
        );
        assert!(
            r.error.as_deref().unwrap().contains("component"),
            "module {fed}: {:?}",
            r.error
        );
    }
}

#[test]
fn random_job_components_run_to_an_outcome_within_their_limits() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED + 1);
    let template = job_exports_template();
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    let started = Instant::now();
    let mut fed = 0;
    let mut tries = 0;
    while fed < 300 {
        tries += 1;
        assert!(tries < 20_000, "wasm-smith rarely makes a usable module");
        let Some(module) = random_module(&mut rng, Some(template.clone())) else {
            continue;
        };
        let Some(component) = try_job_component(&module) else {
            continue;
        };
        fed += 1;
        let before = Instant::now();
        let r = run_job(&component, b"some input", &limits());
        // Within its limits: the 250 ms deadline plus a tick and teardown.
        assert!(
            before.elapsed() < Duration::from_secs(5),
            "component {fed} ran {:?} ({})",
            before.elapsed(),
            r.outcome.as_str()
        );
        assert!(
            r.outcome == Outcome::Succeeded || r.error.is_some(),
            "component {fed}: {} without a reason",
            r.outcome.as_str()
        );
        if fed <= 3 {
            eprintln!("component {fed}: {} {:?}", r.outcome.as_str(), r.error);
        }
        *outcomes.entry(r.outcome.as_str()).or_default() += 1;
    }
    eprintln!(
        "{fed} random job components in {:?} ({tries} generated): {outcomes:?}",
        started.elapsed()
    );
    assert!(outcomes.len() > 1, "the corpus exercised one outcome only");
    // The slot is healthy.
    let input = vector_add::reference::encode_default_problem();
    let r = run_job(&guest_wasm("vector_add"), &input, &JobLimits::default());
    assert!(r.output == vector_add::reference::run(&input).unwrap());
}
