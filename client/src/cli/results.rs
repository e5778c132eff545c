//! `vovctl results SWEEP [--collect]` and `vovctl report SWEEP`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;
use vov_proto::pb;

use super::common::{local_daemon, print, stored_target, HostArgs, StoreArgs};
use super::target::Target;
use super::{outcome, CliError};
use crate::backend::grpc::request;
use crate::backend::slurm::SlurmBackend;
use crate::backend::Backend;
use crate::hosts::{self, HostsConfig, Source};
use crate::report::search::{history, Histories};
use crate::report::{self, table, Report};
use crate::search::SearchDef;
use crate::store::{ResultsStore, TrialRow, TrialState};

/// Output formats of `results`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ResultsFormat {
    /// An aligned Markdown table.
    Table,
    /// CSV (RFC 4180 quoting), headed by the JSON keys.
    Csv,
    /// A JSON array of objects with snake_case keys and numbers as numbers.
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
    /// With --collect: also fetch each configuration's best kept weights (the
    /// highest MaxValAcc over its repeats) into --weights-dir.
    #[arg(long, requires = "collect")]
    pub weights: bool,
    /// Where --weights writes them, as TRIAL.safetensors [default: SWEEP-weights].
    #[arg(long, value_name = "DIR", requires = "weights")]
    pub weights_dir: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ResultsFormat,
    /// Hosts (for --collect; else the sweep's remembered [hosts], ...).
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
    store_path: &Path,
    sweep: &str,
    host_args: &HostArgs,
) -> Result<usize, CliError> {
    let (mut cfg, source) = match stored_target(host_args, store, Some(sweep))?.0 {
        Target::Slurm(slurm) => {
            return collect_slurm(store, sweep, &SlurmBackend::new(slurm)).await;
        }
        Target::Fleet(cfg, source) => (cfg, source),
    };
    // No hosts: the local vovd a local run used, when there was one.
    let mut local = None;
    if source == Source::None {
        let daemon = local_daemon(store_path, "--collect")?;
        cfg = HostsConfig {
            urls: vec![daemon.url.clone()],
            ..HostsConfig::default()
        };
        local = Some(daemon);
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
    if let Some(daemon) = local {
        daemon.stop();
    }
    if reached == 0 {
        return Err(CliError::Connection(format!(
            "no host reachable: {}",
            cfg.urls.join(", ")
        )));
    }
    Ok(new)
}

/// Records every trial of `sweep` that the Slurm work directory holds, whoever
/// submitted it; returns how many results were new.
async fn collect_slurm(
    store: &mut ResultsStore,
    sweep: &str,
    backend: &SlurmBackend,
) -> Result<usize, CliError> {
    let jobs = backend
        .list(sweep)
        .await
        .map_err(|e| CliError::Connection(format!("{}: {e}", backend.name())))?;
    let mut new = 0;
    for job in &jobs {
        store
            .adopt_remote(sweep, job)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        new += usize::from(record(store, backend.name(), job)?);
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

/// One trial as `results` gives it: typed for JSON and CSV (snake_case keys,
/// numbers as numbers, absent values as null or an empty field).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct ResultLine {
    /// Trial id.
    trial: String,
    /// Configuration label.
    config: String,
    /// Repeat index.
    repeat: u32,
    /// State.
    state: String,
    /// Failure class (empty unless failed).
    failure: String,
    /// Host it ran on.
    host: Option<String>,
    /// Max validation accuracy, percent.
    max_val_acc_pct: Option<f64>,
    /// Epoch of the max validation accuracy.
    max_val_acc_epoch: Option<u32>,
    /// Train seconds per epoch.
    train_s_per_epoch: Option<f64>,
    /// Batch-1 inference p50, ms.
    batch1_p50_ms: Option<f64>,
    /// Batch-32 inference total, s.
    batch32_total_s: Option<f64>,
    /// Epochs in its history (fewer than its epochs when a search stopped it).
    epochs_run: u32,
}

/// One epoch of a trial's history, as `results --format json` gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct EpochLine {
    epoch: u32,
    train_loss: f64,
    train_acc: f64,
    val_loss: f64,
    val_acc: f64,
    epoch_s: f64,
}

impl From<&pb::EpochMetrics> for EpochLine {
    fn from(m: &pb::EpochMetrics) -> Self {
        EpochLine {
            epoch: m.epoch,
            train_loss: m.train_loss,
            train_acc: m.train_acc,
            val_loss: m.val_loss,
            val_acc: m.val_acc,
            epoch_s: m.epoch_s,
        }
    }
}

/// One trial in `results --format json`: its line, the rung an ASHA search
/// took it to (from 1), and its per-epoch history.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct TrialJson {
    #[serde(flatten)]
    line: ResultLine,
    rung: Option<u32>,
    history: Vec<EpochLine>,
}

