// expect: rejected
// A 256 MiB private array per invocation.
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
var<private> big: array<u32, 67108864>;
@compute @workgroup_size(1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    big[id.x * 4099u % 67108864u] = id.x;
    data[id.x % 64u] = big[(id.x * 7u) % 67108864u];
}
