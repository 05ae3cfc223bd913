//! Every wire limit, hit on purpose: the peer gets a clear error, the
//! coordinator logs it and keeps serving everyone else.

use std::time::Duration;

use suanli_e2e::TestCluster;
use suanli_net::NetError;
use suanli_proto::{ErrorCode, Hash, Request, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_in_progress_are_limited_per_tenant() {
    let cluster = TestCluster::start_with(|c| c.max_uploads_per_peer = 2).await;
    let alice = cluster.tenant("alice").await;
    let bob = cluster.tenant("bob").await;
    // Two uploads that never finish.
    let mut held = Vec::new();
    for i in 0..2u8 {
        let body = vec![i; 1 << 20];
        let (mut send, recv) = alice
            .open(&Request::PutBlob {
                hash: Hash::of(&body),
                size: body.len() as u64,
            })
            .await
            .unwrap();
        send.write_all(&body[..1000]).await.unwrap();
        held.push((send, recv));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third is refused at once with the reason (one try, no retry).
    let (mut send, mut recv) = alice
        .open(&Request::PutBlob {
            hash: Hash::of(b"third"),
            size: 5,
        })
        .await
        .unwrap();
    let _ = send.write_all(b"third").await;
    let answer: suanli_proto::Response = suanli_net::frame::expect_frame(&mut recv).await.unwrap();
    match answer {
        suanli_proto::Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::Overloaded);
            assert!(message.contains("2 uploads in progress"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Another tenant is not affected.
    bob.put_blob(b"bob's blob").await.unwrap();
    // The client library waits and retries; it gets through once a slot frees.
    let retrying = tokio::spawn(async move { alice.put_blob(b"patient").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (mut send, _recv) in held {
        let _ = send.reset(0u32.into());
    }
    let stored = tokio::time::timeout(Duration::from_secs(30), retrying)
        .await
        .expect("the retry got through")
        .unwrap();
    assert_eq!(stored.unwrap(), Hash::of(b"patient"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blobs_past_the_size_limit_are_refused_with_the_limit() {
    let cluster = TestCluster::start_with(|c| c.max_blob_bytes = 1000).await;
    let alice = cluster.tenant("alice").await;
    match alice.put_blob(&[7u8; 2000]).await {
        Err(NetError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::TooLarge);
            assert!(message.contains("limit of 1000 bytes"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    alice.put_blob(&[7u8; 1000]).await.expect("at the limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_past_the_limit_are_refused_and_the_rest_served() {
    // The admin's connection is one of the three.
    let cluster = TestCluster::start_with(|c| c.max_connections = 3).await;
    let token = cluster.token(Role::Tenant, "alice").await;
    let first = cluster.connect(&token, Role::Tenant).await.unwrap();
    let second = cluster.connect(&token, Role::Tenant).await.unwrap();
    match cluster.connect(&token, Role::Tenant).await {
        Err(e) => assert!(e.to_string().contains("refused"), "{e}"),
        Ok(_) => panic!("a fourth connection was accepted"),
    }
    // Those inside keep working.
    first.jobs().await.unwrap();
    second.put_blob(b"still served").await.unwrap();
    // One leaves; a new one gets in.
    first.close().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match cluster.connect(&token, Role::Tenant).await {
            Ok(c) => {
                c.jobs().await.unwrap();
                break;
            }
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
