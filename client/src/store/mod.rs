//! The results store: one SQLite file (default `vov-results.db` in the working
//! directory), written by one owner at a time. Every trial of every sweep is kept by
//! its id with its resolved spec, placement, state, per-epoch history and result,
//! so a sweep run again skips finished work and a killed `vovctl` loses nothing the
//! daemons finish (they keep results; `--collect` or the next run fetches them).

mod evaluation;
mod schema;
mod search;
pub mod state;
mod view;

use std::path::{Path, PathBuf};

use prost::Message;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use thiserror::Error;
use vov_proto::pb;

pub use state::TrialState;

/// The results store schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = schema::CURRENT;

use crate::backend::BackendKind;
use crate::sweep::{HostsDef, Trial};

/// How a sweep's file says to run it, remembered with the sweep so that the
/// verbs that take only its name (attach, results --collect, cancel, hosts) run
/// it the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSettings {
    /// The file's `[hosts]`, when it has one (paths made absolute).
    pub hosts: Option<HostsDef>,
    /// Most placements of one trial.
    pub max_attempts: u32,
    /// Whether crashed or out-of-memory trials are retried.
    pub retry_failed: bool,
    /// The backend it ran on, when one was chosen.
    pub backend: Option<BackendKind>,
    /// The file's `[slurm]` table, when it has one.
    pub slurm: Option<toml::Table>,
    /// The file's `[search]` (a grid when it has none).
    pub search: crate::search::SearchDef,
}

impl SweepSettings {
    /// From a checked sweep file; relative credential paths are made absolute
    /// (they were relative to the directory the sweep ran in).
    pub fn of(def: &crate::sweep::SweepDef) -> Self {
        let abs = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| {
                if p.starts_with("~") {
                    p.clone()
                } else {
                    std::path::absolute(p).unwrap_or_else(|_| p.clone())
                }
            })
        };
        SweepSettings {
            hosts: def.hosts.as_ref().map(|h| HostsDef {
                addresses: h.addresses.clone(),
                token_file: abs(&h.token_file),
                tls_ca: abs(&h.tls_ca),
                tls_cert: abs(&h.tls_cert),
                tls_key: abs(&h.tls_key),
            }),
            max_attempts: def.max_attempts,
            retry_failed: def.retry_failed,
            backend: None,
            slurm: def.slurm.clone(),
            search: def.search,
        }
    }
}

fn hosts_json(h: &HostsDef) -> String {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
    serde_json::json!({
        "addresses": h.addresses,
        "token_file": path(&h.token_file),
        "tls_ca": path(&h.tls_ca),
        "tls_cert": path(&h.tls_cert),
        "tls_key": path(&h.tls_key),
    })
    .to_string()
}

fn hosts_from_json(sweep: &str, text: &str) -> Result<HostsDef, StoreError> {
    let bad = || StoreError::Corrupt(format!("(the hosts of sweep {sweep})"));
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| bad())?;
    let path = |k: &str| v[k].as_str().map(PathBuf::from);
    Ok(HostsDef {
        addresses: v["addresses"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|a| a.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        token_file: path("token_file"),
        tls_ca: path("tls_ca"),
        tls_cert: path("tls_cert"),
        tls_key: path("tls_key"),
    })
}

/// A results store failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("results store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value could not be decoded.
    #[error("results store: corrupt value for trial {0}")]
    Corrupt(String),
    /// The file was written by a newer vovctl, with a schema this build does not
    /// know; it is left untouched.
    #[error(
        "{}: results store schema version {found} is newer than this vovctl knows \
         (version {supported}); use a newer vovctl",
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

