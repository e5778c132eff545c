//! Which backend a verb talks to: the fleet of `vovd` hosts (or a local vovd), or
//! a Slurm cluster; decided the same way by every verb.

use super::common::HostArgs;
use super::CliError;
use crate::backend::slurm::config::{SlurmConfig, SlurmSources};
use crate::backend::BackendKind;
use crate::hosts::{HostsConfig, Source};
use crate::sweep::HostsDef;

/// Where a sweep runs.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// `vovd` hosts; [`Source::None`] means a local vovd.
    Fleet(HostsConfig, Source),
    /// A Slurm cluster.
    Slurm(SlurmConfig),
}

/// What a sweep says about where it runs: its file's (or the store's memory of
/// it) `[hosts]`, `[slurm]` and backend.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SweepTarget<'a> {
    /// Its `[hosts]`.
    pub(super) hosts: Option<&'a HostsDef>,
    /// Its `[slurm]`.
    pub slurm: Option<&'a toml::Table>,
    /// The backend it ran on before.
    pub backend: Option<BackendKind>,
}

impl Target {
    /// The kind of backend.
    pub(super) fn kind(&self) -> BackendKind {
        match self {
            Target::Fleet(..) => BackendKind::Fleet,
            Target::Slurm(_) => BackendKind::Slurm,
        }
    }
}

/// The backend, in this order: `--backend`; the one the sweep ran on before;
/// `--hosts` or `VOVCTL_HOSTS` (the fleet); the sweep's `[slurm]`; the sweep's
/// `[hosts]` (the fleet); a `[slurm]` table in `~/.config/vov/hosts.toml` or
/// `VOVCTL_SLURM__*` variables; else the fleet as configured, or a local vovd.
pub(super) fn resolve(args: &HostArgs, sweep: SweepTarget<'_>) -> Result<Target, CliError> {
    let sources =
        SlurmSources::from_env(sweep.slurm.cloned()).map_err(|e| CliError::Usage(e.to_string()))?;
    let hosts_named =
        args.hosts.is_some() || std::env::var("VOVCTL_HOSTS").is_ok_and(|v| !v.is_empty());
    let kind = args.backend.or(sweep.backend).unwrap_or_else(|| {
        if hosts_named {
            BackendKind::Fleet
        } else if sweep.slurm.is_some() {
            BackendKind::Slurm
        } else if sweep.hosts.is_some_and(|h| !h.addresses.is_empty()) {
            BackendKind::Fleet
        } else if sources.any() {
            BackendKind::Slurm
        } else {
            BackendKind::Fleet
        }
    });
    match kind {
        BackendKind::Fleet => {
            let (cfg, source) = args.resolve(sweep.hosts)?;
            Ok(Target::Fleet(cfg, source))
        }
        BackendKind::Slurm => {
            let cwd = std::env::current_dir().map_err(|e| CliError::Usage(e.to_string()))?;
            let cfg = sources
                .resolve(&cwd)
                .map_err(|e| CliError::Usage(format!("--backend slurm: {e}")))?;
            Ok(Target::Slurm(cfg))
        }
    }
}
