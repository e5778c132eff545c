//! `vovctl data`: which host has which data set, and the command that installs
//! each missing one.

use std::process::ExitCode;

use clap::Args;
use vov_spec::DatasetName;

use super::common::{print, HostArgs, LocalDataArgs};
use super::target::{self, SweepTarget, Target};
use super::CliError;
use crate::datasets::{self, HostData};
use crate::hosts::Source;
use crate::report::table::markdown_table;

/// What to say when the target is a Slurm cluster.
const SLURM: &str = "the backend is Slurm: vovctl does not ask Slurm nodes for their data sets; \
check them from a job on the cluster, e.g. `srun vovd data list` or `srun vovd data verify`";

/// Arguments of `vovctl data`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  vovctl data --hosts gpu1:7070,gpu2:7070\n  vovctl data --json\n\n\
With no hosts configured it lists the data of the local vovd `vovctl sweep` would start \
(`vovd data list --data-dir DIR`). Below the table, one line per missing or broken data set \
names the command to run on that host.\n\n\
Exit codes: 0 every host answered (even with data missing), 1 a host could not be reached, \
2 usage error (Slurm nodes are not asked)."
)]
pub struct DataArgs {
    /// JSON output: one object per host with its data sets.
    #[arg(long)]
    pub json: bool,
    /// Hosts.
    #[command(flatten)]
    pub hosts: HostArgs,
    /// The local vovd's data (when no hosts are configured).
    #[command(flatten)]
    pub local_data: LocalDataArgs,
}

/// Every host's data sets, the local vovd's when no hosts are configured.
pub(super) async fn ask(target: &Target, local: &LocalDataArgs) -> Result<Vec<HostData>, CliError> {
    match target {
        Target::Slurm(_) => Err(CliError::Usage(SLURM.into())),
        Target::Fleet(_, Source::None) => {
            let dir = local.data_dir.clone();
            tokio::task::spawn_blocking(move || vec![datasets::ask_local(&dir)])
                .await
                .map_err(|e| CliError::Usage(e.to_string()))
        }
        Target::Fleet(cfg, _) => datasets::ask_fleet(cfg)
            .await
            .map_err(|e| CliError::Usage(e.to_string())),
    }
}

/// The columns: every data set vov knows, then any other a host reports.
fn columns(hosts: &[HostData]) -> Vec<String> {
    let mut names: Vec<String> = DatasetName::NAMES.iter().map(|n| n.to_string()).collect();
    for h in hosts {
        for d in h.datasets.iter().flatten() {
            if !names.contains(&d.name) {
                names.push(d.name.clone());
            }
        }
    }
    names
}

/// One row per host: a cell per column, or the host's error.
fn rows(hosts: &[HostData], columns: &[String]) -> Vec<Vec<String>> {
    hosts
        .iter()
        .map(|h| {
            let mut row = vec![h.host.clone()];
            match &h.datasets {
                Ok(ds) => row.extend(columns.iter().map(|c| {
                    ds.iter()
                        .find(|d| &d.name == c)
                        .map_or_else(|| "not reported".to_string(), datasets::cell)
                })),
                Err(e) => {
                    row.push(format!("unreachable: {e}"));
                    row.extend(columns.iter().skip(1).map(|_| String::new()));
                }
            }
            row
        })
        .collect()
}

fn json(hosts: &[HostData]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = hosts
        .iter()
        .map(|h| match &h.datasets {
            Ok(ds) => serde_json::json!({"host": h.host, "reachable": true, "datasets": ds}),
            Err(e) => serde_json::json!({"host": h.host, "reachable": false, "error": e}),
        })
        .collect();
    serde_json::Value::Array(list)
}

pub(super) async fn run(args: DataArgs) -> Result<ExitCode, CliError> {
    let target = target::resolve(&args.hosts, SweepTarget::default())?;
    let hosts = ask(&target, &args.local_data).await?;
    if args.json {
        print(&(serde_json::to_string_pretty(&json(&hosts)).unwrap_or_default() + "\n"));
    } else {
        let columns = columns(&hosts);
        let mut header = vec!["host"];
        header.extend(columns.iter().map(String::as_str));
        let mut text = markdown_table(&header, &rows(&hosts, &columns));
        for line in datasets::fix_lines(&hosts) {
            text.push_str(&line);
            text.push('\n');
        }
        print(&text);
    }
    let all_answered = hosts.iter().all(|h| h.datasets.is_ok());
    Ok(super::outcome(all_answered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::HostDataset;
    use vov_spec::DatasetState;

    #[test]
    fn rows_hold_cells_or_the_error() {
        let hosts = vec![
            HostData {
                host: "http://a:1".into(),
                datasets: Ok(vec![HostDataset {
                    name: "cifar10".into(),
                    state: DatasetState::Present,
                    train_images: 5,
                    val_images: 1,
                    detail: String::new(),
                    fix: String::new(),
                }]),
            },
            HostData {
                host: "http://b:1".into(),
                datasets: Err("Unavailable: refused".into()),
            },
        ];
        let cols = columns(&hosts);
        assert_eq!(cols, DatasetName::NAMES);
        let r = rows(&hosts, &cols);
        assert_eq!(r[0][..3], ["http://a:1", "present 5/1", "not reported"]);
        assert_eq!(r[1][1], "unreachable: Unavailable: refused");
        assert_eq!(r[1].len(), cols.len() + 1);
    }
}
