//! Load on loopback: 1,000 client connections open at once, each submitting
//! a small job, while 100 connections send garbage. Every well-formed job
//! completes correctly and the coordinator's memory stays bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use suanli_e2e::guest_wasm;
use suanli_e2e::procs::ProcCluster;
use suanli_net::Client;
use suanli_proto::{JobLimits, JobState, Requirements, Role};

const CLIENTS: usize = 1000;
const VANDALS: usize = 100;

fn input(i: usize) -> Vec<u8> {
    let a: Vec<f32> = (0..64).map(|k| (i * 64 + k) as f32).collect();
    let b: Vec<f32> = (0..64).map(|k| k as f32 * 0.5).collect();
    vector_add::reference::encode_input(&a, &b)
}

/// Peak resident memory of a process, from /proc (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn vandal(endpoint: quinn::Endpoint, address: SocketAddr, fingerprint: String, seed: u64) {
    let pinned = suanli_net::tls::parse_fingerprint(&fingerprint).unwrap();
    let config = suanli_net::tls::client_config(pinned).unwrap();
    let Ok(connecting) = endpoint.connect_with(config, address, suanli_net::tls::SERVER_NAME)
    else {
        return;
    };
    let Ok(conn) = connecting.await else { return };
    let mut x = seed | 1;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    if let Ok((mut send, mut recv)) = conn.open_bi().await {
        let _ = send.write_all(&garbage).await;
        let _ = send.finish();
        let _ = tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(1 << 16)).await;
    }
    // The coordinator closes it: no valid Hello.
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_clients_and_a_hundred_vandals() {
    let cluster = ProcCluster::start(1, 4);
    let token = cluster.token("tenant", "load");
    let address: SocketAddr = cluster.address.parse().unwrap();
    let module = guest_wasm("vector_add");
    let first = cluster.client(&token, Role::Tenant).await;
    first.ensure_blobs(&[&module]).await.unwrap();

    // 20 sockets of 50 connections each (one socket for all 1,000 dropped
    // handshake packets under the burst).
    let endpoints: Vec<quinn::Endpoint> = (0..20)
        .map(|_| Client::endpoint(address).unwrap())
        .collect();
    let endpoint = endpoints[0].clone();
    let started = Instant::now();
    let mut vandals = Vec::new();
    for v in 0..VANDALS {
        vandals.push(tokio::spawn(vandal(
            endpoint.clone(),
            address,
            cluster.fingerprint.clone(),
            v as u64 + 1,
        )));
    }
    // Plain UDP garbage at the port too.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..VANDALS {
        let _ = udp.send_to(&[i as u8; 1200], address);
    }
    let mut clients = Vec::new();
    for batch in 0..CLIENTS / 50 {
        for i in batch * 50..(batch + 1) * 50 {
            let (endpoint, fp, token, module) = (
                endpoints[batch % endpoints.len()].clone(),
                cluster.fingerprint.clone(),
                token.clone(),
                module.clone(),
            );
            clients.push(tokio::spawn(async move {
                let client = Client::connect_via(endpoint, address, &fp, &token, Role::Tenant)
                    .await
                    .unwrap_or_else(|e| panic!("client {i}: {e:?}"));
                let job = client
                    .submit(
                        &module,
                        &input(i),
                        Requirements::default(),
                        JobLimits::default(),
                        3,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("client {i}: {e:?}"));
                (i, job, client)
            }));
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let mut submitted = Vec::new();
    for c in clients {
        submitted.push(c.await.unwrap());
    }
    let open = submitted.len();
    eprintln!(
        "{open} clients connected and submitted in {:?}",
        started.elapsed()
    );
    for v in vandals {
        v.await.unwrap();
    }
    let jobs: Vec<u64> = submitted.iter().map(|(_, job, _)| *job).collect();
    let views = cluster.wait_all(&token, &jobs).await;
    for ((i, job, _), view) in submitted.iter().zip(&views) {
        assert_eq!(view.state, JobState::Succeeded, "job {job}: {view:?}");
        let output = first.get_blob(view.output.unwrap()).await.unwrap();
        assert!(
            output == vector_add::reference::run(&input(*i)).unwrap(),
            "job {job}: wrong output"
        );
    }
    let peak = peak_rss_kib(cluster.coordinator_pid().unwrap()).unwrap_or(0);
    eprintln!(
        "{CLIENTS} clients + {VANDALS} vandals: all {} jobs done in {:?}; coordinator peak RSS {} MiB",
        views.len(),
        started.elapsed(),
        peak / 1024
    );
    assert!(peak < 1 << 20, "coordinator peak RSS {peak} KiB");
    drop(submitted);
}
