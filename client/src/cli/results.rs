//! `vovctl results SWEEP [--collect]` and `vovctl report SWEEP`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use vov_proto::pb;

use super::common::{print, HostArgs, StoreArgs};
use super::{outcome, CliError};
use crate::backend::grpc::request;
use crate::hosts;
use crate::report::{self, plot, table, Report};
use crate::store::{ResultsStore, TrialRow, TrialState};

/// Output formats of `results`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ResultsFormat {
    /// An aligned Markdown table.
    Table,
    /// CSV.
    Csv,
    /// A JSON array.
    Json,
}

/// Output formats of `report`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    /// Markdown tables.
    Md,
    /// CSV.
    Csv,
    /// JSON.
    Json,
}

/// Arguments of `vovctl results`.
#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// The sweep name.
    pub sweep: String,
    /// First pull finished results of this sweep from every host into the store.
    #[arg(long)]
    pub collect: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ResultsFormat,
    /// Hosts (for --collect).
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Arguments of `vovctl report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The sweep name.
    pub sweep: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Also write report.md, report.csv, report.json and SVG plots to DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
}

fn rows(store: &ResultsStore, sweep: &str) -> Result<Vec<TrialRow>, CliError> {
    if !store
        .has_sweep(sweep)
        .map_err(|e| CliError::Usage(e.to_string()))?
    {
        return Err(CliError::Usage(format!(
            "no sweep named '{sweep}' in the store"
        )));
    }
    store
        .trials(sweep)
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// Pulls every job of `sweep` from every host into the store; returns how many
/// results were new.
async fn collect(
    store: &mut ResultsStore,
    sweep: &str,
    host_args: &HostArgs,
) -> Result<usize, CliError> {
    let (cfg, _) = host_args.resolve(None)?;
    if cfg.urls.is_empty() {
        return Err(CliError::Usage(
            "--collect needs hosts (--hosts, VOVCTL_HOSTS or ~/.config/vov/hosts.toml)".into(),
        ));
    }
    let mut new = 0;
    let mut reached = 0;
    for h in hosts::connect(&cfg).map_err(|e| CliError::Usage(e.to_string()))? {
        let mut client = h.client.clone();
        let mut token = String::new();
        loop {
            let req = request(pb::ListRequest {
                sweep_id: sweep.to_string(),
                states: Vec::new(),
                page_size: 500,
                page_token: token.clone(),
            });
            let page = match client.list(req).await {
                Ok(p) => p.into_inner(),
                Err(e) => {
                    eprintln!("{}: {}", h.url, e.message());
                    break;
                }
            };
            for job in &page.jobs {
                store
                    .adopt_remote(sweep, job)
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                new += usize::from(record(store, &h.url, job)?);
            }
            if page.next_page_token.is_empty() {
                reached += 1;
                break;
            }
            token = page.next_page_token;
        }
    }
    if reached == 0 {
        return Err(CliError::Connection(format!(
            "no host reachable: {}",
            cfg.urls.join(", ")
        )));
    }
    Ok(new)
}

fn record(store: &ResultsStore, url: &str, job: &pb::Job) -> Result<bool, CliError> {
    let err = |e: crate::store::StoreError| CliError::Usage(e.to_string());
    match (crate::store::state::from_pb(job.state), &job.result) {
        (TrialState::Succeeded, Some(result)) => {
            store.record_result(&job.trial_id, url, result).map_err(err)
        }
        (state, _) => {
            let failure = crate::store::state::failure_name(job.failure);
            store
                .set_state(&job.trial_id, state, failure, &job.message)
                .map_err(err)?;
            Ok(false)
        }
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(String::new, |x| format!("{x:.prec$}"))
}

/// `vovctl results`.
pub(super) async fn results(args: ResultsArgs) -> Result<ExitCode, CliError> {
    let mut store = args.store.open()?;
    if args.collect {
        let new = collect(&mut store, &args.sweep, &args.hosts).await?;
        eprintln!("collected {new} new result(s)");
    }
    let rows = rows(&store, &args.sweep)?;
    let header = [
        "trial",
        "config",
        "repeat",
        "state",
        "host",
        "max val acc %",
        "epoch",
        "train s/ep",
        "p50 ms",
        "batch32 s",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|t| {
            let r = t.result.as_ref();
            vec![
                t.trial_id.clone(),
                t.label.clone(),
                t.repeat.to_string(),
                if t.failure.is_empty() {
                    t.state.to_string()
                } else {
                    format!("{} ({})", t.state, t.failure)
                },
                t.host.clone().unwrap_or_default(),
                opt(r.map(|r| r.max_val_acc * 100.0), 2),
                r.map(|r| r.max_val_acc_epoch.to_string())
                    .unwrap_or_default(),
                opt(r.and_then(|r| r.train_s_per_epoch), 2),
                opt(r.and_then(|r| r.batch1.as_ref().map(|b| b.p50_ms)), 3),
                opt(r.and_then(|r| r.batch32.as_ref().map(|b| b.total_s)), 3),
            ]
        })
        .collect();
    match args.format {
        ResultsFormat::Table => print(&table::markdown_table(&header, &cells)),
        ResultsFormat::Csv => {
            let mut out = header.join(",") + "\n";
            for c in &cells {
                out += &(c
                    .iter()
                    .map(|f| {
                        if f.contains(',') {
                            format!("\"{f}\"")
                        } else {
                            f.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
                    + "\n");
            }
            print(&out);
        }
        ResultsFormat::Json => {
            let items: Vec<serde_json::Value> = cells
                .iter()
                .map(|c| {
                    serde_json::Value::Object(
                        header
                            .iter()
                            .zip(c)
                            .map(|(h, v)| (h.to_string(), serde_json::Value::String(v.clone())))
                            .collect(),
                    )
                })
                .collect();
            print(&(serde_json::to_string_pretty(&items).unwrap_or_default() + "\n"));
        }
    }
    Ok(outcome(report::all_succeeded(&rows)))
}

/// Writes report.md, report.csv, report.json, curves.svg and accuracy_vs_latency.svg.
pub(super) fn write_report_files(
    dir: &Path,
    rep: &Report,
    rows: &[TrialRow],
) -> Result<(), CliError> {
    let fail = |e: String| CliError::Usage(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    for (name, text) in [
        ("report.md", table::markdown(rep)),
        ("report.csv", table::csv(rep)),
        ("report.json", table::json(rep)),
    ] {
        std::fs::write(dir.join(name), text).map_err(|e| fail(e.to_string()))?;
    }
    plot::curves(rows, &dir.join("curves.svg")).map_err(|e| fail(e.to_string()))?;
    plot::accuracy_vs_latency(rows, &dir.join("accuracy_vs_latency.svg"))
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// `vovctl report`.
pub(super) fn report(args: ReportArgs) -> Result<ExitCode, CliError> {
    let store = args.store.open_existing()?;
    let rows = rows(&store, &args.sweep)?;
    let rep = report::build(&args.sweep, &rows);
    print(&match args.format {
        ReportFormat::Md => table::markdown(&rep),
        ReportFormat::Csv => table::csv(&rep),
        ReportFormat::Json => table::json(&rep),
    });
    if let Some(dir) = &args.out {
        write_report_files(dir, &rep, &rows)?;
        eprintln!("wrote report.md, report.csv, report.json, curves.svg and accuracy_vs_latency.svg to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
