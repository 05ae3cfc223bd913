//! The input/output contract and a CPU reference of the job.

/// Elements of the default problem (used when the input is empty).
pub const DEFAULT_LEN: usize = 1 << 20;

/// Two arrays of `DEFAULT_LEN` deterministic values.
pub fn default_problem() -> (Vec<f32>, Vec<f32>) {
    let a = (0..DEFAULT_LEN).map(|i| (i % 1000) as f32 * 0.5).collect();
    let b = (0..DEFAULT_LEN).map(|i| (i % 777) as f32 * -0.25).collect();
    (a, b)
}

/// `a` then `b`, little-endian f32.
pub fn encode_input(a: &[f32], b: &[f32]) -> Vec<u8> {
    a.iter().chain(b).flat_map(|x| x.to_le_bytes()).collect()
}

/// The default problem, encoded as an input.
pub fn encode_default_problem() -> Vec<u8> {
    let (a, b) = default_problem();
    encode_input(&a, &b)
}

/// Splits the input into the bytes of its two arrays, without decoding them.
pub fn split_input(input: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if !input.len().is_multiple_of(8) {
        return Err(format!(
            "input of {} bytes is not two equal-length f32 arrays (its length must be a multiple of 8)",
            input.len()
        ));
    }
    Ok(input.split_at(input.len() / 2))
}

/// Splits the input into its two arrays.
pub fn decode_input(input: &[u8]) -> Result<(Vec<f32>, Vec<f32>), String> {
    let (a, b) = split_input(input)?;
    let floats = |bytes: &[u8]| -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    Ok((floats(a), floats(b)))
}

/// What the job returns for `input`, computed on the CPU.
pub fn run(input: &[u8]) -> Result<Vec<u8>, String> {
    let (a, b) = if input.is_empty() {
        default_problem()
    } else {
        decode_input(input)?
    };
    Ok(a.iter()
        .zip(&b)
        .flat_map(|(x, y)| (x + y).to_le_bytes())
        .collect())
}
