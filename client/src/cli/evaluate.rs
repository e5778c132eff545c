//! `vovctl evaluate TRIAL --hosts H`: a trial's kept weights measured on other
//! hosts, as evaluation jobs in their queues, kept in the results store and
//! reported beside the trial's own figures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;
use tokio::task::JoinSet;
use vov_proto::pb;
use vov_spec::measures::{self, Measures};
use vov_spec::DatasetName;

use super::common::{local_daemon, print, HostArgs, StoreArgs};
use super::weights::{get, holder};
use super::{outcome, CliError};
use crate::evaluate::{eval_id, run_on};
use crate::hosts::{self, HostsConfig, Source};
use crate::report::table::markdown_table;
use crate::store::{state, EvaluationRow, ResultsStore, TrialState};

/// Arguments of `vovctl evaluate`.
#[derive(Debug, Args)]
#[command(
    after_help = "The trial must have kept its weights (keep_weights = \"final\" or \
\"best\"). They are fetched from the trial's host (or its Slurm folder), uploaded to each host \
of --hosts and measured there as an evaluation job in that host's queue: on the trial's own data \
set and validation images the accuracy equals that of the epoch the weights are from, and the \
timings are the host's. Results go into the store; `vovctl report` shows them per evaluation \
host, apart by fingerprint. Running the same command again picks up the same jobs.\n\n\
Examples:\n  vovctl evaluate t3f2a9c1d0b4e5f60 --hosts cpu-box:7070 --measure batch1 --threads 2\n  \
vovctl evaluate t3f2a9c1d0b4e5f60 --hosts gpu1:7070,laptop:7070 --json"
)]
pub struct EvaluateArgs {
    /// The trial whose kept weights to evaluate (see `vovctl results SWEEP`).
    pub trial: String,
    /// What to measure, comma-separated: accuracy, batch1, batch32.
    #[arg(long, value_name = "LIST", default_value = measures::ALL)]
    pub measure: String,
    /// Compute threads on each host [default: a slot's].
    #[arg(long, value_name = "N")]
    pub threads: Option<u32>,
    /// Data set [default: the one the weights were trained on].
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<DatasetName>,
    /// First N validation images [default: the trial's own val_limit].
    #[arg(long, value_name = "N")]
    pub val_limit: Option<u64>,
    /// Evaluate this weights file (one `vovctl weights` wrote) instead of
    /// fetching the trial's.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Print one JSON object per evaluation.
    #[arg(long)]
    pub json: bool,
    /// Hosts to evaluate on (credentials also for the trial's own host).
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A folder of this process's own, removed when it goes.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, CliError> {
        let dir = std::env::temp_dir().join(format!("vovctl-evaluate-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What to evaluate, and how.
pub(super) struct Ask<'a> {
    /// The trial whose kept weights.
    pub trial: &'a str,
    /// What to measure.
    pub measure: Measures,
    /// Compute threads on each host (`None`: a slot's).
    pub threads: Option<u32>,
    /// Data set (`None`: the one they were trained on).
    pub dataset: Option<DatasetName>,
    /// First N validation images (`None`: the trial's own).
    pub val_limit: Option<u64>,
    /// A weights file to use instead of fetching the trial's.
    pub weights: Option<&'a Path>,
}

/// The weights to evaluate: `ask.weights`, or the trial's fetched into
/// `scratch` from where `source` (and the store) say they are.
async fn weights_bytes(
    ask: &Ask<'_>,
    source: &HostArgs,
    store_args: &StoreArgs,
    store: &ResultsStore,
    scratch: &Path,
) -> Result<Vec<u8>, CliError> {
    let path = match ask.weights {
        Some(p) => p.to_path_buf(),
        None => {
            let dest = scratch.join(format!("{}.safetensors", ask.trial));
            let from = holder(ask.trial, source, store_args, store)?;
            get(from, ask.trial, &dest).await?.path
        }
    };
    std::fs::read(&path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

/// The request `ask` makes of each host, for weights of digest `sha256`.
fn request(ask: &Ask<'_>, sha256: String, source_host: String) -> pb::EvaluationSpec {
    pb::EvaluationSpec {
        weights_sha256: sha256,
        source_trial_id: ask.trial.to_string(),
        source_host,
        dataset: ask
            .dataset
            .map(|d| d.as_str().to_string())
            .unwrap_or_default(),
        val_limit: ask.val_limit,
        accuracy: ask.measure.accuracy,
        batch1: ask.measure.timings.batch1,
        batch32: ask.measure.timings.batch32,
        threads: ask.threads.unwrap_or(0),
        device: pb::DeviceRequirement::Any as i32,
    }
}

/// The hosts to evaluate on: `--hosts` and the rest as every verb resolves
/// them, or the local vovd.
fn targets(
    args: &EvaluateArgs,
) -> Result<(HostsConfig, Option<crate::local::LocalDaemon>), CliError> {
    let (cfg, source) = args.hosts.resolve(None)?;
    if source != Source::None {
        return Ok((cfg, None));
    }
    let daemon = local_daemon(&args.store.store, "evaluate")?;
    let cfg = HostsConfig {
        urls: vec![daemon.url.clone()],
        ..cfg
    };
    Ok((cfg, Some(daemon)))
}

/// Records how job `job` (evaluation `id`) ended.
fn record(store: &ResultsStore, id: &str, job: Result<pb::Job, String>) -> Result<(), CliError> {
    let err = |e: crate::store::StoreError| CliError::Usage(e.to_string());
    match job {
        Ok(job) => match (&job.evaluation_result, state::from_pb(job.state)) {
            (Some(r), TrialState::Succeeded) => store.record_evaluation(id, r).map_err(err),
            (_, s) => store
                .set_evaluation_state(id, s, state::failure_name(job.failure), &job.message)
                .map_err(err),
        },
        Err(message) => store
            .set_evaluation_state(id, TrialState::Failed, "", &message)
            .map_err(err),
    }
}

/// What `--json` prints per evaluation.
#[derive(Debug, Serialize)]
struct Line<'a> {
    eval_id: &'a str,
    trial_id: &'a str,
    host: &'a str,
    state: &'a str,
    failure: &'a str,
    message: &'a str,
    fingerprint: Option<&'a str>,
    device: Option<String>,
    val_acc: Option<f64>,
    batch1_p50_ms: Option<f64>,
    batch1_p99_ms: Option<f64>,
    batch1_s: Option<f64>,
    batch32_s: Option<f64>,
}

fn line(e: &EvaluationRow) -> Line<'_> {
    let r = e.result.as_ref();
    let fp = r.and_then(|r| r.fingerprint.as_ref());
    let b1 = r.and_then(|r| r.batch1.as_ref());
    Line {
        eval_id: &e.eval_id,
        trial_id: &e.source_trial,
        host: &e.host,
        state: e.state.as_str(),
        failure: &e.failure,
        message: &e.message,
        fingerprint: fp.map(|f| f.id.as_str()),
        device: fp.map(|f| format!("{} ({})", f.device_name, f.device)),
        val_acc: r.and_then(|r| r.val_acc),
        batch1_p50_ms: b1.map(|b| b.p50_ms),
        batch1_p99_ms: b1.map(|b| b.p99_ms),
        batch1_s: b1.map(|b| b.total_s),
        batch32_s: r.and_then(|r| r.batch32.as_ref()).map(|b| b.total_s),
    }
}

fn show(rows: &[EvaluationRow], json: bool) {
    if json {
        for e in rows {
            print(&format!(
                "{}\n",
                serde_json::to_string(&line(e)).unwrap_or_default()
            ));
        }
        return;
    }
    let opt = |v: Option<f64>, prec: usize| v.map_or("n/a".into(), |x| format!("{x:.prec$}"));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(line)
        .map(|l| {
            vec![
                l.host.to_string(),
                l.device.unwrap_or_default(),
                l.fingerprint.unwrap_or_default().to_string(),
                l.state.to_string(),
                opt(l.val_acc.map(|a| a * 100.0), 2),
                opt(l.batch1_p50_ms, 3),
                opt(l.batch1_s, 2),
                opt(l.batch32_s, 3),
            ]
        })
        .collect();
    let header = [
        "host",
        "device",
        "fingerprint",
        "state",
        "val acc %",
        "p50 ms",
        "real-time inf. s",
        "batch inf. s",
    ];
    print(&markdown_table(&header, &cells));
    for e in rows.iter().filter(|e| e.state != TrialState::Succeeded) {
        eprintln!("{}: {}: {} {}", e.host, e.eval_id, e.failure, e.message);
    }
}

/// Evaluates `ask.trial`'s kept weights on every host of `targets` (the
/// trial's own found through `source`); returns the evaluations as stored.
pub(super) async fn evaluate(
    store: &ResultsStore,
    store_args: &StoreArgs,
    source: &HostArgs,
    ask: &Ask<'_>,
    targets: &HostsConfig,
) -> Result<Vec<EvaluationRow>, CliError> {
    let err = |e: crate::store::StoreError| CliError::Usage(e.to_string());
    let trial = store.trial(ask.trial).map_err(err)?.ok_or_else(|| {
        CliError::Usage(format!(
            "'{}' is not a trial in {}",
            ask.trial,
            store_args.store.display()
        ))
    })?;
    let scratch = Scratch::new()?;
    let bytes = Arc::new(weights_bytes(ask, source, store_args, store, &scratch.0).await?);
    let req = request(
        ask,
        vov_spec::digest::sha256(&bytes),
        trial.host.clone().unwrap_or_default(),
    );
    let connected = hosts::connect(targets).map_err(|e| CliError::Usage(e.to_string()));
    let mut jobs = JoinSet::new();
    let mut ids = Vec::new();
    for host in connected? {
        let id = eval_id(&host.url, &req);
        store.put_evaluation(&id, &host.url, &req).map_err(err)?;
        ids.push(id.clone());
        let (req, bytes, url, key) = (req.clone(), bytes.clone(), host.url.clone(), id.clone());
        jobs.spawn(async move {
            let notify = move |text: &str| eprintln!("{url}: {key}: {text}");
            let job = run_on(host, id.clone(), bytes, req, &notify).await;
            (id, job.map_err(|e| e.to_string()))
        });
    }
    while let Some(done) = jobs.join_next().await {
        let (id, job) = done.map_err(|e| CliError::Usage(e.to_string()))?;
        record(store, &id, job)?;
    }
    Ok(ids
        .iter()
        .filter_map(|id| store.evaluation(id).ok().flatten())
        .collect())
}

/// Runs a sweep file's `[[evaluate]]` tables once its trials have ended: each
/// configuration's best kept weights on each table's hosts; returns whether
/// every evaluation succeeded.
pub(super) async fn sweep_tables(
    store: &ResultsStore,
    store_args: &StoreArgs,
    source: &HostArgs,
    def: &crate::sweep::SweepDef,
    json: bool,
) -> Result<bool, CliError> {
    let err = |e: crate::store::StoreError| CliError::Usage(e.to_string());
    let trials = store.trials(&def.name).map_err(err)?;
    let best = crate::kept::best_per_config(&trials);
    if best.is_empty() {
        eprintln!(
            "[[evaluate]]: no trial of {} kept weights (set keep_weights = \"best\" in [base])",
            def.name
        );
        return Ok(false);
    }
    let mut rows = Vec::new();
    for table in &def.evaluate {
        let on = HostArgs {
            hosts: Some(table.hosts.join(",")),
            ..source.clone()
        };
        let (targets, _) = on.resolve(def.hosts.as_ref())?;
        for t in &best {
            let ask = Ask {
                trial: &t.trial_id,
                measure: table.measure,
                threads: table.threads,
                dataset: None,
                val_limit: None,
                weights: None,
            };
            rows.extend(evaluate(store, store_args, source, &ask, &targets).await?);
        }
    }
    show(&rows, json);
    Ok(rows.iter().all(|e| e.state == TrialState::Succeeded))
}

pub(super) async fn run(args: EvaluateArgs) -> Result<ExitCode, CliError> {
    let store = args.store.open_existing()?;
    let measure = Measures::parse(&args.measure)
        .map_err(|e| CliError::Usage(format!("invalid value for --measure: {e}")))?;
    let ask = Ask {
        trial: &args.trial,
        measure,
        threads: args.threads,
        dataset: args.dataset,
        val_limit: args.val_limit,
        weights: args.weights.as_deref(),
    };
    let (targets, local) = targets(&args)?;
    let rows = evaluate(&store, &args.store, &args.hosts, &ask, &targets).await;
    if let Some(daemon) = local {
        daemon.stop();
    }
    let rows = rows?;
    show(&rows, args.json);
    Ok(outcome(
        rows.iter().all(|e| e.state == TrialState::Succeeded),
    ))
}
