//! Issue 11: the coordinator's memory is bounded by construction, not by
//! its peers' good manners. Against a real `suanli coordinator` process:
//! 64 concurrent downloads of a 256 MiB blob that are never read, plus 240
//! request streams dripping 1 MiB frames a byte at a time, leave its peak
//! resident memory (VmHWM) under [`RSS_BOUND_MIB`], while a tenant and a
//! node are served. Before issue 11 each of those downloads read the whole
//! blob into memory (64 × 256 MiB = 16 GiB).

use std::time::{Duration, Instant};

use suanli_e2e::guest_wasm;
use suanli_e2e::procs::{NodeExtras, ProcCluster};
use suanli_proto::{
    FRAME_HEADER_BYTES, JobLimits, JobState, MAX_FRAME_BYTES, Request, Requirements, Response, Role,
};

/// The blob: the coordinator's default `--max-blob-bytes`, at the limit.
const BLOB_BYTES: usize = 256 << 20;
/// Downloads held open and never read: one connection's worth of streams.
const UNREAD_GETS: usize = 64;
const DRIP_CONNECTIONS: usize = 4;
const DRIPS_PER_CONNECTION: usize = 60;
/// `--request-timeout` of this coordinator, in seconds.
const REQUEST_TIMEOUT_S: u64 = 4;
/// The stated bound on the coordinator's peak RSS over the whole test. Per
/// connection the coordinator holds at most its QUIC send and receive
/// windows (8 MiB each) plus, per stream, two 64 KiB blob chunks or a frame
/// buffer that grows only as bytes arrive (16 KiB to start).
const RSS_BOUND_MIB: u64 = 128;

/// A `VmRSS`/`VmHWM`-style field of /proc/PID/status, in KiB (Linux).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Opens a stream announcing a maximum-size frame and sends its bytes one
/// every 500 ms; returns what the coordinator answered (or `None`).
async fn drip_frame(conn: quinn::Connection) -> Option<Response> {
    let (mut send, mut recv) = conn.open_bi().await.ok()?;
    let header = (MAX_FRAME_BYTES as u32).to_le_bytes();
    assert_eq!(header.len(), FRAME_HEADER_BYTES);
    send.write_all(&header).await.ok()?;
    let dripping = async {
        loop {
            if send.write_all(&[0]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    // The coordinator answers, then stops the stream: the next drip fails,
    // possibly before the answer was read (under load), so keep reading it.
    let answer = suanli_net::frame::expect_frame::<Response>(&mut recv);
    tokio::pin!(answer);
    tokio::select! {
        answer = &mut answer => return answer.ok(),
        () = dripping => {}
    }
    tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .ok()?
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unread_downloads_and_dripped_frames_leave_the_coordinator_bounded() {
    let timeout = REQUEST_TIMEOUT_S.to_string();
    let cluster = ProcCluster::start_ext(
        1,
        1,
        NodeExtras::default(),
        &["--request-timeout", &timeout],
    );
    let pid = cluster.coordinator_pid().unwrap();
    let token = cluster.token("tenant", "hog");
    let hog = cluster.client(&token, Role::Tenant).await;
    let hash = hog.put_blob(&vec![0x5a; BLOB_BYTES]).await.unwrap();
    let before = proc_kib(pid, "VmHWM");

    let reader = cluster.client(&token, Role::Tenant).await;
    let mut unread = Vec::new();
    for _ in 0..UNREAD_GETS {
        let (mut send, recv) = reader.open(&Request::GetBlob(hash)).await.unwrap();
        send.finish().unwrap();
        unread.push((send, recv));
    }
    let attack = Instant::now();
    let mut drips = Vec::new();
    let mut drip_clients = Vec::new();
    for _ in 0..DRIP_CONNECTIONS {
        let client = cluster.client(&token, Role::Tenant).await;
        for _ in 0..DRIPS_PER_CONNECTION {
            drips.push(tokio::spawn(drip_frame(client.connection().clone())));
        }
        drip_clients.push(client);
    }
    // Served meanwhile: a tenant's request at once, a node's job in time.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = proc_kib(pid, "VmRSS");
    let tenant = cluster
        .client(&cluster.token("tenant", "bystander"), Role::Tenant)
        .await;
    let answered = Instant::now();
    tenant
        .jobs()
        .await
        .expect("a tenant is served during the attack");
    let latency = answered.elapsed();
    let module = guest_wasm("vector_add");
    let input = vector_add::reference::encode_input(&[1.0; 64], &[2.0; 64]);
    let job = tenant
        .submit(
            &module,
            &input,
            Requirements::default(),
            JobLimits::default(),
            1,
        )
        .await
        .unwrap();

    // Every dripped frame is cut off with the reason, near the timeout.
    for drip in drips {
        match drip.await.unwrap() {
            Some(Response::Error { message, .. }) => {
                assert!(message.contains("--request-timeout"), "{message}")
            }
            other => panic!("a dripped frame got {other:?}"),
        }
    }
    let cut = attack.elapsed();
    assert!(
        cut < Duration::from_secs(REQUEST_TIMEOUT_S + 4),
        "cut off after {cut:?}"
    );
    // Every unread download is cut off too, not sent whole.
    tokio::time::sleep(Duration::from_secs(REQUEST_TIMEOUT_S + 1)).await;
    // (A reset may arrive before the client reads even the header.)
    for (_send, mut recv) in unread {
        let whole = async {
            let head: Response = suanli_net::frame::expect_frame(&mut recv).await?;
            assert_eq!(
                head,
                Response::Blob {
                    size: BLOB_BYTES as u64
                }
            );
            recv.read_to_end(BLOB_BYTES)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<(), Box<dyn std::error::Error>>(())
        };
        match whole.await {
            Err(e) => assert!(e.to_string().contains("reset"), "{e}"),
            Ok(()) => panic!("a stalled download went on to the end"),
        }
    }
    let view = tenant.wait(job).await.unwrap();
    assert_eq!(view.state, JobState::Succeeded, "{view:?}");
    let peak = proc_kib(pid, "VmHWM");
    eprintln!(
        "coordinator RSS: peak {} MiB before the attack, {} MiB during it, peak {} MiB \
         after; a tenant's request took {latency:?}; dripped frames cut after {cut:?}",
        before / 1024,
        during / 1024,
        peak / 1024
    );
    assert!(
        peak < RSS_BOUND_MIB * 1024,
        "coordinator peak RSS {} MiB exceeds the bound of {RSS_BOUND_MIB} MiB",
        peak / 1024
    );
    drop((reader, drip_clients));
}
