//! Shared helpers of the end-to-end tests: building the guest jobs, one
//! GPU slot and sandbox per test binary, and the `suanli` binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

pub mod components;
pub mod http;
pub mod procs;
pub mod proxy;

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

/// Workgroups of `burn` (one dispatch) that keep lavapipe (or a GPU) busy
/// for about `seconds`, measured on this slot: doubled until one dispatch
/// takes 200 ms, then scaled.
pub fn burn_workgroups(seconds: f64) -> u32 {
    let mut workgroups = 16u32;
    loop {
        let r = run_job(
            &guest_wasm("misbehave"),
            format!("burn {workgroups}").as_bytes(),
            &JobLimits::default(),
        );
        assert_eq!(
            r.outcome,
            suanli_sandbox::Outcome::Succeeded,
            "{:?}",
            r.error
        );
        if r.gpu_ns >= 200_000_000 || workgroups >= 32_768 {
            let per_workgroup = r.gpu_ns.max(1) as f64 / f64::from(workgroups);
            return (seconds * 1e9 / per_workgroup).clamp(1.0, 65_535.0) as u32;
        }
        workgroups *= 2;
    }
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

/// Slot workers for in-process nodes: the `suanli` binary's `worker`
/// (this test executable is not one).
pub fn worker_command() -> suanli_node::WorkerCommand {
    suanli_node::WorkerCommand {
        program: suanli_bin(),
        args: vec!["worker".into()],
    }
}

/// A coordinator on 127.0.0.1 with its admin client, and in-process nodes.
pub struct TestCluster {
    pub coordinator: suanli_coordinator::Coordinator,
    pub admin: suanli_net::Client,
    pub dir: tempfile::TempDir,
    stop: tokio::sync::watch::Sender<bool>,
}

impl TestCluster {
    pub async fn start() -> TestCluster {
        TestCluster::start_with(|_| {}).await
    }

    /// Starts a coordinator with a config adjusted by `tweak`.
    pub async fn start_with(
        tweak: impl FnOnce(&mut suanli_coordinator::CoordinatorConfig),
    ) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = suanli_coordinator::CoordinatorConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path().join("coordinator"),
        );
        tweak(&mut config);
        let coordinator = suanli_coordinator::Coordinator::start(config)
            .await
            .expect("coordinator starts");
        let token = coordinator
            .new_admin_token
            .clone()
            .expect("first start makes an admin token");
        let admin = suanli_net::Client::connect(
            coordinator.addr(),
            coordinator.fingerprint(),
            &token,
            suanli_proto::Role::Admin,
        )
        .await
        .expect("admin connects");
        let (stop, _) = tokio::sync::watch::channel(false);
        TestCluster {
            coordinator,
            admin,
            dir,
            stop,
        }
    }

    pub async fn token(&self, role: suanli_proto::Role, name: &str) -> String {
        self.admin
            .create_token(role, name)
            .await
            .expect("token created")
    }

    pub async fn connect(
        &self,
        token: &str,
        role: suanli_proto::Role,
    ) -> Result<suanli_net::Client, suanli_net::NetError> {
        suanli_net::Client::connect(
            self.coordinator.addr(),
            self.coordinator.fingerprint(),
            token,
            role,
        )
        .await
    }

    /// A tenant client with a fresh token named `name`.
    pub async fn tenant(&self, name: &str) -> suanli_net::Client {
        let token = self.token(suanli_proto::Role::Tenant, name).await;
        self.connect(&token, suanli_proto::Role::Tenant)
            .await
            .expect("tenant connects")
    }

    /// Starts a node named `name` in this process and waits until it registered.
    pub async fn add_node(&self, name: &str, slots: u32, max_gpu_memory: Option<u64>) {
        let before = self.admin.nodes().await.expect("nodes").len();
        let token = self.token(suanli_proto::Role::Node, name).await;
        let mut config = suanli_node::NodeConfig::new(
            self.coordinator.addr(),
            self.coordinator.fingerprint().to_owned(),
            token,
            self.dir.path().join(name),
        );
        config.slots = slots;
        config.max_gpu_memory = max_gpu_memory;
        config.worker = worker_command();
        let node = tokio::task::spawn_blocking(move || suanli_node::Node::new(config))
            .await
            .expect("join")
            .expect("node starts");
        tokio::spawn(node.run(self.stop.subscribe()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.admin.nodes().await.expect("nodes").len() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "node {name} did not register"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Stops every node of this cluster.
    pub fn stop_nodes(&self) {
        let _ = self.stop.send(true);
    }
}

/// An `XDG_CONFIG_HOME` with no suanli client files in it.
pub const NO_CONFIG_HOME: &str = "/nonexistent/suanli-tests-config";

/// Runs the `suanli` binary with `args` and extra environment.
/// The default client file is looked for under an empty directory, so a
/// `client.toml` installed on the machine running the tests is never used.
pub fn suanli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(suanli_bin());
    cmd.args(args)
        .env("NODEVICE_SELECT", "1")
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("suanli runs")
}

/// The JSON a successful command printed.
pub fn ok_json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

impl TestCluster {
    /// `SUANLI_*` variables that point the CLI at this coordinator with `token`.
    pub fn cli_env(&self, token: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SUANLI_COORDINATOR", self.coordinator.addr().to_string()),
            (
                "SUANLI_FINGERPRINT",
                self.coordinator.fingerprint().to_owned(),
            ),
            ("SUANLI_TOKEN", token.to_owned()),
        ]
    }

    /// The admin token of this cluster.
    pub fn admin_token(&self) -> String {
        self.coordinator
            .new_admin_token
            .clone()
            .expect("a fresh coordinator has an admin token")
    }
}

