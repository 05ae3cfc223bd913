// expect: runs
// Every invocation hammers the same atomic.
@group(0) @binding(0) var<storage, read_write> counter: array<atomic<u32>>;
@compute @workgroup_size(64)
fn main() {
    for (var i = 0u; i < 2000u; i++) {
        atomicAdd(&counter[0], 1u);
        atomicMax(&counter[1], i);
        atomicXor(&counter[2], i);
    }
}
