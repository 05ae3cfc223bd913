use suanli_guest::{Buffer, Error, Kernel, Result, grid};

use crate::reference::{self, Params};

fn run(input: &[u8]) -> Result<Vec<u8>> {
    let p = Params::decode(input).map_err(Error::msg)?;
    let pixels = (p.width * p.height) as usize;
    let params = Buffer::uniform(&p.to_uniform())?;
    let iterations = Buffer::zeroed::<u32>(pixels)?;
    Kernel::new(include_str!("mandelbrot.wgsl"), "main")?
        .dispatch(&[&params, &iterations], grid(pixels, 64))?;
    let rgb = reference::colorize(&iterations.read_vec::<u32>()?[..pixels], p.max_iter);
    reference::encode_png(p.width, p.height, &rgb).map_err(Error::msg)
}

suanli_guest::job!(run);
