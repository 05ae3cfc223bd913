// expect: rejected_or_runs
// A barrier in non-uniform control flow: naga's uniformity analysis refuses it.
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) i: u32) {
    if (data[i] > 3u) {
        workgroupBarrier();
    }
    data[i] = i;
}
