// expect: rejected
// 4 MiB of workgroup memory; devices offer 16-64 KiB (wgpu does not check it: our own check does).
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
var<workgroup> big: array<u32, 1048576>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) i: u32) {
    big[i] = i;
    workgroupBarrier();
    data[i] = big[1048575u - i];
}
