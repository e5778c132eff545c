//! Background tasks of a sweep: per backend a pinger (liveness, which renews its
//! lease) and an info poller (slots, fingerprint), a watcher per placed trial (its event stream), one task per submit in flight and
//! one per reconcile. They only send messages; the scheduler owns all state.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio_stream::StreamExt;
use vov_proto::pb;

use crate::backend::{Backend, BackendError, BackendInfo, RunOptions, Submitted};

pub use crate::backend::CALL_TIMEOUT;

/// Time between two liveness checks of a backend.
pub const PING_EVERY: Duration = Duration::from_secs(1);

/// Time between two reads of a backend's capacity once it is known.
pub const INFO_EVERY: Duration = Duration::from_secs(10);

/// What the tasks report.
#[derive(Debug)]
pub enum Msg {
    /// A backend answered a liveness check (`ok`), or did not in time.
    Alive {
        /// Backend index.
        host: usize,
        /// Whether it answered.
        ok: bool,
    },
    /// A backend answered `info` (or did not).
    Info {
        /// Backend index.
        host: usize,
        /// The answer.
        info: Option<BackendInfo>,
    },
    /// An event of a trial, from a backend.
    Event {
        /// Backend index.
        host: usize,
        /// The event.
        event: Box<pb::JobEvent>,
    },
    /// A job of this sweep found on a backend that came back.
    Found {
        /// Backend index.
        host: usize,
        /// The job.
        job: Box<pb::Job>,
    },
    /// A watch stream ended (the job ended, the backend drained, or the call failed).
    WatchEnded {
        /// Backend index.
        host: usize,
        /// The trial.
        trial: String,
        /// The error, if the call failed.
        error: Option<BackendError>,
    },
    /// A submit answered (or ran past its deadline).
    Submitted {
        /// Backend index.
        host: usize,
        /// The trial.
        trial: String,
        /// The answer.
        result: Result<Box<Submitted>, BackendError>,
    },
}

/// `call`, or `Unavailable` once [`CALL_TIMEOUT`] has passed.
pub async fn deadline<T>(
    call: impl std::future::Future<Output = Result<T, BackendError>>,
) -> Result<T, BackendError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(BackendError::Unavailable("deadline exceeded".into())))
}

/// Checks that `backend` answers, every [`PING_EVERY`], until the receiver is
/// gone.
pub fn spawn_pinger(
    index: usize,
    backend: Arc<dyn Backend>,
    tx: UnboundedSender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let ok = deadline(backend.alive()).await.is_ok();
            if tx.send(Msg::Alive { host: index, ok }).is_err() {
                return;
            }
            tokio::time::sleep(PING_EVERY).await;
        }
    })
}

/// Reads `backend`'s capacity: every [`PING_EVERY`] until it answers, then every
/// [`INFO_EVERY`]. A slow answer delays only this task, never the lease.
pub fn spawn_info_poller(
    index: usize,
    backend: Arc<dyn Backend>,
    tx: UnboundedSender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let info = deadline(backend.info()).await.ok();
            let pause = if info.is_some() {
                INFO_EVERY
            } else {
                PING_EVERY
            };
            if tx.send(Msg::Info { host: index, info }).is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
    })
}

/// Submits a trial and reports the answer.
pub fn spawn_submit(
    index: usize,
    backend: Arc<dyn Backend>,
    trial: String,
    sweep: String,
    spec: pb::TrialSpec,
    run: RunOptions,
    tx: UnboundedSender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let result = deadline(backend.submit(&trial, &sweep, spec, run))
            .await
            .map(Box::new);
        let _ = tx.send(Msg::Submitted {
            host: index,
            trial,
            result,
        });
    })
}

/// Cancels a trial, ignoring the answer.
pub fn spawn_cancel(backend: Arc<dyn Backend>, trial: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = deadline(backend.cancel(&trial)).await;
    })
}

/// Follows a trial's events from `from_seq` after `delay`.
pub fn spawn_watcher(
    index: usize,
    backend: Arc<dyn Backend>,
    trial: String,
    from_seq: u64,
    delay: Duration,
    tx: UnboundedSender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut stream = match deadline(backend.watch(&trial, from_seq)).await {
            Ok(s) => s,
            Err(error) => {
                let _ = tx.send(Msg::WatchEnded {
                    host: index,
                    trial,
                    error: Some(error),
                });
                return;
            }
        };
        let mut error = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    let event = Box::new(event);
                    if tx.send(Msg::Event { host: index, event }).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let _ = tx.send(Msg::WatchEnded {
            host: index,
            trial,
            error,
        });
    })
}

/// Lists the sweep's jobs on a backend that came back and reports each.
pub fn spawn_reconcile(
    index: usize,
    backend: Arc<dyn Backend>,
    sweep: String,
    tx: UnboundedSender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(jobs) = backend.list(&sweep).await else {
            return;
        };
        for job in jobs {
            let job = Box::new(job);
            if tx.send(Msg::Found { host: index, job }).is_err() {
                return;
            }
        }
    })
}
