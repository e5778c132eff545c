//! `GET /api/live`: server-sent events. Each connection gets what its page
//! shows at once, then again whenever another connection commits to the store
//! (`sweep`: the trial table, published table and failures; `epochs`: the epochs
//! recorded since the last it got, its cursor as the event id, so a reconnecting
//! page resumes; `trial`: one trial; `sweeps`: the list), at most every
//! [`EVERY`]; and `closed` when the serving vovctl ends.

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
    /// A sweep's page.
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

/// The events that bring a page up to date, advancing `cursor` past the epochs
/// sent.
async fn snapshot(
    state: &AppState,
    follow: &Follow,
    cursor: i64,
) -> Result<(Vec<Event>, i64), ApiError> {
    let follow = follow.clone();
    read(state, move |store| {
        if let Some(name) = &follow.sweep {
            let (sweep, epochs) = api::sweep_snapshot(store, name, Some(cursor))?;
            let mut out = vec![event("sweep", &sweep)];
            let mut next = cursor;
            if let Some(epochs) = epochs {
                next = epochs["cursor"].as_i64().unwrap_or(cursor);
                out.push(event("epochs", &epochs).id(next.to_string()));
            }
            return Ok((out, next));
        }
        if let Some(id) = &follow.trial {
            return Ok((vec![event("trial", &api::trial_value(store, id)?)], cursor));
        }
        Ok((vec![event("sweeps", &api::sweeps_value(store)?)], cursor))
    })
    .await
}

/// `GET /api/live?sweep=NAME` (or `?trial=ID`, or nothing for the list).
pub(crate) async fn live(
    State(state): State<AppState>,
    Query(follow): Query<Follow>,
    headers: HeaderMap,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let mut cursor: i64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (tx, rx) = mpsc::channel(4);
    let mut changes = state.changes.clone();
    changes.borrow_and_update();
    let mut closing = state.closing.clone();
    tokio::spawn(async move {
        loop {
            let events = match snapshot(&state, &follow, cursor).await {
                Ok((events, next)) => {
                    cursor = next;
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
                    if let Ok((events, _)) = snapshot(&state, &follow, cursor).await {
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
