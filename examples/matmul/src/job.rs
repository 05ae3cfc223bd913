use suanli_guest::{Buffer, Error, Kernel, Result};

use crate::{TILE, WGSL, reference};

fn run(input: &[u8]) -> Result<Vec<u8>> {
    let problem = if input.is_empty() {
        reference::default_problem()
    } else {
        reference::decode_input(input).map_err(Error::msg)?
    };
    let n = problem.n;
    if n == 0 {
        return Ok(Vec::new());
    }
    let params = Buffer::uniform(&[n, 0, 0, 0])?;
    let a = Buffer::from_slice(&problem.a)?;
    let b = Buffer::from_slice(&problem.b)?;
    let c = Buffer::zeroed::<f32>(problem.a.len())?;
    let groups = n.div_ceil(TILE);
    Kernel::new(WGSL, "main")?.dispatch(&[&params, &a, &b, &c], [groups, groups, 1])?;
    c.read_bytes()
}

suanli_guest::job!(run);