/// A trial as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRow {
    /// Id.
    pub trial_id: String,
    /// Configuration id (shared by repeats).
    pub config_id: String,
    /// Repeat index.
    pub repeat: u32,
    /// Label (model and varying keys).
    pub label: String,
    /// Model preset.
    pub model: String,
    /// Epochs asked for.
    pub epochs: u32,
    /// The spec.
    pub spec: pb::TrialSpec,
    /// State.
    pub state: TrialState,
    /// Failure class, when failed.
    pub failure: String,
    /// Last message.
    pub message: String,
    /// Host URL it is placed on.
    pub host: Option<String>,
    /// Placements so far.
    pub attempt: u32,
    /// Last event sequence number seen from its host.
    pub last_seq: u64,
    /// Epoch in progress or last finished.
    pub epoch: u32,
    /// Last validation accuracy.
    pub last_val_acc: f64,
    /// The result.
    pub result: Option<pb::TrialResult>,
    /// The epochs an adaptive search last sent it to (its rung); `None` when no
    /// search decided on it. Read by [`ResultsStore::rungs`], not with the row
    /// (a store opened read-only may predate the column).
    pub stop_after: Option<u32>,
}

pub use evaluation::EvaluationRow;
pub use search::{DecisionKind, DecisionRow};
pub use view::{EpochRow, EventRow, SweepInfo};

/// The store.
pub struct ResultsStore {
    conn: Connection,
}

const COLUMNS: &str =
    "trial_id, config_id, repeat, label, model, epochs, spec, state, failure, message, host, \
                       attempt, last_seq, epoch, last_val_acc, result";

/// A row as read: the trial with its still-encoded state, spec and result.
type RawRow = (TrialRow, String, Vec<u8>, Option<Vec<u8>>);

fn row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        TrialRow {
            trial_id: r.get(0)?,
            config_id: r.get(1)?,
            repeat: r.get(2)?,
            label: r.get(3)?,
            model: r.get(4)?,
            epochs: r.get(5)?,
            spec: pb::TrialSpec::default(),
            state: TrialState::Pending,
            failure: r.get(8)?,
            message: r.get(9)?,
            host: r.get(10)?,
            attempt: r.get(11)?,
            last_seq: r.get::<_, i64>(12)? as u64,
            epoch: r.get(13)?,
            last_val_acc: r.get(14)?,
            result: None,
            stop_after: None,
        },
        r.get(7)?,
        r.get(6)?,
        r.get(15)?,
    ))
}

fn decode(raw: RawRow) -> Result<TrialRow, StoreError> {
    let (mut t, state, spec, result) = raw;
    let bad = || StoreError::Corrupt(t.trial_id.clone());
    t.state = state.parse().map_err(|_| bad())?;
    t.spec = pb::TrialSpec::decode(spec.as_slice()).map_err(|_| bad())?;
    t.result = result
        .map(|r| pb::TrialResult::decode(r.as_slice()))
        .transpose()
        .map_err(|_| bad())?;
    Ok(t)
}

