// expect: rejected
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(1)
fn main() {
    let x: f32 = data[0];
    data[0] = x;
}
