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
use tokio::sync::mpsc;
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
    let mut closing = state.closing.clone();
    tokio::spawn(async move {
        loop {
            let events = match snapshot(&state, &follow, cursors.clone()).await {
                Ok((events, next)) => {
                    cursors = next;
                    events
                }
                Err(e) => vec![Event::default().event("problem").data(e.message())],
            };
            for e in events {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
                _ = closing.changed() => {
                    // The last state, then word that no more will come.
                    if let Ok((events, _)) = snapshot(&state, &follow, cursors.clone()).await {
                        for e in events {
                            let _ = tx.send(Ok(e)).await;
                        }
                    }
                    let _ = tx.send(Ok(Event::default().event("closed").data(CLOSED))).await;
                    return;
                }
            }
            // However often the store changes, a page is redrawn at most this often.
            tokio::time::sleep(EVERY).await;
        }
    });
    Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default())
}
