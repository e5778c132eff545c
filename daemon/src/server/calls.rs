//! Wraps each gRPC service so that a call marks its connection busy from the
//! request until the response body ends (a `Watch` stream stays busy while it
//! runs), which is what the idle timeout and the make-room rule look at; and so
//! that an oversized request is `RESOURCE_EXHAUSTED` (see [`super::oversize`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{BoxFuture, Bytes, Service, StdError};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::activity::{CallGuard, Connections};
use super::oversize;

/// A service whose calls are tracked on their connection.
#[derive(Debug, Clone)]
pub(super) struct Tracked<S> {
    inner: S,
    connections: Connections,
}

impl<S> Tracked<S> {
    /// Tracks the calls of `inner` in `connections`.
    pub(super) fn new(inner: S, connections: Connections) -> Self {
        Tracked { inner, connections }
    }

    fn begin<B>(&self, req: &Request<B>) -> Option<CallGuard> {
        let ext = req.extensions();
        let peer = ext
            .get::<TcpConnectInfo>()
            .or_else(|| {
                ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                    .map(|t| t.get_ref())
            })
            .and_then(TcpConnectInfo::remote_addr)?;
        Some(self.connections.get(peer)?.begin())
    }
}

impl<S: NamedService> NamedService for Tracked<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<Request<Body>> for Tracked<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: tonic::codegen::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let guard = self.begin(&req);
        let call = self.inner.call(req);
        Box::pin(async move {
            let mut response = call.await?;
            oversize::remap(response.headers_mut());
            Ok(response.map(|body| {
                Body::new(GuardedBody {
                    inner: Box::pin(body),
                    _guard: guard,
                })
            }))
        })
    }
}

/// A response body that keeps its call marked in progress until it is done.
struct GuardedBody<B> {
    inner: Pin<Box<B>>,
    _guard: Option<CallGuard>,
}

impl<B: tonic::codegen::Body<Data = Bytes>> tonic::codegen::Body for GuardedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        self.inner.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
