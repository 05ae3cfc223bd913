//! Arbitrary sequences of a job's GPU calls against a real device (lavapipe
//! where there is no GPU).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use suanli_gpu::{Gpu, GpuOptions, Slot};

fn slot() -> &'static Slot {
    static SLOT: OnceLock<Slot> = OnceLock::new();
    SLOT.get_or_init(|| {
        let gpu = Gpu::open(&GpuOptions::default()).expect("a GPU adapter");
        let slot = gpu.new_slot().expect("a device");
        std::mem::forget(gpu);
        slot
    })
}

fuzz_target!(|data: &[u8]| {
    suanli_gpu::fuzzing::run_calls(slot(), data);
});
