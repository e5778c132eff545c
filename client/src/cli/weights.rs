//! `vovctl weights TRIAL [--out FILE]`: a trial's kept weights, from its host.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::common::{local_daemon, print, stored_target, HostArgs, StoreArgs};
use super::target::Target;
use super::CliError;
use crate::hosts::{self, HostsConfig, Source};
use crate::weights::{fetch, FetchError, Fetched};

/// Arguments of `vovctl weights`.
#[derive(Debug, Args)]
#[command(
    after_help = "The trial must have asked for them (keep_weights = \"final\" or \"best\" in its \
                  sweep file). The file is safetensors; its metadata \"vov.weights\" holds the \
                  resolved spec, the parameter counts, the input shape and the epoch. A cut \
                  transfer resumes where it stopped; the file is checked against the SHA-256 \
                  the host lists and only then written to --out.\n\n\
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

fn fetch_error(trial: &str, url: &str, e: FetchError) -> CliError {
    let text = format!("{trial}: {url}: {e}");
    match e {
        FetchError::Broken { .. } => CliError::Connection(text),
        _ => CliError::Usage(text),
    }
}

/// The URL and credentials of the host holding `args.trial`'s weights; the local
/// vovd a local run used is started when there are no hosts.
fn host_of(
    args: &WeightsArgs,
    store: &crate::store::ResultsStore,
) -> Result<(HostsConfig, Option<crate::local::LocalDaemon>), CliError> {
    let err = |e: crate::store::StoreError| CliError::Usage(e.to_string());
    let row = store.trial(&args.trial).map_err(err)?.ok_or_else(|| {
        CliError::Usage(format!(
            "'{}' is not a trial in {}",
            args.trial,
            args.store.store.display()
        ))
    })?;
    let sweep = store.sweep_of(&args.trial).map_err(err)?;
    let (cfg, source) = match stored_target(&args.hosts, store, sweep.as_deref())?.0 {
        Target::Slurm(_) => {
            return Err(CliError::Usage(format!(
                "'{}' ran on Slurm: kept weights are kept by vovd hosts only",
                args.trial
            )))
        }
        Target::Fleet(cfg, source) => (cfg, source),
    };
    if source == Source::None {
        let daemon = local_daemon(&args.store.store, "weights")?;
        let cfg = HostsConfig {
            urls: vec![daemon.url.clone()],
            ..HostsConfig::default()
        };
        return Ok((cfg, Some(daemon)));
    }
    let url = row
        .host
        .ok_or_else(|| CliError::Usage(format!("'{}' was never placed on a host", args.trial)))?;
    Ok((
        HostsConfig {
            urls: vec![url],
            ..cfg
        },
        None,
    ))
}

pub(super) async fn run(args: WeightsArgs) -> Result<ExitCode, CliError> {
    let store = args.store.open_existing()?;
    let (cfg, local) = host_of(&args, &store)?;
    let dest = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.safetensors", args.trial)));
    let mut host = hosts::connect(&cfg)
        .map_err(|e| CliError::Usage(e.to_string()))?
        .remove(0);
    let fetched = fetch(&mut host.client, &args.trial, &dest).await;
    if let Some(daemon) = local {
        daemon.stop();
    }
    let Fetched {
        path,
        bytes,
        sha256,
        attempts,
    } = fetched.map_err(|e| fetch_error(&args.trial, &host.url, e))?;
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
