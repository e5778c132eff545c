//! The results store's tables and their versions.
//!
//! The file's `PRAGMA user_version` is its schema version. Version 0 is the first
//! released layout, [`V0`]; each entry of [`MIGRATIONS`] takes a file one version
//! forward, and a new file is laid out as version 0 and migrated to
//! [`CURRENT`] in the same transaction, so a fresh file and a migrated one are
//! always alike.

/// The schema version this build writes.
pub(super) const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Migrations: entry `n` takes version `n` to version `n + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 0 -> 1: a sweep's trials are those of its latest expansion. Trials an edited
    // sweep file no longer produces stay as history (`current = 0`): never run,
    // reported or counted. Rows of a version-0 file all stay members.
    "ALTER TABLE sweep_trials ADD COLUMN current INTEGER NOT NULL DEFAULT 1;",
    // 1 -> 2: a sweep remembers how its file says to run it: `[hosts]` (JSON, NULL
    // when the file names none), max_attempts and retry_failed (NULL for sweeps
    // registered before, or known only from their hosts).
    "ALTER TABLE sweeps ADD COLUMN hosts TEXT;
     ALTER TABLE sweeps ADD COLUMN max_attempts INTEGER;
     ALTER TABLE sweeps ADD COLUMN retry_failed INTEGER;",
    // 2 -> 3: a sweep remembers its backend ('fleet' or 'slurm'; NULL: chosen
    // from the hosts as before) and its file's `[slurm]` table (TOML, NULL when
    // the file has none); a trial's placement keeps the backend's own id of it
    // (a Slurm array task `123_4`; NULL on vovd hosts).
    "ALTER TABLE sweeps ADD COLUMN backend TEXT;
     ALTER TABLE sweeps ADD COLUMN slurm TEXT;
     ALTER TABLE trials ADD COLUMN batch_job TEXT;",
    // 3 -> 4: adaptive search. A sweep remembers its `[search]` (JSON; NULL: a
    // grid), a trial keeps the epochs its search last sent it
    // to (NULL: no search decided on it), and every decision of a sweep's search
    // is kept in order, written before it is acted on.
    "ALTER TABLE trials ADD COLUMN stop_after INTEGER;
     ALTER TABLE sweeps ADD COLUMN search TEXT;
     CREATE TABLE IF NOT EXISTS decisions (
         sweep TEXT NOT NULL,
         seq INTEGER NOT NULL,
         trial_id TEXT NOT NULL,
         kind TEXT NOT NULL,
         epochs INTEGER NOT NULL,
         note TEXT NOT NULL,
         at_ms INTEGER NOT NULL,
         PRIMARY KEY (sweep, seq)
     );",
    // 4 -> 5: every change of a trial's state, host or attempt is kept as an
    // event (the dashboard's trial page and a sweep's start and end), written by
    // triggers so that no writer can forget one; each trial there already gets
    // one event, its state as last written.
    "CREATE TABLE IF NOT EXISTS events (
         trial_id TEXT NOT NULL,
         at_ms INTEGER NOT NULL,
         state TEXT NOT NULL,
         host TEXT,
         attempt INTEGER NOT NULL,
         failure TEXT NOT NULL,
         message TEXT NOT NULL
     );
     CREATE INDEX IF NOT EXISTS events_trial ON events (trial_id, at_ms);
     INSERT INTO events SELECT trial_id, updated_ms, state, host, attempt, failure, message FROM trials;
     CREATE TRIGGER IF NOT EXISTS trial_created AFTER INSERT ON trials BEGIN
         INSERT INTO events VALUES (NEW.trial_id, CAST(unixepoch('subsec') * 1000 AS INTEGER),
             NEW.state, NEW.host, NEW.attempt, NEW.failure, NEW.message);
     END;
     CREATE TRIGGER IF NOT EXISTS trial_changed AFTER UPDATE OF state, host, attempt ON trials
     WHEN OLD.state IS NOT NEW.state OR OLD.host IS NOT NEW.host OR OLD.attempt IS NOT NEW.attempt BEGIN
         INSERT INTO events VALUES (NEW.trial_id, CAST(unixepoch('subsec') * 1000 AS INTEGER),
             NEW.state, NEW.host, NEW.attempt, NEW.failure, NEW.message);
     END;",
    // 5 -> 6: evaluation jobs. A trial's kept weights measured on a host of the
    // user's choice: its request (an encoded `vov.v1.EvaluationSpec`), state and
    // result (an encoded `vov.v1.EvaluationResult`), by an id of their own.
    "CREATE TABLE IF NOT EXISTS evaluations (
         eval_id TEXT PRIMARY KEY,
         source_trial TEXT NOT NULL,
         host TEXT NOT NULL,
         request BLOB NOT NULL,
         state TEXT NOT NULL,
         failure TEXT NOT NULL DEFAULT '',
         message TEXT NOT NULL DEFAULT '',
         result BLOB,
         fingerprint TEXT NOT NULL DEFAULT '',
         updated_ms INTEGER NOT NULL
     );
     CREATE INDEX IF NOT EXISTS evaluations_source ON evaluations (source_trial);",
];

/// Version 0: the tables as first released (files without a version are these).
pub(super) const V0: &str = "
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    label TEXT NOT NULL,
    model TEXT NOT NULL,
    epochs INTEGER NOT NULL,
    config TEXT NOT NULL,
    spec BLOB NOT NULL,
    state TEXT NOT NULL,
    failure TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    host TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    epoch INTEGER NOT NULL DEFAULT 0,
    last_val_acc REAL NOT NULL DEFAULT 0,
    result BLOB,
    fingerprint TEXT NOT NULL DEFAULT '',
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS trials_model ON trials (model, fingerprint);
CREATE TABLE IF NOT EXISTS sweep_trials (
    sweep TEXT NOT NULL,
    trial_id TEXT NOT NULL,
    ord INTEGER NOT NULL,
    PRIMARY KEY (sweep, trial_id)
);
CREATE TABLE IF NOT EXISTS hosts (
    url TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    seen_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS epochs (
    trial_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss REAL NOT NULL,
    train_acc REAL NOT NULL,
    val_loss REAL NOT NULL,
    val_acc REAL NOT NULL,
    epoch_s REAL NOT NULL,
    data_wait_s REAL NOT NULL,
    PRIMARY KEY (trial_id, epoch)
);
";
