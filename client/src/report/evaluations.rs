//! The report's evaluation sections: kept weights measured on other hosts, one
//! section per fingerprint of the host that measured, a row per configuration
//! whose trials were evaluated there (repeats and re-evaluations aggregated).

use vov_proto::pb;

use super::{Section, Stat};
use crate::store::{EvaluationRow, TrialRow};

/// The published columns an evaluation fills.
pub const HEADER: [&str; 7] = [
    "model",
    "n",
    "val acc %",
    "real-time inf. s",
    "p50 ms",
    "p99 ms",
    "batch inf. s",
];

/// A row's cells under [`HEADER`].
pub fn cells(r: &super::Row) -> Vec<String> {
    let all = super::table::cells(r);
    // model, n, val acc, then the timings: the training columns stay out.
    [0, 1, 2, 5, 6, 7, 8]
        .iter()
        .map(|&i| all[i].clone())
        .collect()
}

fn stat(
    results: &[&pb::EvaluationResult],
    f: impl Fn(&pb::EvaluationResult) -> Option<f64>,
) -> Option<Stat> {
    Stat::of(&results.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
}

fn row(trial: &TrialRow, results: &[&pb::EvaluationResult]) -> super::Row {
    super::Row {
        label: trial.label.clone(),
        model: trial.model.clone(),
        config_id: trial.config_id.clone(),
        repeats: results.len(),
        max_val_acc: stat(results, |r| r.val_acc.map(|a| a * 100.0)),
        train_s: None,
        pipeline_s: None,
        batch1_s: stat(results, |r| r.batch1.as_ref().map(|b| b.total_s)),
        p50_ms: stat(results, |r| r.batch1.as_ref().map(|b| b.p50_ms)),
        p99_ms: stat(results, |r| r.batch1.as_ref().map(|b| b.p99_ms)),
        batch32_s: stat(results, |r| r.batch32.as_ref().map(|b| b.total_s)),
        params_m: results.first().map(|r| r.params as f64 / 1e6),
    }
}

/// The sections of the evaluations of `trials`.
pub fn sections(trials: &[TrialRow], evals: &[EvaluationRow]) -> Vec<Section> {
    let done: Vec<(&TrialRow, &pb::EvaluationResult)> = evals
        .iter()
        .filter_map(|e| {
            let t = trials.iter().find(|t| t.trial_id == e.source_trial)?;
            Some((t, e.result.as_ref()?))
        })
        .collect();
    let fp = |r: &pb::EvaluationResult| r.fingerprint.clone().unwrap_or_default();
    let mut sections: Vec<Section> = Vec::new();
    for (_, r) in &done {
        let f = fp(r);
        if !sections.iter().any(|s| s.fingerprint == f.id) {
            sections.push(super::section_of(&f));
        }
    }
    for s in &mut sections {
        let here: Vec<&(&TrialRow, &pb::EvaluationResult)> = done
            .iter()
            .filter(|(_, r)| fp(r).id == s.fingerprint)
            .collect();
        let mut configs: Vec<&str> = Vec::new();
        for (t, _) in &here {
            if !configs.contains(&t.config_id.as_str()) {
                configs.push(&t.config_id);
            }
        }
        for c in configs {
            let group: Vec<&(&TrialRow, &pb::EvaluationResult)> = here
                .iter()
                .copied()
                .filter(|(t, _)| t.config_id == c)
                .collect();
            let results: Vec<&pb::EvaluationResult> = group.iter().map(|(_, r)| *r).collect();
            s.rows.push(row(group[0].0, &results));
        }
    }
    sections
}
