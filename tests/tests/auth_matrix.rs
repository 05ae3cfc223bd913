//! Every request type × every kind of caller, against the table in the
//! README: allowed, refused as forbidden, or "not found" (another tenant's
//! object); callers without a valid token are refused at the handshake. And
//! no token ever reaches the coordinator's log.

use std::io::Read;

use suanli_e2e::procs::{Running, create_token, toml_lines};
use suanli_e2e::{TestCluster, fake_gpu, suanli_bin};
use suanli_net::NetError;
use suanli_proto::usage::UsageQuery;
use suanli_proto::{
    ErrorCode, JobLimits, JobSpec, NodeInfo, Request, Requirements, Response, Role,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Answered without an error.
    Allowed,
    Forbidden,
    /// Allowed for the role, but not this caller's object.
    NotFound,
    /// Allowed for the role, refused on its merits (e.g. blobs not uploaded).
    BadRequest,
}

fn verdict(answer: Result<Response, NetError>) -> Verdict {
    match answer {
        Ok(_) => Verdict::Allowed,
        Err(NetError::Remote { code, message }) => match code {
            ErrorCode::Forbidden => Verdict::Forbidden,
            ErrorCode::NotFound => Verdict::NotFound,
            ErrorCode::BadRequest => Verdict::BadRequest,
            other => panic!("unexpected {other:?}: {message}"),
        },
        Err(e) => panic!("transport error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_request_type_for_every_role_is_allowed_or_refused_as_documented() {
    use Verdict::*;
    let cluster = TestCluster::start().await;
    let admin = &cluster.admin;
    let a_token = cluster.token(Role::Tenant, "tenant-a").await;
    let b_token = cluster.token(Role::Tenant, "tenant-b").await;
    let n_token = cluster.token(Role::Node, "provider").await;
    let a = cluster.connect(&a_token, Role::Tenant).await.unwrap();
    let b = cluster.connect(&b_token, Role::Tenant).await.unwrap();
    let node = cluster.connect(&n_token, Role::Node).await.unwrap();

    // Tenant A's objects: blobs and two jobs (no node runs, so they stay queued).
    let module = b"module of tenant a".to_vec();
    let input = b"input of tenant a".to_vec();
    let (hashes, _) = a.ensure_blobs(&[&module, &input]).await.unwrap();
    let spec = JobSpec {
        module: hashes[0],
        input: hashes[1],
        requirements: Requirements::default(),
        limits: JobLimits::default(),
        max_attempts: 1,
    };
    let job = match a.call(&Request::Submit(spec.clone())).await.unwrap() {
        Response::Submitted { job } => job,
        other => panic!("{other:?}"),
    };
    let cancelled = match a.call(&Request::Submit(spec.clone())).await.unwrap() {
        Response::Submitted { job } => job,
        other => panic!("{other:?}"),
    };
    a.cancel(cancelled).await.unwrap();

    let requests: Vec<(&str, Request, [Verdict; 4])> = vec![
        // name, request, [admin, tenant A, tenant B, node]
        (
            "has-blobs",
            Request::HasBlobs(vec![hashes[0]]),
            [Allowed, Allowed, Allowed, Forbidden],
        ),
        (
            "get-blob",
            Request::GetBlob(hashes[0]),
            [Allowed, Allowed, NotFound, NotFound],
        ),
        (
            "submit",
            Request::Submit(spec.clone()),
            [BadRequest, Allowed, BadRequest, Forbidden],
        ),
        (
            "status",
            Request::Status(job),
            [Allowed, Allowed, NotFound, Forbidden],
        ),
        (
            "wait (final job)",
            Request::Wait(cancelled),
            [Allowed, Allowed, NotFound, Forbidden],
        ),
        (
            "logs",
            Request::Logs { job, follow: false },
            [Allowed, Allowed, NotFound, Forbidden],
        ),
        (
            "cancel (final job)",
            Request::Cancel(cancelled),
            [BadRequest, BadRequest, NotFound, Forbidden],
        ),
        (
            "list-jobs",
            Request::ListJobs(Default::default()),
            [Allowed, Allowed, Allowed, Forbidden],
        ),
        (
            "list-nodes",
            Request::ListNodes,
            [Allowed, Forbidden, Forbidden, Forbidden],
        ),
        (
            "create-token",
            Request::CreateToken {
                role: Role::Tenant,
                name: "minted".into(),
                max_slots: None,
            },
            [Allowed, Forbidden, Forbidden, Forbidden],
        ),
        (
            "set-price",
            Request::SetPrice {
                class: "default".into(),
                micros: 1,
            },
            [Allowed, Forbidden, Forbidden, Forbidden],
        ),
        (
            "list-prices",
            Request::ListPrices,
            [Allowed, Allowed, Allowed, Allowed],
        ),
        (
            "set-node-class",
            Request::SetNodeClass {
                node: "provider".into(),
                class: Some("premium".into()),
            },
            [Allowed, Forbidden, Forbidden, Forbidden],
        ),
        (
            "set-credit-limit",
            Request::SetCreditLimit {
                tenant: "tenant-b".into(),
                micros: None,
            },
            [Allowed, Forbidden, Forbidden, Forbidden],
        ),
        (
            "usage (own)",
            Request::Usage(UsageQuery::default()),
            [Allowed, Allowed, Allowed, Allowed],
        ),
        (
            "usage (tenant a)",
            Request::Usage(UsageQuery {
                tenant: Some("tenant-a".into()),
                ..UsageQuery::default()
            }),
            [Allowed, Allowed, Forbidden, Allowed],
        ),
        (
            "usage (node other)",
            Request::Usage(UsageQuery {
                node: Some("other".into()),
                ..UsageQuery::default()
            }),
            [Allowed, Allowed, Allowed, Forbidden],
        ),
        (
            "usage-records",
            Request::UsageRecords {
                query: UsageQuery::default(),
                after: None,
                limit: 10,
            },
            [Allowed, Allowed, Allowed, Allowed],
        ),
        (
            "drain-node (unknown)",
            Request::DrainNode("nobody".into()),
            [NotFound, Forbidden, Forbidden, Forbidden],
        ),
        (
            "undrain-node (unknown)",
            Request::UndrainNode("nobody".into()),
            [NotFound, Forbidden, Forbidden, Forbidden],
        ),
        (
            "restore-node (unknown)",
            Request::RestoreNode("nobody".into()),
            [NotFound, Forbidden, Forbidden, Forbidden],
        ),
        (
            "check",
            Request::Check,
            [Allowed, Forbidden, Forbidden, Forbidden],
        ),
        (
            "gc",
            Request::Gc,
            [Allowed, Forbidden, Forbidden, Forbidden],
        ),
        (
            "backup",
            Request::Backup,
            [Allowed, Forbidden, Forbidden, Forbidden],
        ),
        (
            "set-storage-quota",
            Request::SetStorageQuota {
                tenant: "tenant-b".into(),
                bytes: None,
            },
            [Allowed, Forbidden, Forbidden, Forbidden],
        ),
        (
            "show-tenant (tenant a's)",
            Request::ShowTenant(Some("tenant-a".into())),
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "show-tenant (own)",
            Request::ShowTenant(None),
            [BadRequest, Allowed, Allowed, Forbidden],
        ),
        (
            "list-tokens",
            Request::ListTokens,
            [Allowed, Forbidden, Forbidden, Forbidden],
        ),
        (
            "revoke-token (unknown)",
            Request::RevokeToken("nobody".into()),
            [NotFound, Forbidden, Forbidden, Forbidden],
        ),
    ];
    let callers = [
        ("admin", admin),
        ("tenant a", &a),
        ("tenant b", &b),
        ("node", &node),
    ];
    for (name, request, expected) in &requests {
        for ((who, client), want) in callers.iter().zip(expected) {
            let got = verdict(client.call(request).await);
            assert_eq!(got, *want, "{name} by {who}");
        }
    }
    // Uploads: everyone may upload (a node's upload grants nobody).
    for (who, client) in callers {
        client
            .put_blob(format!("blob from {who}").as_bytes())
            .await
            .unwrap_or_else(|e| panic!("put-blob by {who}: {e}"));
    }
    // Registering a node: only a node token.
    let info = NodeInfo {
        gpu: fake_gpu(),
        slots: 1,
        caps: suanli_proto::NodeCaps::default(),
        public_key: suanli_proto::ReceiptSigner::from_seed(&[5; 32]).public_key(),
        in_flight: Vec::new(),
        devices: Vec::new(),
        simulated_faults: None,
    };
    for (who, client) in [("admin", admin), ("tenant a", &a), ("tenant b", &b)] {
        match client.register(info.clone()).await {
            Err(NetError::Remote {
                code: ErrorCode::Forbidden,
                ..
            }) => {}
            other => panic!("register by {who}: {:?}", other.map(|r| r.2)),
        }
    }
    node.register(info).await.expect("a node token registers");

    // Without a valid token nobody gets past the handshake, as any role.
    let truncated = &a_token[..a_token.len() - 1];
    let wrong = format!("sl_{}", "0".repeat(64));
    for (what, token) in [
        ("no", ""),
        ("wrong", wrong.as_str()),
        ("truncated", truncated),
    ] {
        for role in [Role::Admin, Role::Tenant, Role::Node] {
            match cluster.connect(token, role).await {
                Err(NetError::Refused(reason)) => {
                    assert!(reason.contains("unknown token"), "{what} token: {reason}")
                }
                Err(e) => panic!("{what} token as {role:?}: {e}"),
                Ok(_) => panic!("{what} token accepted as {role:?}"),
            }
        }
    }
    // A valid token claiming another role: refused, except admin as tenant.
    for (token, role, ok) in [
        (&a_token, Role::Admin, false),
        (&a_token, Role::Node, false),
        (&n_token, Role::Tenant, false),
        (&n_token, Role::Admin, false),
    ] {
        assert_eq!(cluster.connect(token, role).await.is_ok(), ok, "{role:?}");
    }
    assert!(
        cluster
            .connect(&cluster.admin_token(), Role::Tenant)
            .await
            .is_ok()
    );
}

/// Issue 11: a node's identity is its token and key together. A receipt
/// key bound to one node token is refused for another (the reason names the
/// binding), and a HasBlobs answer for a hash without a grant is "missing"
/// whether or not some other tenant uploaded it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bound_node_key_is_refused_for_another_token_and_has_blobs_is_no_oracle() {
    let cluster = TestCluster::start().await;
    let first = cluster.token(Role::Node, "first").await;
    let second = cluster.token(Role::Node, "second").await;
    let key = suanli_proto::ReceiptSigner::from_seed(&[42; 32]).public_key();
    let info = NodeInfo {
        gpu: fake_gpu(),
        slots: 1,
        caps: suanli_proto::NodeCaps::default(),
        public_key: key,
        in_flight: Vec::new(),
        devices: Vec::new(),
        simulated_faults: None,
    };
    let node = cluster.connect(&first, Role::Node).await.unwrap();
    let _kept = node.register(info.clone()).await.unwrap();
    let other = cluster.connect(&second, Role::Node).await.unwrap();
    match other.register(info).await {
        Err(NetError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::Forbidden);
            assert!(
                message.contains(&format!("{} is bound to another node token", key.to_hex())),
                "{message}"
            );
        }
        Ok(_) => panic!("a bound key registered with a second token"),
        Err(e) => panic!("{e}"),
    }

    let a = cluster.tenant("tenant-a").await;
    let b = cluster.tenant("tenant-b").await;
    let uploaded = a.put_blob(b"tenant a's secret").await.unwrap();
    let never = suanli_proto::Hash::of(b"nobody uploaded this");
    let missing = b.missing_blobs(vec![uploaded, never]).await.unwrap();
    assert_eq!(missing, vec![uploaded, never], "same answer for both");
    assert_eq!(
        a.missing_blobs(vec![uploaded, never]).await.unwrap(),
        vec![never]
    );
}

