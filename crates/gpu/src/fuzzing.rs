//! Drives one job's GPU API from arbitrary bytes: the `gpu_calls` fuzz
//! target (`fuzz/`) and the replay of its corpus in the test suite. Every
//! call may fail; none may panic or take the process down.

use std::time::{Duration, Instant};

use crate::{BufferId, BufferUsage, PipelineId, Quotas, ShaderId, Slot};

/// Shaders the byte stream picks from, besides arbitrary text.
pub const SHADERS: &[&str] = &[
    "@group(0) @binding(0) var<storage, read_write> a: array<u32>;
     @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
         a[id.x] = a[id.x] * 2u + 1u; }",
    "@group(0) @binding(0) var<storage, read> a: array<f32>;
     @group(0) @binding(1) var<storage, read_write> b: array<f32>;
     @compute @workgroup_size(8, 8) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
         b[id.y * 8u + id.x] = a[id.x] + a[id.y]; }",
    "@group(0) @binding(0) var<storage, read_write> c: array<atomic<u32>>;
     @compute @workgroup_size(32) fn main() { atomicAdd(&c[0], 1u); }",
    "@group(0) @binding(0) var<uniform> u: vec4<u32>;
     @group(0) @binding(1) var<storage, read_write> o: array<u32>;
     @compute @workgroup_size(1) fn main() { o[u.x % 16u] = u.y; }",
    "@compute @workgroup_size(1) fn main() {}",
    "fn main( {",
];

const ENTRY_POINTS: &[&str] = &["main", "nope", ""];

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).first().copied()
    }

    fn u16(&mut self) -> u16 {
        let b = self.take(2);
        b.iter().fold(0u16, |acc, &x| (acc << 8) | u16::from(x))
    }
}

/// Interprets `data` as a sequence of GPU calls of one job on `slot`, with
/// small quotas and a 2 s deadline so that one input stays quick.
pub fn run_calls(slot: &Slot, data: &[u8]) {
    let quotas = Quotas {
        max_buffer_bytes: 1 << 22,
        max_objects: 64,
        max_workgroups_per_dispatch: 1 << 12,
        max_shader_bytes: 1 << 14,
        ..Quotas::default()
    };
    let Ok(mut gpu) = slot.begin_job(quotas) else {
        return;
    };
    gpu.set_deadline(Some(Instant::now() + Duration::from_secs(2)));
    let mut b = Bytes(data);
    while let Some(op) = b.u8() {
        let id = u32::from(b.u8().unwrap_or(0) % 16);
        match op % 10 {
            0 => {
                let size = u64::from(b.u16()) * 4 + u64::from(b.u8().unwrap_or(0) % 2);
                let usage = match b.u8().unwrap_or(0) % 3 {
                    0 => BufferUsage::STORAGE,
                    1 => BufferUsage::UNIFORM,
                    _ => BufferUsage::default(),
                };
                let _ = gpu.create_buffer(size, usage);
            }
            1 => {
                let offset = u64::from(b.u16());
                let len = usize::from(b.u8().unwrap_or(0));
                let bytes = b.take(len).to_vec();
                let _ = gpu.write_buffer(BufferId(id), offset, &bytes);
            }
            2 => {
                let offset = u64::from(b.u16());
                let len = u64::from(b.u16());
                let _ = gpu.read_buffer(BufferId(id), offset, len);
            }
            3 => {
                let _ = gpu.drop_buffer(BufferId(id));
            }
            4 => {
                let _ = gpu.create_shader(SHADERS[id as usize % SHADERS.len()]);
            }
            5 => {
                let len = usize::from(b.u16() % 2048);
                let text = String::from_utf8_lossy(b.take(len)).into_owned();
                let _ = gpu.create_shader(&text);
            }
            6 => {
                let entry = ENTRY_POINTS[usize::from(b.u8().unwrap_or(0)) % ENTRY_POINTS.len()];
                let _ = gpu.create_pipeline(ShaderId(id), entry);
            }
            7 => {
                let n = usize::from(b.u8().unwrap_or(0) % 6);
                let bindings: Vec<BufferId> = (0..n)
                    .map(|_| BufferId(u32::from(b.u8().unwrap_or(0) % 16)))
                    .collect();
                let groups = [
                    u32::from(b.u16()),
                    u32::from(b.u8().unwrap_or(1)),
                    u32::from(b.u8().unwrap_or(1)),
                ];
                let _ = gpu.dispatch(PipelineId(id), &bindings, groups);
            }
            8 => {
                let _ = gpu.drop_shader(ShaderId(id));
            }
            _ => {
                let _ = gpu.drop_pipeline(PipelineId(id));
            }
        }
    }
}
