//! Daemon configuration: defaults < file (`--config`, default /etc/vovd/vovd.toml)
//! < environment (`VOVD__KEY`) < command-line flags, checked once into a
//! [`DaemonConfig`] that cannot hold an invalid value.
//!
//! Keys: `listen`, `state_dir`, `data_dir`, `slots`, `threads_per_slot`, `devices`,
//! `token_file`, `tls_cert`, `tls_key`, `client_ca`, `max_queued`, `max_checkpoint_bytes`,
//! `max_weights_bytes`, `sweep_idle_secs`, `log_format`,
//! `grace_period_secs`, `max_attempts`, `lame_duck_ms`, and the connection keys
//! `max_connections`, `idle_timeout_secs`, `keepalive_secs`, `keepalive_timeout_secs`.

mod connections;
mod load;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

pub use connections::ConnectionLimits;
pub use load::{env_var, load, Sources, DEFAULT_CONFIG_PATH};

/// A configuration problem; every variant names the key and the value.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file, environment or flags could not be read or have the wrong shape
    /// (the message names the key).
    #[error("{0}")]
    Source(String),
    /// A key has a value outside its range.
    #[error("{key} = {value}: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    fn invalid(
        key: &'static str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            key,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line (for journald or a log shipper).
    Json,
}

/// TLS files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsFiles {
    /// PEM certificate chain of this host.
    pub cert: PathBuf,
    /// PEM private key of this host.
    pub key: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

/// The validated daemon configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaemonConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Job store, checkpoints and worker scratch space.
    pub state_dir: PathBuf,
    /// Root of the named data sets.
    pub data_dir: PathBuf,
    /// Trial slots on a CPU host.
    pub slots: usize,
    /// Compute threads per slot's worker.
    pub threads_per_slot: usize,
    /// GPU indices to offer (one slot each); empty on a CPU host.
    pub devices: Vec<usize>,
    /// File holding the bearer token clients must send.
    pub token_file: Option<PathBuf>,
    /// TLS, when configured.
    pub tls: Option<TlsFiles>,
    /// Most trials queued (waiting) at once.
    pub max_queued: usize,
    /// Most bytes the checkpoints of paused trials may take together (0: no limit).
    pub max_checkpoint_bytes: u64,
    /// Most bytes kept weights may take together; the oldest a sweep no longer
    /// needs go first (0: no limit).
    pub max_weights_bytes: u64,
    /// How long after its last job here ended a sweep still counts as running,
    /// its weights spared by `max_weights_bytes`.
    pub sweep_idle: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// How long a worker may take to checkpoint and stop after SIGTERM.
    #[serde(serialize_with = "secs")]
    pub grace_period: Duration,
    /// Worker starts a trial may have (restarts after a daemon crash count).
    pub max_attempts: u32,
    /// Time between reporting NOT_SERVING and closing the listener on shutdown.
    #[serde(serialize_with = "secs")]
    pub lame_duck: Duration,
    /// Limits on client connections.
    pub connections: ConnectionLimits,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl DaemonConfig {
    /// Checks the cross-key rules: no non-loopback listener without a token, TLS
    /// files in pairs, and that the files named exist.
    pub fn check_security(&self) -> Result<(), ConfigError> {
        if !self.listen.ip().is_loopback() && self.token_file.is_none() {
            return Err(ConfigError::invalid(
                "listen",
                self.listen,
                "refusing to listen on a non-loopback address without authentication: set token_file \
                 (and tls_cert/tls_key), or listen on 127.0.0.1",
            ));
        }
        for (key, path) in [("token_file", self.token_file.as_deref())]
            .into_iter()
            .chain(self.tls.iter().flat_map(|t| {
                [
                    ("tls_cert", Some(t.cert.as_path())),
                    ("tls_key", Some(t.key.as_path())),
                    ("client_ca", t.client_ca.as_deref()),
                ]
            }))
        {
            if let Some(p) = path {
                check_readable(key, p)?;
            }
        }
        Ok(())
    }

    /// The bearer token, read from `token_file` (surrounding whitespace trimmed).
    pub fn token(&self) -> Result<Option<String>, ConfigError> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::invalid("token_file", path.display(), e.to_string()))?;
        let token = text.trim().to_string();
        if token.len() < 16 {
            return Err(ConfigError::invalid(
                "token_file",
                path.display(),
                "the token must be at least 16 characters",
            ));
        }
        Ok(Some(token))
    }

    /// The effective configuration as TOML, for `vovd check-config`.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let line = |k: &str, v: String| format!("{k} = {v}\n");
        let path = |p: &Path| format!("{:?}", p.display().to_string());
        let opt = |p: Option<&Path>| p.map_or_else(|| "\"\"".to_string(), path);
        out += &line("listen", format!("\"{}\"", self.listen));
        out += &line("state_dir", path(&self.state_dir));
        out += &line("data_dir", path(&self.data_dir));
        out += &line("slots", self.slots.to_string());
        out += &line("threads_per_slot", self.threads_per_slot.to_string());
        out += &line("devices", format!("{:?}", self.devices));
        out += &line("token_file", opt(self.token_file.as_deref()));
        out += &line("tls_cert", opt(self.tls.as_ref().map(|t| t.cert.as_path())));
        out += &line("tls_key", opt(self.tls.as_ref().map(|t| t.key.as_path())));
        out += &line(
            "client_ca",
            opt(self.tls.as_ref().and_then(|t| t.client_ca.as_deref())),
        );
        out += &line("max_queued", self.max_queued.to_string());
        out += &line(
            "max_checkpoint_bytes",
            self.max_checkpoint_bytes.to_string(),
        );
        out += &line("max_weights_bytes", self.max_weights_bytes.to_string());
        out += &line("sweep_idle_secs", self.sweep_idle.as_secs().to_string());
        out += &line(
            "log_format",
            format!(
                "\"{}\"",
                match self.log_format {
                    LogFormat::Plain => "plain",
                    LogFormat::Json => "json",
                }
            ),
        );
        out += &line("grace_period_secs", self.grace_period.as_secs().to_string());
        out += &line("max_attempts", self.max_attempts.to_string());
        out += &line("lame_duck_ms", self.lame_duck.as_millis().to_string());
        out += &self.connections.to_toml();
        out
    }

    /// Where the job store lives.
    pub fn store_path(&self) -> PathBuf {
        self.state_dir.join("jobs.sqlite")
    }

    /// Where a trial's checkpoints live.
    pub fn checkpoint_dir(&self, trial_id: &str) -> PathBuf {
        checkpoint_dir(&self.state_dir, trial_id)
    }
}

/// Where kept weights live under a state directory.
pub fn weights_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("weights")
}

/// Where a trial's kept weights live under a state directory.
pub fn weights_file(state_dir: &Path, trial_id: &str) -> PathBuf {
    crate::train::weights::file_in(&weights_dir(state_dir), trial_id)
}

/// Where weights uploaded for evaluation jobs live under a state directory.
pub fn received_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("received-weights")
}

/// Where uploaded weights of digest `sha256` live under a state directory.
pub fn received_file(state_dir: &Path, sha256: &str) -> PathBuf {
    crate::train::weights::file_in(&received_dir(state_dir), sha256)
}

/// Where a trial's checkpoints live under a state directory.
pub fn checkpoint_dir(state_dir: &Path, trial_id: &str) -> PathBuf {
    state_dir.join("checkpoints").join(trial_id)
}

fn check_readable(key: &'static str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(ConfigError::invalid(key, path.display(), "is not a file")),
        Err(e) => Err(ConfigError::invalid(key, path.display(), e.to_string())),
    }
}
