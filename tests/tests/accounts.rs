//! Issue 16, the operator's view of money and machines: `suanli tenant
//! show`, setters that say what they stored and warn about names never
//! seen, a provider's earnings with its node token (`usage`, `invoice
//! --provider`), and each GPU of a node listed as its own device. Real
//! coordinator and node processes, real QUIC, real SQLite.

use suanli_e2e::procs::{NodeExtras, ProcCluster};
use suanli_e2e::{FakeNode, TestCluster, guest_dir, guest_wasm, ok_json, suanli};
use suanli_net::NetError;
use suanli_proto::{DeviceInfo, ErrorCode, JobLimits, Role};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The current month, UTC, as `invoice --month` takes it.
fn this_month() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m"])
        .output()
        .expect("date runs");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The job's limits as `status --json` shows them.
fn limits_of(job: &serde_json::Value) -> JobLimits {
    JobLimits {
        max_gpu_ns: job["max_gpu_ns"].as_u64(),
        timeout_ns: job["timeout_ns"].as_u64().unwrap(),
        max_memory_bytes: job["max_memory_bytes"].as_u64().unwrap(),
        max_dispatch_ns: job["max_dispatch_ns"].as_u64().unwrap(),
    }
}

#[test]
fn accounts_setters_earnings_and_devices_from_the_cli() {
    let extras = NodeExtras {
        args: vec!["--gpu".into(), "0".into()],
        env: Vec::new(),
    };
    let cluster = ProcCluster::start_with(1, 1, extras);
    let config = cluster.config.as_str();
    let admin = |args: &[&str]| {
        let mut all = vec!["--config", config];
        all.extend_from_slice(args);
        suanli(&all, &[])
    };
    let [addr, fp] = cluster.conn();
    let alice_token = cluster.token("tenant", "alice");
    let alice = |args: &[&str]| suanli(args, &[addr, fp, ("SUANLI_TOKEN", alice_token.as_str())]);

    // Setters confirm what they stored; unknown names get a warning, exit 0.
    let set = admin(&["price", "set", "default", "1"]);
    assert!(set.status.success(), "{set:?}");
    assert!(!stderr(&set).contains("warning"), "{}", stderr(&set));
    let set = admin(&["price", "set", "never-seen-gpu", "2"]);
    assert!(set.status.success(), "{set:?}");
    assert!(
        stderr(&set).contains("warning: no node has GPU class \"never-seen-gpu\""),
        "{}",
        stderr(&set)
    );
    let limit = admin(&["tenant", "limit", "alice", "1000"]);
    assert!(limit.status.success(), "{limit:?}");
    assert!(stderr(&limit).contains("alice: credit limit 1000.000000"));
    assert!(!stderr(&limit).contains("warning"), "{}", stderr(&limit));
    let limit = admin(&["tenant", "limit", "bob", "5"]);
    assert!(limit.status.success(), "{limit:?}");
    assert!(
        stderr(&limit).contains(
            "warning: no tenant named \"bob\" exists yet; the limit applies once one does"
        ),
        "{}",
        stderr(&limit)
    );
    let quota = admin(&["tenant", "quota", "bob", "1GiB"]);
    assert!(quota.status.success(), "{quota:?}");
    assert!(
        stderr(&quota).contains("warning: no tenant named \"bob\""),
        "{}",
        stderr(&quota)
    );
    let class = admin(&["price", "node", "nobody", "premium"]);
    assert!(class.status.success(), "{class:?}");
    assert!(
        stderr(&class).contains("warning: no node token named \"nobody\" exists yet"),
        "{}",
        stderr(&class)
    );
    let class = admin(&["price", "node", "node-0", "auto"]);
    assert!(class.status.success(), "{class:?}");
    assert!(!stderr(&class).contains("warning"), "{}", stderr(&class));
    let drain = admin(&["node", "drain", "nobody"]);
    assert!(
        !drain.status.success(),
        "nothing to store for an unknown node"
    );

    // Alice runs one job, and leaves one queued that no node can take.
    guest_wasm("vector_add");
    let job = guest_dir().join("vector_add.wasm");
    let job = job.to_str().unwrap();
    let done = ok_json(&alice(&["submit", job, "--wait", "--json"]));
    assert_eq!(done["state"], "succeeded", "{done}");
    let cost = done["attempts"][0]["cost_micros"].as_u64().unwrap();
    let huge = u64::MAX.to_string();
    let stuck = ok_json(&alice(&[
        "submit",
        job,
        "--min-gpu-memory",
        &huge,
        "--json",
    ]));
    let stuck = stuck["job"].as_u64().unwrap().to_string();
    let stuck = ok_json(&alice(&["status", &stuck, "--json"]));
    assert_eq!(stuck["state"], "queued");
    // Held as admission holds it: the worst case at the highest price (2).
    let held = suanli_ledger::billing::worst_case_micros(&limits_of(&stuck), 2_000_000);

    let own = ok_json(&alice(&["tenant", "show", "--json"]));
    assert_eq!(own["tenant"], "alice");
    assert_eq!(own["known"], true);
    assert_eq!(own["credit_limit_micros"], 1_000_000_000u64);
    assert_eq!(own["spent_micros"], cost, "{own}");
    assert_eq!(own["held_micros"], held, "{own}");
    assert_eq!(
        own["available_micros"],
        1_000_000_000u64.saturating_sub(cost + held)
    );
    assert_eq!(own["jobs"]["succeeded"], 1);
    assert_eq!(own["jobs"]["queued"], 1);
    assert!(own["storage_used_bytes"].as_u64().unwrap() > 0, "{own}");
    assert!(own["storage_quota_bytes"].as_u64().unwrap() > 0);
    let by_admin = ok_json(&admin(&["tenant", "show", "alice", "--json"]));
    assert_eq!(by_admin, own, "the admin sees the same account");
    let usage = ok_json(&alice(&["usage", "--format", "json"]));
    assert_eq!(usage[0]["cost_micros"], cost, "spent is the usage total");
    let table = admin(&["tenant", "show", "alice"]);
    assert!(table.status.success(), "{table:?}");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("credit     1000.000000"), "{text}");
    assert!(
        text.contains("1 queued") && text.contains("1 succeeded"),
        "{text}"
    );
    let bob = ok_json(&admin(&["tenant", "show", "bob", "--json"]));
    assert_eq!(bob["known"], false);
    assert_eq!(bob["credit_limit_micros"], 5_000_000);
    assert_eq!(bob["storage_quota_bytes"], 1u64 << 30);
    let refused = alice(&["tenant", "show", "bob"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("tenants see only their own account"),
        "{}",
        stderr(&refused)
    );

    // The provider's earnings with its node token, no --provider needed.
    let node_token = cluster.token("node", "node-0");
    let provider = |args: &[&str]| suanli(args, &[addr, fp, ("SUANLI_TOKEN", node_token.as_str())]);
    let earned = ok_json(&provider(&["usage", "--format", "json"]));
    assert_eq!(earned[0]["cost_micros"], cost, "{earned}");
    assert_eq!(earned[0]["attempts"], 1);
    let flagged = ok_json(&provider(&["usage", "--provider", "--format", "json"]));
    assert_eq!(flagged, earned, "--provider still works");
    let month = this_month();
    let invoice = ok_json(&provider(&[
        "invoice", "--month", &month, "--format", "json",
    ]));
    assert_eq!(invoice["provider"], "node-0", "{invoice}");
    assert_eq!(invoice["total_micros"], cost);
    assert_eq!(invoice["lines"].as_array().unwrap().len(), 1);
    assert_eq!(invoice["lines"][0]["tenant"], "alice");
    let by_admin = ok_json(&admin(&[
        "invoice",
        "--provider",
        "--node",
        "node-0",
        "--month",
        &month,
        "--format",
        "json",
    ]));
    assert_eq!(by_admin, invoice, "the admin itemises the same earnings");
    let prices = ok_json(&provider(&["price", "list", "--json"]));
    assert!(!prices.as_array().unwrap().is_empty());
    let tenant_invoice = ok_json(&alice(&["invoice", "--month", &month, "--format", "json"]));
    assert_eq!(tenant_invoice["tenant"], "alice");
    assert_eq!(tenant_invoice["total_micros"], cost);

    // Each GPU as its own device: `--gpu 0` on lavapipe is one device.
    let nodes = ok_json(&admin(&["nodes", "--json"]));
    let devices = nodes[0]["devices"].as_array().expect("devices listed");
    assert_eq!(devices.len(), 1, "{nodes}");
    assert_eq!(devices[0]["index"], 0);
    assert_eq!(devices[0]["name"], nodes[0]["adapter"]);
    assert_eq!(devices[0]["slots"], 1);
    assert!(devices[0]["pci_bus_id"].is_string());
    let table = admin(&["nodes"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("GPU 0: "), "{text}");
}

/// A valid token claiming another role hears its real role, typed.
#[tokio::test]
async fn a_token_of_another_role_is_told_its_role() {
    let cluster = TestCluster::start().await;
    let node = cluster.token(Role::Node, "prov").await;
    let tenant = cluster.token(Role::Tenant, "alice").await;
    for (token, claimed, actual) in [
        (&node, Role::Tenant, Role::Node),
        (&node, Role::Admin, Role::Node),
        (&tenant, Role::Node, Role::Tenant),
        (&tenant, Role::Admin, Role::Tenant),
    ] {
        match cluster.connect(token, claimed).await {
            Err(NetError::WrongRole {
                actual: got,
                reason,
            }) => {
                assert_eq!(got, actual);
                assert!(reason.contains("token rejected: it is"), "{reason}");
            }
            Err(e) => panic!("{claimed:?}: {e}"),
            Ok(_) => panic!("accepted as {claimed:?}"),
        }
    }
    let wrong = format!("sl_{}", "0".repeat(64));
    assert!(matches!(
        cluster.connect(&wrong, Role::Tenant).await,
        Err(NetError::Refused(_))
    ));
    // The node token reconnects as a node and sees its own earnings.
    let client = cluster.connect(&node, Role::Node).await.unwrap();
    let report = client.usage(Default::default()).await.unwrap();
    assert_eq!(report.total.attempts, 0);
}

/// What a node reports about its GPUs is bounded, and shown as sent.
#[tokio::test]
async fn node_devices_are_bounded_and_listed() {
    let cluster = TestCluster::start().await;
    let token = cluster.token(Role::Node, "multi").await;
    let device = |index: u32, name: String| DeviceInfo {
        index,
        name,
        pci_bus_id: format!("0000:{index:02x}:00.0"),
        slots: 2,
    };
    let too_many: Vec<_> = (0..=suanli_proto::MAX_NODE_DEVICES as u32)
        .map(|i| device(i, "Fake GPU".into()))
        .collect();
    let long = vec![device(0, "x".repeat(10_000))];
    for (what, devices, says) in [
        ("too many", too_many, "GPUs; at most"),
        ("a long name", long, "GPU 0 GPU name is 10000 bytes"),
    ] {
        match FakeNode::register_with(&cluster, &token, 9, |i| i.devices = devices).await {
            Err(NetError::Remote {
                code: ErrorCode::BadRequest,
                message,
            }) => assert!(message.contains(says), "{what}: {message}"),
            Err(e) => panic!("{what}: {e}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
    let two = vec![device(0, "Fake GPU".into()), device(1, "Fake GPU".into())];
    let _node = FakeNode::register_with(&cluster, &token, 9, |i| {
        i.slots = 4;
        i.devices = two.clone();
    })
    .await
    .expect("registers");
    let nodes = cluster.admin.nodes().await.unwrap();
    assert_eq!(nodes[0].devices, two);
}

/// Setters answer whether the name is known, through the client library.
#[tokio::test]
async fn setters_say_whether_the_name_is_known() {
    let cluster = TestCluster::start().await;
    let admin = &cluster.admin;
    assert!(!admin.set_credit_limit("carol", Some(1)).await.unwrap());
    assert!(
        !admin
            .set_storage_quota("carol", Some(1 << 20))
            .await
            .unwrap()
    );
    cluster.token(Role::Tenant, "carol").await;
    assert!(admin.set_credit_limit("carol", None).await.unwrap());
    assert!(admin.set_storage_quota("carol", None).await.unwrap());
    assert!(!admin.set_price("h900", 1).await.unwrap());
    assert!(admin.set_price("h900", 2).await.unwrap(), "priced before");
    assert!(admin.set_price("default", 1).await.unwrap());
    assert!(!admin.set_node_class("prov", Some("h900")).await.unwrap());
    cluster.token(Role::Node, "prov").await;
    assert!(admin.set_node_class("prov", None).await.unwrap());
    assert!(admin.drain_node("prov").await.unwrap());
    assert!(admin.undrain_node("prov").await.unwrap());
    assert!(admin.restore_node("prov").await.unwrap());
    let carol = cluster
        .connect(&cluster.token(Role::Tenant, "dave").await, Role::Tenant)
        .await
        .unwrap();
    assert!(matches!(
        carol.tenant(Some("carol")).await,
        Err(NetError::Remote {
            code: ErrorCode::Forbidden,
            ..
        })
    ));
    let own = carol.tenant(None).await.unwrap();
    assert_eq!((own.name.as_str(), own.known), ("dave", true));
    assert!(matches!(
        admin.tenant(None).await,
        Err(NetError::Remote {
            code: ErrorCode::BadRequest,
            ..
        })
    ));
    assert!(carol.set_storage_quota("dave", None).await.is_err());
}
