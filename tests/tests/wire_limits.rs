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

/// A connection of `token` gets in (and is served) within 10 s, once a
/// place it was refused has been freed.
async fn connects_again(cluster: &TestCluster, token: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match cluster.connect(token, Role::Tenant).await {
            Ok(c) => {
                c.jobs().await.unwrap();
                return;
            }
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_past_the_limit_are_refused_and_the_rest_served() {
    // The admin's connection is one of the three.
    let cluster = TestCluster::start_with(|c| c.max_connections = 3).await;
    let token = cluster.token(Role::Tenant, "alice").await;
    let first = cluster.connect(&token, Role::Tenant).await.unwrap();
    assert_eq!(cluster.coordinator.stats().address_retries, 0);
    // Past half the permits, a newcomer first proves its address (a QUIC
    // Retry, which the client answers by itself) and is then served.
    let second = cluster.connect(&token, Role::Tenant).await.unwrap();
    assert!(cluster.coordinator.stats().address_retries >= 1);
    match cluster.connect(&token, Role::Tenant).await {
        Err(e) => assert!(e.to_string().contains("refused"), "{e}"),
        Ok(_) => panic!("a fourth connection was accepted"),
    }
    // Those inside keep working.
    first.jobs().await.unwrap();
    second.put_blob(b"still served").await.unwrap();
    // One leaves; a new one gets in.
    first.close().await;
    connects_again(&cluster, &token).await;
}

/// Issue 11: one token may not hold every connection. At the limit the
/// next connection of that token is refused with the reason; another token
/// still gets in; a freed place is taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_per_token_are_limited_and_other_tokens_still_connect() {
    let cluster = TestCluster::start_with(|c| c.max_connections_per_token = 2).await;
    let alice = cluster.token(Role::Tenant, "alice").await;
    let first = cluster.connect(&alice, Role::Tenant).await.unwrap();
    let _second = cluster.connect(&alice, Role::Tenant).await.unwrap();
    match cluster.connect(&alice, Role::Tenant).await {
        Err(NetError::Refused(reason)) => assert!(
            reason.contains("token alice already holds 2 connections")
                && reason.contains("--max-connections-per-token"),
            "{reason}"
        ),
        Err(e) => panic!("refused without the reason: {e}"),
        Ok(_) => panic!("a third connection of one token was accepted"),
    }
    let bob = cluster.tenant("bob").await;
    bob.jobs().await.expect("another token is served");
    first.close().await;
    connects_again(&cluster, &alice).await;
}

/// Issue 11: one source address may not hold every connection, even
/// before presenting a token. The refusal names the address and the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_per_address_are_limited_with_the_reason() {
    // The admin's connection of the test cluster is one of the three.
    let cluster = TestCluster::start_with(|c| c.max_connections_per_address = 3).await;
    let alice = cluster.token(Role::Tenant, "alice").await;
    let bob = cluster.token(Role::Tenant, "bob").await;
    let a = cluster.connect(&alice, Role::Tenant).await.unwrap();
    let b = cluster.connect(&bob, Role::Tenant).await.unwrap();
    match cluster.connect(&bob, Role::Tenant).await {
        Err(NetError::Refused(reason)) => assert!(
            reason.contains("too many connections from 127.0.0.1")
                && reason.contains("--max-connections-per-address"),
            "{reason}"
        ),
        Err(e) => panic!("refused without the reason: {e}"),
        Ok(_) => panic!("a fourth connection from one address was accepted"),
    }
    a.jobs().await.unwrap();
    b.jobs().await.unwrap();
}

/// Writes `bytes` one at a time, `pause` apart, then finishes the stream.
async fn drip(send: &mut quinn::SendStream, bytes: &[u8], pause: Duration) {
    for b in bytes {
        if send.write_all(std::slice::from_ref(b)).await.is_err() {
            return;
        }
        tokio::time::sleep(pause).await;
    }
    let _ = send.finish();
}

/// Issue 11: a request frame must arrive within the request timeout. One
/// dripped in just under it is served; one dripped slower is cut off with
/// the reason, and the connection keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_frames_must_arrive_within_the_request_timeout() {
    let cluster =
        TestCluster::start_with(|c| c.request_timeout = Duration::from_millis(1500)).await;
    let alice = cluster.tenant("alice").await;
    let frame = suanli_proto::encode(&Request::ListJobs(Default::default())).unwrap();
    // Inside the limit: the whole frame within ~0.5 s.
    let (mut send, mut recv) = alice.connection().open_bi().await.unwrap();
    let pause = Duration::from_millis(500) / frame.len() as u32;
    drip(&mut send, &frame, pause).await;
    let answer: suanli_proto::Response = suanli_net::frame::expect_frame(&mut recv).await.unwrap();
    assert!(
        matches!(answer, suanli_proto::Response::Jobs(_)),
        "{answer:?}"
    );
    // Past it: one byte every 400 ms never completes in 1.5 s.
    let (mut send, mut recv) = alice.connection().open_bi().await.unwrap();
    let started = std::time::Instant::now();
    let dripping = tokio::spawn(async move {
        drip(&mut send, &frame, Duration::from_millis(400)).await;
    });
    let answer: suanli_proto::Response = suanli_net::frame::expect_frame(&mut recv).await.unwrap();
    let waited = started.elapsed();
    match answer {
        suanli_proto::Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::BadRequest);
            assert!(message.contains("--request-timeout"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(4),
        "cut off after {waited:?}"
    );
    dripping.abort();
    alice.jobs().await.expect("the connection is still served");
}

