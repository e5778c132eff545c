//! The web dashboard: `vovctl ui` and `vovctl sweep --ui`. An axum server in
//! the `vovctl` process reads the results store (WAL: its reads never block the
//! sweep that writes it), notices commits by other connections through `PRAGMA
//! data_version`, and pushes what changed to open pages as server-sent events.
//! Its page, script and style are compiled into the binary: nothing is fetched
//! from elsewhere, so it works offline.

mod access;
mod api;
mod assets;
mod live;
mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use thiserror::Error;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::cli::HostArgs;
use crate::store::{ResultsStore, StoreError};

/// How often the store's commit counter is read.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// How to serve the dashboard.
#[derive(Debug, Clone)]
pub struct UiOptions {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// The results store it shows.
    pub store: PathBuf,
    /// A file holding the token that requests must carry; required to listen
    /// beyond loopback.
    pub token_file: Option<PathBuf>,
    /// Whether pages get cancel buttons (the code of `vovctl cancel`).
    pub allow_cancel: bool,
    /// Credentials for the hosts a cancel reaches.
    pub hosts: HostArgs,
}

/// The dashboard could not start.
#[derive(Debug, Error)]
pub enum UiError {
    /// A non-loopback address without a token file.
    #[error(
        "refusing to serve the dashboard on {0} without --ui-token-file: anyone who can reach \
         that address could read the results store. Listen on 127.0.0.1 (or [::1]), or pass \
         --ui-token-file FILE"
    )]
    Exposed(SocketAddr),
    /// The token file is unusable.
    #[error("--ui-token-file {path}: {message}")]
    Token {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The address could not be bound.
    #[error("dashboard: cannot listen on {addr}: {message}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        message: String,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What every handler shares.
pub(crate) struct Shared {
    /// A read-only connection to the store.
    store: Mutex<ResultsStore>,
    /// The store's path (a cancel opens its own connection).
    store_path: PathBuf,
    /// Bumped whenever another connection commits to the store.
    changes: watch::Receiver<u64>,
    /// Set when the dashboard closes: pages get their last update.
    closing: watch::Receiver<bool>,
    /// The pages' event streams, which closing waits for.
    streams: TaskTracker,
    /// Who may read.
    access: access::Access,
    /// Whether cancels are allowed, and with which host credentials.
    allow_cancel: bool,
    hosts: HostArgs,
}

/// The handlers' state.
pub(crate) type AppState = Arc<Shared>;

/// A running dashboard; dropping it stops it.
pub struct Dashboard {
    /// The bound address.
    pub addr: SocketAddr,
    /// The address to open (the login link when a token is needed).
    pub url: String,
    /// Whether `url` is a one-time login link.
    pub login: bool,
    server: tokio::task::JoinHandle<()>,
    stop: Arc<AtomicBool>,
    closing: watch::Sender<bool>,
    streams: TaskTracker,
}

/// The longest open pages get for their last update when the dashboard
/// closes; each stream ends sooner, once its page hung up on `closed`.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

impl Dashboard {
    /// Gives open pages their last update and word that it was the last,
    /// waits until they got it (at most [`CLOSE_WAIT`]), then stops serving.
    pub async fn close(self) {
        let _ = self.closing.send(true);
        self.streams.close();
        let _ = tokio::time::timeout(CLOSE_WAIT, self.streams.wait()).await;
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.server.abort();
    }
}

/// Reads `PRAGMA data_version` on its own connection until `stop`, bumping
/// `tx` at every change.
fn watch_store(store: ResultsStore, tx: watch::Sender<u64>, stop: Arc<AtomicBool>) {
    let mut last = store.data_version().ok();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(WATCH_EVERY);
        let now = store.data_version().ok();
        if now != last {
            last = now;
            tx.send_modify(|n| *n += 1);
        }
    }
}

fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .route("/", get(assets::page))
        .route("/sweeps/{name}", get(assets::page))
        .route("/trials/{id}", get(assets::page))
        .route("/compare", get(assets::page))
        .route("/assets/{file}", get(assets::asset))
        .route(access::LOGIN_PATH, get(access::login))
        .route("/api/info", get(api::info))
        .route("/api/sweeps", get(api::sweeps))
        .route("/api/sweeps/{name}", get(api::sweep))
        .route("/api/sweeps/{name}/epochs", get(api::epochs))
        .route("/api/trials/{id}", get(api::trial))
        .route("/api/live", get(live::live))
        .route("/sweeps/{name}/download/{file}", get(api::download));
    if state.allow_cancel {
        app = app.route("/api/cancel/{target}", post(api::cancel));
    }
    app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        access::guard,
    ))
    .layer(axum::middleware::from_fn(assets::security_headers))
    .with_state(state)
}

fn public_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        format!("http://{host}:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// Starts serving `opts.store` on `opts.listen` (the store must exist and be
/// at this build's schema: open it with [`ResultsStore::open`] first).
pub async fn start(opts: UiOptions) -> Result<Dashboard, UiError> {
    let access = access::Access::new(opts.listen, opts.token_file.as_deref())?;
    let store = ResultsStore::open_read_only(&opts.store)?;
    let watcher = ResultsStore::open_read_only(&opts.store)?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| UiError::Bind {
            addr: opts.listen,
            message: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| UiError::Bind {
        addr: opts.listen,
        message: e.to_string(),
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, changes) = watch::channel(0u64);
    let (closing_tx, closing) = watch::channel(false);
    let streams = TaskTracker::new();
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("vovctl-ui-watch".into())
        .spawn(move || watch_store(watcher, tx, flag))
        .map_err(|e| UiError::Bind {
            addr,
            message: e.to_string(),
        })?;
    let key = access.login_key();
    let login = key.is_some();
    let url = match key {
        Some(key) => format!("{}{}?once={key}", public_url(addr), access::LOGIN_PATH),
        None => format!("{}/", public_url(addr)),
    };
    let state = Arc::new(Shared {
        store: Mutex::new(store),
        store_path: opts.store.clone(),
        changes,
        closing,
        streams: streams.clone(),
        access,
        allow_cancel: opts.allow_cancel,
        hosts: opts.hosts,
    });
    let app = router(state);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("dashboard: {e}");
        }
    });
    Ok(Dashboard {
        addr,
        url,
        login,
        server,
        stop,
        closing: closing_tx,
        streams,
    })
}
