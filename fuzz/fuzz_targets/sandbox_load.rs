//! Arbitrary bytes loaded and run as a job component.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use suanli_gpu::{Gpu, GpuOptions, Slot};
use suanli_sandbox::{JobLimits, Sandbox, SandboxConfig};

fn setup() -> &'static (Sandbox, Slot) {
    static SETUP: OnceLock<(Sandbox, Slot)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let gpu = Gpu::open(&GpuOptions::default()).expect("a GPU adapter");
        let slot = gpu.new_slot().expect("a device");
        std::mem::forget(gpu);
        let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
        (sandbox, slot)
    })
}

fuzz_target!(|data: &[u8]| {
    let (sandbox, slot) = setup();
    let limits = JobLimits {
        timeout: Duration::from_secs(1),
        max_memory_bytes: 64 << 20,
        ..JobLimits::default()
    };
    let _ = sandbox.run(slot, data, b"", &limits);
});
