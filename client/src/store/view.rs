//! Reads for watching a store while it is written: a sweep's overview, epochs
//! recorded after a cursor, a trial's events, and the counter that tells a reader another connection committed.

use rusqlite::params;
use vov_proto::pb;

use super::{ResultsStore, StoreError};

/// A sweep as the dashboard lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepInfo {
    /// Name.
    pub name: String,
    /// The sweep file it was run from (empty when known only from its hosts).
    pub file: String,
    /// When it was first registered, ms since the epoch.
    pub created_ms: i64,
    /// When its first trial was placed (none before).
    pub started_ms: Option<i64>,
    /// When a trial last changed state.
    pub last_change_ms: Option<i64>,
}

/// One recorded epoch with its place in the store's order.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRow {
    /// Cursor: epochs recorded later have larger values.
    pub seq: i64,
    /// The trial.
    pub trial_id: String,
    /// Its metrics.
    pub metrics: pb::EpochMetrics,
}

/// A change of a trial's state, host or attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The state it went to.
    pub state: String,
    /// The host it was placed on.
    pub host: Option<String>,
    /// Its placement count then.
    pub attempt: u32,
    /// Failure class, when failed.
    pub failure: String,
    /// Message.
    pub message: String,
}

/// An epoch's metrics from [`EPOCH_COLUMNS`] starting at column `at`.
pub(super) fn metrics(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<pb::EpochMetrics> {
    Ok(pb::EpochMetrics {
        epoch: r.get(at)?,
        train_loss: r.get(at + 1)?,
        train_acc: r.get(at + 2)?,
        val_loss: r.get(at + 3)?,
        val_acc: r.get(at + 4)?,
        epoch_s: r.get(at + 5)?,
        data_wait_s: r.get(at + 6)?,
        ..Default::default()
    })
}

/// The columns of an `epochs e` row that [`metrics`] reads.
pub(super) const EPOCH_COLUMNS: &str =
    "e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.epoch_s, e.data_wait_s";

impl ResultsStore {
    /// A counter that changes whenever another connection commits to the file
    /// (`PRAGMA data_version`): reading it costs no table access.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
    }

    /// Runs `f` in one read transaction: everything it reads comes from the
    /// same state of the file, whatever is committed meanwhile.
    pub fn snapshot<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| E::from(e.into()))?;
        let out = f(self);
        drop(tx);
        out
    }

    /// Every sweep, newest first, with its file and times.
    pub fn sweep_infos(&self) -> Result<Vec<SweepInfo>, StoreError> {
        self.infos_where("1", [])
    }

    /// One sweep's file and times.
    pub fn sweep_info(&self, sweep: &str) -> Result<Option<SweepInfo>, StoreError> {
        Ok(self.infos_where("w.name = ?1", [sweep])?.pop())
    }

    fn infos_where<P: rusqlite::Params>(
        &self,
        filter: &str,
        args: P,
    ) -> Result<Vec<SweepInfo>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT w.name, w.file, w.created_ms, \
             (SELECT MIN(v.at_ms) FROM events v JOIN sweep_trials s ON s.trial_id = v.trial_id \
              WHERE s.sweep = w.name AND s.current = 1 AND v.state != 'pending'), \
             (SELECT MAX(t.updated_ms) FROM trials t JOIN sweep_trials s ON s.trial_id = t.trial_id \
              WHERE s.sweep = w.name AND s.current = 1) \
             FROM sweeps w WHERE {filter} ORDER BY w.created_ms DESC, w.name"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok(SweepInfo {
                name: r.get(0)?,
                file: r.get(1)?,
                created_ms: r.get(2)?,
                started_ms: r.get(3)?,
                last_change_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The epochs of `sweep`'s current trials recorded after cursor `after` (0:
    /// all), in the order they were recorded.
    pub fn epochs_after(&self, sweep: &str, after: i64) -> Result<Vec<EpochRow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT e.rowid, e.trial_id, {EPOCH_COLUMNS} FROM epochs e \
             JOIN sweep_trials s ON s.trial_id = e.trial_id \
             WHERE s.sweep = ?1 AND s.current = 1 AND e.rowid > ?2 ORDER BY e.rowid"
        ))?;
        let rows = stmt.query_map(params![sweep, after], |r| {
            Ok(EpochRow {
                seq: r.get(0)?,
                trial_id: r.get(1)?,
                metrics: metrics(r, 2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The cursor of the last epoch recorded for `sweep`'s current trials (0:
    /// none).
    pub fn epochs_cursor(&self, sweep: &str) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(e.rowid), 0) FROM epochs e \
             JOIN sweep_trials s ON s.trial_id = e.trial_id WHERE s.sweep = ?1 AND s.current = 1",
            [sweep],
            |r| r.get(0),
        )?)
    }

    /// One trial's recorded epochs, in epoch order.
    pub fn trial_epochs(&self, trial_id: &str) -> Result<Vec<pb::EpochMetrics>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EPOCH_COLUMNS} FROM epochs e WHERE e.trial_id = ?1 ORDER BY e.epoch"
        ))?;
        let rows = stmt.query_map([trial_id], |r| metrics(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One trial's events, oldest first.
    pub fn events(&self, trial_id: &str) -> Result<Vec<EventRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT at_ms, state, host, attempt, failure, message FROM events \
             WHERE trial_id = ?1 ORDER BY at_ms, rowid",
        )?;
        let rows = stmt.query_map([trial_id], |r| {
            Ok(EventRow {
                at_ms: r.get(0)?,
                state: r.get(1)?,
                host: r.get(2)?,
                attempt: r.get(3)?,
                failure: r.get(4)?,
                message: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TrialState;

    fn store_with_sweep() -> (tempfile::TempDir, ResultsStore, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ResultsStore::open(&dir.path().join("r.db")).unwrap();
        let text = "name = \"s\"\n[base]\nmodel = \"vovnet-39\"\ndataset = \"synthetic\"\n[grid]\nepochs = [1, 2]\n";
        let sweep = crate::sweep::from_text(text, &[]).unwrap();
        store.register("s", "s.toml", &sweep.trials).unwrap();
        let id = sweep.trials[0].id.clone();
        (dir, store, id)
    }

    #[test]
    fn changes_of_state_host_and_attempt_are_events() {
        let (_dir, store, id) = store_with_sweep();
        store.place(&id, "http://a:1", 1, None).unwrap();
        store.set_state(&id, TrialState::Running, "", "").unwrap();
        // The same state again is no event.
        store.set_state(&id, TrialState::Running, "", "").unwrap();
        store
            .set_state(&id, TrialState::Failed, "oom", "out of memory")
            .unwrap();
        let events = store.events(&id).unwrap();
        let states: Vec<&str> = events.iter().map(|e| e.state.as_str()).collect();
        assert_eq!(states, ["pending", "queued", "running", "failed"]);
        assert_eq!(events[1].host.as_deref(), Some("http://a:1"));
        assert_eq!((events[3].failure.as_str(), events[3].attempt), ("oom", 1));
        let info = &store.sweep_infos().unwrap()[0];
        assert_eq!(info.name, "s");
        assert_eq!(info.started_ms, Some(events[1].at_ms));
    }

    #[test]
    fn epochs_after_a_cursor_are_the_new_ones() {
        let (_dir, store, id) = store_with_sweep();
        let m = |epoch| pb::EpochMetrics {
            epoch,
            val_acc: 0.5,
            ..Default::default()
        };
        store.progress(&id, 1, Some(&m(1))).unwrap();
        let first = store.epochs_after("s", 0).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(store.epochs_cursor("s").unwrap(), first[0].seq);
        store.progress(&id, 2, Some(&m(2))).unwrap();
        let next = store.epochs_after("s", first[0].seq).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(
            (next[0].trial_id.as_str(), next[0].metrics.epoch),
            (id.as_str(), 2)
        );
        assert_eq!(store.trial_epochs(&id).unwrap().len(), 2);
    }

    #[test]
    fn another_connection_commit_changes_the_data_version() {
        let (dir, store, id) = store_with_sweep();
        let reader = ResultsStore::open_read_only(&dir.path().join("r.db")).unwrap();
        let before = reader.data_version().unwrap();
        assert_eq!(
            reader.data_version().unwrap(),
            before,
            "no change, same value"
        );
        store.set_state(&id, TrialState::Running, "", "").unwrap();
        assert_ne!(reader.data_version().unwrap(), before);
    }
}
