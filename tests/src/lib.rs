//! Shared helpers of the end-to-end tests: building the guest jobs, one
//! GPU slot and sandbox per test binary, and the `suanli` binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use suanli_gpu::{Gpu, GpuOptions, Slot};
use suanli_sandbox::{JobLimits, JobReport, Sandbox, SandboxConfig};

/// The guest crates the tests run, built for `wasm32-wasip2`.
pub const GUEST_CRATES: [&str; 4] = ["vector-add", "matmul", "mandelbrot", "misbehave"];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf()
}

/// Where `scripts/build-guests.sh` and [`guest_wasm`] put the jobs. A target
/// directory of its own, so building guests never waits on the lock of the
/// `cargo test` that runs us. `SUANLI_GUEST_DIR` points elsewhere at
/// prebuilt jobs (then nothing is built), e.g. on a GPU machine without Rust.
pub fn guest_dir() -> PathBuf {
    match std::env::var_os("SUANLI_GUEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target/guest/wasm32-wasip2/release"),
    }
}

fn build_guests() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root()).args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--target-dir",
        "target/guest",
    ]);
    for krate in GUEST_CRATES {
        cmd.args(["-p", krate]);
    }
    let status = cmd.status().expect("cargo runs");
    assert!(
        status.success(),
        "building the guest jobs failed (is the wasm32-wasip2 target installed?)"
    );
}

/// The bytes of a guest job (`vector_add`, `matmul`, `mandelbrot`,
/// `misbehave`, `other-world`), built once per test binary.
pub fn guest_wasm(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var_os("SUANLI_GUEST_DIR").is_none() {
            build_guests();
        }
    });
    let path = guest_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub struct Runtime {
    pub sandbox: Sandbox,
    pub slot: Slot,
}

/// One sandbox and one GPU slot for the whole test binary; tests take turns.
pub fn runtime() -> MutexGuard<'static, Runtime> {
    static RUNTIME: OnceLock<Mutex<Runtime>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        let gpu =
            Gpu::open(&GpuOptions::default()).expect("a GPU adapter (lavapipe without a GPU)");
        let slot = gpu.new_slot().expect("a device");
        let sandbox = Sandbox::new(SandboxConfig::default()).expect("a sandbox");
        Mutex::new(Runtime { sandbox, slot })
    });
    runtime
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a job on the shared slot.
pub fn run_job(wasm: &[u8], input: &[u8], limits: &JobLimits) -> JobReport {
    let rt = runtime();
    rt.sandbox
        .run(&rt.slot, wasm, input, limits)
        .expect("the slot is free")
}

/// The `suanli` binary of this build (`target/<profile>/suanli`), built if
/// missing; `SUANLI_BIN` names a prebuilt one.
pub fn suanli_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("SUANLI_BIN") {
                return PathBuf::from(bin);
            }
            let exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/<test> -> target/<profile>/suanli
            let bin = exe
                .parent()
                .and_then(Path::parent)
                .map(|dir| dir.join("suanli"))
                .expect("a target directory");
            if !bin.exists() {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let status = Command::new(cargo)
                    .current_dir(workspace_root())
                    .args(["build", "-p", "suanli"])
                    .status()
                    .expect("cargo runs");
                assert!(status.success(), "building suanli failed");
            }
            bin
        })
        .clone()
}
