// C = A * B for row-major n x n f32 matrices, 16 x 16 tiles in workgroup memory.
struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 16u;
var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let n = params.n;
    let row = gid.y;
    let col = gid.x;
    var acc = 0.0;
    let tiles = (n + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t++) {
        let a_col = t * TILE + lid.x;
        let b_row = t * TILE + lid.y;
        var av = 0.0;
        if (row < n && a_col < n) {
            av = a[row * n + a_col];
        }
        var bv = 0.0;
        if (b_row < n && col < n) {
            bv = b[b_row * n + col];
        }
        tile_a[lid.y][lid.x] = av;
        tile_b[lid.y][lid.x] = bv;
        workgroupBarrier();
        for (var k = 0u; k < TILE; k++) {
            acc += tile_a[lid.y][k] * tile_b[k][lid.x];
        }
        workgroupBarrier();
    }
    if (row < n && col < n) {
        c[row * n + col] = acc;
    }
}
