//! `suanli run`, driven as a user drives it: the real binary, real files.

use std::path::Path;
use std::process::{Command, Output};

use suanli_e2e::{guest_dir, guest_wasm, suanli_bin};

fn suanli(args: &[&str], cache: &Path) -> Output {
    Command::new(suanli_bin())
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env("NODEVICE_SELECT", "1")
        .output()
        .expect("suanli runs")
}

fn job(name: &str) -> String {
    guest_wasm(name); // builds the guests if needed
    guest_dir()
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

fn json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn run_json_reports_outcome_metering_and_cache() {
    let cache = tempfile::tempdir().unwrap();
    let first = suanli(&["run", &job("vector_add"), "--json"], cache.path());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let v = json(&first);
    assert_eq!(v["outcome"], "succeeded");
    assert_eq!(v["output_bytes"], 4 * vector_add::reference::DEFAULT_LEN);
    let gpu_ns = v["gpu_ns"].as_u64().unwrap();
    let wall_ns = v["wall_ns"].as_u64().unwrap();
    assert!(
        gpu_ns > 0 && gpu_ns <= wall_ns,
        "gpu_ns {gpu_ns}, wall_ns {wall_ns}"
    );
    assert_eq!(v["metering"], v["adapter"]["metering"]);
    assert!(!v["adapter"]["name"].as_str().unwrap().is_empty());
    assert_eq!(v["log"], "");
    assert_eq!(v["cache"], "miss");
    // A second process finds the compiled job on disk.
    let second = json(&suanli(
        &["run", &job("vector_add"), "--json"],
        cache.path(),
    ));
    assert_eq!(second["cache"], "disk");
    assert!(second["load_ns"].as_u64().unwrap() < v["load_ns"].as_u64().unwrap());
}

#[test]
fn run_reads_input_and_writes_output_files() {
    let dir = tempfile::tempdir().unwrap();
    let a: Vec<f32> = (0..5000).map(|i| i as f32 * 0.25).collect();
    let b: Vec<f32> = (0..5000).map(|i| 1.0 - i as f32).collect();
    let input = vector_add::reference::encode_input(&a, &b);
    let input_path = dir.path().join("in.bin");
    let output_path = dir.path().join("out.bin");
    std::fs::write(&input_path, &input).unwrap();
    let out = suanli(
        &[
            "run",
            &job("vector_add"),
            "--input",
            input_path.to_str().unwrap(),
            "--output",
            output_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "outcome:   succeeded",
        "output:    20000 bytes, written to",
        "gpu time:",
        "wall time:",
        "metering:",
        "adapter:",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(std::fs::read(&output_path).unwrap() == vector_add::reference::run(&input).unwrap());
}

#[test]
fn a_failed_job_exits_non_zero_and_shows_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("deed");
    std::fs::write(&input, "trap").unwrap();
    let out = suanli(
        &["run", &job("misbehave"), "--input", input.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("deliberate panic in the job"), "{text}");
    assert!(text.contains("outcome:   trap"), "{text}");
}

#[test]
fn max_gpu_seconds_stops_a_long_job() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("deed");
    std::fs::write(&input, "spin 100000").unwrap();
    let out = suanli(
        &[
            "run",
            &job("misbehave"),
            "--input",
            input.to_str().unwrap(),
            "--max-gpu-seconds",
            "0.005",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["outcome"], "gpu_budget_exceeded");
    assert!(v["gpu_ns"].as_u64().unwrap() > 5_000_000);
}

#[test]
fn usage_errors_are_clear_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = suanli(&["run", "/nonexistent/job.wasm"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read job /nonexistent/job.wasm")
    );
    let negative = suanli(&["run", &job("vector_add"), "--timeout=-1"], dir.path());
    assert_eq!(negative.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&negative.stderr);
    assert!(
        stderr.contains("--timeout") && stderr.contains("\"-1\" is not a duration"),
        "{stderr}"
    );
}

#[test]
fn gpus_lists_adapters_with_indexes_and_node_refuses_an_unknown_one_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let out = suanli(&["gpus", "--json"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = json(&out);
    let list = list.as_array().expect("an array");
    assert!(!list.is_empty(), "no adapter listed");
    for (i, a) in list.iter().enumerate() {
        assert_eq!(a["index"], i, "{a}");
        assert!(!a["name"].as_str().unwrap().is_empty(), "{a}");
        assert!(a["timestamps"].is_boolean(), "{a}");
        assert!(a["pci_bus_id"].is_string(), "{a}");
    }
    let table = suanli(&["gpus"], dir.path());
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("INDEX"), "{table}");
    assert!(table.contains(list[0]["name"].as_str().unwrap()), "{table}");

    // Port 9 (discard) on localhost: nothing answers, so a node that got
    // as far as connecting would retry for ever instead of exiting.
    let data = dir.path().join("node");
    let out = Command::new(suanli_bin())
        .args([
            "node",
            "--gpu",
            "99",
            "--data",
            data.to_str().unwrap(),
            "--coordinator",
            "127.0.0.1:9",
            "--fingerprint",
            "00",
            "--token",
            "t",
        ])
        .env("NODEVICE_SELECT", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("suanli runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no GPU with index 99"), "{stderr}");
    let first = format!("available: 0 ({}", list[0]["name"].as_str().unwrap());
    assert!(stderr.contains(&first), "{stderr}");

    // The same GPU twice is refused too.
    let out = Command::new(suanli_bin())
        .args([
            "node",
            "--gpu",
            "0",
            "--gpu",
            "0",
            "--data",
            data.to_str().unwrap(),
            "--coordinator",
            "127.0.0.1:9",
            "--fingerprint",
            "00",
            "--token",
            "t",
        ])
        .env("NODEVICE_SELECT", "1")
        .output()
        .expect("suanli runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("GPU 0 is given twice"), "{stderr}");
}

#[test]
fn completions_parse_and_man_pages_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("suanli.bash");
    let out = suanli(&["completions", "bash"], dir.path());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("submit"));
    std::fs::write(&script, &out.stdout).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = suanli(&["completions", shell], dir.path());
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let man = dir.path().join("man");
    let out = suanli(&["man", "--out", man.to_str().unwrap()], dir.path());
    assert!(out.status.success());
    for page in [
        "suanli.1",
        "suanli-submit.1",
        "suanli-token-create.1",
        "suanli-new.1",
    ] {
        let text = std::fs::read_to_string(man.join(page)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
    assert!(
        !man.join("suanli-worker.1").exists(),
        "hidden commands stay hidden"
    );
}

#[test]
fn sizes_and_durations_take_units() {
    let cache = tempfile::tempdir().unwrap();
    let out = suanli(
        &[
            "run",
            &job("vector_add"),
            "--timeout",
            "1m",
            "--max-memory",
            "64MiB",
            "--max-gpu-seconds",
            "2s",
            "--max-log",
            "4KiB",
            "--json",
        ],
        cache.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["outcome"], "succeeded");
    // 64 KiB of linear memory cannot hold the job: the size was applied.
    let small = suanli(
        &["run", &job("vector_add"), "--max-memory", "64KiB", "--json"],
        cache.path(),
    );
    assert_eq!(json(&small)["outcome"], "memory_limit");
    let bad = suanli(
        &["run", &job("vector_add"), "--max-memory", "5 parsecs"],
        cache.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a size"));
}
