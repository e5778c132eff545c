//! Flags shared by several verbs, and small output helpers.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use crate::backend::BackendKind;
use crate::hosts::{self, HostInputs, HostsConfig, Source};
use crate::local::LocalDaemon;
use crate::store::{ResultsStore, StoreError, SweepSettings};
use crate::sweep::HostsDef;

/// Where the results store is.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Results store (SQLite).
    #[arg(long, default_value = "vov-results.db", value_name = "FILE")]
    pub store: PathBuf,
}

impl StoreArgs {
    /// Opens the store.
    pub fn open(&self) -> Result<ResultsStore, CliError> {
        ResultsStore::open(&self.store).map_err(|e| self.error(e))
    }

    /// Opens an existing store for reading only (nothing is created, migrated or
    /// written); `None` when there is no store yet.
    pub fn open_read_only(&self) -> Result<Option<ResultsStore>, CliError> {
        if !self.store.is_file() {
            return Ok(None);
        }
        ResultsStore::open_read_only(&self.store)
            .map(Some)
            .map_err(|e| self.error(e))
    }

    fn error(&self, e: StoreError) -> CliError {
        match e {
            // It names the file itself.
            StoreError::TooNew { .. } => CliError::Usage(e.to_string()),
            e => CliError::Usage(format!("{}: {e}", self.store.display())),
        }
    }

    /// Opens the store, which must already exist (reading verbs).
    pub fn open_existing(&self) -> Result<ResultsStore, CliError> {
        if !self.store.is_file() {
            return Err(CliError::Usage(format!(
                "{}: no results store here (run a sweep first, or pass --store)",
                self.store.display()
            )));
        }
        self.open()
    }
}

/// The data directory of the local vovd that runs when no hosts are configured.
#[derive(Debug, Args, Clone)]
pub struct LocalDataArgs {
    /// Data directory of a local vovd (when no hosts are configured).
    #[arg(long, default_value = vov_spec::LOCAL_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
}

/// Which hosts to talk to.
#[derive(Debug, Args, Clone, Default)]
pub struct HostArgs {
    /// Hosts, comma-separated `host:port` or http(s):// URLs [env: VOVCTL_HOSTS; else the
    /// sweep file's [hosts]; else ~/.config/vov/hosts.toml; else a local vovd].
    #[arg(long, value_name = "LIST")]
    pub hosts: Option<String>,
    /// File holding the hosts' bearer token [env: VOVCTL_TOKEN_FILE].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// CA bundle for TLS hosts [env: VOVCTL_TLS_CA].
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Run on vovd hosts (fleet) or submit to Slurm (slurm) [default: the sweep's
    /// earlier backend; else fleet with --hosts or VOVCTL_HOSTS; else slurm when the
    /// sweep file, ~/.config/vov/hosts.toml or VOVCTL_SLURM__* has a [slurm] table].
    #[arg(long, value_enum, value_name = "KIND")]
    pub backend: Option<BackendKind>,
}

impl HostArgs {
    /// Resolves the hosts, the one way every verb does: `--hosts` and the other
    /// flags, the environment (`VOVCTL_HOSTS`, `VOVCTL_TOKEN_FILE`,
    /// `VOVCTL_TLS_CA`), the sweep's `[hosts]` (from its file, or as remembered in
    /// the store), `~/.config/vov/hosts.toml`; [`Source::None`] means a local vovd.
    pub fn resolve(&self, sweep: Option<&HostsDef>) -> Result<(HostsConfig, Source), CliError> {
        let inputs = HostInputs::from_env(
            self.hosts.clone(),
            self.token_file.clone(),
            self.tls_ca.clone(),
        );
        hosts::resolve(&inputs, sweep).map_err(|e| CliError::Usage(e.to_string()))
    }
}

/// Writes text to stdout; a closed pipe is fine.
pub(super) fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Starts the local vovd that a local run of the store at `store_path` used (for
/// `what`, named in the error when there was none).
pub(super) fn local_daemon(store_path: &Path, what: &str) -> Result<LocalDaemon, CliError> {
    let state = super::sweep::local_state_dir(store_path);
    if !state.is_dir() {
        return Err(CliError::Usage(format!(
            "{what}: no hosts (--hosts, VOVCTL_HOSTS, the sweep file's [hosts], \
             ~/.config/vov/hosts.toml) and no local vovd state at {}",
            state.display()
        )));
    }
    LocalDaemon::start(&state, Path::new(vov_spec::LOCAL_DATA_DIR), 1)
        .map_err(|e| CliError::Connection(e.to_string()))
}

/// Where a sweep in the store runs (see [`target::resolve`](super::target::resolve)),
/// with its remembered settings.
pub(super) fn stored_target(
    args: &HostArgs,
    store: &ResultsStore,
    sweep: Option<&str>,
) -> Result<(super::target::Target, Option<SweepSettings>), CliError> {
    let settings = match sweep {
        Some(name) => store
            .settings(name)
            .map_err(|e| CliError::Usage(e.to_string()))?,
        None => None,
    };
    let target = super::target::resolve(
        args,
        super::target::SweepTarget {
            hosts: settings.as_ref().and_then(|s| s.hosts.as_ref()),
            slurm: settings.as_ref().and_then(|s| s.slurm.as_ref()),
            backend: settings.as_ref().and_then(|s| s.backend),
        },
    )?;
    Ok((target, settings))
}