/// The file's schema version, refused when newer than this build knows.
fn check_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > schema::CURRENT {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: schema::CURRENT,
        });
    }
    Ok(found)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl ResultsStore {
    /// Opens (creating) the store at `path`, migrating an older schema forward in
    /// one transaction; a file from a newer vovctl is refused with
    /// [`StoreError::TooNew`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        check_version(&conn, path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = check_version(&tx, path)?;
        let laid_out: bool = tx.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'trials'",
            [],
            |r| r.get(0),
        )?;
        if version < schema::CURRENT || !laid_out {
            if !laid_out {
                tx.execute_batch(schema::V0)?;
            }
            for step in &schema::MIGRATIONS[version as usize..] {
                tx.execute_batch(step)?;
            }
            tx.pragma_update(None, "user_version", schema::CURRENT)?;
        }
        tx.commit()?;
        Ok(ResultsStore { conn })
    }

    /// Opens an existing store for reading only: nothing is created, migrated or
    /// written (a dry run), and the file is left byte for byte as it was. Only
    /// reads of version-0 columns work on an older file: [`ResultsStore::trial`],
    /// [`ResultsStore::host_fingerprint`], [`ResultsStore::seconds_per_epoch`].
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        // Read-write without create, so that the last close tidies the WAL side
        // files away, but with every write refused.
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .or_else(|_| {
            Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "query_only", true)?;
        check_version(&conn, path)?;
        Ok(ResultsStore { conn })
    }

    /// The file's schema version.
    pub fn version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Records a sweep and its trials, which become the sweep's trials: trials of
    /// an earlier expansion that `trials` lacks leave the sweep (they stay in the
    /// store as history). Trials already known keep their state.
    pub fn register(
        &mut self,
        sweep: &str,
        file: &str,
        trials: &[Trial],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO sweeps (name, file, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET file = ?2",
            params![sweep, file, now_ms()],
        )?;
        tx.execute(
            "UPDATE sweep_trials SET current = 0 WHERE sweep = ?1",
            [sweep],
        )?;
        for (i, t) in trials.iter().enumerate() {
            tx.execute(
                "INSERT INTO trials (trial_id, config_id, repeat, label, model, epochs, config, spec, state, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9) ON CONFLICT(trial_id) DO UPDATE SET label = ?4",
                params![
                    t.id,
                    t.config_id,
                    t.repeat,
                    t.label,
                    t.spec.model,
                    t.spec.epochs,
                    vov_spec::identity::canonical(&t.trial),
                    t.spec.encode_to_vec(),
                    now_ms()
                ],
            )?;
            tx.execute(
                "INSERT INTO sweep_trials (sweep, trial_id, ord, current) VALUES (?1, ?2, ?3, 1) \
                 ON CONFLICT DO UPDATE SET ord = ?3, current = 1",
                params![sweep, t.id, i as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Remembers how a sweep's file says to run it (see [`SweepSettings`]).
    pub fn remember(&self, sweep: &str, settings: &SweepSettings) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sweeps SET hosts = ?2, max_attempts = ?3, retry_failed = ?4, backend = ?5, slurm = ?6, search = ?7 WHERE name = ?1",
            params![
                sweep,
                settings.hosts.as_ref().map(hosts_json),
                settings.max_attempts,
                settings.retry_failed,
                settings.backend.map(BackendKind::as_str),
                settings.slurm.as_ref().map(|t| toml::to_string(t).unwrap_or_default()),
                serde_json::to_string(&settings.search).unwrap_or_default(),
            ],
        )?;
        Ok(())
    }

    /// What was remembered of a sweep's file; `None` for a sweep not in the store,
    /// or one registered before the store remembered settings, or known only from
    /// its hosts.
    pub fn settings(&self, sweep: &str) -> Result<Option<SweepSettings>, StoreError> {
        type SettingsRow = (
            Option<String>,
            Option<u32>,
            Option<bool>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let row: Option<SettingsRow> = self
            .conn
            .query_row(
                "SELECT hosts, max_attempts, retry_failed, backend, slurm, search FROM sweeps WHERE name = ?1",
                [sweep],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((hosts, Some(max_attempts), retry_failed, backend, slurm, search)) = row else {
            return Ok(None);
        };
        let bad = |what: &str| StoreError::Corrupt(format!("(the {what} of sweep {sweep})"));
        Ok(Some(SweepSettings {
            hosts: hosts.map(|h| hosts_from_json(sweep, &h)).transpose()?,
            max_attempts,
            retry_failed: retry_failed.unwrap_or(false),
            backend: backend
                .map(|b| BackendKind::parse(&b).ok_or_else(|| bad("backend")))
                .transpose()?,
            slurm: slurm
                .map(|t| t.parse::<toml::Table>().map_err(|_| bad("[slurm] table")))
                .transpose()?,
            search: search
                .map(|s| serde_json::from_str(&s).map_err(|_| bad("[search] table")))
                .transpose()?
                .unwrap_or_default(),
        }))
    }

    /// The sweep a trial belongs to now (its latest), else the newest that had it.
    pub fn sweep_of(&self, trial_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT s.sweep FROM sweep_trials s JOIN sweeps w ON w.name = s.sweep WHERE s.trial_id = ?1 \
                 ORDER BY s.current DESC, w.created_ms DESC LIMIT 1",
                [trial_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Sweep names, newest first.
    pub fn sweeps(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sweeps ORDER BY created_ms DESC")?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// Whether a sweep is known.
    pub fn has_sweep(&self, sweep: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM sweeps WHERE name = ?1", [sweep], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The trials of a sweep (its latest expansion), in sweep order.
    pub fn trials(&self, sweep: &str) -> Result<Vec<TrialRow>, StoreError> {
        self.sweep_rows(sweep, "s.current = 1")
    }

    /// Trials that belonged to earlier expansions of a sweep and no longer do.
    pub fn former_trials(&self, sweep: &str) -> Result<Vec<TrialRow>, StoreError> {
        self.sweep_rows(sweep, "s.current = 0")
    }

    fn sweep_rows(&self, sweep: &str, filter: &str) -> Result<Vec<TrialRow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM trials t JOIN sweep_trials s ON s.trial_id = t.trial_id WHERE s.sweep = ?1 AND {filter} ORDER BY s.ord",
            COLUMNS.split(", ").map(|c| format!("t.{}", c.trim())).collect::<Vec<_>>().join(", ")
        ))?;
        let rows = stmt.query_map([sweep], row)?;
        rows.map(|r| decode(r?)).collect()
    }

    /// One trial.
    pub fn trial(&self, trial_id: &str) -> Result<Option<TrialRow>, StoreError> {
        let raw = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM trials WHERE trial_id = ?1"),
                [trial_id],
                row,
            )
            .optional()?;
        raw.map(decode).transpose()
    }

    /// Records a placement on `host`, with the backend's own id of it when it has
    /// one.
    pub fn place(
        &self,
        trial_id: &str,
        host: &str,
        attempt: u32,
        batch_job: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE trials SET host = ?2, attempt = ?3, state = 'queued', last_seq = 0, failure = '', message = '', updated_ms = ?4, batch_job = ?5 \
             WHERE trial_id = ?1 AND state != 'succeeded'",
            params![trial_id, host, attempt, now_ms(), batch_job],
        )?;
        Ok(())
    }

    /// The backend's own id of a trial's last placement (a Slurm array task).
    pub fn batch_job(&self, trial_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT batch_job FROM trials WHERE trial_id = ?1",
                [trial_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// Records a state (never overwriting a success or a search's stop).
    pub fn set_state(
        &self,
        trial_id: &str,
        state: TrialState,
        failure: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            &format!(
                "UPDATE trials SET state = ?2, failure = ?3, message = ?4, updated_ms = ?5 \
                 WHERE trial_id = ?1 AND {}",
                state::UNDECIDED
            ),
            params![trial_id, state.as_str(), failure, message, now_ms()],
        )?;
        Ok(())
    }

    /// Records progress seen in an event.
    pub fn progress(
        &self,
        trial_id: &str,
        last_seq: u64,
        epoch: Option<&pb::EpochMetrics>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE trials SET last_seq = MAX(last_seq, ?2) WHERE trial_id = ?1",
            params![trial_id, last_seq as i64],
        )?;
        if let Some(m) = epoch {
            tx.execute(
                "UPDATE trials SET epoch = ?2, last_val_acc = ?3 WHERE trial_id = ?1",
                params![trial_id, m.epoch, m.val_acc],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO epochs (trial_id, epoch, train_loss, train_acc, val_loss, val_acc, epoch_s, data_wait_s) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![trial_id, m.epoch, m.train_loss, m.train_acc, m.val_loss, m.val_acc, m.epoch_s, m.data_wait_s],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a result from `host`; returns false when the trial already had one
    /// (exactly one result is kept per trial) or its search stopped it.
    pub fn record_result(
        &self,
        trial_id: &str,
        host: &str,
        result: &pb::TrialResult,
    ) -> Result<bool, StoreError> {
        let fp = result
            .fingerprint
            .as_ref()
            .map(|f| f.id.clone())
            .unwrap_or_default();
        let changed = self.conn.execute(
            &format!(
                "UPDATE trials SET state = 'succeeded', result = ?2, host = ?3, fingerprint = ?4, failure = '', message = '', \
                 epoch = ?5, last_val_acc = ?6, updated_ms = ?7 WHERE trial_id = ?1 AND {}",
                state::UNDECIDED
            ),
            params![trial_id, result.encode_to_vec(), host, fp, result.history.len() as u32, result.final_val_acc, now_ms()],
        )?;
        Ok(changed == 1)
    }

    /// Takes the kept weights out of a trial's stored result (removed from
    /// their host).
    pub fn forget_weights(&self, trial_id: &str) -> Result<(), StoreError> {
        let Some(mut result) = self.trial(trial_id)?.and_then(|t| t.result) else {
            return Ok(());
        };
        result.weights = None;
        self.conn.execute(
            "UPDATE trials SET result = ?2 WHERE trial_id = ?1",
            params![trial_id, result.encode_to_vec()],
        )?;
        Ok(())
    }

    /// Puts every trial of a sweep back to pending and forgets its results (a
    /// forced re-run).
    pub fn reset(&self, sweep: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE trials SET state = 'pending', result = NULL, host = NULL, attempt = 0, last_seq = 0, epoch = 0, \
             last_val_acc = 0, failure = '', message = '', stop_after = NULL \
             WHERE trial_id IN (SELECT trial_id FROM sweep_trials WHERE sweep = ?1 AND current = 1)",
            [sweep],
        )?;
        self.forget_search(sweep)?;
        Ok(())
    }

    /// Records a job found on a host that the store did not know (results
    /// collected by another client); returns whether it was new. It joins the
    /// sweep only when no sweep file was registered under that name (a sweep known
    /// only from its hosts); otherwise the file's latest expansion decides the
    /// sweep's trials and the job is kept as history.
    pub fn adopt_remote(&mut self, sweep: &str, job: &pb::Job) -> Result<bool, StoreError> {
        const JOIN: &str =
            "INSERT OR IGNORE INTO sweep_trials (sweep, trial_id, ord, current) VALUES (?1, ?2, \
             (SELECT COUNT(*) FROM sweep_trials WHERE sweep = ?1), \
             COALESCE((SELECT file = '' FROM sweeps WHERE name = ?1), 1))";
        if self.trial(&job.trial_id)?.is_some() {
            self.conn.execute(JOIN, params![sweep, job.trial_id])?;
            return Ok(false);
        }
        let spec = job.spec.clone().unwrap_or_default();
        // The same config id as a locally expanded trial's, so repeats group; a
        // spec this version cannot read is kept as a group of its own.
        let (config_id, canonical) = match vov_spec::TrialSpec::try_from(&spec) {
            Ok(typed) => (
                vov_spec::identity::config_id(&typed),
                vov_spec::identity::canonical(&typed),
            ),
            Err(_) => (job.trial_id.clone(), String::new()),
        };
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO sweeps (name, file, created_ms) VALUES (?1, '', ?2) ON CONFLICT(name) DO NOTHING",
            params![sweep, now_ms()],
        )?;
        tx.execute(
            "INSERT INTO trials (trial_id, config_id, repeat, label, model, epochs, config, spec, state, updated_ms) \
             VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)",
            params![job.trial_id, config_id, job.model, spec.model, spec.epochs, canonical, spec.encode_to_vec(), now_ms()],
        )?;
        tx.execute(JOIN, params![sweep, job.trial_id])?;
        tx.commit()?;
        Ok(true)
    }

    /// Remembers which fingerprint a host measures with (for ETAs).
    pub fn note_host(&self, url: &str, fingerprint: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO hosts (url, fingerprint, seen_ms) VALUES (?1, ?2, ?3) ON CONFLICT(url) DO UPDATE SET fingerprint = ?2, seen_ms = ?3",
            params![url, fingerprint, now_ms()],
        )?;
        Ok(())
    }

    /// The fingerprint last seen for a host.
    pub fn host_fingerprint(&self, url: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT fingerprint FROM hosts WHERE url = ?1", [url], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Measured seconds per epoch of `model` on hosts with fingerprint `fingerprint`
    /// (mean over stored results), for ETAs.
    pub fn seconds_per_epoch(
        &self,
        model: &str,
        fingerprint: &str,
    ) -> Result<Option<f64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT result FROM trials WHERE model = ?1 AND fingerprint = ?2 AND result IS NOT NULL")?;
        let blobs: Vec<Vec<u8>> = stmt
            .query_map(params![model, fingerprint], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let secs: Vec<f64> = blobs
            .iter()
            .filter_map(|b| pb::TrialResult::decode(b.as_slice()).ok())
            .filter_map(|r| r.pipeline_s_per_epoch.or(Some(r.first_epoch_s)))
            .collect();
        Ok((!secs.is_empty()).then(|| secs.iter().sum::<f64>() / secs.len() as f64))
    }
}

#[cfg(test)]
mod tests;