/// Issue 11: `token revoke` closes the token's live connections within a
/// second, for every role, and every later handshake (so every request
/// type) is refused with "token revoked"; other tokens are untouched, and
/// `token list` shows the revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_tokens_are_cut_off_within_a_second_and_refused_for_every_request() {
    let cluster = TestCluster::start().await;
    let admin = &cluster.admin;
    let tenant = cluster.token(Role::Tenant, "doomed-tenant").await;
    let node = cluster.token(Role::Node, "doomed-node").await;
    let keeper = cluster.tenant("keeper").await;
    let live = [
        (
            Role::Tenant,
            cluster.connect(&tenant, Role::Tenant).await.unwrap(),
        ),
        (
            Role::Tenant,
            cluster.connect(&tenant, Role::Tenant).await.unwrap(),
        ),
        (
            Role::Node,
            cluster.connect(&node, Role::Node).await.unwrap(),
        ),
    ];
    // In use before: the list says when, not the secret.
    let listed = admin.tokens().await.unwrap();
    let doomed = listed.iter().find(|t| t.name == "doomed-tenant").unwrap();
    assert!(doomed.last_used_ms.is_some() && doomed.revoked_ms.is_none());
    for name in ["doomed-tenant", "doomed-node"] {
        admin.revoke_token(name).await.unwrap();
    }
    let revoked_at = std::time::Instant::now();
    for (role, client) in &live {
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            client.connection().closed(),
        )
        .await
        .unwrap_or_else(|_| panic!("a {role:?} connection outlived its token by 1 s"));
        assert!(closed.to_string().contains("token revoked"), "{closed}");
    }
    eprintln!("connections closed {:?} after revoke", revoked_at.elapsed());
    // Every request type on a connection of the revoked token fails.
    let requests = [
        Request::ListJobs(Default::default()),
        Request::HasBlobs(Vec::new()),
        Request::Usage(UsageQuery::default()),
        Request::ListPrices,
        Request::GetBlob(suanli_proto::Hash::of(b"x")),
    ];
    for request in &requests {
        for (role, client) in &live {
            assert!(
                client.call(request).await.is_err(),
                "{} by a revoked {role:?} token",
                request.kind()
            );
        }
    }
    // And no new connection gets in, as any role.
    for token in [&tenant, &node] {
        for role in [Role::Admin, Role::Tenant, Role::Node] {
            match cluster.connect(token, role).await {
                Err(NetError::Refused(reason)) => {
                    assert!(reason.contains("token revoked"), "{role:?}: {reason}")
                }
                Err(e) => panic!("{role:?}: {e}"),
                Ok(_) => panic!("a revoked token connected as {role:?}"),
            }
        }
    }
    keeper.jobs().await.expect("other tokens are untouched");
    let listed = admin.tokens().await.unwrap();
    for name in ["doomed-tenant", "doomed-node"] {
        let t = listed.iter().find(|t| t.name == name).unwrap();
        assert!(t.revoked_ms.is_some(), "{name} listed as live");
    }
    match admin.revoke_token("doomed-tenant").await {
        Err(NetError::Remote { code, .. }) => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("revoking twice: {other:?}"),
    }
}

