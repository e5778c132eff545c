//! A real HTTP file server on loopback for download tests (axum on its own
//! runtime): serves a directory, honours `Range: bytes=N-` with 206 answers, can
//! cut the next transfer after a number of bytes (the connection drops in the
//! middle of the body) or ignore range requests, and logs every request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The path below the root, without the leading `/`.
    pub path: String,
    /// The `Range` header, when sent.
    pub range: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Debug, Default)]
struct Shared {
    dir: PathBuf,
    cut_after: Mutex<Option<usize>>,
    ignore_ranges: std::sync::atomic::AtomicBool,
    log: Mutex<Vec<Logged>>,
}

/// The running server; stopped when dropped.
#[derive(Debug)]
pub struct FileServer {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FileServer {
    /// Serves the files of `dir` on a free loopback port.
    pub fn start(dir: impl Into<PathBuf>) -> FileServer {
        let shared = Arc::new(Shared {
            dir: dir.into(),
            ..Shared::default()
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let app = Router::new()
            .route("/{*path}", get(serve))
            .with_state(shared.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FileServer {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// The base URL, ending with `/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Cuts the next transfer after `bytes` bytes of its body.
    pub fn cut_next_after(&self, bytes: usize) {
        *self.shared.cut_after.lock().expect("lock") = Some(bytes);
    }

    /// Answers range requests with the whole file (200), as some servers do.
    pub fn ignore_ranges(&self) {
        self.shared
            .ignore_ranges
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The requests so far.
    pub fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().expect("lock").clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let response = answer(&shared, &path, range.as_deref());
    shared.log.lock().expect("lock").push(Logged {
        path,
        range,
        status: response.status().as_u16(),
    });
    response
}

fn answer(shared: &Shared, path: &str, range: Option<&str>) -> Response {
    if path.split('/').any(|c| c == ".." || c.is_empty()) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Ok(bytes) = std::fs::read(shared.dir.join(path)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let len = bytes.len();
    let range = range.filter(|_| {
        !shared
            .ignore_ranges
            .load(std::sync::atomic::Ordering::SeqCst)
    });
    let start = match range.map(parse_range) {
        None => 0,
        Some(Some(s)) if s < len => s,
        Some(_) => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response()
        }
    };
    let body = Bytes::from(bytes).slice(start..);
    let cut = shared.cut_after.lock().expect("lock").take();
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut resp = axum::http::Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::ACCEPT_RANGES, "bytes");
    if range.is_some() {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", len - 1),
        );
    }
    let body = match cut {
        // The announced length is the whole body; the stream fails part way, so
        // the server drops the connection in the middle of the transfer.
        Some(n) if n < body.len() => {
            let first = body.slice(..n);
            Body::from_stream(futures_stream(first))
        }
        _ => Body::from(body),
    };
    resp.body(body).expect("response")
}

/// The first bytes, a pause (so that they reach the client), then a failure.
fn futures_stream(
    first: Bytes,
) -> impl tokio_stream::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let _ = tx.send(Ok(first)).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let _ = tx
            .send(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "cut by the test",
            )))
            .await;
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The start of `bytes=N-` (the only form clients here send).
fn parse_range(value: &str) -> Option<usize> {
    value
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}
