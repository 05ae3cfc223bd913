//! The hostile shader corpus (`tests/data/wgsl/`, plus shaders generated
//! here): each is rejected with a clear error or runs within the job's limits,
//! nothing panics or aborts, and the next job on the same slot is correct.

use suanli_e2e::{guest_wasm, run_job, workspace_root};
use suanli_sandbox::{JobLimits, JobReport, Outcome};

fn run_shader(src: &str) -> JobReport {
    let limits = JobLimits {
        timeout: std::time::Duration::from_secs(20),
        ..JobLimits::default()
    };
    run_job(
        &guest_wasm("misbehave"),
        format!("shader {src}").as_bytes(),
        &limits,
    )
}

/// A correct vector-add right after, on the same slot.
fn next_job_is_correct(after: &str) {
    let a: Vec<f32> = (0..5000).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..5000).map(|i| (i * 3) as f32).collect();
    let input = vector_add::reference::encode_input(&a, &b);
    let r = run_job(&guest_wasm("vector_add"), &input, &JobLimits::default());
    assert_eq!(
        r.outcome,
        Outcome::Succeeded,
        "after {after}: {:?}",
        r.error
    );
    assert!(
        r.output == vector_add::reference::run(&input).unwrap(),
        "after {after}: wrong result"
    );
}

fn rejected(r: &JobReport) -> bool {
    r.outcome == Outcome::JobError
        && r.error
            .as_deref()
            .is_some_and(|e| e.contains("invalid shader") || e.contains("validation error"))
}

fn first_word(r: &JobReport) -> u32 {
    u32::from_le_bytes(r.output[..4].try_into().unwrap())
}

#[test]
fn every_shader_of_the_corpus_is_refused_or_bounded() {
    let dir = workspace_root().join("tests/data/wgsl");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus is in {}", dir.display());
    let cpu = suanli_e2e::runtime().slot.info().device_type == "cpu";
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let src = std::fs::read_to_string(&path).unwrap();
        let expect = src
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// expect: "))
            .unwrap_or_else(|| panic!("{name}: first line is `// expect: ...`"))
            .trim()
            .to_owned();
        if expect == "bounded" && !cpu {
            // A discrete GPU bounds WGSL loops only at 2^64 iterations:
            // the known limit in SECURITY.md. lavapipe bounds them itself.
            eprintln!("{name}: skipped on a non-CPU device");
            continue;
        }
        let r = run_shader(&src);
        let ok = match expect.as_str() {
            "runs" => r.outcome == Outcome::Succeeded,
            "rejected" => rejected(&r),
            "rejected_or_runs" => rejected(&r) || r.outcome == Outcome::Succeeded,
            "bounded" => matches!(r.outcome, Outcome::Succeeded | Outcome::Timeout),
            other => panic!("{name}: unknown expectation {other}"),
        };
        assert!(
            ok,
            "{name}: expected {expect}, got {} ({:?})",
            r.outcome.as_str(),
            r.error
        );
        eprintln!(
            "{name}: {} {}",
            r.outcome.as_str(),
            r.error
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
        next_job_is_correct(&name);
    }
}

fn statements(body: &str) -> String {
    format!(
        "@group(0) @binding(0) var<storage, read_write> data: array<u32>;\n\
         @compute @workgroup_size(1)\nfn main(@builtin(global_invocation_id) id: vec3<u32>) {{\n\
         if (id.x != 0u) {{ return; }}\n{body}\n}}\n"
    )
}

#[test]
fn generated_monsters_are_refused_before_they_reach_the_compiler() {
    // 100,000 terms in one sum once overflowed the stack and aborted the process.
    let r = run_shader(&statements(&format!(
        "data[0] = 0u{};",
        " + 1u".repeat(100_000)
    )));
    assert!(
        rejected(&r) && r.error.as_deref().unwrap().contains("operators"),
        "{:?}",
        r.error
    );
    next_job_is_correct("a 100,000-term sum");
    // 100,000 nested calls and parentheses: naga's recursion limit.
    let r = run_shader(&statements(&format!(
        "data[0] = {}1u{};",
        "(".repeat(100_000),
        ")".repeat(100_000)
    )));
    assert!(rejected(&r), "{:?}", r.error);
    // 100,000 nested blocks: naga's brace nesting limit.
    let r = run_shader(&statements(&format!(
        "{}data[0] = 1u;{}",
        "{".repeat(100_000),
        "}".repeat(100_000)
    )));
    assert!(rejected(&r), "{:?}", r.error);
    // Source past the 1 MiB quota.
    let r = run_shader(&statements(&format!("// {}", "x".repeat(2 << 20))));
    assert_eq!(r.outcome, Outcome::JobError);
    assert!(
        r.error.as_deref().unwrap().contains("exceeds the limit"),
        "{:?}",
        r.error
    );
    next_job_is_correct("oversized sources");
}

#[test]
fn big_but_legal_shaders_run_and_compute_the_right_thing() {
    // A sum just under the operator limit.
    let r = run_shader(&statements(&format!(
        "data[0] = 0u{};",
        " + 1u".repeat(500)
    )));
    assert_eq!(r.outcome, Outcome::Succeeded, "{:?}", r.error);
    assert_eq!(first_word(&r), 500);
    // A long program: 4,000 straight-line statements (every invocation
    // writes the same values, so the result is exact).
    let body: String = (0..4000u32)
        .map(|k| format!("data[{}u] = {k}u;\n", k % 4))
        .collect();
    let r = run_shader(&format!(
        "@group(0) @binding(0) var<storage, read_write> data: array<u32>;\n\
         @compute @workgroup_size(1)\nfn main() {{\n{body}}}\n"
    ));
    assert_eq!(r.outcome, Outcome::Succeeded, "{:?}", r.error);
    assert_eq!(first_word(&r), 3996);
    next_job_is_correct("long programs");
}
