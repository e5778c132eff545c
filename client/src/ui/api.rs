//! The dashboard's JSON API and downloads: what the page fetches, and what a
//! script can fetch too (`/api/sweeps`, `/api/sweeps/NAME`, `/api/trials/ID`,
//! `/sweeps/NAME/download/report.csv`, ...).

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{views, AppState};
use crate::cli::CliError;
use crate::report::files;
use crate::store::{ResultsStore, StoreError, TrialState};

/// A request that could not be answered.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    fn not_found(what: String) -> Self {
        ApiError(StatusCode::NOT_FOUND, what)
    }

    fn internal(what: impl std::fmt::Display) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, what.to_string())
    }

    /// What went wrong, for a page to show.
    pub(crate) fn message(&self) -> &str {
        &self.1
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// Runs `f` on the shared read-only connection, off the async threads.
pub(crate) async fn read<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&ResultsStore) -> Result<T, ApiError> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        // A read-only connection has nothing a panic could leave half-written.
        let store = state.store.lock().unwrap_or_else(|e| e.into_inner());
        store.snapshot(|s| f(s))
    })
    .await
    .map_err(ApiError::internal)?
}

fn info_of(store: &ResultsStore, name: &str) -> Result<crate::store::SweepInfo, ApiError> {
    store
        .sweep_info(name)?
        .ok_or_else(|| ApiError::not_found(format!("no sweep named '{name}' in the store")))
}

/// What a sweep's page and downloads are made from.
struct Gathered {
    info: crate::store::SweepInfo,
    rows: Vec<crate::store::TrialRow>,
    rep: crate::report::Report,
    recorded: crate::report::search::Histories,
}

/// A sweep's info, trials, report and recorded epochs (not found: 404).
fn gather(store: &ResultsStore, name: &str) -> Result<Gathered, ApiError> {
    let info = info_of(store, name)?;
    let rows = store.trials(name)?;
    let (rep, recorded) = crate::report::of_sweep(store, name, &rows)?;
    Ok(Gathered {
        info,
        rows,
        rep,
        recorded,
    })
}

/// A sweep's page data (everything but its epochs).
pub(crate) fn sweep_value(store: &ResultsStore, name: &str) -> Result<Value, ApiError> {
    Ok(sweep_snapshot(store, name, None)?.0)
}

/// A sweep's page data, and with `since` its epochs: every curve for `Some(0)`
/// (or when the store's epochs went back behind that cursor), else those
/// recorded after it (`None` when there are none).
pub(crate) fn sweep_snapshot(
    store: &ResultsStore,
    name: &str,
    since: Option<i64>,
) -> Result<(Value, Option<Value>), ApiError> {
    let Gathered {
        info,
        rows,
        rep,
        recorded,
    } = gather(store, name)?;
    let rungs = store.rungs(name)?;
    let sweep = views::sweep(&info, &rows, &recorded, &rungs, &rep);
    let epochs = match since {
        None => None,
        Some(after) => {
            let cursor = store.epochs_cursor(name)?;
            if after == 0 || cursor < after {
                // A first look, or epochs were forgotten (a forced re-run)
                // since the page's cursor: every curve anew.
                Some(views::all_epochs(&rows, &recorded, cursor))
            } else {
                let new = store.epochs_after(name, after)?;
                (!new.is_empty()).then(|| views::epochs(&new, after))
            }
        }
    };
    Ok((sweep, epochs))
}

/// Every sweep's line.
pub(crate) fn sweeps_value(store: &ResultsStore) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for info in store.sweep_infos()? {
        let rows = store.trials(&info.name)?;
        out.push(views::summary(&info, &rows));
    }
    Ok(Value::Array(out))
}

