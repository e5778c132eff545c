//! `vovctl hosts`: each host's state.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use vov_proto::pb;

use super::common::{print, stored_target, HostArgs, StoreArgs};
use super::target::{self, SweepTarget, Target};
use super::CliError;
use crate::backend::grpc::request;
use crate::backend::slurm::config::SlurmConfig;
use crate::backend::slurm::SlurmBackend;
use crate::backend::Backend;
use crate::hosts::{self, Source};
use crate::report::table::markdown_table;

/// Arguments of `vovctl hosts`.
#[derive(Debug, Args)]
pub struct HostsArgs {
    /// A sweep file, or the name of a sweep in the store: its [hosts] count.
    pub sweep: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Hosts.
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Store (for a sweep given by name).
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The backend for `vovctl hosts [SWEEP]`: a sweep file's `[hosts]` or
/// `[slurm]`, or those a sweep in the store remembers.
fn resolve(args: &HostsArgs) -> Result<Target, CliError> {
    let Some(sweep) = &args.sweep else {
        return target::resolve(&args.hosts, SweepTarget::default());
    };
    let file = Path::new(sweep);
    if file.is_file() {
        let sw = crate::sweep::load(file, &[]).map_err(|e| CliError::Usage(e.to_string()))?;
        let on = SweepTarget {
            hosts: sw.def.hosts.as_ref(),
            slurm: sw.def.slurm.as_ref(),
            backend: None,
        };
        return target::resolve(&args.hosts, on);
    }
    let store = args.store.open_existing()?;
    if !store
        .has_sweep(sweep)
        .map_err(|e| CliError::Usage(e.to_string()))?
    {
        return Err(CliError::Usage(format!(
            "'{sweep}' is neither a sweep file nor a sweep in {}",
            args.store.store.display()
        )));
    }
    Ok(stored_target(&args.hosts, &store, Some(sweep))?.0)
}

/// The Slurm partition's nodes, from one `sinfo` call.
async fn slurm_nodes(cfg: &SlurmConfig, json: bool) -> Result<ExitCode, CliError> {
    let backend = SlurmBackend::new(cfg.clone());
    let nodes = backend
        .nodes()
        .await
        .map_err(|e| CliError::Connection(format!("{}: {e}", backend.name())))?;
    if json {
        let list: Vec<_> = nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "node": n.name, "partition": n.partition, "state": n.state,
                    "cpus": n.cpus, "memory_mb": n.memory_mb, "gpus": n.gpus,
                })
            })
            .collect();
        print(&(serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"));
    } else {
        let rows: Vec<Vec<String>> = nodes
            .iter()
            .map(|n| {
                vec![
                    n.name.clone(),
                    n.partition.clone(),
                    n.state.clone(),
                    n.cpus.to_string(),
                    n.memory_mb.to_string(),
                    n.gpus.to_string(),
                ]
            })
            .collect();
        print(&markdown_table(
            &["node", "partition", "state", "cpus", "memory MB", "gpus"],
            &rows,
        ));
    }
    if nodes.is_empty() {
        return Err(CliError::Connection(format!(
            "{}: sinfo lists no nodes",
            backend.name()
        )));
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn run(args: HostsArgs) -> Result<ExitCode, CliError> {
    let (cfg, source) = match resolve(&args)? {
        Target::Slurm(cfg) => return slurm_nodes(&cfg, args.json).await,
        Target::Fleet(cfg, source) => (cfg, source),
    };
    if source == Source::None {
        print("no hosts configured (--hosts, VOVCTL_HOSTS, the sweep's [hosts], ~/.config/vov/hosts.toml): `vovctl sweep` would start a local vovd\n");
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    let mut json = Vec::new();
    let mut reachable = 0;
    for h in hosts::connect(&cfg).map_err(|e| CliError::Usage(e.to_string()))? {
        let mut client = h.client.clone();
        match client.host_info(request(pb::HostInfoRequest {})).await {
            Ok(info) => {
                reachable += 1;
                let i = info.into_inner();
                let fp = i.fingerprint.clone().unwrap_or_default();
                let used = i.slots_total - i.slots_free;
                rows.push(vec![
                    h.url.clone(),
                    "yes".into(),
                    i.version.clone(),
                    format!("{} ({})", fp.device_name, fp.id),
                    format!("{used}/{}", i.slots_total),
                    i.queued.to_string(),
                    i.datasets
                        .iter()
                        .filter(|d| d.available)
                        .map(|d| d.name.clone())
                        .collect::<Vec<_>>()
                        .join(" "),
                ]);
                json.push(serde_json::json!({
                    "host": h.url, "reachable": true, "version": i.version, "hostname": i.hostname,
                    "fingerprint": fp.id, "device": fp.device_name, "slots_total": i.slots_total,
                    "slots_used": used, "running": used, "queued": i.queued,
                }));
            }
            Err(e) => {
                rows.push(vec![
                    h.url.clone(),
                    format!("no: {}", e.message()),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
                json.push(
                    serde_json::json!({"host": h.url, "reachable": false, "error": e.message()}),
                );
            }
        }
    }
    if args.json {
        print(&(serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"));
    } else {
        print(&markdown_table(
            &[
                "host",
                "reachable",
                "version",
                "fingerprint",
                "slots used",
                "queued",
                "data sets",
            ],
            &rows,
        ));
    }
    if reachable == 0 {
        return Err(CliError::Connection("no host is reachable".into()));
    }
    Ok(ExitCode::SUCCESS)
}
