// expect: rejected
// WGSL forbids recursion; naga must refuse it, not overflow a stack.
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
fn down(n: u32) -> u32 {
    if (n == 0u) { return 0u; }
    return down(n - 1u) + 1u;
}
@compute @workgroup_size(1)
fn main() {
    data[0] = down(1000000u);
}
