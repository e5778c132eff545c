//! `vovctl cancel SWEEP|TRIAL`.

use std::process::ExitCode;

use clap::Args;
use vov_proto::pb;

use super::common::{stored_hosts, HostArgs, StoreArgs};
use super::CliError;
use crate::backend::grpc::request;
use crate::hosts::{self, HostsConfig};
use crate::store::TrialState;

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

pub(super) async fn run(args: CancelArgs) -> Result<ExitCode, CliError> {
    let store = args.store.open_existing()?;
    let err = |e: crate::store::StoreError| CliError::Usage(e.to_string());
    let is_sweep = store.has_sweep(&args.target).map_err(err)?;
    let trials = if is_sweep {
        store.trials(&args.target).map_err(err)?
    } else {
        let t = store.trial(&args.target).map_err(err)?;
        vec![t.ok_or_else(|| {
            CliError::Usage(format!(
                "'{}' is neither a sweep nor a trial in the store",
                args.target
            ))
        })?]
    };
    let sweep = if is_sweep {
        Some(args.target.clone())
    } else {
        store.sweep_of(&args.target).map_err(err)?
    };
    // The placed trials' URLs say where; the sweep's hosts give the credentials.
    let (cfg, _, _) = stored_hosts(&args.hosts, &store, sweep.as_deref())?;
    let mut cancelled = 0;
    let mut failures = 0;
    for t in trials.iter().filter(|t| !t.state.is_final()) {
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
    eprintln!("cancelled {cancelled} trial(s)");
    if failures > 0 {
        return Err(CliError::Connection(format!(
            "{failures} trial(s) could not be cancelled (host unreachable)"
        )));
    }
    Ok(ExitCode::SUCCESS)
}