#[test]
fn tokens_never_reach_the_coordinators_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coordinator");
    let log_path = dir.path().join("coordinator.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(suanli_bin())
        .args(["coordinator", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    // It prints the admin token on stdout once, by design; drain it.
    let mut stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
    });
    let _running = Running(child);
    // Wait for the client file, then talk to it.
    let config = data.join("client.toml");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !config.exists() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let config = config.to_str().unwrap();
    let file = toml_lines(&std::fs::read_to_string(config).unwrap());
    let tenant = create_token(config, "tenant", "alice");
    let env = [
        ("SUANLI_COORDINATOR", file["address"].as_str()),
        ("SUANLI_FINGERPRINT", file["fingerprint"].as_str()),
    ];
    let wrong = format!("sl_{}", "7".repeat(64));
    for token in [tenant.as_str(), &tenant[..20], wrong.as_str()] {
        let _ = suanli_e2e::suanli(
            &["jobs", "--json"],
            &[env[0], env[1], ("SUANLI_TOKEN", token)],
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut text = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.contains("connection refused"),
        "trace log was written:\n{text}"
    );
    for (what, secret) in [
        ("admin", file["token"].as_str()),
        ("tenant", tenant.as_str()),
        ("wrong", wrong.as_str()),
    ] {
        // The secret part, without the `sl_` prefix.
        assert!(
            !text.contains(&secret[3..]),
            "the {what} token appears in the log"
        );
    }
}
