use suanli_guest::{Buffer, Error, Kernel, Result, grid};

use crate::reference;

fn run(input: &[u8]) -> Result<Vec<u8>> {
    let (a, b) = if input.is_empty() {
        reference::default_problem()
    } else {
        reference::decode_input(input).map_err(Error::msg)?
    };
    if a.is_empty() {
        return Ok(Vec::new());
    }
    let a_buf = Buffer::from_slice(&a)?;
    let b_buf = Buffer::from_slice(&b)?;
    let sum = Buffer::zeroed::<f32>(a.len())?;
    Kernel::new(include_str!("add.wgsl"), "main")?
        .dispatch(&[&a_buf, &b_buf, &sum], grid(a.len(), 256))?;
    sum.read_bytes()
}

suanli_guest::job!(run);
