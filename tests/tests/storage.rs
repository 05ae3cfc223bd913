//! Disk on the coordinator and the nodes (issue 11, point 4): per-tenant
//! storage quotas, retention of finished jobs' blobs and logs, garbage
//! collection, and byte-capped node caches. Real coordinator, real nodes.

use std::path::Path;
use std::time::Duration;

use suanli_e2e::{TestCluster, guest_wasm, ok_json, suanli, wait_final, worker_command};
use suanli_net::NetError;
use suanli_proto::{
    ErrorCode, GcReport, Hash, JobLimits, JobState, Request, Requirements, Response, Role,
};

async fn submit(client: &suanli_net::Client, module: &[u8], input: &[u8]) -> u64 {
    client
        .submit(
            module,
            input,
            Requirements::default(),
            JobLimits::default(),
            1,
        )
        .await
        .expect("submitted")
}

async fn gc(cluster: &TestCluster) -> GcReport {
    match cluster.admin.call(&Request::Gc).await.expect("gc") {
        Response::Gc(r) => r,
        other => panic!("{other:?}"),
    }
}

/// Every file under `dir` (recursively) and their total size.
fn files(dir: &Path) -> (Vec<std::path::PathBuf>, u64) {
    let (mut found, mut bytes) = (Vec::new(), 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().expect("metadata");
        if meta.is_dir() {
            let (f, b) = files(&entry.path());
            found.extend(f);
            bytes += b;
        } else {
            found.push(entry.path());
            bytes += meta.len();
        }
    }
    (found, bytes)
}

