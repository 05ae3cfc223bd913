// expect: rejected
// A constant index past a fixed-size array is caught by validation.
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
var<private> small: array<u32, 16>;
@compute @workgroup_size(1)
fn main() {
    data[0] = small[4294967295];
}
