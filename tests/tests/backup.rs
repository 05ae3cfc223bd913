//! `suanli admin backup` while jobs run and are submitted, and the
//! documented restore: `suanli admin restore` into a fresh data directory
//! (with the identity, blobs and client.toml copied beside it), `admin
//! check` passes on it, and a coordinator started from it reports the
//! usage the original had when the backup was taken.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use suanli_e2e::procs::{ProcCluster, start_coordinator};
use suanli_e2e::{guest_wasm, ok_json, suanli};
use suanli_proto::usage::{UsageQuery, UsageRecord};
use suanli_proto::{JobLimits, JobState, Requirements, Role};

fn vector_input(seed: u64) -> Vec<u8> {
    let a: Vec<f32> = (0..4096).map(|i| (i as u64 * 7 + seed) as f32).collect();
    let b: Vec<f32> = (0..4096).map(|i| seed as f32 - i as f32).collect();
    vector_add::reference::encode_input(&a, &b)
}

/// Submits the vector-add job on input `seed`; its id.
async fn submit_vector(tenant: &suanli_net::Client, module: &[u8], seed: u64) -> u64 {
    tenant
        .submit(
            module,
            &vector_input(seed),
            Requirements::default(),
            JobLimits::default(),
            3,
        )
        .await
        .unwrap()
}

