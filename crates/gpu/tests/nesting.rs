//! Deeply nested shaders of every shape, generated here at depths 10^2 to
//! 10^5 and compiled through the real GPU path: each compiles or is refused
//! with a readable error naming the limit, nothing overflows a stack or
//! hangs, and the same slot then still computes correctly. Before the nesting
//! limits, a 2,000-branch `else if` chain aborted the process with a stack
//! overflow, 50 functions calling each other from 100 blocks deep did too, and
//! 22 functions calling the previous one twice were killed for memory.

use std::time::Instant;

use suanli_gpu::{BufferUsage, ErrorKind, Gpu, GpuOptions, JobGpu, Quotas, Slot};

fn kernel(globals: &str, body: &str) -> String {
    format!(
        "@group(0) @binding(0) var<storage, read_write> data: array<u32>;\n{globals}\n\
         @compute @workgroup_size(1)\nfn main(@builtin(global_invocation_id) id: vec3<u32>) {{\n\
         let x = id.x;\nlet a = x == 0u;\n{body}\n}}\n"
    )
}

/// `n` functions; function `k` calls function `k - 1` through `call(k - 1)`.
fn functions(n: usize, call: impl Fn(usize) -> String) -> String {
    let mut g = String::from("fn f0(v: u32, a: bool) -> u32 { return v + 1u; }\n");
    for k in 1..n {
        g.push_str(&format!(
            "fn f{k}(v: u32, a: bool) -> u32 {{ var r = v; {} return r; }}\n",
            call(k - 1)
        ));
    }
    kernel(&g, &format!("data[0] = f{}(x, a);", n - 1))
}

/// A shader nesting `n` levels deep in the way `shape` names.
fn generate(shape: &str, n: usize) -> String {
    let body = |b: String| kernel("", &b);
    let wrap = |open: &str, close: &str| {
        body(format!(
            "{}data[0] = 1u;{}",
            open.repeat(n),
            close.repeat(n)
        ))
    };
    let expr = |open: &str, inner: &str, close: &str| {
        body(format!(
            "data[0] = {}{inner}{};",
            open.repeat(n),
            close.repeat(n)
        ))
    };
    match shape {
        "else_if" => body(format!(
            "if x == 0u {{ data[0] = 0u; }}{}",
            (1..n)
                .map(|k| format!(" else if x == {k}u {{ data[0] = {k}u; }}"))
                .collect::<String>()
        )),
        // The blank spaces and comments that naga's lexer accepts, which a
        // scan for `else if` must accept too.
        "else_if_odd_blanks" => body(format!(
            "if x == 0u {{ data[0] = 0u; }}{}",
            (1..n)
                .map(|k| format!("//\r else\u{2028}/* */\u{0b}if x == {k}u {{ data[0] = {k}u; }}"))
                .collect::<String>()
        )),
        "blocks" => wrap("{", "}"),
        "ifs" => wrap("if a {", "}"),
        "loops" => wrap("loop {", "break; }"),
        "switch" => wrap("switch x { default { ", "} }"),
        "parens" => expr("(", "1u", ")"),
        "calls" => kernel(
            "fn g(v: u32) -> u32 { return v + 1u; }",
            &format!("data[0] = {}0u{};", "g(".repeat(n), ")".repeat(n)),
        ),
        "arrays" => kernel(
            &format!(
                "var<private> deep: {}u32{};",
                "array<".repeat(n),
                ", 1>".repeat(n)
            ),
            "data[0] = 1u;",
        ),
        "structs" => {
            let mut g = String::from("struct S0 { v: u32 }\n");
            for k in 1..n {
                g.push_str(&format!("struct S{k} {{ v: S{} }}\n", k - 1));
            }
            kernel(&g, &format!("var deep: S{}; data[0] = 1u;", n - 1))
        }
        "not" => body(format!("data[0] = select(0u, 1u, {}a);", "!".repeat(n))),
        "negate" => body(format!("data[0] = u32({}1i);", "- ".repeat(n))),
        "negate_parens" => body(format!(
            "data[0] = u32({}1i{});",
            "-(".repeat(n),
            ")".repeat(n)
        )),
        "complement" => body(format!("data[0] = {}1u;", "~".repeat(n))),
        "sum" => body(format!("data[0] = 0u{};", " + 1u".repeat(n))),
        "lets" => body(format!(
            "let v0 = x;\n{}data[0] = v{};",
            (1..n)
                .map(|k| format!("let v{k} = v{} + 1u;\n", k - 1))
                .collect::<String>(),
            n - 1
        )),
        "call_chain" => functions(n, |p| format!("r = f{p}(v, a) + 1u;")),
        "call_tree" => functions(n, |p| format!("r = f{p}(v, a) + f{p}(v + 1u, a);")),
        "calls_in_blocks" => functions(n, |p| {
            format!(
                "{} r = f{p}(v, a); {}",
                "if a { ".repeat(40),
                "} ".repeat(40)
            )
        }),
        other => panic!("unknown shape {other}"),
    }
}

