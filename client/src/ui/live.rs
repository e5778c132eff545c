//! `GET /api/live`: server-sent events. Each connection gets what its page
//! shows at once, then again whenever another connection commits to the store
//! (`sweep`: the trial table, published table and failures; `epochs`: the epochs
//! recorded since the last it got, its cursor as the event id, so a reconnecting
//! page resumes; `trial`: one trial; `sweeps`: the list), at most every
//! [`EVERY`]; and `closed` when the serving vovctl ends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::api::{self, read, ApiError};
use super::AppState;

/// What a page follows.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Follow {
    /// A sweep's page, or several sweeps', comma-separated (sweep names have
    /// no commas): one stream for a whole compare page.
    sweep: Option<String>,
    /// A trial's page.
    trial: Option<String>,
}

/// The shortest time between two updates of one page.
const EVERY: Duration = Duration::from_millis(400);

/// What a page is told when the vovctl serving it ends.
const CLOSED: &str = "this vovctl has ended, so the page no longer updates; \
                      `vovctl ui` serves the store at any time";

/// How long a closing stream waits for its page to hang up after `closed`.
const HANG_UP: Duration = Duration::from_secs(3);

/// Where a stream's events go.
type Sender = mpsc::Sender<Result<Event, Infallible>>;

fn event(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// Each followed sweep's epochs cursor.
type Cursors = HashMap<String, i64>;

/// The events that bring a page up to date, advancing `cursors` past the
/// epochs sent. An `epochs` event names its sweep; its id is the cursor when
/// the page follows one sweep.
async fn snapshot(
    state: &AppState,
    follow: &Follow,
    cursors: Cursors,
) -> Result<(Vec<Event>, Cursors), ApiError> {
    let follow = follow.clone();
    read(state, move |store| {
        if let Some(names) = &follow.sweep {
            let names: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
            let mut out = Vec::new();
            let mut next = cursors;
            for name in &names {
                let after = next.get(*name).copied().unwrap_or(0);
                let (sweep, epochs) = api::sweep_snapshot(store, name, Some(after))?;
                out.push(event("sweep", &sweep));
                if let Some(mut epochs) = epochs {
                    let cursor = epochs["cursor"].as_i64().unwrap_or(after);
                    epochs["sweep"] = Value::String(name.to_string());
                    let e = event("epochs", &epochs);
                    out.push(if names.len() == 1 {
                        e.id(cursor.to_string())
                    } else {
                        e
                    });
                    next.insert(name.to_string(), cursor);
                }
            }
            return Ok((out, next));
        }
        if let Some(id) = &follow.trial {
            return Ok((vec![event("trial", &api::trial_value(store, id)?)], cursors));
        }
        Ok((vec![event("sweeps", &api::sweeps_value(store)?)], cursors))
    })
    .await
}

/// A stream's way out of waiting.
enum Next {
    /// The store changed: send the page its update.
    Update,
    /// The dashboard is closing: send the last update and `closed`.
    Close,
    /// The page went away.
    Gone,
}

/// Waits for a change of the store, the dashboard's closing or the page's
/// going.
async fn next(
    changes: &mut watch::Receiver<u64>,
    closing: &mut watch::Receiver<bool>,
    tx: &Sender,
) -> Next {
    tokio::select! {
        changed = changes.changed() => if changed.is_ok() { Next::Update } else { Next::Gone },
        () = tx.closed() => Next::Gone,
        _ = closing.changed() => Next::Close,
    }
}

/// Sends `events` in order; false when the page went away.
async fn send_all(tx: &Sender, events: Vec<Event>) -> bool {
    for e in events {
        if tx.send(Ok(e)).await.is_err() {
            return false;
        }
    }
    true
}

/// One page's stream: its state at once, again after each change (at most
/// every [`EVERY`]), and when the dashboard closes, the last state, `closed`,
/// and a wait of up to [`HANG_UP`] for the page to hang up, which it does on
/// `closed`: so [`super::Dashboard::close`] knows the word arrived.
async fn stream(
    state: AppState,
    follow: Follow,
    mut cursors: Cursors,
    tx: Sender,
    mut changes: watch::Receiver<u64>,
    mut closing: watch::Receiver<bool>,
) {
    loop {
        let events = match snapshot(&state, &follow, cursors.clone()).await {
            Ok((events, next)) => {
                cursors = next;
                events
            }
            Err(e) => vec![Event::default().event("problem").data(e.message())],
        };
        if !send_all(&tx, events).await {
            return;
        }
        match next(&mut changes, &mut closing, &tx).await {
            Next::Gone => return,
            Next::Close => break,
            Next::Update => {}
        }
        // However often the store changes, a page is redrawn at most this
        // often; closing cuts the wait short.
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = closing.changed() => break,
        }
    }
    if let Ok((events, _)) = snapshot(&state, &follow, cursors).await {
        if !send_all(&tx, events).await {
            return;
        }
    }
    let closed = Event::default().event("closed").data(CLOSED);
    if tx.send(Ok(closed)).await.is_ok() {
        let _ = tokio::time::timeout(HANG_UP, tx.closed()).await;
    }
}

/// `GET /api/live?sweep=NAME` (or `?sweep=A,B`, `?trial=ID`, or nothing for
/// the list).
pub(crate) async fn live(
    State(state): State<AppState>,
    Query(follow): Query<Follow>,
    headers: HeaderMap,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    // A page following one sweep that reconnects resumes from its cursor.
    let mut cursors = Cursors::new();
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    if let (Some(cursor), Some(name)) = (resumed, &follow.sweep) {
        cursors.insert(name.clone(), cursor);
    }
    let (tx, rx) = mpsc::channel(4);
    let mut changes = state.changes.clone();
    changes.borrow_and_update();
    let closing = state.closing.clone();
    let streams = state.streams.clone();
    streams.spawn(stream(state, follow, cursors, tx, changes, closing));
    Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::store::ResultsStore;
    use crate::ui::{start, UiOptions};

    /// Reads from `conn` into `seen` until it holds `what`.
    async fn read_until(conn: &mut TcpStream, seen: &mut String, what: &str) {
        let mut buf = [0u8; 4096];
        while !seen.contains(what) {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stream ended before {what:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    #[tokio::test]
    async fn closing_waits_until_a_slow_page_has_its_last_word() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        ResultsStore::open(&path).unwrap();
        let dashboard = start(UiOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            store: path,
            token_file: None,
            allow_cancel: false,
            hosts: Default::default(),
        })
        .await
        .unwrap();
        let mut conn = TcpStream::connect(dashboard.addr).await.unwrap();
        conn.write_all(b"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut seen = String::new();
        read_until(&mut conn, &mut seen, "event: sweeps").await;

        let closing = tokio::spawn(dashboard.close());
        // A page slower than any fixed grace still gets the word, and closing
        // waits for it to hang up.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!closing.is_finished(), "closed before the page hung up");
        read_until(&mut conn, &mut seen, "event: closed").await;
        drop(conn);
        closing.await.unwrap();
    }
}
