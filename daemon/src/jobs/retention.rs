//! The disk budget of kept weights: after a trial ends, the oldest weights files
//! go while all of them together take more than `max_weights_bytes`, except the
//! weights a sweep still needs and those of the trial that just ended. A sweep
//! needs its weights while it runs here: while one of its jobs has not ended, or
//! one ended less than `sweep_idle_secs` ago (its client places trials one by
//! one as slots free up, so a running sweep can have none here for a moment),
//! so a running sweep's best is still there to fetch when it ends.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::store::{ListQuery, Store, StoreError};

/// One kept weights file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The trial it belongs to.
    pub trial_id: String,
    /// Its size.
    pub bytes: u64,
    /// When it was last written.
    pub modified: SystemTime,
}

/// The trials whose weights go, oldest first, so that the rest fit in `budget`
/// bytes; `protected` ones never go (the rest may then still exceed it).
pub fn to_remove(mut kept: Vec<Kept>, protected: &HashSet<String>, budget: u64) -> Vec<String> {
    let mut total: u64 = kept.iter().map(|k| k.bytes).sum();
    kept.sort_by_key(|k| k.modified);
    let mut gone = Vec::new();
    for k in kept {
        if total <= budget {
            break;
        }
        if protected.contains(&k.trial_id) {
            continue;
        }
        total -= k.bytes;
        gone.push(k.trial_id);
    }
    gone
}

/// The weights files in `dir` (`<trial>.safetensors`).
fn list(dir: &Path) -> Vec<Kept> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let trial_id = path
                .file_name()?
                .to_str()?
                .strip_suffix(".safetensors")?
                .to_string();
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            Some(Kept {
                trial_id,
                bytes: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })
        })
        .collect()
}

/// The trials whose weights must stay: `ended` and every trial of a sweep that
/// has a job not yet ended, or ended after `since_ms`.
fn protected(
    store: &Store,
    kept: &[Kept],
    ended: &str,
    since_ms: i64,
) -> Result<HashSet<String>, StoreError> {
    let all = ListQuery {
        limit: usize::MAX >> 1,
        ..ListQuery::default()
    };
    let jobs = store.list(&all)?;
    let busy: HashSet<&str> = jobs
        .iter()
        .filter(|j| !j.state.is_final() || j.finished_ms > since_ms)
        .map(|j| j.sweep_id.as_str())
        .collect();
    let sweep_of: HashMap<&str, &str> = jobs
        .iter()
        .map(|j| (j.trial_id.as_str(), j.sweep_id.as_str()))
        .collect();
    let mut keep = HashSet::from([ended.to_string()]);
    keep.extend(
        kept.iter()
            .filter(|k| {
                sweep_of
                    .get(k.trial_id.as_str())
                    .is_some_and(|s| busy.contains(s))
            })
            .map(|k| k.trial_id.clone()),
    );
    Ok(keep)
}

/// What [`trim`] applies.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Most bytes the weights may take together (0: no limit).
    pub max_bytes: u64,
    /// How long after its last job here ended a sweep still counts as running.
    pub sweep_idle: Duration,
}

/// Applies the budget to the weights in `dir` after trial `ended` ended; returns
/// the trials whose weights were removed. Blocking (store reads, file removal).
pub fn trim(
    store: &Store,
    dir: &Path,
    budget: Budget,
    ended: &str,
    file_of: impl Fn(&str) -> PathBuf,
) -> Result<Vec<String>, StoreError> {
    let Budget {
        max_bytes: budget,
        sweep_idle,
    } = budget;
    if budget == 0 {
        return Ok(Vec::new());
    }
    let kept = list(dir);
    if kept.iter().map(|k| k.bytes).sum::<u64>() <= budget {
        return Ok(Vec::new());
    }
    let since_ms = crate::jobs::now_ms() - sweep_idle.as_millis() as i64;
    let keep = protected(store, &kept, ended, since_ms)?;
    let mut removed = Vec::new();
    for id in to_remove(kept, &keep, budget) {
        let path = file_of(&id);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                store.forget_weights(&id)?;
                tracing::info!(trial.id = %id, path = %path.display(), budget, "removed kept weights over max_weights_bytes");
                removed.push(id);
            }
            Err(e) => tracing::warn!(trial.id = %id, error = %e, "could not remove kept weights"),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(id: &str, bytes: u64, age_s: u64) -> Kept {
        Kept {
            trial_id: id.into(),
            bytes,
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1000 - age_s),
        }
    }

    #[test]
    fn the_oldest_go_first_until_the_rest_fit_and_protected_ones_stay() {
        let all = vec![
            kept("new", 40, 1),
            kept("old", 40, 300),
            kept("mid", 40, 200),
        ];
        let none = HashSet::new();
        assert_eq!(to_remove(all.clone(), &none, 120), Vec::<String>::new());
        assert_eq!(to_remove(all.clone(), &none, 100), vec!["old"]);
        assert_eq!(to_remove(all.clone(), &none, 40), vec!["old", "mid"]);
        let busy = HashSet::from(["old".to_string()]);
        assert_eq!(to_remove(all.clone(), &busy, 100), vec!["mid"]);
        // Everything protected: over the budget, nothing goes.
        let every: HashSet<String> = all.iter().map(|k| k.trial_id.clone()).collect();
        assert!(to_remove(all, &every, 0).is_empty());
    }
}
