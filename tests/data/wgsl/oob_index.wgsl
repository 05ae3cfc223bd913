// expect: runs
// Indexes far outside the buffer at run time, both ways: wgpu's bounds checks clamp.
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let far = id.x * 1000003u + 4000000000u;
    data[far] = data[far + 7u] + 1u;
    data[id.x - 4294967295u] = 7u;
}