fn blob_path(cluster: &TestCluster, hash: &Hash) -> std::path::PathBuf {
    let hex = hash.to_hex();
    cluster
        .dir
        .path()
        .join("coordinator/blobs")
        .join(&hex[..2])
        .join(hex)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_over_its_quota_is_refused_with_the_numbers_and_another_is_not() {
    let cluster = TestCluster::start_with(|c| c.storage_quota = 300_000).await;
    let alice = cluster.tenant("alice").await;
    let bob = cluster.tenant("bob").await;
    let (a, b) = (vec![1u8; 200_000], vec![2u8; 200_000]);
    alice.put_blob(&a).await.expect("under the quota");
    match alice.put_blob(&b).await {
        Err(NetError::Remote {
            code: ErrorCode::QuotaExceeded,
            message,
        }) => {
            for number in [
                "tenant alice stores 200000 bytes",
                "this adds 200000",
                "quota is 300000 bytes",
            ] {
                assert!(message.contains(number), "{message}");
            }
        }
        other => panic!("alice's upload past her quota: {other:?}"),
    }
    // Bob's bytes are his own; a blob alice holds costs her nothing again.
    bob.put_blob(&b).await.expect("bob is under his quota");
    alice.put_blob(&a).await.expect("re-uploading adds nothing");
    // The operator raises alice's quota (the CLI, as an admin would).
    let env = cluster.cli_env(&cluster.admin_token());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = suanli(&["tenant", "quota", "alice", "500000"], &env);
    assert!(out.status.success(), "{out:?}");
    alice.put_blob(&b).await.expect("under the raised quota");

    // A job's log counts too: past the quota its appends are refused and
    // the log is cut, while the job itself runs to the end.
    let out = suanli(&["tenant", "quota", "bob", "400000"], &env);
    assert!(out.status.success(), "{out:?}");
    cluster.add_node("node", 1, None).await;
    let module = guest_wasm("misbehave");
    let job = submit(&bob, &module, b"print 400").await;
    let view = wait_final(&bob, job).await;
    assert_eq!(view.state, JobState::Succeeded, "{:?}", view.error);
    let mut log = Vec::new();
    bob.logs(job, false, |chunk| log.extend_from_slice(chunk))
        .await
        .expect("log");
    let room = 400_000 - 200_000 - module.len() - b"print 400".len();
    assert!(
        !log.is_empty() && log.len() <= room,
        "log of {} bytes with {room} left in the quota",
        log.len()
    );
    cluster.stop_nodes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_retention_the_files_are_gone_and_the_ledger_still_verifies() {
    let cluster = TestCluster::start_with(|c| {
        c.retention = Duration::from_secs(1);
        c.orphan_grace = Duration::ZERO;
    })
    .await;
    cluster.add_node("node", 1, None).await;
    let tenant_token = cluster.token(Role::Tenant, "alice").await;
    let alice = cluster
        .connect(&tenant_token, Role::Tenant)
        .await
        .expect("alice");
    let module = guest_wasm("misbehave");
    let job = submit(&alice, &module, b"print 8").await;
    let view = wait_final(&alice, job).await;
    assert_eq!(view.state, JobState::Succeeded, "{:?}", view.error);
    let output = view.output.expect("an output");
    let log_file = cluster
        .dir
        .path()
        .join(format!("coordinator/logs/{job}.log"));
    assert!(log_file.exists());
    assert!(blob_path(&cluster, &output).exists());
    assert!(blob_path(&cluster, &Hash::of(&module)).exists());
    // Within retention a collection keeps everything of the job.
    assert_eq!(gc(&cluster).await.blobs_deleted, 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let admin_env = cluster.cli_env(&cluster.admin_token());
    let admin_env: Vec<(&str, &str)> = admin_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let report = ok_json(&suanli(&["admin", "gc", "--json"], &admin_env));
    assert_eq!(
        report["blobs_deleted"], 3,
        "module, input, output: {report}"
    );
    assert_eq!(report["logs_deleted"], 1, "{report}");
    assert!(report["log_bytes_deleted"].as_u64().unwrap() >= 8 * 1024);
    let (left, _) = files(&cluster.dir.path().join("coordinator/blobs"));
    assert!(left.is_empty(), "blob files left: {left:?}");
    assert!(!log_file.exists());
    // The job, its attempts and usage stay; the ledger is consistent and
    // every receipt still verifies.
    assert_eq!(
        alice.status(job).await.expect("status").state,
        JobState::Succeeded
    );
    let out = suanli(&["admin", "check"], &admin_env);
    assert!(out.status.success(), "{out:?}");
    let env = cluster.cli_env(&tenant_token);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = suanli(&["usage", "--verify"], &env);
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("verified 1 receipts"),
        "{out:?}"
    );
    // Downloading the output now fails cleanly, and a second pass finds nothing.
    assert!(alice.get_blob(output).await.is_err());
    assert_eq!(gc(&cluster).await, GcReport::default());
    cluster.stop_nodes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_deletes_orphans_and_keeps_referenced_blobs() {
    let cluster = TestCluster::start_with(|c| c.orphan_grace = Duration::ZERO).await;
    let alice = cluster.tenant("alice").await;
    let kept = alice.put_blob(b"alice's input").await.expect("upload");
    // A node's upload that no result ever granted, and a file no row knows
    // (what a crash between a row's deletion and its file's leaves).
    let node_token = cluster.token(Role::Node, "prov").await;
    let node = cluster
        .connect(&node_token, Role::Node)
        .await
        .expect("node");
    let ungranted = node
        .put_blob(b"an output nobody claimed")
        .await
        .expect("upload");
    let stray = Hash::of(b"stray");
    let stray_path = blob_path(&cluster, &stray);
    std::fs::create_dir_all(stray_path.parent().unwrap()).unwrap();
    std::fs::write(&stray_path, b"stray").unwrap();
    // Garbage is what was stored before now minus the (zero) grace: not
    // within the same millisecond.
    tokio::time::sleep(Duration::from_millis(5)).await;

    let report = gc(&cluster).await;
    assert_eq!(report.blobs_deleted, 2, "{report:?}");
    assert_eq!(
        report.blob_bytes_deleted,
        (b"an output nobody claimed".len() + b"stray".len()) as u64
    );
    assert!(!stray_path.exists() && !blob_path(&cluster, &ungranted).exists());
    assert!(blob_path(&cluster, &kept).exists());
    assert_eq!(alice.get_blob(kept).await.expect("kept"), b"alice's input");
}

/// Starts a node with capped caches and waits until it registered.
async fn add_capped_node(cluster: &TestCluster, blob_bytes: u64, component_bytes: u64) {
    let token = cluster.token(Role::Node, "capped").await;
    let mut config = suanli_node::NodeConfig::new(
        cluster.coordinator.addr(),
        cluster.coordinator.fingerprint().to_owned(),
        token,
        cluster.dir.path().join("capped"),
    );
    config.worker = worker_command();
    config.blob_cache_bytes = blob_bytes;
    config.component_cache_bytes = component_bytes;
    let node = tokio::task::spawn_blocking(move || suanli_node::Node::new(config))
        .await
        .expect("join")
        .expect("node starts");
    let (_stop, signal) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _keep = _stop;
        node.run(signal).await
    });
    while cluster.admin.nodes().await.expect("nodes").is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `module` with a custom section naming `i` appended: another component
/// (another hash, another compilation) that runs the same.
fn variant(module: &[u8], i: u8) -> Vec<u8> {
    let mut m = module.to_vec();
    m.extend_from_slice(&[0, 3, 2, b'v', i]);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_caches_stay_under_their_caps_after_many_distinct_jobs() {
    let module = guest_wasm("misbehave");
    let size = module.len() as u64;
    let cluster = TestCluster::start().await;
    // Room for two modules and their inputs; compiled components are much
    // larger than their wasm, so 3 MiB holds at most a few.
    let (blob_cap, component_cap) = (2 * size + 1000, 3 << 20);
    add_capped_node(&cluster, blob_cap, component_cap).await;
    let alice = cluster.tenant("alice").await;
    for i in 0..6u8 {
        let job = submit(&alice, &variant(&module, i), format!("ok {i}").as_bytes()).await;
        let view = wait_final(&alice, job).await;
        assert_eq!(view.state, JobState::Succeeded, "job {i}: {:?}", view.error);
        let (_, blobs) = files(&cluster.dir.path().join("capped/blobs"));
        assert!(
            blobs <= blob_cap,
            "blob cache {blobs} > {blob_cap} after job {i}"
        );
        let (_, compiled) = files(&cluster.dir.path().join("capped/compiled"));
        assert!(
            compiled <= component_cap,
            "component cache {compiled} > {component_cap} after job {i}"
        );
    }
    // Still a cache: the last module is there.
    let (cached, _) = files(&cluster.dir.path().join("capped/blobs"));
    assert!(
        cached
            .iter()
            .any(|p| p.ends_with(Hash::of(&variant(&module, 5)).to_hex()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_periodic_collection_deletes_orphans_by_itself() {
    let cluster = TestCluster::start_with(|c| {
        c.orphan_grace = Duration::ZERO;
        c.gc_interval = Duration::from_millis(100);
    })
    .await;
    let token = cluster.token(Role::Node, "prov").await;
    let node = cluster.connect(&token, Role::Node).await.expect("node");
    let orphan = node.put_blob(b"never claimed").await.expect("upload");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while blob_path(&cluster, &orphan).exists() {
        assert!(std::time::Instant::now() < deadline, "the orphan stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
