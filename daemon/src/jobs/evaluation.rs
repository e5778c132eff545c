//! Evaluation jobs: kept weights trained elsewhere, uploaded under their digest,
//! measured here in a slot like any trial. The job keeps its request encoded;
//! this file turns it into the worker's task and lets uploaded files go once no
//! unfinished evaluation needs them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use prost::Message;
use vov_proto::pb;
use vov_spec::{DatasetName, Measure};

use super::protocol::EvaluateTask;
use crate::store::{Store, StoreError};

/// An evaluation job's stored request.
pub fn decode(bytes: &[u8]) -> Result<pb::EvaluationSpec, String> {
    pb::EvaluationSpec::decode(bytes).map_err(|e| format!("stored evaluation unreadable: {e}"))
}

/// The data set an evaluation names (`None`: the weights' own).
pub fn dataset(e: &pb::EvaluationSpec) -> Result<Option<DatasetName>, String> {
    if e.dataset.is_empty() {
        return Ok(None);
    }
    e.dataset
        .parse()
        .map(Some)
        .map_err(|err| format!("evaluation.dataset: {err}"))
}

/// What the worker of evaluation `e` measures, its weights at `weights`.
pub fn task(e: &pb::EvaluationSpec, weights: PathBuf) -> Result<EvaluateTask, String> {
    Ok(EvaluateTask {
        weights,
        dataset: dataset(e)?,
        val_limit: e.val_limit.map(|n| n as usize),
        accuracy: e.accuracy,
        measure: Measure {
            batch1: e.batch1,
            batch32: e.batch32,
        },
    })
}

/// The worker's task and compute threads for a stored evaluation: its own
/// threads, else the slot's `slot_threads`; `file_of` locates uploaded weights
/// by digest.
pub fn prepare(
    bytes: &[u8],
    slot_threads: usize,
    file_of: impl Fn(&str) -> PathBuf,
) -> Result<(EvaluateTask, usize), String> {
    let e = decode(bytes)?;
    let threads = match e.threads {
        0 => slot_threads,
        n => n as usize,
    };
    Ok((task(&e, file_of(&e.weights_sha256))?, threads))
}

/// The digests of the uploaded weights that unfinished evaluation jobs need.
fn in_use(store: &Store) -> Result<HashSet<String>, StoreError> {
    Ok(store
        .unfinished()?
        .iter()
        .filter_map(|j| j.evaluation.as_deref())
        .filter_map(|b| decode(b).ok())
        .map(|e| e.weights_sha256)
        .collect())
}

/// Removes the uploads in `dir` that no unfinished evaluation job needs: the
/// weights `released` (those of an evaluation that just ended) at once, any
/// other file (a partial upload, weights never submitted) once untouched for
/// `idle`. Blocking; returns the files removed.
pub fn release(
    store: &Store,
    dir: &Path,
    released: Option<&str>,
    idle: Duration,
) -> Result<Vec<PathBuf>, StoreError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let needed = in_use(store)?;
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let sha = name.split('.').next().unwrap_or_default();
        if needed.contains(sha) {
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        let done = released == Some(sha) && !name.ends_with(".part");
        if !(done || age >= idle) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed uploaded weights no evaluation needs");
                removed.push(path);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not remove uploaded weights")
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_takes_the_requests_measures_and_names_a_bad_data_set() {
        let e = pb::EvaluationSpec {
            weights_sha256: "ab".into(),
            val_limit: Some(10),
            accuracy: true,
            batch1: true,
            ..Default::default()
        };
        let t = task(&e, PathBuf::from("w")).unwrap();
        assert_eq!((t.dataset, t.val_limit, t.accuracy), (None, Some(10), true));
        assert!(t.measure.batch1 && !t.measure.batch32);
        let bad = pb::EvaluationSpec {
            dataset: "imagenet".into(),
            ..e
        };
        let err = task(&bad, PathBuf::from("w")).unwrap_err();
        assert!(
            err.contains("evaluation.dataset") && err.contains("imagenet"),
            "{err}"
        );
    }

    fn queued(id: &str, evaluation: Vec<u8>) -> crate::store::JobRow {
        crate::store::JobRow {
            order: 0,
            trial_id: id.into(),
            sweep_id: String::new(),
            spec: Vec::new(),
            resolved: String::new(),
            model: String::new(),
            state: crate::jobs::JobState::Queued,
            failure: None,
            message: String::new(),
            attempt: 0,
            created_ms: 0,
            started_ms: 0,
            finished_ms: 0,
            progress: String::new(),
            result: None,
            last_seq: 0,
            stop_after: 0,
            evaluation: Some(evaluation),
        }
    }

    #[test]
    fn released_uploads_go_at_once_and_others_when_idle() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("jobs.sqlite")).unwrap();
        let dir = tmp.path().join("up");
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "aa.safetensors",
            "bb.safetensors",
            "cc.123.part",
            "dd.safetensors",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        // A queued evaluation needs dd's.
        let needs = pb::EvaluationSpec {
            weights_sha256: "dd".into(),
            ..Default::default()
        };
        store.insert(&queued("e1", needs.encode_to_vec())).unwrap();
        let hour = Duration::from_secs(3600);
        let gone = release(&store, &dir, Some("aa"), hour).unwrap();
        assert_eq!(gone, vec![dir.join("aa.safetensors")]);
        let mut gone = release(&store, &dir, Some("dd"), Duration::ZERO).unwrap();
        gone.sort();
        assert_eq!(gone, [dir.join("bb.safetensors"), dir.join("cc.123.part")]);
        assert!(dir.join("dd.safetensors").is_file(), "in use: it stays");
    }
}
