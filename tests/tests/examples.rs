//! The example jobs produce what their CPU references produce, on the real
//! sandbox and the real GPU service, and their GPU time is metered.

use suanli_e2e::{guest_wasm, run_job};
use suanli_sandbox::{JobLimits, JobReport, Outcome};

fn assert_metered(r: &JobReport) {
    assert_eq!(r.outcome, Outcome::Succeeded, "job failed: {:?}", r.error);
    assert!(r.dispatches >= 1);
    assert!(r.gpu_ns > 0, "no GPU time metered");
    assert!(
        r.gpu_ns <= r.wall_ns,
        "gpu_ns {} > wall_ns {}",
        r.gpu_ns,
        r.wall_ns
    );
}

/// A small deterministic generator, so failures replay.
fn noise(seed: u64, len: usize) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 200.0 - 100.0
        })
        .collect()
}

#[test]
fn vector_add_default_problem_matches_reference() {
    let r = run_job(&guest_wasm("vector_add"), &[], &JobLimits::default());
    assert_metered(&r);
    assert_eq!(r.output.len(), vector_add::reference::DEFAULT_LEN * 4);
    assert!(
        r.output == vector_add::reference::run(&[]).unwrap(),
        "output differs from the CPU reference"
    );
}

#[test]
fn vector_add_random_inputs_match_reference() {
    let wasm = guest_wasm("vector_add");
    // Odd lengths cover the partial last workgroup; 70_000 * 256 folds the grid into y.
    for (seed, len) in [(1, 1), (2, 255), (3, 257), (4, 100_003), (5, 70_000 * 256)] {
        let input = vector_add::reference::encode_input(&noise(seed, len), &noise(seed + 100, len));
        let r = run_job(&wasm, &input, &JobLimits::default());
        assert_metered(&r);
        assert!(
            r.output == vector_add::reference::run(&input).unwrap(),
            "len {len}: output differs"
        );
    }
}

#[test]
fn vector_add_rejects_odd_input_with_a_job_error() {
    let r = run_job(&guest_wasm("vector_add"), &[1, 2, 3], &JobLimits::default());
    assert_eq!(r.outcome, Outcome::JobError);
    assert!(r.error.unwrap().contains("multiple of 8"));
}

fn check_matmul(p: &matmul::reference::Problem, input: &[u8]) {
    let r = run_job(&guest_wasm("matmul"), input, &JobLimits::default());
    assert_metered(&r);
    let got: Vec<f32> = r
        .output
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let want = matmul::reference::multiply(p);
    assert_eq!(got.len(), want.len());
    let err = matmul::reference::max_relative_error(&got, &want);
    assert!(err <= 1e-4, "n = {}: relative error {err:e}", p.n);
}

#[test]
fn matmul_default_problem_matches_reference() {
    check_matmul(&matmul::reference::default_problem(), &[]);
}

#[test]
fn matmul_sizes_that_do_not_fill_tiles_match_reference() {
    for n in [1, 17, 100] {
        let p = matmul::reference::Problem {
            n,
            a: noise(u64::from(n), (n * n) as usize),
            b: noise(u64::from(n) + 7, (n * n) as usize),
        };
        check_matmul(&p, &matmul::reference::encode_input(&p));
    }
}

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut rgb = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut rgb).expect("a frame");
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    rgb.truncate(frame.buffer_size());
    (frame.width, frame.height, rgb)
}

fn check_mandelbrot(params: mandelbrot::reference::Params, input: &[u8]) {
    let r = run_job(&guest_wasm("mandelbrot"), input, &JobLimits::default());
    assert_metered(&r);
    let (w, h, rgb) = decode_png(&r.output);
    assert_eq!((w, h), (params.width, params.height));
    let want = mandelbrot::reference::render(&params);
    let pixels = (w * h) as usize;
    let same = rgb
        .chunks_exact(3)
        .zip(want.chunks_exact(3))
        .filter(|(a, b)| a == b)
        .count();
    // Fused multiply-adds on the GPU may move a few boundary pixels by one iteration.
    assert!(
        same * 1000 >= pixels * 995,
        "only {same} of {pixels} pixels match the CPU reference"
    );
    let inside = rgb.chunks_exact(3).filter(|p| *p == [0, 0, 0]).count();
    assert!(
        inside > pixels / 20 && inside < pixels / 2,
        "implausible image: {inside} black pixels"
    );
}

#[test]
fn mandelbrot_default_view_matches_reference() {
    check_mandelbrot(mandelbrot::reference::Params::default(), &[]);
}

#[test]
fn mandelbrot_parameter_block_is_honoured() {
    let p = mandelbrot::reference::Params {
        width: 300,
        height: 200,
        center_x: -0.5,
        center_y: 0.1,
        scale: 0.01,
        max_iter: 500,
    };
    check_mandelbrot(p, &p.encode());
}

#[test]
fn mandelbrot_rejects_a_bad_parameter_block() {
    let r = run_job(&guest_wasm("mandelbrot"), &[0; 7], &JobLimits::default());
    assert_eq!(r.outcome, Outcome::JobError);
    assert!(r.error.unwrap().contains("24 bytes"));
}
