//! Real `suanli coordinator` and `suanli node` processes, for tests that
//! kill them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::{ok_json, suanli, suanli_bin};

/// Kills the process when the test ends, pass or fail.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `suanli coordinator` process; returns it and what it printed up to its
/// `client config:` line.
pub fn start_coordinator(data: &Path, listen: &str) -> (Running, String) {
    start_coordinator_with(data, listen, &[])
}

/// [`start_coordinator`] with more `suanli coordinator` flags (limits).
pub fn start_coordinator_with(data: &Path, listen: &str, extra: &[String]) -> (Running, String) {
    let mut child = Command::new(suanli_bin())
        .args(["coordinator", "--listen", listen, "--data"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log_file(data))
        .spawn()
        .expect("coordinator starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("client config:") {
            break;
        }
    }
    (Running(child), printed)
}

/// `suanli token create` with the admin's config file; returns the secret.
pub fn create_token(config: &str, role: &str, name: &str) -> String {
    let created = ok_json(&suanli(
        &[
            "--config", config, "token", "create", "--role", role, "--name", name, "--json",
        ],
        &[],
    ));
    assert_eq!(created["role"], role);
    assert_eq!(created["name"], name);
    created["token"].as_str().expect("a token").to_owned()
}

/// A `suanli node` process reaching the coordinator through `conn`.
pub fn spawn_node(data: &Path, conn: &[(&str, &str)], token: &str) -> Running {
    spawn_node_with(data, conn, token, 1)
}

/// A `suanli node` process with `slots` slots.
pub fn spawn_node_with(data: &Path, conn: &[(&str, &str)], token: &str, slots: u32) -> Running {
    spawn_node_ext(data, conn, token, slots, &NodeExtras::default())
}

