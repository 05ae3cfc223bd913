// expect: bounded
// Never ends on its own: an atomic in the loop keeps the compiler from
// removing it, and wgpu bounds loops only at 2^64 iterations.
@group(0) @binding(0) var<storage, read_write> data: array<atomic<u32>>;
@compute @workgroup_size(1)
fn main() {
    loop {
        atomicAdd(&data[0], 1u);
    }
}
