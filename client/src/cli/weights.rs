//! `vovctl weights TRIAL [--out FILE]`: a trial's kept weights, from its host.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::common::{local_daemon, print, stored_target, HostArgs, StoreArgs};
use super::target::Target;
use super::CliError;
use crate::hosts::{self, HostsConfig, Source};
use crate::weights::{copy, fetch, FetchError, Fetched};
use vov_proto::taskdir::TrialDir;

/// Arguments of `vovctl weights`.
#[derive(Debug, Args)]
#[command(
    after_help = "The trial must have asked for them (keep_weights = \"final\" or \"best\" in its \
                  sweep file). The file is safetensors; its metadata \"vov.weights\" holds the \
                  resolved spec, the parameter counts, the input shape and the epoch. A cut \
                  transfer resumes where it stopped; the file is checked against the SHA-256 \
                  the host lists and only then written to --out. A Slurm trial's come \
                  from its folder in the shared work directory.\n\n\
                  Examples:\n  vovctl weights t3f2a9c1d0b4e5f60\n  \
                  vovctl weights t3f2a9c1d0b4e5f60 --out best.safetensors --json"
)]
pub struct WeightsArgs {
    /// The trial id (see `vovctl results SWEEP`).
    pub trial: String,
    /// Where to write them [default: TRIAL.safetensors here].
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print what was written as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Hosts (credentials for the host the trial ran on).
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Written<'a> {
    trial_id: &'a str,
    path: String,
    bytes: u64,
    sha256: &'a str,
    attempts: u32,
}

pub(super) fn fetch_error(trial: &str, url: &str, e: FetchError) -> CliError {
    let text = format!("{trial}: {url}: {e}");
    match e {
        FetchError::Broken { .. } => CliError::Connection(text),
        _ => CliError::Usage(text),
    }
}

/// Where a trial's kept weights are.
pub(super) enum Holder {
    /// On a vovd host (the local vovd a local run used, started for this).
    Host(HostsConfig, Option<crate::local::LocalDaemon>),
    /// In a Slurm trial's folder on the shared filesystem.
    Folder(TrialDir),
}

/// Where `trial`'s weights are: its host's URL with the credentials of
/// `host_args`, the local vovd when there are no hosts, or its Slurm trial folder.
pub(super) fn holder(
    trial: &str,
    host_args: &HostArgs,
    store_args: &StoreArgs,
    store: &crate::store::ResultsStore,
) -> Result<Holder, CliError> {
    let err = |e: crate::store::StoreError| CliError::Usage(e.to_string());
    let row = store.trial(trial).map_err(err)?.ok_or_else(|| {
        CliError::Usage(format!(
            "'{trial}' is not a trial in {}",
            store_args.store.display()
        ))
    })?;
    let sweep = store.sweep_of(trial).map_err(err)?;
    let (cfg, source) = match stored_target(host_args, store, sweep.as_deref())?.0 {
        Target::Slurm(slurm) => {
            return Ok(Holder::Folder(TrialDir::new(&slurm.work_dir, trial)));
        }
        Target::Fleet(cfg, source) => (cfg, source),
    };
    if source == Source::None {
        let daemon = local_daemon(&store_args.store, "weights")?;
        let cfg = HostsConfig {
            urls: vec![daemon.url.clone()],
            ..HostsConfig::default()
        };
        return Ok(Holder::Host(cfg, Some(daemon)));
    }
    let url = row
        .host
        .ok_or_else(|| CliError::Usage(format!("'{trial}' was never placed on a host")))?;
    Ok(Holder::Host(
        HostsConfig {
            urls: vec![url],
            ..cfg
        },
        None,
    ))
}

/// Fetches or copies `trial`'s kept weights from `holder` to `dest` (a local
/// vovd started for it is stopped again).
pub(super) async fn get(holder: Holder, trial: &str, dest: &Path) -> Result<Fetched, CliError> {
    match holder {
        Holder::Folder(dir) => from_folder(&dir, trial, dest),
        Holder::Host(cfg, local) => {
            let fetched = from_host(&cfg, trial, dest).await;
            if let Some(daemon) = local {
                daemon.stop();
            }
            fetched
        }
    }
}

/// The weights a Slurm trial's folder lists in its result, copied and checked.
fn from_folder(dir: &TrialDir, trial: &str, dest: &Path) -> Result<Fetched, CliError> {
    let at = dir.root().display().to_string();
    let read = |e: std::io::Error| CliError::Usage(format!("{trial}: {at}: {e}"));
    let last = dir.read_attempt().map_err(read)?.max(1);
    let job = dir.best_result(last).map_err(read)?;
    let listed = job
        .and_then(|j| j.result)
        .and_then(|r| r.weights)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "{trial}: {at}: kept no weights (it has not succeeded, or its keep_weights is none)"
            ))
        })?;
    copy(&dir.weights(), &listed, dest).map_err(|e| fetch_error(trial, &at, e))
}

/// Fetches the weights of `trial` from its vovd host to `dest`.
async fn from_host(cfg: &HostsConfig, trial: &str, dest: &Path) -> Result<Fetched, CliError> {
    let mut host = hosts::connect(cfg)
        .map_err(|e| CliError::Usage(e.to_string()))?
        .remove(0);
    fetch(&mut host.client, trial, dest)
        .await
        .map_err(|e| fetch_error(trial, &host.url, e))
}

pub(super) async fn run(args: WeightsArgs) -> Result<ExitCode, CliError> {
    let store = args.store.open_existing()?;
    let dest = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.safetensors", args.trial)));
    let holder = holder(&args.trial, &args.hosts, &args.store, &store)?;
    let fetched = get(holder, &args.trial, &dest).await;
    let Fetched {
        path,
        bytes,
        sha256,
        attempts,
    } = fetched?;
    if args.json {
        let w = Written {
            trial_id: &args.trial,
            path: path.display().to_string(),
            bytes,
            sha256: &sha256,
            attempts,
        };
        print(&format!(
            "{}\n",
            serde_json::to_string(&w).unwrap_or_default()
        ));
    } else {
        eprintln!("wrote {} ({bytes} bytes, sha256 {sha256})", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