fn trial_json(t: &TrialRow, recorded: &Histories, search: &SearchDef) -> TrialJson {
    let epochs = history(t, recorded);
    let line = ResultLine::of(t, recorded);
    TrialJson {
        rung: report::search::rung(search, t, epochs),
        line,
        history: epochs.iter().map(EpochLine::from).collect(),
    }
}

impl ResultLine {
    /// From a stored trial and the epochs the store recorded.
    fn of(t: &TrialRow, recorded: &Histories) -> Self {
        let r = t.result.as_ref();
        ResultLine {
            trial: t.trial_id.clone(),
            config: t.label.clone(),
            repeat: t.repeat,
            state: t.state.to_string(),
            failure: t.failure.clone(),
            host: t.host.clone(),
            max_val_acc_pct: r.map(|r| r.max_val_acc * 100.0),
            max_val_acc_epoch: r.map(|r| r.max_val_acc_epoch),
            train_s_per_epoch: r.and_then(|r| r.train_s_per_epoch),
            batch1_p50_ms: r.and_then(|r| r.batch1.as_ref().map(|b| b.p50_ms)),
            batch32_total_s: r.and_then(|r| r.batch32.as_ref().map(|b| b.total_s)),
            epochs_run: history(t, recorded).len() as u32,
        }
    }
}

/// The lines as a human table.
fn results_table(lines: &[ResultLine]) -> String {
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
    let cells: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                l.trial.clone(),
                l.config.clone(),
                l.repeat.to_string(),
                if l.failure.is_empty() {
                    l.state.clone()
                } else {
                    format!("{} ({})", l.state, l.failure)
                },
                l.host.clone().unwrap_or_default(),
                opt(l.max_val_acc_pct, 2),
                l.max_val_acc_epoch
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
                opt(l.train_s_per_epoch, 2),
                opt(l.batch1_p50_ms, 3),
                opt(l.batch32_total_s, 3),
            ]
        })
        .collect();
    table::markdown_table(&header, &cells)
}

