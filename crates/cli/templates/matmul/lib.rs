//! A suanli GPU job: multiplies two square f32 matrices on the GPU, in
//! 16 x 16 tiles held in workgroup memory.
//!
//! Input: `n` as a little-endian u32, then `A` and `B`, each `n * n`
//! little-endian f32, row-major. Empty input multiplies two 64 x 64
//! matrices of small integers. Output: `C = A * B`, `n * n` little-endian
//! f32, row-major.

use suanli_guest::{Buffer, Error, Kernel, Result, decode, encode};

/// The shader's tile edge (its `@workgroup_size(16, 16)`).
const TILE: u32 = 16;

fn run(input: &[u8]) -> Result<Vec<u8>> {
    let (n, a, b) = if input.is_empty() {
        default_problem(64)
    } else {
        parse(input)?
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let params = Buffer::uniform(&[n, 0, 0, 0])?;
    let a = Buffer::from_slice(&a)?;
    let b = Buffer::from_slice(&b)?;
    let c = Buffer::zeroed::<f32>((n * n) as usize)?;
    let groups = n.div_ceil(TILE);
    Kernel::new(include_str!("matmul.wgsl"), "main")?
        .dispatch(&[&params, &a, &b, &c], [groups, groups, 1])?;
    Ok(encode(&c.read_vec::<f32>()?))
}

/// `n`, then `A` and `B` (`n * n` f32 each).
fn parse(input: &[u8]) -> Result<(u32, Vec<f32>, Vec<f32>)> {
    let Some((head, rest)) = input.split_first_chunk::<4>() else {
        return Err(Error::msg("the input starts with n as a little-endian u32"));
    };
    let n = u32::from_le_bytes(*head);
    let values: Vec<f32> = decode(rest)?;
    let len = (n as usize).checked_mul(n as usize).unwrap_or(usize::MAX);
    if values.len() != len.saturating_mul(2) {
        return Err(Error::msg(format!(
            "n = {n} needs 2 * n * n = {} f32 after it, got {}",
            len.saturating_mul(2),
            values.len()
        )));
    }
    let b = values[len..].to_vec();
    let mut a = values;
    a.truncate(len);
    Ok((n, a, b))
}

fn default_problem(n: u32) -> (u32, Vec<f32>, Vec<f32>) {
    let len = (n * n) as usize;
    let a = (0..len).map(|i| (i % 7) as f32).collect();
    let b = (0..len).map(|i| (i % 5) as f32 - 2.0).collect();
    (n, a, b)
}

suanli_guest::job!(run);
