//! `vovctl sweep FILE --dry-run`: the trials, what is left to run, where each
//! would go and an ETA, without starting or writing anything. A trial whose data
//! set no host has is marked `no data`, with the command that installs it.

use std::process::ExitCode;

use vov_proto::pb;

use super::common::{print, LocalDataArgs};
use super::target::Target;
use super::CliError;
use crate::backend::grpc::request;
use crate::datasets::{self, HostData};
use crate::hosts::{self, HostsConfig, Source};
use crate::report::table;
use crate::store::{ResultsStore, TrialState};
use crate::sweep;

/// What a dry run describes.
pub(super) struct DryRun<'a> {
    /// The results store, when there is one (read only).
    pub store: Option<&'a ResultsStore>,
    /// The expanded sweep.
    pub sweep: &'a sweep::Sweep,
    /// Where it would run.
    pub target: &'a Target,
    /// Whether finished trials would run again.
    pub rerun: bool,
    /// The local vovd's data (when no hosts are configured).
    pub local_data: &'a LocalDataArgs,
}

/// A slot a trial can be described as placed on.
struct Slot {
    /// How the placement column names it.
    label: String,
    /// Its host in [`Plan::data`]; `None` where no host answers for it (Slurm).
    host: Option<usize>,
}

/// The hosts as a dry run sees them.
#[derive(Default)]
struct Plan {
    slots: Vec<Slot>,
    /// Trials that would run at once.
    parallel: usize,
    fingerprints: Vec<String>,
    /// Each host's data sets (nothing for Slurm: unknown).
    data: Vec<HostData>,
}

impl Plan {
    /// The slots a trial on `dataset` can go to: those of hosts that have it;
    /// else those of hosts that could not say; `None` when no host has it.
    fn eligible(&self, dataset: &str) -> Option<Vec<&Slot>> {
        let having: Vec<&Slot> = self
            .slots
            .iter()
            .filter(|s| s.host.is_some_and(|h| self.data[h].has(dataset)))
            .collect();
        if !having.is_empty() {
            return Some(having);
        }
        let unknown: Vec<&Slot> = self
            .slots
            .iter()
            .filter(|s| s.host.is_none_or(|h| self.data[h].datasets.is_err()))
            .collect();
        (!unknown.is_empty()).then_some(unknown)
    }
}

/// One line per host that could install `dataset`, which no host has.
fn missing_lines(plan: &Plan, dataset: &str) -> Vec<String> {
    plan.data
        .iter()
        .filter_map(|h| {
            h.fix(dataset)
                .map(|fix| format!("{dataset}: no host has it; run `{fix}` on host {}", h.host))
        })
        .collect()
}

