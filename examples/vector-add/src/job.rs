use suanli_guest::{Buffer, Error, Kernel, Result, grid};

use crate::reference;

fn run(input: &[u8]) -> Result<Vec<u8>> {
    let default;
    let (a, b) = if input.is_empty() {
        default = reference::encode_default_problem();
        default.split_at(default.len() / 2)
    } else {
        reference::split_input(input).map_err(Error::msg)?
    };
    let n = a.len() / 4;
    if n == 0 {
        return Ok(Vec::new());
    }
    // The input bytes are already little-endian f32: upload them as they are.
    let a_buf = Buffer::from_bytes(a)?;
    let b_buf = Buffer::from_bytes(b)?;
    let sum = Buffer::zeroed::<f32>(n)?;
    Kernel::new(include_str!("add.wgsl"), "main")?
        .dispatch(&[&a_buf, &b_buf, &sum], grid(n, 256))?;
    sum.read_bytes()
}

suanli_guest::job!(run);