/// The lines as CSV, with a header of the JSON keys.
fn results_csv(lines: &[ResultLine]) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    for l in lines {
        // Writing plain values to memory cannot fail.
        let _ = out.serialize(l);
    }
    if lines.is_empty() {
        let _ = out.write_record([
            "trial",
            "config",
            "repeat",
            "state",
            "failure",
            "host",
            "max_val_acc_pct",
            "max_val_acc_epoch",
            "train_s_per_epoch",
            "batch1_p50_ms",
            "batch32_total_s",
            "epochs_run",
        ]);
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// `vovctl results`.
pub(super) async fn results(args: ResultsArgs) -> Result<ExitCode, CliError> {
    let mut store = args.store.open()?;
    if args.collect {
        let new = collect(&mut store, &args.store.store, &args.sweep, &args.hosts).await?;
        eprintln!("collected {new} new result(s)");
    }
    let rows = rows(&store, &args.sweep)?;
    if args.weights {
        collect_weights(&args, &store, &rows).await?;
    }
    let recorded = store
        .histories(&args.sweep)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let lines: Vec<ResultLine> = rows.iter().map(|t| ResultLine::of(t, &recorded)).collect();
    print(&match args.format {
        ResultsFormat::Table => results_table(&lines),
        ResultsFormat::Csv => results_csv(&lines),
        ResultsFormat::Json => {
            let search = store
                .settings(&args.sweep)
                .map_err(|e| CliError::Usage(e.to_string()))?
                .map(|s| s.search)
                .unwrap_or_default();
            let trials: Vec<TrialJson> = rows
                .iter()
                .map(|t| trial_json(t, &recorded, &search))
                .collect();
            serde_json::to_string_pretty(&trials).unwrap_or_default() + "\n"
        }
    });
    Ok(outcome(report::all_succeeded(&rows)))
}

/// Fetches each configuration's best kept weights into the weights directory;
/// a file already there with the listed digest is kept as it is.
async fn collect_weights(
    args: &ResultsArgs,
    store: &ResultsStore,
    rows: &[TrialRow],
) -> Result<(), CliError> {
    let dir = args
        .weights_dir
        .clone()
        .unwrap_or_else(|| format!("{}-weights", args.sweep).into());
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?;
    for t in crate::kept::best_per_config(rows) {
        let dest = dir.join(format!("{}.safetensors", t.trial_id));
        let listed = t.result.as_ref().and_then(|r| r.weights.as_ref());
        let have = std::fs::read(&dest)
            .ok()
            .is_some_and(|b| listed.is_some_and(|w| vov_spec::digest::sha256(&b) == w.sha256));
        if !have {
            let from = super::weights::holder(&t.trial_id, &args.hosts, &args.store, store)?;
            super::weights::get(from, &t.trial_id, &dest).await?;
        }
        eprintln!(
            "weights of {} ({}): {}",
            t.label,
            t.trial_id,
            dest.display()
        );
    }
    Ok(())
}

/// Writes every file of the report (`report::files::FILES`) to `dir`.
pub(super) fn write_report_files(
    dir: &Path,
    rep: &Report,
    rows: &[TrialRow],
    recorded: &Histories,
) -> Result<(), CliError> {
    let fail = |e: String| CliError::Usage(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    for f in report::files::FILES {
        let text = (f.make)(rep, rows, recorded).map_err(|e| fail(e.to_string()))?;
        std::fs::write(dir.join(f.name), text).map_err(|e| fail(format!("{}: {e}", f.name)))?;
    }
    Ok(())
}

/// A sweep's report with its search's summary, and the epochs recorded per
/// trial (for the plots).
pub(super) fn sweep_report(
    store: &ResultsStore,
    sweep: &str,
    rows: &[TrialRow],
) -> Result<(Report, Histories), CliError> {
    report::of_sweep(store, sweep, rows).map_err(|e| CliError::Usage(e.to_string()))
}

/// `vovctl report`.
pub(super) fn report(args: ReportArgs) -> Result<ExitCode, CliError> {
    let store = args.store.open_existing()?;
    let rows = rows(&store, &args.sweep)?;
    let (rep, recorded) = sweep_report(&store, &args.sweep, &rows)?;
    print(&match args.format {
        ReportFormat::Md => table::markdown(&rep),
        ReportFormat::Csv => table::csv(&rep),
        ReportFormat::Json => table::json(&rep),
    });
    if let Some(dir) = &args.out {
        write_report_files(dir, &rep, &rows, &recorded)?;
        eprintln!("wrote {} to {}", report::files::names(), dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vov_proto::pb;

    fn line(label: &str, result: bool) -> ResultLine {
        let t = TrialRow {
            trial_id: "t1".into(),
            config_id: "c".into(),
            repeat: 0,
            label: label.into(),
            model: "vovnet-27-slim".into(),
            epochs: 2,
            spec: pb::TrialSpec::default(),
            state: if result {
                TrialState::Succeeded
            } else {
                TrialState::Failed
            },
            failure: if result { String::new() } else { "oom".into() },
            message: String::new(),
            host: result.then(|| "http://a:1".to_string()),
            attempt: 1,
            last_seq: 3,
            epoch: 2,
            last_val_acc: 0.5,
            stop_after: None,
            result: result.then(|| pb::TrialResult {
                max_val_acc: 0.625,
                max_val_acc_epoch: 2,
                train_s_per_epoch: Some(1.5),
                batch32: Some(pb::BatchTiming {
                    total_s: 0.25,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        ResultLine::of(&t, &Histories::new())
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let label = "vovnet lr=\"1e-3\", wd=0\nnext";
        let text = results_csv(&[line(label, true)]);
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header[0], "trial");
        assert!(header.contains(&"max_val_acc_pct".to_string()));
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(&rec[1], label, "the label survives a CSV round trip");
        assert_eq!(rec.len(), header.len());
        assert!(
            text.contains("\"vovnet lr=\"\"1e-3\"\", wd=0\nnext\""),
            "{text}"
        );
        assert!(results_csv(&[]).starts_with("trial,config,"));
    }

    #[test]
    fn json_is_typed_with_snake_case_keys() {
        let v = serde_json::to_value([line("a", true), line("b", false)]).unwrap();
        let ok = &v[0];
        assert_eq!(ok["trial"], "t1");
        assert_eq!(ok["repeat"], 0);
        assert_eq!(ok["state"], "succeeded");
        assert_eq!(ok["max_val_acc_pct"].as_f64(), Some(62.5));
        assert_eq!(ok["max_val_acc_epoch"].as_u64(), Some(2));
        assert_eq!(ok["train_s_per_epoch"].as_f64(), Some(1.5));
        assert_eq!(ok["batch32_total_s"].as_f64(), Some(0.25));
        assert!(ok["batch1_p50_ms"].is_null());
        assert_eq!(ok["host"], "http://a:1");
        let failed = &v[1];
        assert_eq!(
            (failed["state"].as_str(), failed["failure"].as_str()),
            (Some("failed"), Some("oom"))
        );
        assert!(failed["max_val_acc_pct"].is_null() && failed["host"].is_null());
        for key in ok.as_object().unwrap().keys() {
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{key} is not snake_case"
            );
        }
    }
}
