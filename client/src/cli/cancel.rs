//! `vovctl cancel SWEEP|TRIAL`.

use std::process::ExitCode;

use clap::Args;
use vov_proto::pb;

use super::common::{stored_target, HostArgs, StoreArgs};
use super::target::Target;
use super::CliError;
use crate::backend::grpc::request;
use crate::backend::slurm::SlurmBackend;
use crate::backend::Backend;
use crate::hosts::{self, HostsConfig};
use crate::store::{ResultsStore, TrialRow, TrialState};

/// Arguments of `vovctl cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// A sweep name (its unfinished trials) or a trial id.
    pub target: String,
    /// Hosts (credentials for the hosts the trials are placed on).
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled {
    /// Trials cancelled.
    pub cancelled: usize,
    /// Trials whose host could not be reached.
    pub failures: usize,
}

pub(super) async fn run(args: CancelArgs) -> Result<ExitCode, CliError> {
    let store = args.store.open_existing()?;
    let done = cancel(&store, &args.target, &args.hosts).await?;
    eprintln!("cancelled {} trial(s)", done.cancelled);
    if done.failures > 0 {
        return Err(CliError::Connection(format!(
            "{} trial(s) could not be cancelled (host unreachable)",
            done.failures
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// Cancels a sweep's unfinished trials, or one trial (`target` is a sweep name
/// or a trial id), on the hosts or the Slurm cluster they are placed on, and
/// records them as cancelled in `store`: what `vovctl cancel` and the
/// dashboard's cancel buttons do.
pub async fn cancel(
    store: &ResultsStore,
    target_name: &str,
    host_args: &HostArgs,
) -> Result<Cancelled, CliError> {
    let err = |e: crate::store::StoreError| CliError::Usage(e.to_string());
    let is_sweep = store.has_sweep(target_name).map_err(err)?;
    let trials = if is_sweep {
        store.trials(target_name).map_err(err)?
    } else {
        let t = store.trial(target_name).map_err(err)?;
        vec![t.ok_or_else(|| {
            CliError::Usage(format!(
                "'{target_name}' is neither a sweep nor a trial in the store"
            ))
        })?]
    };
    let sweep = if is_sweep {
        Some(target_name.to_string())
    } else {
        store.sweep_of(target_name).map_err(err)?
    };
    // The placed trials' URLs say where; the sweep's hosts give the credentials.
    let (target, _) = stored_target(host_args, store, sweep.as_deref())?;
    let mut cancelled = 0;
    let mut failures = 0;
    let open: Vec<&TrialRow> = trials.iter().filter(|t| !t.state.is_final()).collect();
    let slurm = match &target {
        Target::Slurm(cfg) => Some(SlurmBackend::new(cfg.clone())),
        Target::Fleet(..) => None,
    };
    let (on_slurm, open): (Vec<&TrialRow>, Vec<&TrialRow>) = match &slurm {
        Some(backend) => open
            .into_iter()
            .partition(|t| t.host.as_deref() == Some(backend.name())),
        None => (Vec::new(), open),
    };
    if let Some(backend) = slurm.as_ref().filter(|_| !on_slurm.is_empty()) {
        // One scancel for every array task of the sweep.
        let ids: Vec<String> = on_slurm.iter().map(|t| t.trial_id.clone()).collect();
        match backend.cancel_many(&ids).await {
            Ok(_) => {
                for id in &ids {
                    store
                        .set_state(id, TrialState::Cancelled, "", "cancelled on request")
                        .map_err(err)?;
                }
                cancelled += ids.len();
            }
            Err(e) => {
                eprintln!("{}: {e}", backend.name());
                failures += ids.len();
            }
        }
    }
    let cfg = match &target {
        Target::Fleet(cfg, _) => cfg.clone(),
        Target::Slurm(_) => HostsConfig::default(),
    };
    for t in open {
        match &t.host {
            None => {
                store
                    .set_state(
                        &t.trial_id,
                        TrialState::Cancelled,
                        "",
                        "cancelled before placement",
                    )
                    .map_err(err)?;
                cancelled += 1;
            }
            Some(url) => {
                let host_cfg = HostsConfig {
                    urls: vec![url.clone()],
                    ..cfg.clone()
                };
                let host = hosts::connect(&host_cfg)
                    .map_err(|e| CliError::Usage(e.to_string()))?
                    .remove(0);
                let mut client = host.client;
                match client
                    .cancel(request(pb::CancelRequest {
                        trial_id: t.trial_id.clone(),
                    }))
                    .await
                {
                    Ok(_) => {
                        store
                            .set_state(
                                &t.trial_id,
                                TrialState::Cancelled,
                                "",
                                "cancelled on request",
                            )
                            .map_err(err)?;
                        cancelled += 1;
                    }
                    Err(e) => {
                        eprintln!("{}: {url}: {}", t.trial_id, e.message());
                        failures += 1;
                    }
                }
            }
        }
    }
    Ok(Cancelled {
        cancelled,
        failures,
    })
}
