//! The accept loop: at most `max_connections` client connections; at the limit a
//! new connection takes the place of the one idle longest, or is closed at once
//! when every connection has a call in progress. Accept errors (running out of
//! file descriptors above all) pause the loop with a growing back-off instead of
//! spinning on them.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;

use super::activity::Connections;
use super::conn::GuardedConn;

/// First pause after a failed accept; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause between accept attempts after failures.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// How long a new connection waits for a connection told to make room to close.
const MAKE_ROOM: Duration = Duration::from_secs(1);

/// The accepted connections, as tonic's `serve_with_incoming` takes them (it
/// never sees an error: the loop deals with those itself).
pub(super) type Incoming = ReceiverStream<Result<GuardedConn, io::Error>>;

/// Starts accepting on `listener`, recording the connections in `connections`;
/// the loop ends (closing the listener) when the returned stream is dropped.
pub(super) fn accept(
    listener: TcpListener,
    connections: Connections,
    max: usize,
    idle_timeout: Duration,
) -> Incoming {
    let (tx, rx) = mpsc::channel(1);
    let limit = AcceptLoop {
        listener,
        permits: Arc::new(Semaphore::new(max)),
        connections,
        idle_timeout,
        tx,
    };
    tokio::spawn(limit.run());
    ReceiverStream::new(rx)
}

struct AcceptLoop {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    connections: Connections,
    idle_timeout: Duration,
    tx: mpsc::Sender<Result<GuardedConn, io::Error>>,
}

/// Errors that concern one connection only (it went away before we took it).
fn concerns_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

impl AcceptLoop {
    async fn run(self) {
        let mut pause = FIRST_PAUSE;
        loop {
            let accepted = tokio::select! {
                () = self.tx.closed() => return,
                r = self.listener.accept() => r,
            };
            match accepted {
                Ok((stream, peer)) => {
                    pause = FIRST_PAUSE;
                    let Some(permit) = self.permit().await else {
                        tracing::warn!(%peer, "every connection has a call in progress: closing the new one");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let conn = self.guard(stream, peer, permit);
                    if self.tx.send(Ok(conn)).await.is_err() {
                        return;
                    }
                }
                Err(e) if concerns_one_connection(&e) => {}
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?pause, "cannot accept connections: pausing");
                    tokio::select! {
                        () = self.tx.closed() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    }

    /// A free connection slot: one at hand, or the one the idlest connection frees
    /// when told to close; `None` when every connection is busy.
    async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(p);
        }
        if !self.connections.close_idlest() {
            return None;
        }
        tokio::time::timeout(MAKE_ROOM, Arc::clone(&self.permits).acquire_owned())
            .await
            .ok()?
            .ok()
    }

    fn guard(
        &self,
        stream: TcpStream,
        peer: std::net::SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> GuardedConn {
        GuardedConn::new(
            stream,
            peer,
            self.connections.clone(),
            self.idle_timeout,
            permit,
        )
    }
}
