// Escape-time iteration count of each pixel; the guest colours them.
struct Params {
    width: u32,
    height: u32,
    max_iter: u32,
    pad: u32,
    center_x: f32,
    center_y: f32,
    scale: f32,
    pad2: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> iterations: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = id.x + id.y * groups.x * 64u;
    if (i >= params.width * params.height) {
        return;
    }
    let px = i % params.width;
    let py = i / params.width;
    let x0 = params.center_x + (f32(px) - f32(params.width) * 0.5) * params.scale;
    let y0 = params.center_y + (f32(py) - f32(params.height) * 0.5) * params.scale;
    var x = 0.0;
    var y = 0.0;
    var n = 0u;
    while (n < params.max_iter && x * x + y * y <= 4.0) {
        let xt = x * x - y * y + x0;
        y = 2.0 * x * y + y0;
        x = xt;
        n++;
    }
    iterations[i] = n;
}