/// One trial's page data.
pub(crate) fn trial_value(store: &ResultsStore, id: &str) -> Result<Value, ApiError> {
    let row = store
        .trial(id)?
        .ok_or_else(|| ApiError::not_found(format!("no trial '{id}' in the store")))?;
    let host_fingerprint = match &row.host {
        Some(h) => store.host_fingerprint(h)?,
        None => None,
    };
    let sweep = store.sweep_of(id)?;
    let rung = match &sweep {
        Some(name) => store.rungs(name)?.get(id).copied(),
        None => None,
    };
    let page = views::TrialPage {
        sweep,
        rung,
        host_fingerprint,
        recorded: [(id.to_string(), store.trial_epochs(id)?)].into(),
        events: store.events(id)?,
        row: &row,
    };
    Ok(views::trial(&page))
}

/// `GET /api/info`: what the page needs to know about this server.
pub(crate) async fn info(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "store": state.store_path.display().to_string(),
        "allow_cancel": state.allow_cancel,
        "states": TrialState::NAMES,
        "downloads": files::FILES.iter().map(|f| f.name).collect::<Vec<_>>(),
    }))
}

/// `GET /api/sweeps`.
pub(crate) async fn sweeps(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    read(&state, sweeps_value).await.map(Json)
}

/// `GET /api/sweeps/NAME`.
pub(crate) async fn sweep(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(&state, move |s| sweep_value(s, &name)).await.map(Json)
}

/// The cursor of `/api/sweeps/NAME/epochs`.
#[derive(Debug, Deserialize)]
pub(crate) struct After {
    #[serde(default)]
    after: i64,
}

/// `GET /api/sweeps/NAME/epochs?after=CURSOR`: epochs recorded after a cursor
/// (every trial's curve for 0).
pub(crate) async fn epochs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<After>,
) -> Result<Json<Value>, ApiError> {
    read(&state, move |s| {
        let (_, epochs) = sweep_snapshot(s, &name, Some(q.after))?;
        Ok(epochs.unwrap_or_else(|| json!({"cursor": q.after, "trials": {}})))
    })
    .await
    .map(Json)
}

/// `GET /api/trials/ID`.
pub(crate) async fn trial(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    read(&state, move |s| trial_value(s, &id)).await.map(Json)
}

/// A name safe inside a Content-Disposition header and a file system.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `GET /sweeps/NAME/download/FILE`: saved as `NAME-FILE`.
pub(crate) async fn download(
    State(state): State<AppState>,
    Path((name, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let file = files::find(&file)
        .ok_or_else(|| ApiError::not_found(format!("no download named '{file}'")))?;
    let saved = format!("{}-{}", file_safe(&name), file.name);
    let body = read(&state, move |s| {
        let g = gather(s, &name)?;
        (file.make)(&g.rep, &g.rows, &g.recorded).map_err(ApiError::internal)
    })
    .await?;
    let content_type = file.content_type;
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{saved}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The header a cancel must carry: a page on another site cannot send it
/// without a preflight this server never grants.
pub(crate) const ACTION_HEADER: &str = "x-vov-action";

/// `POST /api/cancel/TARGET` (only with `--allow-cancel`): cancels a sweep's
/// unfinished trials or one trial, as `vovctl cancel TARGET` does.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(target): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    if headers.get(ACTION_HEADER).and_then(|v| v.to_str().ok()) != Some("cancel") {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("a cancel needs the header `{ACTION_HEADER}: cancel`"),
        ));
    }
    let path = state.store_path.clone();
    let hosts = state.hosts.clone();
    let runtime = tokio::runtime::Handle::current();
    let done = tokio::task::spawn_blocking(move || {
        if !path.is_file() {
            return Err(ApiError::not_found(format!(
                "{}: the store is gone",
                path.display()
            )));
        }
        let store = ResultsStore::open(&path)?;
        runtime
            .block_on(crate::cli::cancel::cancel(&store, &target, &hosts))
            .map_err(|e| {
                let status = match e {
                    CliError::Usage(_) => StatusCode::BAD_REQUEST,
                    CliError::Connection(_) => StatusCode::BAD_GATEWAY,
                };
                ApiError(status, e.to_string())
            })
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(json!({
        "cancelled": done.cancelled,
        "failures": done.failures,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_names_keep_only_safe_characters() {
        assert_eq!(file_safe("quick"), "quick");
        assert_eq!(file_safe("a b/\"c"), "a_b__c");
    }
}
