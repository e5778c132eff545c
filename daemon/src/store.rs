//! The daemon's durable job store: SQLite in WAL mode with full synchronisation,
//! one connection behind a mutex (the job manager is its only writer; handlers
//! read through it). Jobs keep their spec, state, attempt, timestamps, progress and
//! result; every event is kept, in order, as an encoded `vov.v1.JobEvent`.
//!
//! The file's `PRAGMA user_version` is its schema version: version 0 is the first
//! released layout (files without a version), each entry of `MIGRATIONS` takes a
//! file one version forward, all in one transaction on open, and a new file is
//! laid out as version 0 and migrated the same way. A file from a newer vovd is
//! refused with [`StoreError::TooNew`], never downgraded.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use thiserror::Error;

use crate::jobs::state::{FailureClass, JobState};

/// A store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("job store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value could not be read back.
    #[error("job store: corrupt row for trial {trial_id}: {reason}")]
    Corrupt {
        /// The trial.
        trial_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The store directory could not be created.
    #[error("job store: {0}")]
    Io(#[from] std::io::Error),
    /// The file was written by a newer vovd, with a schema this build does not
    /// know; it is left untouched.
    #[error(
        "{}: job store schema version {found} is newer than this vovd knows \
         (version {supported}); use a newer vovd or another state directory",
        path.display()
    )]
    TooNew {
        /// The store file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
}

/// One job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// Submission order.
    pub order: i64,
    /// The client's id.
    pub trial_id: String,
    /// The sweep it belongs to.
    pub sweep_id: String,
    /// The submitted `vov.v1.TrialSpec`, encoded.
    pub spec: Vec<u8>,
    /// The resolved training spec, JSON.
    pub resolved: String,
    /// Resolved model name.
    pub model: String,
    /// State.
    pub state: JobState,
    /// Failure class when failed.
    pub failure: Option<FailureClass>,
    /// Failure details or last note.
    pub message: String,
    /// Worker starts so far.
    pub attempt: u32,
    /// Submission time, Unix ms.
    pub created_ms: i64,
    /// Last start, Unix ms (0 before).
    pub started_ms: i64,
    /// End, Unix ms (0 before).
    pub finished_ms: i64,
    /// Last known progress, JSON (empty before the first epoch).
    pub progress: String,
    /// The result record, JSON.
    pub result: Option<String>,
    /// Last event sequence number.
    pub last_seq: u64,
    /// Epochs after which the job pauses with its checkpoint kept (0: none).
    pub stop_after: u32,
    /// The encoded `vov.v1.EvaluationSpec` of an evaluation job (`None`: the job
    /// trains); its result is then an evaluation record.
    pub evaluation: Option<Vec<u8>>,
}

/// Filter and page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this sweep, when set.
    pub sweep_id: Option<String>,
    /// Only these states, when not empty.
    pub states: Vec<JobState>,
    /// Only jobs after this submission order.
    pub after: i64,
    /// At most this many.
    pub limit: usize,
}

/// The job store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Migrations: entry `n` takes version `n` to version `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: no table changes (the state index is re-asserted); from here on the
    // file carries its version.
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, ord);",
    // 1 -> 2: a job may be asked to stop after a number of epochs, its checkpoint
    // kept (0: run to the end).
    "ALTER TABLE jobs ADD COLUMN stop_after INTEGER NOT NULL DEFAULT 0;",
    // 2 -> 3: a job may evaluate uploaded weights instead of training (its
    // encoded evaluation; NULL: a training job).
    "ALTER TABLE jobs ADD COLUMN evaluation BLOB;",
];

/// Version 0: the tables as first released (files without a version are these).
const V0: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    ord INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id TEXT NOT NULL UNIQUE,
    sweep_id TEXT NOT NULL,
    spec BLOB NOT NULL,
    resolved TEXT NOT NULL,
    model TEXT NOT NULL,
    state TEXT NOT NULL,
    failure TEXT,
    message TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER NOT NULL DEFAULT 0,
    finished_ms INTEGER NOT NULL DEFAULT 0,
    progress TEXT NOT NULL DEFAULT '',
    result TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_sweep ON jobs (sweep_id, ord);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, ord);
