// expect: rejected
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
fn ping(n: u32) -> u32 { if (n == 0u) { return 0u; } return pong(n - 1u); }
fn pong(n: u32) -> u32 { if (n == 0u) { return 1u; } return ping(n - 1u); }
@compute @workgroup_size(1)
fn main() { data[0] = ping(10u); }
