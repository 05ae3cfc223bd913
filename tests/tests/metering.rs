//! The wall-time fallback of metering, on an adapter told to ignore its
//! timestamps: the job still gets a GPU time, marked `wall`.

use suanli_e2e::guest_wasm;
use suanli_gpu::{Gpu, GpuOptions, Metering};
use suanli_sandbox::{JobLimits, Outcome, Sandbox, SandboxConfig};

#[test]
fn without_timestamps_gpu_time_is_submit_to_done_wall_time() {
    let gpu = Gpu::open(&GpuOptions {
        force_wall_metering: true,
        ..GpuOptions::default()
    })
    .expect("an adapter");
    assert_eq!(gpu.info().metering, Metering::Wall);
    let slot = gpu.new_slot().expect("a device");
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("a sandbox");
    let input = vector_add::reference::encode_input(&[1.0; 4096], &[2.0; 4096]);
    let r = sandbox
        .run(
            &slot,
            &guest_wasm("vector_add"),
            &input,
            &JobLimits::default(),
        )
        .expect("the slot is free");
    assert_eq!(r.outcome, Outcome::Succeeded, "{:?}", r.error);
    assert_eq!(r.metering, Metering::Wall);
    assert!(
        r.gpu_ns > 0 && r.gpu_ns <= r.wall_ns,
        "gpu_ns {} wall_ns {}",
        r.gpu_ns,
        r.wall_ns
    );
    assert!(r.output == vector_add::reference::run(&input).unwrap());
}