CREATE TABLE IF NOT EXISTS events (
    trial_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (trial_id, seq)
) WITHOUT ROWID;
";

const COLUMNS: &str =
    "ord, trial_id, sweep_id, spec, resolved, model, state, failure, message, attempt, \
                       created_ms, started_ms, finished_ms, progress, result, last_seq, stop_after, evaluation";

/// The file's schema version, refused when newer than this build knows.
fn check_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

fn parse<T: std::str::FromStr<Err = vov_spec::names::UnknownName>>(
    trial_id: &str,
    v: &str,
) -> Result<T, StoreError> {
    v.parse()
        .map_err(|e: vov_spec::names::UnknownName| StoreError::Corrupt {
            trial_id: trial_id.to_string(),
            reason: e.to_string(),
        })
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<(JobRow, String, Option<String>)> {
    let state: String = r.get(6)?;
    let failure: Option<String> = r.get(7)?;
    Ok((
        JobRow {
            order: r.get(0)?,
            trial_id: r.get(1)?,
            sweep_id: r.get(2)?,
            spec: r.get(3)?,
            resolved: r.get(4)?,
            model: r.get(5)?,
            state: JobState::Queued,
            failure: None,
            message: r.get(8)?,
            attempt: r.get(9)?,
            created_ms: r.get(10)?,
            started_ms: r.get(11)?,
            finished_ms: r.get(12)?,
            progress: r.get(13)?,
            result: r.get(14)?,
            last_seq: r.get::<_, i64>(15)? as u64,
            stop_after: r.get(16)?,
            evaluation: r.get(17)?,
        },
        state,
        failure,
    ))
}

fn finish(raw: (JobRow, String, Option<String>)) -> Result<JobRow, StoreError> {
    let (mut row, state, failure) = raw;
    row.state = parse(&row.trial_id, &state)?;
    row.failure = failure.map(|f| parse(&row.trial_id, &f)).transpose()?;
    Ok(row)
}

/// A change of state and its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpdate {
    /// New state.
    pub state: JobState,
    /// Failure class (failed only).
    pub failure: Option<FailureClass>,
    /// Message.
    pub message: String,
    /// Attempt count.
    pub attempt: u32,
    /// New start time, when it starts.
    pub started_ms: Option<i64>,
    /// End time, when it ends.
    pub finished_ms: Option<i64>,
}

