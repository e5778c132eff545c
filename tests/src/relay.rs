//! A TCP relay on loopback in front of a real daemon that can cut a connection:
//! once armed, the next connection it accepts is closed after the daemon has sent
//! a given number of bytes on it, the way a dropped link ends a transfer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The relay; it runs until the test's runtime ends.
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    cut_after: Arc<AtomicU64>,
    cuts: Arc<AtomicU64>,
}

impl Relay {
    /// Starts relaying `127.0.0.1:0` to `target` on the current runtime.
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let cut_after = Arc::new(AtomicU64::new(0));
        let cuts = Arc::new(AtomicU64::new(0));
        let (armed, count) = (cut_after.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let limit = armed.swap(0, Ordering::SeqCst);
                let count = count.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        if relay(client, server, limit).await {
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        Relay {
            addr,
            cut_after,
            cuts,
        }
    }

    /// Cuts the next connection after the daemon sent `bytes` bytes on it.
    pub fn cut_next_after(&self, bytes: u64) {
        self.cut_after.store(bytes, Ordering::SeqCst);
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::SeqCst)
    }
}

/// Relays both ways until either side closes, or (with `limit` > 0) until the
/// server has sent `limit` bytes; returns whether it cut the connection.
async fn relay(client: TcpStream, server: TcpStream, limit: u64) -> bool {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
    });
    let mut sent = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    let mut cut = false;
    loop {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let n = if limit > 0 {
            let room = (limit - sent).min(n as u64) as usize;
            cut = room < n || sent + room as u64 == limit;
            room
        } else {
            n
        };
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
        sent += n as u64;
        if cut {
            break;
        }
    }
    up.abort();
    let _ = cw.shutdown().await;
    cut
}
