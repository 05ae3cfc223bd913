//! A UDP forwarder on loopback that can stop forwarding without closing
//! anything: a network cut, as a node behind a failed link sees it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::UdpSocket;

pub struct UdpProxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl UdpProxy {
    /// Forwards datagrams between clients of `addr` and `upstream`.
    pub async fn start(upstream: SocketAddr) -> UdpProxy {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let addr = front.local_addr().expect("addr");
        let cut = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(forward(front, upstream, cut.clone()));
        UdpProxy { addr, cut, task }
    }

    /// Drops every datagram from now on, both ways.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(front: Arc<UdpSocket>, upstream: SocketAddr, cut: Arc<AtomicBool>) {
    let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut tasks = Vec::new();
    while let Ok((n, client)) = front.recv_from(&mut buf).await {
        if cut.load(Ordering::SeqCst) {
            continue;
        }
        let back = match backs.get(&client) {
            Some(b) => b.clone(),
            None => {
                let Ok(b) = UdpSocket::bind("127.0.0.1:0").await else {
                    continue;
                };
                if b.connect(upstream).await.is_err() {
                    continue;
                }
                let b = Arc::new(b);
                backs.insert(client, b.clone());
                // Replies from upstream go back to this client.
                let (b2, front2, cut2) = (b.clone(), front.clone(), cut.clone());
                tasks.push(tokio::spawn(async move {
                    let mut buf = vec![0u8; 65_536];
                    while let Ok(n) = b2.recv(&mut buf).await {
                        if !cut2.load(Ordering::SeqCst) {
                            let _ = front2.send_to(&buf[..n], client).await;
                        }
                    }
                }));
                b
            }
        };
        let _ = back.send(&buf[..n]).await;
    }
    for t in tasks {
        t.abort();
    }
}
