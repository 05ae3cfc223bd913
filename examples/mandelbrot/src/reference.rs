//! The parameter block, palette, PNG encoding and CPU reference.

/// What to render. Input format: empty (defaults), or 24 bytes, all
/// little-endian: `width: u32, height: u32, center_x: f32, center_y: f32,
/// scale: f32 (plane units per pixel), max_iter: u32`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    pub width: u32,
    pub height: u32,
    pub center_x: f32,
    pub center_y: f32,
    pub scale: f32,
    pub max_iter: u32,
}

/// Largest image side accepted.
pub const MAX_SIDE: u32 = 8192;
/// Largest iteration count accepted.
pub const MAX_ITER: u32 = 100_000;

impl Default for Params {
    fn default() -> Params {
        Params {
            width: 1024,
            height: 768,
            center_x: -0.75,
            center_y: 0.0,
            scale: 3.0 / 1024.0,
            max_iter: 256,
        }
    }
}

impl Params {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        out.extend(self.width.to_le_bytes());
        out.extend(self.height.to_le_bytes());
        out.extend(self.center_x.to_le_bytes());
        out.extend(self.center_y.to_le_bytes());
        out.extend(self.scale.to_le_bytes());
        out.extend(self.max_iter.to_le_bytes());
        out
    }

    pub fn decode(input: &[u8]) -> Result<Params, String> {
        if input.is_empty() {
            return Ok(Params::default());
        }
        let Ok(block) = <[u8; 24]>::try_from(input) else {
            return Err(format!(
                "the parameter block is 24 bytes, not {}",
                input.len()
            ));
        };
        let word = |i: usize| [block[i], block[i + 1], block[i + 2], block[i + 3]];
        let p = Params {
            width: u32::from_le_bytes(word(0)),
            height: u32::from_le_bytes(word(4)),
            center_x: f32::from_le_bytes(word(8)),
            center_y: f32::from_le_bytes(word(12)),
            scale: f32::from_le_bytes(word(16)),
            max_iter: u32::from_le_bytes(word(20)),
        };
        if !(1..=MAX_SIDE).contains(&p.width) || !(1..=MAX_SIDE).contains(&p.height) {
            return Err(format!("width and height must be 1..={MAX_SIDE}"));
        }
        if !(1..=MAX_ITER).contains(&p.max_iter) {
            return Err(format!("max_iter must be 1..={MAX_ITER}"));
        }
        if ![p.center_x, p.center_y, p.scale]
            .iter()
            .all(|v| v.is_finite())
        {
            return Err("center and scale must be finite".into());
        }
        Ok(p)
    }

    /// The shader's uniform block: `width, height, max_iter, pad` as u32 and
    /// `center_x, center_y, scale, pad` as f32 bits.
    pub fn to_uniform(&self) -> [u32; 8] {
        [
            self.width,
            self.height,
            self.max_iter,
            0,
            self.center_x.to_bits(),
            self.center_y.to_bits(),
            self.scale.to_bits(),
            0,
        ]
    }
}

/// Escape-time iteration count of one pixel, with the shader's arithmetic.
pub fn iterations(p: &Params, px: u32, py: u32) -> u32 {
    let x0 = p.center_x + (px as f32 - p.width as f32 * 0.5) * p.scale;
    let y0 = p.center_y + (py as f32 - p.height as f32 * 0.5) * p.scale;
    let (mut x, mut y, mut n) = (0f32, 0f32, 0u32);
    while n < p.max_iter && x * x + y * y <= 4.0 {
        let xt = x * x - y * y + x0;
        y = 2.0 * x * y + y0;
        x = xt;
        n += 1;
    }
    n
}

/// RGB of an iteration count: black inside the set, a smooth ramp outside.
pub fn color(n: u32, max_iter: u32) -> [u8; 3] {
    if n >= max_iter {
        return [0, 0, 0];
    }
    let t = n as f32 / max_iter as f32;
    let ramp = |k: f32| (255.0 * k.clamp(0.0, 1.0)) as u8;
    [
        ramp(9.0 * (1.0 - t) * t * t * t),
        ramp(15.0 * (1.0 - t) * (1.0 - t) * t * t),
        ramp(8.5 * (1.0 - t) * (1.0 - t) * (1.0 - t) * t),
    ]
}

pub fn colorize(iterations: &[u32], max_iter: u32) -> Vec<u8> {
    iterations
        .iter()
        .flat_map(|&n| color(n, max_iter))
        .collect()
}

/// The image the job renders, as RGB8 rows, computed on the CPU.
pub fn render(p: &Params) -> Vec<u8> {
    let counts: Vec<u32> = (0..p.height)
        .flat_map(|py| (0..p.width).map(move |px| (px, py)))
        .map(|(px, py)| iterations(p, px, py))
        .collect();
    colorize(&counts, p.max_iter)
}

pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}