/// A node speaking the protocol by hand, with a key of the test's choosing:
/// the hostile or flaky provider that a real node never is.
pub struct FakeNode {
    pub client: suanli_net::Client,
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
    pub node_id: u64,
    pub signer: suanli_proto::ReceiptSigner,
    /// When each assignment arrived: `finish` waits until the receipt's GPU
    /// time has passed since then, as for an honest node (the coordinator
    /// refuses GPU time above the wall time since assignment).
    pub assigned: std::collections::HashMap<(u64, u32), std::time::Instant>,
}

/// A plausible GPU for fake nodes (shared with the benchmark's fake nodes).
pub use suanli_bench::fake_node::fake_gpu;

impl FakeNode {
    /// Registers with `token`, presenting the key made from `seed`, with the
    /// default caps.
    pub async fn register(
        cluster: &TestCluster,
        token: &str,
        seed: u8,
    ) -> Result<FakeNode, suanli_net::NetError> {
        FakeNode::register_with_caps(cluster, token, seed, suanli_proto::NodeCaps::default()).await
    }

    /// Registers announcing `caps` (what one job may take on this node).
    pub async fn register_with_caps(
        cluster: &TestCluster,
        token: &str,
        seed: u8,
        caps: suanli_proto::NodeCaps,
    ) -> Result<FakeNode, suanli_net::NetError> {
        FakeNode::register_with(cluster, token, seed, |info| info.caps = caps).await
    }

    /// Registers with what it reports about itself changed by `tweak`
    /// (slots, GPU strings, in-flight claims...).
    pub async fn register_with(
        cluster: &TestCluster,
        token: &str,
        seed: u8,
        tweak: impl FnOnce(&mut suanli_proto::NodeInfo),
    ) -> Result<FakeNode, suanli_net::NetError> {
        let client = cluster.connect(token, suanli_proto::Role::Node).await?;
        let signer = suanli_proto::ReceiptSigner::from_seed(&[seed; 32]);
        let mut info = suanli_proto::NodeInfo {
            gpu: fake_gpu(),
            slots: 1,
            caps: suanli_proto::NodeCaps::default(),
            public_key: signer.public_key(),
            in_flight: Vec::new(),
            devices: Vec::new(),
            simulated_faults: None,
        };
        tweak(&mut info);
        let (send, recv, node_id, _) = client.register(info).await?;
        Ok(FakeNode {
            client,
            send,
            recv,
            node_id,
            signer,
            assigned: std::collections::HashMap::new(),
        })
    }