/// A job's change of state with everything that comes with it, written at once
/// by [`Store::commit`].
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The state change.
    pub update: StateUpdate,
    /// The result record, JSON, when the job succeeded.
    pub result: Option<String>,
    /// The events announcing the change: sequence number and encoded
    /// `vov.v1.JobEvent`, following the job's `last_seq`.
    pub events: Vec<(u64, Vec<u8>)>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        check_version(&conn, path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = check_version(&tx, path)?;
        let laid_out: bool = tx.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'",
            [],
            |r| r.get(0),
        )?;
        if version < SCHEMA_VERSION || !laid_out {
            if !laid_out {
                tx.execute_batch(V0)?;
            }
            for step in &MIGRATIONS[version as usize..] {
                tx.execute_batch(step)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The file's schema version.
    pub fn version(&self) -> Result<i64, StoreError> {
        Ok(self
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // Invariant: no code panics while holding the connection, so it is never poisoned.
        self.conn.lock().expect("job store lock poisoned")
    }

    /// Inserts a new job (state queued, attempt 0); returns it with its order.
    pub fn insert(&self, row: &JobRow) -> Result<JobRow, StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO jobs (trial_id, sweep_id, spec, resolved, model, state, created_ms, stop_after, evaluation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![row.trial_id, row.sweep_id, row.spec, row.resolved, row.model, row.state.as_str(), row.created_ms, row.stop_after, row.evaluation],
        )?;
        let order = conn.last_insert_rowid();
        Ok(JobRow {
            order,
            ..row.clone()
        })
    }

    /// One job.
    pub fn get(&self, trial_id: &str) -> Result<Option<JobRow>, StoreError> {
        let raw = self
            .lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE trial_id = ?1"),
                [trial_id],
                from_row,
            )
            .optional()?;
        raw.map(finish).transpose()
    }

    /// Jobs matching `q`, in submission order.
    pub fn list(&self, q: &ListQuery) -> Result<Vec<JobRow>, StoreError> {
        let states: Vec<&str> = q.states.iter().map(|s| s.as_str()).collect();
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE ord > ?1 AND (?2 IS NULL OR sweep_id = ?2) \
             AND (?3 = '' OR instr(?3, ',' || state || ',') > 0) ORDER BY ord LIMIT ?4"
        ))?;
        let state_set = if states.is_empty() {
            String::new()
        } else {
            format!(",{},", states.join(","))
        };
        let rows = stmt.query_map(
            params![q.after, q.sweep_id, state_set, q.limit as i64],
            from_row,
        )?;
        rows.map(|r| finish(r?)).collect()
    }

    /// Applies a state change.
    pub fn set_state(&self, trial_id: &str, u: &StateUpdate) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE jobs SET state = ?2, failure = ?3, message = ?4, attempt = ?5, \
             started_ms = COALESCE(?6, started_ms), finished_ms = COALESCE(?7, finished_ms) WHERE trial_id = ?1",
            params![trial_id, u.state.as_str(), u.failure.map(|f| f.as_str()), u.message, u.attempt, u.started_ms, u.finished_ms],
        )?;
        Ok(())
    }

    /// Sets the epochs after which the job pauses (0: none), for its next run.
    pub fn set_stop_after(&self, trial_id: &str, stop_after: u32) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE jobs SET stop_after = ?2 WHERE trial_id = ?1",
            params![trial_id, stop_after],
        )?;
        Ok(())
    }

    /// Takes the kept weights out of a training job's stored result (they are
    /// gone from the host); a job without a result or weights, or an
    /// evaluation job, is left as it is.
    pub fn forget_weights(&self, trial_id: &str) -> Result<(), StoreError> {
        let Some(row) = self.get(trial_id)?.filter(|r| r.evaluation.is_none()) else {
            return Ok(());
        };
        let Some(mut result) = row
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        else {
            return Ok(());
        };
        let Some(weights) = result.get_mut("weights") else {
            return Ok(());
        };
        *weights = serde_json::Value::Null;
        self.lock().execute(
            "UPDATE jobs SET result = ?2 WHERE trial_id = ?1",
            params![trial_id, result.to_string()],
        )?;
        Ok(())
    }

    /// Records the latest progress.
    pub fn set_progress(&self, trial_id: &str, progress: &str) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE jobs SET progress = ?2 WHERE trial_id = ?1",
            params![trial_id, progress],
        )?;
        Ok(())
    }

    /// Writes a transition in one transaction: all of it or, when the write fails
    /// (a full disk), none of it, so the same transition can be written again.
    /// Events already stored with the same sequence number are replaced by
    /// themselves, which makes a repeated write harmless.
    pub fn commit(&self, trial_id: &str, t: &Transition) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if let Some(result) = &t.result {
            tx.execute(
                "UPDATE jobs SET result = ?2 WHERE trial_id = ?1",
                params![trial_id, result],
            )?;
        }
        for (seq, body) in &t.events {
            tx.execute(
                "INSERT OR REPLACE INTO events (trial_id, seq, body) VALUES (?1, ?2, ?3)",
                params![trial_id, *seq as i64, body],
            )?;
        }
        let u = &t.update;
        let last_seq = t.events.iter().map(|(seq, _)| *seq as i64).max();
        tx.execute(
            "UPDATE jobs SET state = ?2, failure = ?3, message = ?4, attempt = ?5, \
             started_ms = COALESCE(?6, started_ms), finished_ms = COALESCE(?7, finished_ms), \
             last_seq = COALESCE(?8, last_seq) WHERE trial_id = ?1",
            params![
                trial_id,
                u.state.as_str(),
                u.failure.map(|f| f.as_str()),
                u.message,
                u.attempt,
                u.started_ms,
                u.finished_ms,
                last_seq
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Appends event `seq` (which must be `last_seq + 1`) atomically with the job's
    /// `last_seq`.
    pub fn append_event(&self, trial_id: &str, seq: u64, body: &[u8]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO events (trial_id, seq, body) VALUES (?1, ?2, ?3)",
            params![trial_id, seq as i64, body],
        )?;
        tx.execute(
            "UPDATE jobs SET last_seq = ?2 WHERE trial_id = ?1",
            params![trial_id, seq as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Events of a job with `seq >= from`, in order.
    pub fn events(&self, trial_id: &str, from: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, body FROM events WHERE trial_id = ?1 AND seq >= ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![trial_id, from as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Jobs that were queued or running, in submission order (for a restart).
    pub fn unfinished(&self) -> Result<Vec<JobRow>, StoreError> {
        self.list(&ListQuery {
            states: vec![JobState::Queued, JobState::Running],
            limit: usize::MAX >> 1,
            ..ListQuery::default()
        })
    }

    /// Number of jobs in `state`.
    pub fn count(&self, state: JobState) -> Result<usize, StoreError> {
        let n: i64 = self.lock().query_row(
            "SELECT COUNT(*) FROM jobs WHERE state = ?1",
            [state.as_str()],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, sweep: &str) -> JobRow {
        JobRow {
            order: 0,
            trial_id: id.into(),
            sweep_id: sweep.into(),
            spec: vec![1, 2, 3],
            resolved: "{}".into(),
            model: "m".into(),
            state: JobState::Queued,
            failure: None,
            message: String::new(),
            attempt: 0,
            created_ms: 5,
            started_ms: 0,
            finished_ms: 0,
            progress: String::new(),
            result: None,
            last_seq: 0,
            stop_after: 0,
            evaluation: None,
        }
    }

    #[test]
    fn forgetting_weights_clears_a_training_results_listing_only() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::open(&tmp.path().join("jobs.sqlite")).unwrap();
        let result = r#"{"weights":{"sha256":"ab"},"model":"m"}"#;
        for (id, evaluation) in [("t", None), ("e", Some(vec![1u8]))] {
            let r = JobRow {
                result: Some(result.into()),
                evaluation,
                ..row(id, "s")
            };
            s.insert(&r).unwrap();
            s.conn
                .lock()
                .unwrap()
                .execute(
                    "UPDATE jobs SET result = ?2 WHERE trial_id = ?1",
                    params![id, result],
                )
                .unwrap();
            s.forget_weights(id).unwrap();
        }
        let read = |id: &str| -> serde_json::Value {
            serde_json::from_str(&s.get(id).unwrap().unwrap().result.unwrap()).unwrap()
        };
        assert!(read("t")["weights"].is_null());
        assert_eq!(read("t")["model"], "m");
        assert_eq!(
            read("e")["weights"]["sha256"],
            "ab",
            "an evaluation's record stays whole"
        );
        s.forget_weights("absent").unwrap();
    }

    #[test]
    fn jobs_and_events_survive_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state").join("jobs.sqlite");
        {
            let s = Store::open(&path).unwrap();
            let a = s.insert(&row("a", "s1")).unwrap();
            s.insert(&row("b", "s2")).unwrap();
            s.insert(&row("c", "s2")).unwrap();
            assert!(s.insert(&row("a", "s1")).is_err(), "trial ids are unique");
            s.append_event("a", 1, b"one").unwrap();
            s.append_event("a", 2, b"two").unwrap();
            assert!(
                s.append_event("a", 2, b"dup").is_err(),
                "sequence numbers are unique"
            );
            s.set_state(
                "a",
                &StateUpdate {
                    state: JobState::Failed,
                    failure: Some(FailureClass::Oom),
                    message: "boom".into(),
                    attempt: 1,
                    started_ms: Some(10),
                    finished_ms: Some(20),
                },
            )
            .unwrap();
            let done = Transition {
                update: StateUpdate {
                    state: JobState::Succeeded,
                    failure: None,
                    message: "finished".into(),
                    attempt: 1,
                    started_ms: None,
                    finished_ms: Some(30),
                },
                result: Some("{\"x\":1}".into()),
                events: vec![(1, b"result".to_vec()), (2, b"state".to_vec())],
            };
            s.commit("b", &done).unwrap();
            s.commit("b", &done)
                .expect("writing a transition again is harmless");
            assert_eq!(a.order, 1);
        }
        let s = Store::open(&path).unwrap();
        let a = s.get("a").unwrap().unwrap();
        assert_eq!(
            (a.state, a.failure, a.attempt, a.last_seq),
            (JobState::Failed, Some(FailureClass::Oom), 1, 2)
        );
        assert_eq!((a.started_ms, a.finished_ms), (10, 20));
        assert_eq!(s.events("a", 2).unwrap(), vec![(2, b"two".to_vec())]);
        assert_eq!(
            s.get("b").unwrap().unwrap().result.as_deref(),
            Some("{\"x\":1}")
        );
        assert!(s.get("zzz").unwrap().is_none());
        let unfinished: Vec<String> = s
            .unfinished()
            .unwrap()
            .into_iter()
            .map(|r| r.trial_id)
            .collect();
        assert_eq!(unfinished, vec!["c"]);
        let b = s.get("b").unwrap().unwrap();
        assert_eq!(
            (b.state, b.last_seq, b.finished_ms),
            (JobState::Succeeded, 2, 30)
        );
        assert_eq!(s.events("b", 1).unwrap().len(), 2);
        assert_eq!(s.count(JobState::Failed).unwrap(), 1);
    }

    #[test]
    fn list_filters_and_pages() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::open(&tmp.path().join("j.sqlite")).unwrap();
        for i in 0..5 {
            s.insert(&row(
                &format!("t{i}"),
                if i % 2 == 0 { "even" } else { "odd" },
            ))
            .unwrap();
        }
        let ids = |q: ListQuery| -> Vec<String> {
            s.list(&q)
                .unwrap()
                .into_iter()
                .map(|r| r.trial_id)
                .collect()
        };
        assert_eq!(
            ids(ListQuery {
                limit: 2,
                ..Default::default()
            }),
            vec!["t0", "t1"]
        );
        assert_eq!(
            ids(ListQuery {
                limit: 2,
                after: 2,
                ..Default::default()
            }),
            vec!["t2", "t3"]
        );
        assert_eq!(
            ids(ListQuery {
                sweep_id: Some("even".into()),
                limit: 10,
                ..Default::default()
            }),
            vec!["t0", "t2", "t4"]
        );
        s.set_state(
            "t3",
            &StateUpdate {
                state: JobState::Running,
                failure: None,
                message: String::new(),
                attempt: 1,
                started_ms: Some(1),
                finished_ms: None,
            },
        )
        .unwrap();
        assert_eq!(
            ids(ListQuery {
                states: vec![JobState::Running],
                limit: 10,
                ..Default::default()
            }),
            vec!["t3"]
        );
    }

    #[test]
    fn a_fresh_store_is_at_the_current_version() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::open(&tmp.path().join("j.sqlite")).unwrap();
        assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn the_v0_fixture_migrates_and_reads_back() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/v0/jobs.sqlite");
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("jobs.sqlite");
        std::fs::copy(&src, &path).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let v: i64 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 0, "the fixture is a version-0 file");
        let s = Store::open(&path).unwrap();
        assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
        let jobs = s
            .list(&ListQuery {
                sweep_id: Some("fixture".into()),
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(jobs.len(), 2);
        for j in &jobs {
            assert_eq!(j.state, JobState::Succeeded, "{j:?}");
            assert_eq!(j.attempt, 1);
            let result: serde_json::Value =
                serde_json::from_str(j.result.as_deref().expect("a result")).unwrap();
            assert!(result.is_object());
            assert!(j.last_seq > 0);
            assert_eq!(s.events(&j.trial_id, 1).unwrap().len() as u64, j.last_seq);
        }
        assert!(s.unfinished().unwrap().is_empty());
    }

    #[test]
    fn a_store_from_a_newer_vovd_is_refused_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("j.sqlite");
        drop(Store::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = Store::open(&path).err().expect("refused");
        let msg = err.to_string();
        match err {
            StoreError::TooNew {
                path: p,
                found,
                supported,
            } => assert_eq!(
                (p, found, supported),
                (path.clone(), SCHEMA_VERSION + 1, SCHEMA_VERSION)
            ),
            other => panic!("expected TooNew, got {other:?}"),
        }
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        let v: i64 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION + 1, "never downgraded");
    }
}
