//! An accepted client connection that closes itself when idle: its reads fail
//! once no call has been in progress for the idle timeout (a peer that never
//! completes a handshake included), or when the accept loop makes room for a new
//! connection. It holds one of the `max_connections` permits until dropped.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::activity::{Activity, Connections};

/// A client connection under the idle timeout.
#[derive(Debug)]
pub(super) struct GuardedConn {
    stream: TcpStream,
    peer: SocketAddr,
    activity: Arc<Activity>,
    connections: Connections,
    idle_timeout: Duration,
    timer: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl GuardedConn {
    /// Wraps an accepted stream from `peer`, recording it in `connections`.
    pub(super) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        connections: Connections,
        idle_timeout: Duration,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        let activity = connections.open(peer);
        GuardedConn {
            stream,
            peer,
            activity,
            connections,
            idle_timeout,
            timer: Box::pin(tokio::time::sleep(idle_timeout)),
            _permit: permit,
        }
    }

    /// Fails once the connection should close; otherwise arms the timer (and the
    /// close signal) to wake this task when it next has to look.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.activity.register(cx.waker());
        if self.activity.closing() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed to make room for a new connection",
            ));
        }
        while self.timer.as_mut().poll(cx).is_ready() {
            let deadline = match self.activity.idle_since() {
                None => Instant::now() + self.idle_timeout,
                Some(since) => since + self.idle_timeout,
            };
            if deadline <= Instant::now() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("idle for {:?}", self.idle_timeout),
                ));
            }
            self.timer.as_mut().reset(deadline);
        }
        Ok(())
    }
}

impl Drop for GuardedConn {
    fn drop(&mut self) {
        self.connections.closed(self.peer, &self.activity);
    }
}

impl AsyncRead for GuardedConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            tracing::debug!(peer = %this.peer, error = %e, "closing connection");
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Connected for GuardedConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}
