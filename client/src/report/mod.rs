//! From stored trials to the published table: repeats aggregated as mean and
//! standard deviation, one section per hardware fingerprint so timings from
//! different machines never share a column. Pure functions; rendering in
//! `table.rs`, plots in `plot.rs`.

pub mod evaluations;
pub mod files;
pub mod plot;
pub mod search;
pub mod table;

use serde::Serialize;
use vov_proto::pb;

use crate::store::{TrialRow, TrialState};

/// Mean, sample standard deviation and count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub std: f64,
    /// Values.
    pub n: usize,
}

impl Stat {
    /// The statistics of `xs`; `None` when empty.
    pub fn of(xs: &[f64]) -> Option<Stat> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Stat { mean, std, n })
    }
}

/// One configuration's row of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Model and varying keys.
    pub label: String,
    /// Model preset.
    pub model: String,
    /// Configuration id.
    pub config_id: String,
    /// Results aggregated.
    pub repeats: usize,
    /// Max validation accuracy, %.
    pub max_val_acc: Option<Stat>,
    /// Train s/epoch, data in memory.
    pub train_s: Option<Stat>,
    /// Train s/epoch with the input pipeline.
    pub pipeline_s: Option<Stat>,
    /// Batch-1 inference over the validation set, total seconds.
    pub batch1_s: Option<Stat>,
    /// Batch-1 median latency, ms.
    pub p50_ms: Option<Stat>,
    /// Batch-1 99th percentile latency, ms.
    pub p99_ms: Option<Stat>,
    /// Batch-32 inference over the validation set, total seconds.
    pub batch32_s: Option<Stat>,
    /// Parameters, millions (Keras convention).
    pub params_m: Option<f64>,
}

/// Timings measured on one kind of machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// Fingerprint id.
    pub fingerprint: String,
    /// Device the timings come from.
    pub device: String,
    /// CPU model and threads used.
    pub cpu: String,
    /// vovd version.
    pub version: String,
    /// Rows, in sweep order.
    pub rows: Vec<Row>,
}

/// A trial without a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unfinished {
    /// Trial id.
    pub trial: String,
    /// Label.
    pub label: String,
    /// State.
    pub state: String,
    /// Failure class.
    pub failure: String,
    /// Message.
    pub message: String,
}

/// A sweep's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The sweep.
    pub sweep: String,
    /// One section per fingerprint.
    pub sections: Vec<Section>,
    /// Trials without a result.
    pub unfinished: Vec<Unfinished>,
    /// What an adaptive search spent and found (none for a grid).
    pub search: Option<search::SearchSummary>,
    /// Its trials' kept weights measured on other hosts (`vovctl evaluate`),
    /// one section per fingerprint of the host that measured.
    pub evaluations: Vec<Section>,
}

fn stat(results: &[&pb::TrialResult], f: impl Fn(&pb::TrialResult) -> Option<f64>) -> Option<Stat> {
    Stat::of(&results.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
}

fn row(label: &str, model: &str, config_id: &str, results: &[&pb::TrialResult]) -> Row {
    Row {
        label: label.to_string(),
        model: model.to_string(),
        config_id: config_id.to_string(),
        repeats: results.len(),
        max_val_acc: stat(results, |r| Some(r.max_val_acc * 100.0)),
        train_s: stat(results, |r| r.train_s_per_epoch),
        pipeline_s: stat(results, |r| r.pipeline_s_per_epoch),
        batch1_s: stat(results, |r| r.batch1.as_ref().map(|b| b.total_s)),
        p50_ms: stat(results, |r| r.batch1.as_ref().map(|b| b.p50_ms)),
        p99_ms: stat(results, |r| r.batch1.as_ref().map(|b| b.p99_ms)),
        batch32_s: stat(results, |r| r.batch32.as_ref().map(|b| b.total_s)),
        params_m: results.first().map(|r| r.params as f64 / 1e6),
    }
}

/// An empty section for timings measured with fingerprint `fp`.
fn section_of(fp: &pb::Fingerprint) -> Section {
    Section {
        fingerprint: fp.id.clone(),
        device: format!("{} ({})", fp.device_name, fp.device),
        cpu: format!("{}, {} threads", fp.cpu_model, fp.threads),
        version: fp.vovd_version.clone(),
        rows: Vec::new(),
    }
}

/// Builds the report of a sweep from its stored trials.
pub fn build(sweep: &str, trials: &[TrialRow]) -> Report {
    let mut sections: Vec<Section> = Vec::new();
    for t in trials {
        let Some(r) = &t.result else { continue };
        let fp = r.fingerprint.clone().unwrap_or_default();
        if !sections.iter().any(|s| s.fingerprint == fp.id) {
            sections.push(section_of(&fp));
        }
    }
    for s in &mut sections {
        let mut configs: Vec<&str> = Vec::new();
        for t in trials {
            let in_section = t
                .result
                .as_ref()
                .and_then(|r| r.fingerprint.as_ref())
                .is_some_and(|f| f.id == s.fingerprint);
            if in_section && !configs.contains(&t.config_id.as_str()) {
                configs.push(&t.config_id);
            }
        }
        for c in configs {
            let group: Vec<&TrialRow> = trials
                .iter()
                .filter(|t| {
                    t.config_id == c
                        && t.result
                            .as_ref()
                            .and_then(|r| r.fingerprint.as_ref())
                            .is_some_and(|f| f.id == s.fingerprint)
                })
                .collect();
            let results: Vec<&pb::TrialResult> =
                group.iter().filter_map(|t| t.result.as_ref()).collect();
            s.rows
                .push(row(&group[0].label, &group[0].model, c, &results));
        }
    }
    let unfinished = trials
        .iter()
        .filter(|t| t.result.is_none())
        .map(|t| Unfinished {
            trial: t.trial_id.clone(),
            label: t.label.clone(),
            state: t.state.to_string(),
            failure: t.failure.clone(),
            message: t.message.clone(),
        })
        .collect();
    Report {
        sweep: sweep.to_string(),
        sections,
        unfinished,
        search: None,
        evaluations: Vec::new(),
    }
}

/// A sweep's report as `vovctl report` gives it (with its search's summary),
/// and the epochs the store recorded per trial (for the plots).
pub fn of_sweep(
    store: &crate::store::ResultsStore,
    sweep: &str,
    rows: &[TrialRow],
) -> Result<(Report, search::Histories), crate::store::StoreError> {
    let recorded = store.histories(sweep)?;
    let def = store.settings(sweep)?.map(|s| s.search).unwrap_or_default();
    let mut rep = build(sweep, rows);
    rep.search = search::summarize(&def, rows, &recorded);
    rep.evaluations = evaluations::sections(rows, &store.evaluations(sweep)?);
    Ok((rep, recorded))
}

/// Whether every trial succeeded (or was stopped early by its search, as it
/// should be).
pub fn all_succeeded(trials: &[TrialRow]) -> bool {
    trials
        .iter()
        .all(|t| t.state == TrialState::Succeeded || t.state == TrialState::StoppedEarly)
}

#[cfg(test)]
mod tests;
