use suanli_guest::{Buffer, Error, Kernel, Result};

use crate::{TILE, WGSL, reference};

fn run(input: &[u8]) -> Result<Vec<u8>> {
    let default;
    let input = if input.is_empty() {
        default = reference::encode_input(&reference::default_problem());
        &default[..]
    } else {
        input
    };
    // The matrices are already little-endian f32: upload the bytes as they are.
    let (n, a, b) = reference::split_input(input).map_err(Error::msg)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let params = Buffer::uniform(&[n, 0, 0, 0])?;
    let a = Buffer::from_bytes(a)?;
    let b = Buffer::from_bytes(b)?;
    let c = Buffer::new(a.size())?;
    let groups = n.div_ceil(TILE);
    Kernel::new(WGSL, "main")?.dispatch(&[&params, &a, &b, &c], [groups, groups, 1])?;
    c.read_bytes()
}

suanli_guest::job!(run);
