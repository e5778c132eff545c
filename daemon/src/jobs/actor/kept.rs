//! The disk budgets: paused jobs hold their checkpoints until they are continued
//! or cancelled, and together they may take at most `max_checkpoint_bytes`; kept
//! weights are trimmed to `max_weights_bytes` when a job ends (`retention`).

use std::path::{Path, PathBuf};

use super::{db, Actor};
use crate::jobs::manager::JobError;
use crate::jobs::state::JobState;
use crate::jobs::{evaluation, retention};
use crate::store::ListQuery;

impl Actor {
    /// Why job `id` cannot pause now: its checkpoint would bring the paused
    /// jobs' checkpoints above `max_checkpoint_bytes` (`None`: it fits, or there
    /// is no limit).
    pub(super) async fn over_budget(&self, id: &str) -> Result<Option<String>, JobError> {
        let budget = self.cfg.max_checkpoint_bytes;
        if budget == 0 {
            return Ok(None);
        }
        let query = ListQuery {
            states: vec![JobState::Paused],
            limit: usize::MAX >> 1,
            ..ListQuery::default()
        };
        let paused = db(&self.store, move |s| s.list(&query)).await?;
        let others = paused.iter().filter(|j| j.trial_id != id);
        let dirs = others.map(|j| self.cfg.checkpoint_dir(&j.trial_id));
        let total = bytes(dirs.chain([self.cfg.checkpoint_dir(id)]));
        Ok((total > budget).then(|| over(total, budget)))
    }

    /// Applies `max_weights_bytes` to the kept weights now that job `id` ended,
    /// on the blocking pool (it reads the store and removes files).
    pub(super) fn trim_weights(&self, id: &str) {
        let budget = retention::Budget {
            max_bytes: self.cfg.max_weights_bytes,
            sweep_idle: self.cfg.sweep_idle,
        };
        if budget.max_bytes == 0 {
            return;
        }
        let (store, cfg, id) = (self.store.clone(), self.cfg.clone(), id.to_string());
        tokio::task::spawn_blocking(move || {
            let dir = crate::config::weights_dir(&cfg.state_dir);
            if let Err(e) = retention::trim(&store, &dir, budget, &id, |t| cfg.weights_file(t)) {
                tracing::warn!(error = %e, "could not apply max_weights_bytes");
            }
        });
    }

    /// Lets uploaded weights go that no unfinished evaluation needs now that job
    /// `id` ended (its own at once), on the blocking pool.
    pub(super) fn release_uploads(&self, id: &str) {
        let (store, cfg, id) = (self.store.clone(), self.cfg.clone(), id.to_string());
        tokio::task::spawn_blocking(move || {
            let released = store
                .get(&id)
                .ok()
                .flatten()
                .and_then(|r| r.evaluation)
                .and_then(|b| evaluation::decode(&b).ok())
                .map(|e| e.weights_sha256);
            let dir = crate::config::received_dir(&cfg.state_dir);
            if let Err(e) = evaluation::release(&store, &dir, released.as_deref(), cfg.sweep_idle) {
                tracing::warn!(error = %e, "could not let uploaded weights go");
            }
        });
    }

    /// Removes ended job `id`'s kept weights and their listing in its result;
    /// returns the bytes freed (0 when they were gone already).
    pub(super) async fn drop_weights(&self, id: &str) -> Result<u64, JobError> {
        let key = id.to_string();
        let row = db(&self.store, move |s| s.get(&key))
            .await?
            .ok_or_else(|| JobError::NotFound(id.to_string()))?;
        if !row.state.is_settled() {
            return Err(JobError::NotEnded(
                id.to_string(),
                "its weights can be removed once it has",
            ));
        }
        let path = self.cfg.weights_file(id);
        let key = id.to_string();
        db(&self.store, move |s| {
            let freed = std::fs::metadata(&path).map_or(0, |m| m.len());
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(crate::store::StoreError::Io(e)),
            }
            s.forget_weights(&key)?;
            Ok(freed)
        })
        .await
    }

    /// Removes a job's checkpoints (none there is fine).
    pub(super) fn remove_checkpoints(&self, id: &str) {
        let dir = self.cfg.checkpoint_dir(id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(trial.id = %id, error = %e, dir = %dir.display(), "could not remove checkpoints");
            }
        }
    }
}

/// Bytes of the files under each of `dirs` (missing ones count 0).
fn bytes(dirs: impl IntoIterator<Item = PathBuf>) -> u64 {
    dirs.into_iter().map(|d| dir_bytes(&d)).sum()
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Why a job cannot pause: its checkpoint would bring the kept ones to `total`
/// bytes, above `budget`.
fn over(total: u64, budget: u64) -> String {
    format!(
        "cannot keep this trial's checkpoint: paused trials' checkpoints would take \
         {total} bytes, above max_checkpoint_bytes = {budget}; raise max_checkpoint_bytes \
         in the daemon's config, or let fewer trials pause at once"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_add_up_across_directories_and_missing_ones_count_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::write(a.join("x"), [0u8; 100]).unwrap();
        std::fs::write(a.join("sub/y"), [0u8; 20]).unwrap();
        assert_eq!(bytes([a.clone()]), 120);
        assert_eq!(bytes([a, b]), 120);
        assert!(over(120, 100).contains("max_checkpoint_bytes = 100"));
    }
}