/// `suanli admin restore FILE --data DIR [--force]`.
fn restore(file: &Path, data: &Path, force: bool) -> std::process::Output {
    let mut args = vec![
        "admin",
        "restore",
        file.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    if force {
        args.push("--force");
    }
    suanli(&args, &[])
}

/// Every usage row, by (job, attempt), as the coordinator reports them.
async fn records(client: &suanli_net::Client) -> BTreeSet<(u64, u32, String)> {
    let rows: Vec<UsageRecord> = client.usage_records(UsageQuery::default()).await.unwrap();
    rows.iter()
        .map(|r| {
            (
                r.receipt.job,
                r.receipt.attempt,
                serde_json::to_string(&(r.cost_micros, r.charged_gpu_ns, r.receipt.outcome))
                    .unwrap(),
            )
        })
        .collect()
}

/// The documented restore: the backup through `admin restore`, and the
/// identity, client file and blobs copied from the original data directory.
fn restore_into(backup: &Path, original: &Path, fresh: &Path) {
    let out = restore(backup, fresh, false);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("has no cert.der"),
        "names what to copy: {said}"
    );
    for file in ["cert.der", "key.der", "client.toml"] {
        std::fs::copy(original.join(file), fresh.join(file)).unwrap();
    }
    copy_tree(&original.join("blobs"), &fresh.join("blobs"));
    let leftovers: Vec<_> = std::fs::read_dir(fresh)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("tmp") || n.contains("-wal"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let check = suanli(&["admin", "check", "--data", fresh.to_str().unwrap()], &[]);
    assert!(check.status.success(), "{check:?}");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// `suanli usage --group-by tenant --format json` (every tenant, as the
/// admin) through `config`.
fn usage_json(config: &str) -> serde_json::Value {
    ok_json(&suanli(
        &[
            "--config",
            config,
            "usage",
            "--group-by",
            "tenant",
            "--format",
            "json",
        ],
        &[],
    ))
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_load_restores_to_a_consistent_ledger() {
    let cluster = ProcCluster::start(1, 2);
    let token = cluster.token("tenant", "carol");
    let admin_token = cluster.token("admin", "ops");
    let tenant = cluster.client(&token, Role::Tenant).await;
    let admin = cluster.client(&admin_token, Role::Admin).await;
    admin.set_price("default", 1_000_000).await.unwrap();
    let module = guest_wasm("vector_add");
    let mut first = Vec::new();
    for seed in 0..4 {
        first.push(submit_vector(&tenant, &module, seed).await);
    }
    cluster.wait_all(&token, &first).await;
    // More jobs submitted and running while the backup is taken.
    let submitter = {
        let (tenant, module) = (cluster.client(&token, Role::Tenant).await, module.clone());
        tokio::spawn(async move {
            let mut jobs = Vec::new();
            for seed in 10..22 {
                jobs.push(submit_vector(&tenant, &module, seed).await);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            jobs
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = records(&admin).await;
    let backups = tempfile::tempdir().unwrap();
    let under_load = backups.path().join("under-load.db");
    let started = std::time::Instant::now();
    let out = suanli(
        &[
            "--config",
            &cluster.config,
            "admin",
            "backup",
            under_load.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    eprintln!(
        "backup under load: {} bytes in {:?}: {}",
        std::fs::metadata(&under_load).unwrap().len(),
        started.elapsed(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
    let after = records(&admin).await;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&under_load).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the backup holds token hashes");
    }
    let beside: Vec<_> = std::fs::read_dir(backups.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(beside, ["under-load.db"], "one self-contained file");
    let later = submitter.await.unwrap();
    cluster.wait_all(&token, &later).await;

    // Restored: consistent, and holds every row committed before the backup
    // began and none that was not committed by its end (a snapshot).
    let fresh = cluster.dir.path().join("restored-under-load");
    restore_into(&under_load, &cluster.data, &fresh);
    let (restored, _) = start_coordinator(&fresh, "127.0.0.1:0");
    let restored_config = fresh.join("client.toml");
    let file = suanli_e2e::procs::toml_lines(&std::fs::read_to_string(&restored_config).unwrap());
    let address = file["address"].parse().unwrap();
    assert_eq!(
        file["fingerprint"], cluster.fingerprint,
        "the identity was kept"
    );
    let restored_admin =
        suanli_net::Client::connect(address, &cluster.fingerprint, &admin_token, Role::Admin)
            .await
            .unwrap();
    let seen = records(&restored_admin).await;
    assert!(
        before.is_subset(&seen),
        "rows committed before the backup are in it"
    );
    assert!(seen.is_subset(&after), "only committed rows are in it");
    assert!(restored_admin.check().await.unwrap().is_empty());
    // The outputs of jobs finished before the backup are there (blobs copied).
    let restored_tenant =
        suanli_net::Client::connect(address, &cluster.fingerprint, &token, Role::Tenant)
            .await
            .unwrap();
    let (view, output) = restored_tenant.result(first[0]).await.unwrap();
    assert_eq!(view.state, JobState::Succeeded);
    let (_, original_output) = tenant.result(first[0]).await.unwrap();
    assert_eq!(output, original_output);
    drop(restored);

    // At rest, a backup restores to exactly the usage the original reports.
    let at_rest = backups.path().join("at-rest.db");
    let out = suanli(
        &[
            "--config",
            &cluster.config,
            "admin",
            "backup",
            at_rest.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let original_usage = usage_json(&cluster.config);
    let fresh = cluster.dir.path().join("restored-at-rest");
    restore_into(&at_rest, &cluster.data, &fresh);
    let (_restored, _) = start_coordinator(&fresh, "127.0.0.1:0");
    let restored_usage = usage_json(fresh.join("client.toml").to_str().unwrap());
    assert_eq!(restored_usage, original_usage);
    assert!(
        original_usage.to_string().contains("carol"),
        "{original_usage}"
    );

    // A restore never replaces a ledger silently.
    let again = restore(&at_rest, &fresh, false);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{again:?}"
    );
    // Not even with --force while its coordinator runs (DATA/lock is held).
    let live = restore(&under_load, &fresh, true);
    assert!(!live.status.success());
    assert!(
        String::from_utf8_lossy(&live.stderr).contains("a coordinator is running"),
        "{live:?}"
    );
    // Stopped, it is replaced with --force and the old one kept aside.
    drop(_restored);
    let forced = restore(&under_load, &fresh, true);
    assert!(forced.status.success(), "{forced:?}");
    let kept: Vec<_> = std::fs::read_dir(&fresh)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("ledger.db.replaced-"))
        .collect();
    assert!(!kept.is_empty(), "the replaced ledger is kept");
    let check = suanli(&["admin", "check", "--data", fresh.to_str().unwrap()], &[]);
    assert!(check.status.success(), "{check:?}");
    cluster.admin_check();
}

#[test]
fn restore_refuses_a_file_that_is_not_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("not-a-ledger.db");
    std::fs::write(&bogus, b"hello, I am not SQLite").unwrap();
    let data = dir.path().join("data");
    let out = restore(&bogus, &data, false);
    assert!(!out.status.success(), "{out:?}");
    assert!(!data.join("ledger.db").exists());
}