/// Shapes and whether they compile at depth 100 (every one is refused from
/// 1,000 on). Nested switches count two levels each (the switch and its
/// case); a tree of 100 functions calling the previous one twice inlines to
/// 2^100 copies; 100 functions calling each other from 40 blocks deep nest
/// 4,000 levels once inlined.
const SHAPES: &[(&str, bool)] = &[
    ("else_if", true),
    ("else_if_odd_blanks", true),
    ("blocks", true),
    ("ifs", true),
    ("loops", true),
    ("switch", false),
    ("parens", true),
    ("calls", true),
    ("arrays", true),
    ("structs", true),
    ("not", true),
    ("negate", true),
    ("negate_parens", true),
    ("complement", true),
    ("sum", true),
    ("lets", true),
    ("call_chain", true),
    ("call_tree", false),
    ("calls_in_blocks", false),
];

const DOUBLE: &str = "@group(0) @binding(0) var<storage, read_write> data: array<u32>;\n\
    @compute @workgroup_size(64)\n\
    fn main(@builtin(global_invocation_id) id: vec3<u32>) { data[id.x] = data[id.x] * 2u; }\n";

/// The job still compiles and runs a doubling kernel, with the right result.
fn still_computes(job: &mut JobGpu, after: &str) {
    let input: Vec<u32> = (0..1024u32).map(|i| i * 3 + 1).collect();
    let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
    let buffer = job.create_buffer(4096, BufferUsage::STORAGE).unwrap();
    job.write_buffer(buffer, 0, &bytes).unwrap();
    let shader = job
        .create_shader(DOUBLE)
        .unwrap_or_else(|e| panic!("after {after}: {e}"));
    let pipeline = job.create_pipeline(shader, "main").unwrap();
    job.dispatch(pipeline, &[buffer], [16, 1, 1]).unwrap();
    let out = job.read_buffer(buffer, 0, 4096).unwrap();
    let expected: Vec<u8> = input.iter().flat_map(|v| (v * 2).to_le_bytes()).collect();
    assert!(out == expected, "after {after}: wrong result");
}

/// Compiles `src` (shader and pipeline) on a fresh job and returns the error,
/// if any; then checks the same job still computes correctly.
fn compile(slot: &Slot, src: &str, what: &str) -> Option<suanli_gpu::GpuError> {
    let mut job = slot.begin_job(Quotas::default()).unwrap();
    let result = job
        .create_shader(src)
        .and_then(|shader| job.create_pipeline(shader, "main"));
    still_computes(&mut job, what);
    match &result {
        Ok(_) => eprintln!("{what}: compiled"),
        Err(e) => eprintln!("{what}: {}", e.to_string().lines().next().unwrap_or("")),
    }
    result.err()
}

/// The refusal a job developer sees must say which limit it hit.
fn assert_refused_by_a_limit(err: Option<suanli_gpu::GpuError>, what: &str) {
    let err = err.unwrap_or_else(|| panic!("{what}: compiled"));
    assert_eq!(err.kind, ErrorKind::InvalidShader, "{what}: {err}");
    assert!(err.message.contains("(max_"), "{what}: {err}");
    assert!(err.message.len() < 400, "{what}: {err}");
}

