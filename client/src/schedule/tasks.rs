//! Background tasks of a sweep: a pinger per host (liveness and slots) and a
//! watcher per placed trial (its event stream). Both only send messages; the
//! scheduler owns all state.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio_stream::StreamExt;
use vov_proto::pb;

use crate::hosts::Host;

/// Time between two liveness checks of a host.
pub const PING_EVERY: Duration = Duration::from_secs(1);
/// Deadline of one call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the tasks report.
#[derive(Debug)]
pub enum Msg {
    /// A host answered `HostInfo` (or did not).
    Ping {
        /// Host index.
        host: usize,
        /// The answer.
        info: Option<Box<pb::HostInfoResponse>>,
    },
    /// An event of a trial, from a host.
    Event {
        /// Host index.
        host: usize,
        /// The event.
        event: Box<pb::JobEvent>,
    },
    /// A job of this sweep found on a host that came back.
    Found {
        /// Host index.
        host: usize,
        /// The job.
        job: Box<pb::Job>,
    },
    /// A watch stream ended (the job ended, the daemon drained, or the call failed).
    WatchEnded {
        /// Host index.
        host: usize,
        /// The trial.
        trial: String,
        /// The error, if the call failed.
        error: Option<tonic::Status>,
    },
}

/// A request with a deadline.
pub fn request<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(CALL_TIMEOUT);
    r
}

/// Pings `host` forever (until the receiver is gone).
pub fn spawn_pinger(
    index: usize,
    host: Host,
    tx: UnboundedSender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut client = host.client;
        loop {
            let info = client
                .host_info(request(pb::HostInfoRequest {}))
                .await
                .ok()
                .map(|r| Box::new(r.into_inner()));
            if tx.send(Msg::Ping { host: index, info }).is_err() {
                return;
            }
            tokio::time::sleep(PING_EVERY).await;
        }
    })
}

/// Follows a trial's events from `from_seq` after `delay`.
pub fn spawn_watcher(
    index: usize,
    host: Host,
    trial: String,
    from_seq: u64,
    delay: Duration,
    tx: UnboundedSender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut client = host.client;
        let req = tonic::Request::new(pb::WatchRequest {
            trial_id: trial.clone(),
            from_seq,
        });
        let mut stream = match client.watch(req).await {
            Ok(s) => s.into_inner(),
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
                    if tx
                        .send(Msg::Event {
                            host: index,
                            event: Box::new(event),
                        })
                        .is_err()
                    {
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

/// Lists the sweep's jobs on a host that came back and reports each.
pub fn spawn_reconcile(
    index: usize,
    host: Host,
    sweep: String,
    tx: UnboundedSender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut client = host.client;
        let mut page_token = String::new();
        loop {
            let req = request(pb::ListRequest {
                sweep_id: sweep.clone(),
                states: Vec::new(),
                page_size: 500,
                page_token: page_token.clone(),
            });
            let Ok(page) = client.list(req).await.map(|r| r.into_inner()) else {
                return;
            };
            for job in page.jobs {
                if tx
                    .send(Msg::Found {
                        host: index,
                        job: Box::new(job),
                    })
                    .is_err()
                {
                    return;
                }
            }
            if page.next_page_token.is_empty() {
                return;
            }
            page_token = page.next_page_token;
        }
    })
}
