//! `vovctl prune SWEEP`: removes a sweep's kept weights from its hosts (or its
//! Slurm trial folders), sparing each configuration's best unless `--all`.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use vov_proto::pb;
use vov_proto::taskdir::TrialDir;

use super::common::{local_daemon, print, stored_target, HostArgs, StoreArgs};
use super::target::Target;
use super::{outcome, CliError};
use crate::backend::grpc::request;
use crate::hosts::{self, HostsConfig, Source};
use crate::kept::{best_per_config, with_weights};
use crate::report::table::markdown_table;
use crate::store::{ResultsStore, TrialRow};

/// Arguments of `vovctl prune`.
#[derive(Debug, Args)]
#[command(
    after_help = "Kept weights stay on their hosts until pruned or trimmed by the \
host's max_weights_bytes. Each configuration's best trial (highest MaxValAcc over its repeats) \
keeps its weights unless --all. Removed weights are no longer listed in the trials' results, \
here or on the hosts.\n\nExamples:\n  vovctl prune published --dry-run\n  vovctl prune published\n  \
vovctl prune published --all --json"
)]
pub struct PruneArgs {
    /// The sweep.
    pub sweep: String,
    /// Remove every trial's weights, each configuration's best too.
    #[arg(long)]
    pub all: bool,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object per trial.
    #[arg(long)]
    pub json: bool,
    /// Hosts (credentials for the hosts the trials ran on).
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// One trial's weights, removed or not.
#[derive(Debug, Serialize)]
struct Pruned {
    trial_id: String,
    label: String,
    host: String,
    /// Bytes freed (the listed size on a dry run).
    bytes: u64,
    removed: bool,
    error: Option<String>,
}

/// Removes the weights of `doomed` from the Slurm trial folders under `work_dir`.
fn from_folders(work_dir: &std::path::Path, doomed: &[&TrialRow]) -> Vec<Pruned> {
    doomed
        .iter()
        .map(|t| {
            let path = TrialDir::new(work_dir, &t.trial_id).weights();
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            let gone = match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Some(format!("{}: {e}", path.display()))
                }
                _ => None,
            };
            pruned(t, work_dir.display().to_string(), bytes, gone)
        })
        .collect()
}

fn pruned(t: &TrialRow, host: String, bytes: u64, error: Option<String>) -> Pruned {
    Pruned {
        trial_id: t.trial_id.clone(),
        label: t.label.clone(),
        host,
        bytes,
        removed: error.is_none(),
        error,
    }
}

/// Asks each trial's host to remove its weights (`local`: the local vovd's
/// URL, for every trial).
async fn from_hosts(cfg: HostsConfig, local: Option<&str>, doomed: &[&TrialRow]) -> Vec<Pruned> {
    let url_of = |t: &TrialRow| local.map(str::to_string).or_else(|| t.host.clone());
    let mut urls: Vec<String> = doomed.iter().filter_map(|t| url_of(t)).collect();
    urls.sort();
    urls.dedup();
    let cfg = HostsConfig { urls, ..cfg };
    let mut clients: HashMap<String, crate::hosts::Client> = match hosts::connect(&cfg) {
        Ok(hs) => hs.into_iter().map(|h| (h.url, h.client)).collect(),
        Err(e) => {
            let e = e.to_string();
            return doomed
                .iter()
                .map(|t| pruned(t, String::new(), 0, Some(e.clone())))
                .collect();
        }
    };
    let mut out = Vec::new();
    for t in doomed {
        let Some(url) = url_of(t) else {
            out.push(pruned(
                t,
                String::new(),
                0,
                Some("never placed on a host".into()),
            ));
            continue;
        };
        let Some(client) = clients.get_mut(&url) else {
            out.push(pruned(t, url, 0, Some("not connected".into())));
            continue;
        };
        let req = pb::DropWeightsRequest {
            trial_id: t.trial_id.clone(),
        };
        match client.drop_weights(request(req)).await {
            Ok(r) => out.push(pruned(t, url, r.into_inner().bytes_freed, None)),
            Err(s) => out.push(pruned(t, url, 0, Some(s.message().to_string()))),
        }
    }
    out
}

async fn remove(
    args: &PruneArgs,
    store: &ResultsStore,
    doomed: &[&TrialRow],
) -> Result<Vec<Pruned>, CliError> {
    match stored_target(&args.hosts, store, Some(&args.sweep))?.0 {
        Target::Slurm(slurm) => Ok(from_folders(&slurm.work_dir, doomed)),
        Target::Fleet(cfg, Source::None) => {
            let daemon = local_daemon(&args.store.store, "prune")?;
            let out = from_hosts(cfg, Some(&daemon.url.clone()), doomed).await;
            daemon.stop();
            Ok(out)
        }
        Target::Fleet(cfg, _) => Ok(from_hosts(cfg, None, doomed).await),
    }
}

fn show(rows: &[Pruned], json: bool) {
    if json {
        for r in rows {
            print(&format!(
                "{}\n",
                serde_json::to_string(r).unwrap_or_default()
            ));
        }
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.trial_id.clone(),
                r.label.clone(),
                r.host.clone(),
                r.bytes.to_string(),
                r.error.clone().unwrap_or_else(|| "removed".into()),
            ]
        })
        .collect();
    print(&markdown_table(
        &["trial", "config", "host", "bytes", "outcome"],
        &cells,
    ));
}

pub(super) async fn run(args: PruneArgs) -> Result<ExitCode, CliError> {
    let store = args.store.open_existing()?;
    let err = |e: crate::store::StoreError| CliError::Usage(e.to_string());
    if !store.has_sweep(&args.sweep).map_err(err)? {
        return Err(CliError::Usage(format!(
            "no sweep named '{}' in {}",
            args.sweep,
            args.store.store.display()
        )));
    }
    let trials = store.trials(&args.sweep).map_err(err)?;
    let spared: Vec<&str> = if args.all {
        Vec::new()
    } else {
        best_per_config(&trials)
            .iter()
            .map(|t| t.trial_id.as_str())
            .collect()
    };
    let doomed: Vec<&TrialRow> = with_weights(&trials)
        .filter(|t| !spared.contains(&t.trial_id.as_str()))
        .collect();
    if args.dry_run {
        let listed = |t: &TrialRow| {
            t.result
                .as_ref()
                .and_then(|r| r.weights.as_ref())
                .map_or(0, |w| w.bytes)
        };
        let rows: Vec<Pruned> = doomed
            .iter()
            .map(|t| Pruned {
                removed: false,
                ..pruned(t, t.host.clone().unwrap_or_default(), listed(t), None)
            })
            .collect();
        show(&rows, args.json);
        eprintln!(
            "would remove {} weights files; {} kept",
            rows.len(),
            spared.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows = remove(&args, &store, &doomed).await?;
    for r in rows.iter().filter(|r| r.removed) {
        store.forget_weights(&r.trial_id).map_err(err)?;
    }
    show(&rows, args.json);
    let freed: u64 = rows.iter().filter(|r| r.removed).map(|r| r.bytes).sum();
    let removed = rows.iter().filter(|r| r.removed).count();
    eprintln!(
        "removed {removed} weights files ({freed} bytes); {} kept",
        spared.len()
    );
    Ok(outcome(rows.iter().all(|r| r.removed)))
}