    /// The next assignment sent to this node.
    pub async fn next_assignment(&mut self) -> suanli_proto::Assignment {
        self.assignment_within(std::time::Duration::from_secs(30))
            .await
            .expect("an assignment in time")
    }

    /// The next assignment sent to this node within `wait`, if any (other
    /// messages, such as acks, are skipped).
    pub async fn assignment_within(
        &mut self,
        wait: std::time::Duration,
    ) -> Option<suanli_proto::Assignment> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(
                deadline,
                suanli_net::frame::read_frame::<suanli_proto::ToNode>(&mut self.recv),
            )
            .await
            .ok()?
            .expect("a frame")
            .expect("the stream is open");
            if let suanli_proto::ToNode::Run(a) = frame {
                self.assigned
                    .insert((a.job, a.attempt), std::time::Instant::now());
                return Some(a);
            }
        }
    }

    /// A receipt for `a` as an honest node would sign it.
    pub fn receipt(
        &self,
        a: &suanli_proto::Assignment,
        outcome: suanli_proto::Outcome,
        gpu_ns: u64,
        output: Option<suanli_proto::Hash>,
    ) -> suanli_proto::Receipt {
        suanli_proto::Receipt {
            job: a.job,
            attempt: a.attempt,
            node_id: self.node_id,
            module: a.spec.module,
            input: a.spec.input,
            output,
            gpu_ns,
            wall_ns: gpu_ns.saturating_add(1_000_000),
            outcome,
            metering: suanli_proto::Metering::Timestamp,
            started_ms: 1,
            ended_ms: 2,
        }
    }

    /// Sends a finished attempt with the given receipt and signature.
    pub async fn finish(
        &mut self,
        receipt: suanli_proto::Receipt,
        signature: suanli_proto::Signature,
    ) {
        self.finish_with_error(receipt, signature, None).await;
    }

    /// Sends a finished attempt at once, whatever GPU time it claims.
    pub async fn finish_now(
        &mut self,
        receipt: suanli_proto::Receipt,
        signature: suanli_proto::Signature,
    ) {
        self.send_finished(receipt, signature, None).await;
    }

    /// Sends a finished attempt with an error text of the node's choosing,
    /// once the receipt's GPU time has passed since its assignment.
    pub async fn finish_with_error(
        &mut self,
        receipt: suanli_proto::Receipt,
        signature: suanli_proto::Signature,
        error: Option<String>,
    ) {
        if let Some(at) = self.assigned.get(&(receipt.job, receipt.attempt)) {
            let used = std::time::Duration::from_nanos(receipt.gpu_ns);
            tokio::time::sleep(used.saturating_sub(at.elapsed())).await;
        }
        self.send_finished(receipt, signature, error).await;
    }

    async fn send_finished(
        &mut self,
        receipt: suanli_proto::Receipt,
        signature: suanli_proto::Signature,
        error: Option<String>,
    ) {
        let message = suanli_proto::FromNode::Finished(Box::new(suanli_proto::AttemptResult {
            receipt,
            signature,
            error,
            output_bytes: 0,
        }));
        suanli_net::frame::write_frame(&mut self.send, &message)
            .await
            .expect("sent");
    }
}

/// Polls `status` until the job is final.
pub async fn wait_final(client: &suanli_net::Client, job: u64) -> suanli_proto::JobView {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let view = client.status(job).await.expect("status");
        if view.state.is_final() {
            return view;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {job} did not finish: {view:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether `output` is the product the matmul example should compute for
/// `p` (f32, within 1e-4 relative error of the CPU reference).
pub fn matmul_output_ok(p: &matmul::reference::Problem, output: &[u8]) -> bool {
    let got: Vec<f32> = output
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let want = matmul::reference::multiply(p);
    got.len() == want.len() && matmul::reference::max_relative_error(&got, &want) <= 1e-4
}