/// The deepest `shape` whose source fits `max_bytes`.
fn largest_under(shape: &str, max_bytes: usize) -> usize {
    let (mut fits, mut too_big) = (1usize, 1usize << 20);
    while too_big - fits > 1 {
        let mid = fits + (too_big - fits) / 2;
        if generate(shape, mid).len() <= max_bytes {
            fits = mid;
        } else {
            too_big = mid;
        }
    }
    fits
}

fn check_shape(slot: &Slot, shape: &str, compiles_at_100: bool) {
    let max_bytes = Quotas::default().max_shader_bytes;
    let what = format!("{shape} at 100");
    let err = compile(slot, &generate(shape, 100), &what);
    if compiles_at_100 {
        assert!(err.is_none(), "{what}: {err:?}");
    } else {
        assert_refused_by_a_limit(err, &what);
    }
    let mut oversized = false;
    for n in [1_000, 10_000, 100_000] {
        let src = generate(shape, n);
        let what = format!("{shape} at {n}");
        let err = compile(slot, &src, &what);
        if src.len() > max_bytes {
            let err = err.unwrap_or_else(|| panic!("{what}: compiled"));
            assert_eq!(err.kind, ErrorKind::QuotaExceeded, "{what}: {err}");
            oversized = true;
        } else {
            assert_refused_by_a_limit(err, &what);
        }
    }
    if oversized {
        // The size quota refused the deepest one: the depth checks must hold
        // for the deepest that fits under it too.
        let n = largest_under(shape, max_bytes);
        let what = format!("{shape} at {n} (the most under {max_bytes} bytes)");
        assert_refused_by_a_limit(compile(slot, &generate(shape, n), &what), &what);
    }
}

#[test]
fn every_nesting_shape_compiles_or_is_refused_and_the_slot_stays_correct() {
    let gpu = Gpu::open(&GpuOptions::default()).unwrap();
    let slot = gpu.new_slot().unwrap();
    for &(shape, compiles_at_100) in SHAPES {
        let started = Instant::now();
        check_shape(&slot, shape, compiles_at_100);
        eprintln!("{shape}: {:?}", started.elapsed());
    }
}

#[test]
fn the_limit_is_exact() {
    // The kernel's body is level 1; blocks and `else if` branches add one each.
    let gpu = Gpu::open(&GpuOptions::default()).unwrap();
    let slot = gpu.new_slot().unwrap();
    let limit = Quotas::default().max_nesting_depth as usize;
    let blocks = |n: usize| kernel("", &format!("{}{}", "{".repeat(n), "}".repeat(n)));
    let chain = |n: usize| kernel("", &format!("if a {{}}{}", " else if a {}".repeat(n)));
    assert_eq!(
        compile(&slot, &blocks(limit - 1), "blocks at the limit"),
        None
    );
    assert_eq!(
        compile(&slot, &chain(limit - 2), "a chain at the limit"),
        None
    );
    assert_refused_by_a_limit(
        compile(&slot, &blocks(limit), "blocks"),
        "blocks past the limit",
    );
    assert_refused_by_a_limit(
        compile(&slot, &chain(limit - 1), "chain"),
        "a chain past the limit",
    );
}

#[test]
fn real_kernels_are_well_within_the_limits() {
    let gpu = Gpu::open(&GpuOptions::default()).unwrap();
    let slot = gpu.new_slot().unwrap();
    let kernels = [
        include_str!("../../../examples/vector-add/src/add.wgsl"),
        include_str!("../../../examples/matmul/src/matmul.wgsl"),
        include_str!("../../../examples/mandelbrot/src/mandelbrot.wgsl"),
        DOUBLE,
    ];
    // Even with a quarter of each limit.
    let quotas = Quotas {
        max_nesting_depth: Quotas::default().max_nesting_depth / 4,
        max_expression_depth: Quotas::default().max_expression_depth / 4,
        max_inlined_size: Quotas::default().max_inlined_size / 4,
        ..Quotas::default()
    };
    for (i, src) in kernels.into_iter().enumerate() {
        let mut job = slot.begin_job(quotas).unwrap();
        let shader = job
            .create_shader(src)
            .unwrap_or_else(|e| panic!("kernel {i}: {e}"));
        job.create_pipeline(shader, "main").unwrap();
    }
}