/// A tenant that asks for a job's log on many streams and reads none holds
/// the coordinator only as long as `--request-timeout` per chunk: the log is
/// sent from the file in 64 KiB chunks and a stream whose peer stops
/// reading is cut off (before, each stream held the whole log, up to
/// 1 MiB, in memory for ever: 64 streams × every connection of a token).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_log_download_that_is_never_read_is_cut_off() {
    use suanli_proto::{FromNode, JobLimits, Requirements};
    let cluster = TestCluster::start_with(|c| c.request_timeout = Duration::from_secs(2)).await;
    let token = cluster.token(Role::Tenant, "alice").await;
    let alice = cluster.connect(&token, Role::Tenant).await.unwrap();
    let node_token = cluster.token(Role::Node, "n").await;
    let mut node = suanli_e2e::FakeNode::register(&cluster, &node_token, 5)
        .await
        .unwrap();
    let job = alice
        .submit(b"m", b"i", Requirements::default(), JobLimits::default(), 1)
        .await
        .unwrap();
    let a = node.next_assignment().await;
    assert_eq!(a.job, job);
    for n in 0..16u8 {
        let log = FromNode::Log {
            job,
            attempt: a.attempt,
            data: vec![b'a' + n; 64 << 10],
        };
        suanli_net::frame::write_frame(&mut node.send, &log)
            .await
            .unwrap();
    }
    let mut len = 0;
    for _ in 0..100 {
        len = 0;
        alice.logs(job, false, |c| len += c.len()).await.unwrap();
        if len == 1 << 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(len, 1 << 20, "the whole log arrived");

    // A hostile client: it grants 4 KiB of window per stream, so the
    // coordinator's writes block at once (an honest client's 1.25 MB stream
    // window would take a whole 1 MiB log into its own buffers).
    let reader = tiny_window_connection(&cluster, &token).await;
    let mut streams = Vec::new();
    for _ in 0..32 {
        let (mut send, recv) = reader.open_bi().await.unwrap();
        suanli_net::frame::write_frame(&mut send, &Request::Logs { job, follow: false })
            .await
            .unwrap();
        send.finish().unwrap();
        streams.push((send, recv));
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut cut = 0;
    for (_send, mut recv) in streams {
        let whole = async {
            loop {
                match suanli_net::frame::read_frame::<suanli_proto::Response>(&mut recv).await {
                    Ok(Some(suanli_proto::Response::LogEnd)) => return true,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return false,
                }
            }
        };
        if !tokio::time::timeout(Duration::from_secs(10), whole)
            .await
            .unwrap_or(false)
        {
            cut += 1;
        }
    }
    assert!(cut > 0, "every unread log stream was still held open");
    // Others are served meanwhile.
    alice.status(job).await.unwrap();
}

/// A tenant connection (handshake done by hand) that advertises a 4 KiB
/// receive window per stream.
async fn tiny_window_connection(cluster: &TestCluster, token: &str) -> quinn::Connection {
    use suanli_net::tls;
    let pinned = tls::parse_fingerprint(cluster.coordinator.fingerprint()).unwrap();
    let mut config = tls::client_config(pinned).unwrap();
    let mut transport = suanli_net::transport_config(64, false);
    transport.stream_receive_window(4096u32.into());
    config.transport_config(std::sync::Arc::new(transport));
    let endpoint = suanli_net::Client::endpoint(cluster.coordinator.addr()).unwrap();
    let conn = endpoint
        .connect_with(config, cluster.coordinator.addr(), tls::SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let hello = suanli_proto::Hello {
        version: suanli_proto::PROTOCOL_VERSION,
        role: Role::Tenant,
        token: token.to_owned(),
    };
    suanli_net::frame::write_frame(&mut send, &hello)
        .await
        .unwrap();
    send.finish().unwrap();
    let welcome: suanli_proto::Welcome = suanli_net::frame::expect_frame(&mut recv).await.unwrap();
    assert!(matches!(welcome, suanli_proto::Welcome::Accepted { .. }));
    conn
}