/// More flags and environment for node processes (caps, failpoints).
#[derive(Clone, Debug, Default)]
pub struct NodeExtras {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

fn spawn_node_ext(
    data: &Path,
    conn: &[(&str, &str)],
    token: &str,
    slots: u32,
    extras: &NodeExtras,
) -> Running {
    Running(
        Command::new(suanli_bin())
            .args(["node", "--slots", &slots.to_string(), "--data"])
            .arg(data)
            .args(&extras.args)
            .envs(extras.env.iter().map(|(k, v)| (k, v)))
            .envs(conn.iter().copied())
            .env("SUANLI_TOKEN", token)
            .env("NODEVICE_SELECT", "1")
            .env("XDG_CONFIG_HOME", crate::NO_CONFIG_HOME)
            .stdout(Stdio::null())
            .stderr(log_file(data))
            .spawn()
            .expect("node starts"),
    )
}

/// Where a process with data directory `data` logs (stderr): `DATA.log`
/// beside it, appended to across restarts, for tests that read what a
/// process said and for whoever debugs a failure.
pub fn log_path(data: &Path) -> std::path::PathBuf {
    data.with_extension("log")
}

fn log_file(data: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(data))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

/// `key = "value"` lines of a flat TOML file.
pub fn toml_lines(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

/// A node process of a [`ProcCluster`], alive or killed.
struct ProcNode {
    token: String,
    dir: std::path::PathBuf,
    slots: u32,
    process: Option<Running>,
}

/// A coordinator process and node processes on 127.0.0.1 that a test can
/// kill -9 and restart (the coordinator on the same address and data).
pub struct ProcCluster {
    pub dir: tempfile::TempDir,
    pub data: std::path::PathBuf,
    /// The admin's client.toml.
    pub config: String,
    pub address: String,
    pub fingerprint: String,
    /// What the coordinator printed at its last start, up to its
    /// `client config:` line.
    pub coordinator_output: String,
    coordinator: Option<Running>,
    nodes: Vec<ProcNode>,
    extras: NodeExtras,
    coordinator_args: Vec<String>,
}

impl ProcCluster {
    /// A coordinator and `nodes` nodes named `node-0`, `node-1`, ...
    pub fn start(nodes: usize, slots: u32) -> ProcCluster {
        ProcCluster::start_with(nodes, slots, NodeExtras::default())
    }

    /// [`ProcCluster::start`], the nodes started with `extras`.
    pub fn start_with(nodes: usize, slots: u32, extras: NodeExtras) -> ProcCluster {
        ProcCluster::start_ext(nodes, slots, extras, &[])
    }

    /// [`ProcCluster::start_with`], the coordinator started (and restarted)
    /// with `coordinator_args` too.
    pub fn start_ext(
        nodes: usize,
        slots: u32,
        extras: NodeExtras,
        coordinator_args: &[&str],
    ) -> ProcCluster {
        let coordinator_args: Vec<String> =
            coordinator_args.iter().map(|a| a.to_string()).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("coordinator");
        let (coordinator, coordinator_output) =
            start_coordinator_with(&data, "127.0.0.1:0", &coordinator_args);
        let config = data.join("client.toml").to_str().expect("utf-8").to_owned();
        let file = toml_lines(&std::fs::read_to_string(&config).expect("client.toml"));
        let mut cluster = ProcCluster {
            data,
            config,
            address: file["address"].clone(),
            fingerprint: file["fingerprint"].clone(),
            coordinator_output,
            coordinator: Some(coordinator),
            nodes: Vec::new(),
            extras,
            coordinator_args,
            dir,
        };
        for i in 0..nodes {
            let token = cluster.token("node", &format!("node-{i}"));
            cluster.nodes.push(ProcNode {
                token,
                dir: cluster.dir.path().join(format!("node-{i}")),
                slots,
                process: None,
            });
            cluster.start_node(i);
        }
        cluster
    }

    /// `SUANLI_COORDINATOR` and `SUANLI_FINGERPRINT`.
    pub fn conn(&self) -> [(&str, &str); 2] {
        [
            ("SUANLI_COORDINATOR", self.address.as_str()),
            ("SUANLI_FINGERPRINT", self.fingerprint.as_str()),
        ]
    }

    pub fn token(&self, role: &str, name: &str) -> String {
        create_token(&self.config, role, name)
    }

    pub fn kill_coordinator(&mut self) {
        if let Some(mut c) = self.coordinator.take() {
            let _ = c.0.kill();
            let _ = c.0.wait();
        }
    }

    /// Starts the coordinator again on the same address and data directory.
    pub fn start_coordinator(&mut self) {
        if self.coordinator.is_none() {
            let (c, printed) =
                start_coordinator_with(&self.data, &self.address, &self.coordinator_args);
            self.coordinator_output = printed;
            self.coordinator = Some(c);
        }
    }

    /// Sends SIGTERM to the coordinator and waits up to `within` for it to
    /// exit; its exit status (`None`: still running, then killed) and how
    /// long it took.
    #[cfg(unix)]
    pub fn terminate_coordinator(
        &mut self,
        within: std::time::Duration,
    ) -> (Option<std::process::ExitStatus>, std::time::Duration) {
        let mut c = self.coordinator.take().expect("coordinator running");
        let started = std::time::Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &c.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        while started.elapsed() < within {
            if let Ok(Some(status)) = c.0.try_wait() {
                return (Some(status), started.elapsed());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        (None, started.elapsed())
    }

    /// What node `i` logged so far.
    pub fn node_log(&self, i: usize) -> String {
        std::fs::read_to_string(log_path(&self.nodes[i].dir)).unwrap_or_default()
    }

    /// What the coordinator logged so far (every run on this data directory).
    pub fn coordinator_log(&self) -> String {
        std::fs::read_to_string(log_path(&self.data)).unwrap_or_default()
    }

    /// `suanli price set CLASS UNITS` as the admin.
    pub fn set_price(&self, class: &str, units: &str) {
        let set = suanli(
            &["--config", &self.config, "price", "set", class, units],
            &[],
        );
        assert!(set.status.success(), "{set:?}");
    }

    /// The admin token, from the admin's client.toml.
    pub fn admin_token(&self) -> String {
        toml_lines(&std::fs::read_to_string(&self.config).expect("client.toml"))["token"].clone()
    }

    /// The token node `i` runs with (`node-{i}`).
    pub fn node_token(&self, i: usize) -> &str {
        &self.nodes[i].token
    }

    /// The address of the coordinator's HTTP endpoint (it must run with
    /// `--http`), from what it printed.
    pub fn http_addr(&self) -> String {
        self.coordinator_output
            .lines()
            .find_map(|l| l.strip_prefix("http: http://"))
            .and_then(|rest| rest.split('/').next())
            .expect("the coordinator runs with --http and prints its address")
            .to_owned()
    }

    pub fn coordinator_pid(&self) -> Option<u32> {
        self.coordinator.as_ref().map(|c| c.0.id())
    }

    pub fn coordinator_alive(&self) -> bool {
        self.coordinator.is_some()
    }

    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn node_alive(&self, i: usize) -> bool {
        self.nodes[i].process.is_some()
    }

    /// Sends SIGTERM to node `i` (it drains, then exits).
    #[cfg(unix)]
    pub fn terminate_node(&self, i: usize) {
        let pid = self.node_pid(i);
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// kill -9 node `i`.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].process.take() {
            let _ = p.0.kill();
            let _ = p.0.wait();
        }
    }

    pub fn node_pid(&self, i: usize) -> u32 {
        self.nodes[i].process.as_ref().expect("node alive").0.id()
    }

    /// Whether node `i`'s process is still running (it was started and has
    /// not exited).
    pub fn node_running(&mut self, i: usize) -> bool {
        match self.nodes[i].process.as_mut() {
            Some(p) => matches!(p.0.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits up to `timeout` for node `i` to exit by itself.
    pub fn wait_node(
        &mut self,
        i: usize,
        timeout: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            let p = self.nodes[i].process.as_mut()?;
            if let Ok(Some(status)) = p.0.try_wait() {
                self.nodes[i].process = None;
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    /// Starts node `i` (again, with its data directory: key and outbox).
    pub fn start_node(&mut self, i: usize) {
        if self.nodes[i].process.is_none() {
            let conn = [
                ("SUANLI_COORDINATOR", self.address.as_str()),
                ("SUANLI_FINGERPRINT", self.fingerprint.as_str()),
            ];
            let n = &self.nodes[i];
            let p = spawn_node_ext(&n.dir, &conn, &n.token, n.slots, &self.extras);
            self.nodes[i].process = Some(p);
        }
    }

    /// `suanli admin check` through the coordinator; panics on a violation.
    pub fn admin_check(&self) {
        let out = suanli(&["--config", &self.config, "admin", "check"], &[]);
        assert!(
            out.status.success(),
            "admin check failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A client, retrying until the coordinator answers (up to 60 s).
    pub async fn client(&self, token: &str, role: suanli_proto::Role) -> suanli_net::Client {
        let address: std::net::SocketAddr = self.address.parse().expect("address");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match suanli_net::Client::connect(address, &self.fingerprint, token, role).await {
                Ok(c) => return c,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "cannot connect: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Waits until every job is final, reconnecting through restarts.
    pub async fn wait_all(&self, token: &str, jobs: &[u64]) -> Vec<suanli_proto::JobView> {
        let mut client = self.client(token, suanli_proto::Role::Tenant).await;
        let mut views = Vec::with_capacity(jobs.len());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        for &job in jobs {
            loop {
                assert!(
                    std::time::Instant::now() < deadline,
                    "job {job} never finished"
                );
                match client.wait(job).await {
                    Ok(view) => {
                        views.push(view);
                        break;
                    }
                    Err(e) if e.is_connection_lost() => {
                        client = self.client(token, suanli_proto::Role::Tenant).await;
                    }
                    Err(e) => panic!("waiting for job {job}: {e}"),
                }
            }
        }
        views
    }
}

impl Drop for ProcCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
        self.kill_coordinator();
    }
}
