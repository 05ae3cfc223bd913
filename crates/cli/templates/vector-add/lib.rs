//! A suanli GPU job: adds two f32 vectors on the GPU.
//!
//! Input: the vectors `a` and `b` back to back, each `n` little-endian f32.
//! Empty input adds `0, 1, ..., 1023` to itself. Output: `a + b`, `n`
//! little-endian f32.

use suanli_guest::{Buffer, Error, Kernel, Result, decode, encode, grid};

fn run(input: &[u8]) -> Result<Vec<u8>> {
    let values: Vec<f32> = if input.is_empty() {
        (0..1024).chain(0..1024).map(|i| i as f32).collect()
    } else {
        decode(input)?
    };
    if values.len() % 2 != 0 {
        return Err(Error::msg("the input is two f32 vectors of the same length"));
    }
    let (a, b) = values.split_at(values.len() / 2);
    let n = a.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let a_buf = Buffer::from_slice(a)?;
    let b_buf = Buffer::from_slice(b)?;
    let sum = Buffer::zeroed::<f32>(n)?;
    Kernel::new(include_str!("add.wgsl"), "main")?
        .dispatch(&[&a_buf, &b_buf, &sum], grid(n, 256))?;
    Ok(encode(&sum.read_vec::<f32>()?))
}

suanli_guest::job!(run);