pub(super) async fn run(d: DryRun<'_>) -> Result<ExitCode, CliError> {
    let sw = d.sweep;
    let finished = |id: &str| {
        d.store
            .and_then(|s| s.trial(id).ok().flatten())
            .is_some_and(|r| r.state == TrialState::Succeeded)
    };
    let plan = match d.target {
        Target::Fleet(cfg, source) => plan_hosts(d.store, cfg, *source, d.local_data).await,
        Target::Slurm(cfg) => {
            let name = format!(
                "slurm {}",
                cfg.partition.as_deref().unwrap_or("default partition")
            );
            let parallel = if cfg.max_parallel == 0 {
                sw.trials.len()
            } else {
                cfg.max_parallel as usize
            };
            Plan {
                slots: vec![Slot {
                    label: name,
                    host: None,
                }],
                parallel: parallel.max(1),
                ..Plan::default()
            }
        }
    };
    let mut rows = Vec::new();
    let (mut eta_s, mut eta_known) = (0.0, true);
    let (mut to_run, mut no_data) = (0usize, 0usize);
    let mut missing: Vec<String> = Vec::new();
    for t in &sw.trials {
        let run = d.rerun || !finished(&t.id);
        let dataset = t.spec.dataset.as_str();
        let (status, host) = match (run, plan.eligible(dataset)) {
            (false, _) => ("finished", String::new()),
            (true, None) => {
                no_data += 1;
                if !missing.iter().any(|m| m == dataset) {
                    missing.push(dataset.to_string());
                }
                ("no data", String::new())
            }
            (true, Some(slots)) => {
                to_run += 1;
                ("to run", slots[(to_run - 1) % slots.len()].label.clone())
            }
        };
        let per_epoch = plan.fingerprints.iter().find_map(|fp| {
            d.store
                .and_then(|s| s.seconds_per_epoch(&t.spec.model, fp).ok().flatten())
        });
        match (status, per_epoch) {
            ("to run", Some(s)) => eta_s += s * f64::from(t.spec.epochs),
            ("to run", None) => eta_known = false,
            _ => {}
        }
        rows.push(vec![
            t.id.clone(),
            t.label.clone(),
            t.repeat.to_string(),
            t.spec.epochs.to_string(),
            status.into(),
            host,
            per_epoch.map_or("n/a".into(), |s| format!("{s:.1}")),
        ]);
    }
    print(&table::markdown_table(
        &[
            "trial",
            "config",
            "repeat",
            "epochs",
            "status",
            "placement",
            "s/epoch seen",
        ],
        &rows,
    ));
    let mut text = String::new();
    for dataset in &missing {
        let lines = missing_lines(&plan, dataset);
        if lines.is_empty() {
            text.push_str(&format!("{dataset}: no host has it\n"));
        }
        for line in lines {
            text.push_str(&line);
            text.push('\n');
        }
    }
    let eta = if to_run == 0 {
        "nothing to run".to_string()
    } else if eta_known {
        format!(
            "ETA about {} on {} slot(s)",
            humanize(eta_s / plan.parallel.max(1) as f64),
            plan.parallel
        )
    } else {
        "ETA unknown (no earlier timings of these models on this hardware)".to_string()
    };
    print(&format!(
        "{}\n{} trials, {} finished, {to_run} to run, {no_data} no data; {eta}\n",
        if text.is_empty() {
            String::new()
        } else {
            format!("\n{}", text.trim_end())
        },
        sw.trials.len(),
        sw.trials.len() - to_run - no_data,
    ));
    Ok(ExitCode::SUCCESS)
}

/// The hosts' slots, fingerprints and data sets, without starting or writing
/// anything: remote hosts are asked, a local run is described (its data from
/// `vovd data list`).
async fn plan_hosts(
    store: Option<&ResultsStore>,
    cfg: &HostsConfig,
    source: Source,
    local: &LocalDataArgs,
) -> Plan {
    if source == Source::None {
        let fp = store.and_then(|s| s.host_fingerprint("local").ok().flatten());
        let dir = local.data_dir.clone();
        let data = tokio::task::spawn_blocking(move || datasets::ask_local(&dir))
            .await
            .unwrap_or_else(|e| HostData {
                host: datasets::LOCAL.into(),
                datasets: Err(e.to_string()),
            });
        return Plan {
            slots: vec![Slot {
                label: "local vovd".into(),
                host: Some(0),
            }],
            parallel: 1,
            fingerprints: fp.into_iter().collect(),
            data: vec![data],
        };
    }
    let Ok(hosts) = hosts::connect(cfg) else {
        let slots = cfg.urls.iter().map(|u| Slot {
            label: u.clone(),
            host: None,
        });
        return Plan {
            slots: slots.collect(),
            parallel: cfg.urls.len(),
            ..Plan::default()
        };
    };
    let mut plan = Plan::default();
    for (i, h) in hosts.into_iter().enumerate() {
        let mut client = h.client.clone();
        let datasets = match client.host_info(request(pb::HostInfoRequest {})).await {
            Ok(info) => {
                let info = info.into_inner();
                plan.slots.extend((0..info.slots_total).map(|s| Slot {
                    label: format!("{} slot {s}", h.url),
                    host: Some(i),
                }));
                plan.fingerprints.extend(info.fingerprint.map(|fp| fp.id));
                Ok(info
                    .datasets
                    .iter()
                    .map(vov_proto::convert::dataset_report)
                    .collect())
            }
            Err(e) => {
                plan.slots.push(Slot {
                    label: format!("{} (unreachable: {})", h.url, e.code()),
                    host: Some(i),
                });
                Err(e.message().to_string())
            }
        };
        plan.data.push(HostData {
            host: h.url,
            datasets,
        });
    }
    plan.parallel = plan.slots.len();
    plan
}

fn humanize(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
