//! The input/output contract and a CPU reference of the job.

/// Size of the default problem (used when the input is empty).
pub const DEFAULT_N: u32 = 512;
/// Largest `n` accepted: 4096² f32 = 64 MiB per matrix.
pub const MAX_N: u32 = 4096;

/// Two row-major `n` x `n` matrices.
pub struct Problem {
    pub n: u32,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
}

/// Deterministic `n` x `n` matrices with entries in [-0.5, 0.5).
pub fn problem(n: u32) -> Problem {
    let n_us = n as usize;
    let entry = |i: usize, j: usize, p: usize, q: usize| ((i * p + j * q) % 17) as f32 / 17.0 - 0.5;
    Problem {
        n,
        a: (0..n_us * n_us)
            .map(|k| entry(k / n_us, k % n_us, 7, 13))
            .collect(),
        b: (0..n_us * n_us)
            .map(|k| entry(k / n_us, k % n_us, 11, 5))
            .collect(),
    }
}

pub fn default_problem() -> Problem {
    problem(DEFAULT_N)
}

/// `n` (LE u32), then A and B (row-major, LE f32).
pub fn encode_input(p: &Problem) -> Vec<u8> {
    let mut out = p.n.to_le_bytes().to_vec();
    out.extend(p.a.iter().chain(&p.b).flat_map(|x| x.to_le_bytes()));
    out
}

/// `n` and the bytes of A and B, checked but not decoded.
pub fn split_input(input: &[u8]) -> Result<(u32, &[u8], &[u8]), String> {
    let Some((head, rest)) = input.split_first_chunk::<4>() else {
        return Err("input too short: it starts with n as a little-endian u32".into());
    };
    let n = u32::from_le_bytes(*head);
    if n > MAX_N {
        return Err(format!("n = {n} is larger than the maximum {MAX_N}"));
    }
    let cells = n as usize * n as usize;
    if rest.len() != cells * 8 {
        return Err(format!(
            "for n = {n} the input must hold 4 + 2 * {cells} * 4 = {} bytes, not {}",
            4 + cells * 8,
            input.len()
        ));
    }
    let (a, b) = rest.split_at(cells * 4);
    Ok((n, a, b))
}

/// A·B, accumulated in f64 so it can judge the GPU's f32 result.
pub fn multiply(p: &Problem) -> Vec<f64> {
    let n = p.n as usize;
    let mut c = vec![0f64; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = f64::from(p.a[i * n + k]);
            let row = &p.b[k * n..(k + 1) * n];
            for (cij, bkj) in c[i * n..(i + 1) * n].iter_mut().zip(row) {
                *cij += aik * f64::from(*bkj);
            }
        }
    }
    c
}

/// Largest element-wise error relative to the largest magnitude of `want`
/// (the usual way to judge a float matmul: tiny entries do not blow it up).
pub fn max_relative_error(got: &[f32], want: &[f64]) -> f64 {
    let scale = want
        .iter()
        .fold(0f64, |m, w| m.max(w.abs()))
        .max(f64::MIN_POSITIVE);
    got.iter()
        .zip(want)
        .map(|(g, w)| (f64::from(*g) - w).abs() / scale)
        .fold(0f64, f64::max)
}
