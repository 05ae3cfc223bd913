use std::hint::black_box;

use suanli_guest::{Buffer, Error, Kernel, Result};

const DOUBLE: &str = "
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x < arrayLength(&dst)) { dst[id.x] = src[id.x] * 2u; }
}";

/// Busy work: each invocation spins `rounds` times.
const SPIN: &str = "
@group(0) @binding(0) var<storage, read_write> acc: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    var x = id.x;
    for (var i = 0u; i < 20000u; i++) { x = x * 1664525u + 1013904223u; }
    acc[id.x % arrayLength(&acc)] = x;
}";

fn run(input: &[u8]) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(input).map_err(Error::msg)?;
    let (deed, arg) = text.split_once(' ').unwrap_or((text, ""));
    match deed {
        "ok" => Ok(b"fine".to_vec()),
        "err" => Err(Error::msg("the job refuses")),
        "trap" => panic!("deliberate panic in the job"),
        "loop" => loop {
            black_box(());
        },
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(black_box(vec![1u8; 16 << 20]));
            }
        }
        "print" => {
            let line = "x".repeat(1023);
            for _ in 0..arg.parse::<usize>().unwrap_or(4096) {
                println!("{line}");
            }
            Ok(b"printed".to_vec())
        }
        "wgsl" => Kernel::new(arg, "main").map(|_| Vec::new()),
        "shader" => {
            // Any compute shader with entry `main` and one storage buffer at
            // binding 0, dispatched as 4 workgroups.
            let data = Buffer::zeroed::<u32>(4096)?;
            Kernel::new(arg, "main")?.dispatch(&[&data], [4, 1, 1])?;
            Ok(data.read_bytes()?[..16].to_vec())
        }
        "bindings" => {
            let count: usize = arg.parse().map_err(Error::msg)?;
            let kernel = Kernel::new(DOUBLE, "main")?;
            let buffers: Vec<Buffer> = (0..count)
                .map(|_| Buffer::zeroed::<u32>(64))
                .collect::<Result<_>>()?;
            let refs: Vec<&Buffer> = buffers.iter().collect();
            kernel.dispatch(&refs, [1, 1, 1])?;
            buffers[1].read_bytes()
        }
        "workgroups" => {
            let x: u32 = arg.parse().map_err(Error::msg)?;
            let src = Buffer::zeroed::<u32>(64)?;
            let dst = Buffer::zeroed::<u32>(64)?;
            Kernel::new(DOUBLE, "main")?.dispatch(&[&src, &dst], [x, 1, 1])?;
            Ok(Vec::new())
        }
        "buffer" => {
            Buffer::new(arg.parse().map_err(Error::msg)?).map(|b| b.size().to_le_bytes().to_vec())
        }
        "forge" => {
            // Reach under the SDK: keep a buffer's raw handle, drop the
            // buffer, then use the stale handle.
            use suanli_guest::bindings::suanli::gpu::compute;
            let buffer =
                compute::Buffer::create(64, compute::BufferUsage::STORAGE).map_err(Error::from)?;
            let handle = buffer.handle();
            drop(buffer);
            let stale = unsafe { compute::Buffer::from_handle(handle) };
            Ok(stale.read(0, 64).map_err(Error::from)?)
        }
        "secret" => {
            let secret: Vec<u32> = (0..1024u32).map(|i| 0xdead_0000 | i).collect();
            let buffer = Buffer::from_slice(&secret)?;
            Ok(buffer.read_bytes()?[..16].to_vec())
        }
        "peek" => Buffer::zeroed::<u32>(1024)?.read_bytes(),
        "spin" => {
            let acc = Buffer::zeroed::<u32>(1024)?;
            let kernel = Kernel::new(SPIN, "main")?;
            let rounds: u32 = arg.parse().unwrap_or(1000);
            for _ in 0..rounds {
                kernel.dispatch(&[&acc], [64, 1, 1])?;
            }
            Ok(suanli_guest::gpu_time_ns().to_le_bytes().to_vec())
        }
        "info" => {
            let info = suanli_guest::adapter_info();
            let limits = suanli_guest::limits();
            Ok(format!(
                "{} {} {}",
                info.name, info.metering, limits.quota_buffer_bytes
            )
            .into_bytes())
        }
        "burn" => {
            // One dispatch of `arg` workgroups of SPIN: as long as asked.
            let workgroups: u32 = arg.parse().map_err(Error::msg)?;
            let acc = Buffer::zeroed::<u32>(1024)?;
            Kernel::new(SPIN, "main")?.dispatch(&[&acc], [workgroups, 1, 1])?;
            Ok(suanli_guest::gpu_time_ns().to_le_bytes().to_vec())
        }
        "sleep" => {
            // Blocks in a WASI host call (monotonic-clock poll), not in wasm.
            let seconds: u64 = arg.parse().map_err(Error::msg)?;
            std::thread::sleep(std::time::Duration::from_secs(seconds));
            Ok(b"slept".to_vec())
        }
        "crash" => {
            // Test failpoint: with SUANLI_TEST_FAILPOINTS=1 this line aborts the worker.
            println!("suanli-failpoint:abort");
            Err(Error::msg("failpoints are off: the worker did not crash"))
        }
        "writes" | "churn" => {
            // Writes `mib` MiB into a buffer `count` times and never
            // dispatches (`churn`: a fresh buffer each time, dropped after
            // its write): host staging memory the job never submits.
            let (mib, count) = arg.split_once(' ').ok_or_else(|| Error::msg("MIB COUNT"))?;
            let mib: u64 = mib.parse().map_err(Error::msg)?;
            let count: usize = count.parse().map_err(Error::msg)?;
            let data = vec![7u8; (mib << 20) as usize];
            let kept = Buffer::from_bytes(&data)?;
            for _ in 0..count {
                if deed == "churn" {
                    Buffer::new(mib << 20)?.write_bytes(0, &data)?;
                } else {
                    kept.write_bytes(0, &data)?;
                }
            }
            Ok(kept.read_range(0, 16)?)
        }
        "output" => Ok(vec![7u8; arg.parse().map_err(Error::msg)?]),
        "bigerr" => {
            let bytes: usize = arg.parse().map_err(Error::msg)?;
            Err(Error::msg("e".repeat(bytes)))
        }
        other => Err(Error::msg(format!("unknown misdeed {other:?}"))),
    }
}

suanli_guest::job!(run);
