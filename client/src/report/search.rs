//! What an adaptive search spent and found: per trial the rung it reached and
//! the epochs it ran, the total against what the grid would have run, and the
//! best configuration.

use std::collections::HashMap;

use serde::Serialize;
use vov_proto::pb;

use crate::search::{asha, History, SearchDef, SearchKind};
use crate::store::TrialRow;

/// Every epoch recorded per trial id.
pub type Histories = HashMap<String, Vec<pb::EpochMetrics>>;

/// One trial of a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchTrial {
    /// Trial id.
    pub trial: String,
    /// Label.
    pub label: String,
    /// State.
    pub state: String,
    /// The ASHA rung it reached (from 1); `None` under median stopping.
    pub rung: Option<u32>,
    /// Epochs it ran.
    pub epochs_run: u32,
    /// Its full epochs.
    pub epochs: u32,
}

/// The search's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchSummary {
    /// `asha` or `median`.
    pub kind: String,
    /// The metric it ranked by.
    pub metric: String,
    /// Its trials, in sweep order.
    pub trials: Vec<SearchTrial>,
    /// Epochs run in all.
    pub epochs_run: u64,
    /// Epochs a grid of the same trials would have run.
    pub grid_epochs: u64,
    /// The best configuration's label, with its best metric value and epoch.
    pub best: Option<(String, f64, u32)>,
}

/// A trial's epochs: its result's history, else those the store recorded.
pub fn history<'a>(t: &'a TrialRow, recorded: &'a Histories) -> &'a [pb::EpochMetrics] {
    match &t.result {
        Some(r) if !r.history.is_empty() => &r.history,
        _ => recorded.get(&t.trial_id).map_or(&[], Vec::as_slice),
    }
}

/// The rung (from 1) an ASHA search took a trial to, from its epochs.
pub fn rung(def: &SearchDef, t: &TrialRow, epochs: &[pb::EpochMetrics]) -> Option<u32> {
    (def.kind == SearchKind::Asha).then(|| {
        let h: History = epochs.iter().map(|m| (m.epoch, def.metric.of(m))).collect();
        asha::rung_of(def, t.epochs, &h)
            .0
            .map_or(0, |k| k as u32 + 1)
    })
}

/// The summary of an adaptive search; `None` for a grid.
pub fn summarize(
    def: &SearchDef,
    trials: &[TrialRow],
    recorded: &Histories,
) -> Option<SearchSummary> {
    if !def.kind.is_adaptive() {
        return None;
    }
    let mut best: Option<(String, f64, u32)> = None;
    let mut out = Vec::new();
    for t in trials {
        let epochs = history(t, recorded);
        for m in epochs {
            let v = def.metric.of(m);
            if best.as_ref().is_none_or(|b| def.mode.better(v, b.1)) {
                best = Some((t.label.clone(), v, m.epoch));
            }
        }
        out.push(SearchTrial {
            trial: t.trial_id.clone(),
            label: t.label.clone(),
            state: t.state.to_string(),
            rung: rung(def, t, epochs),
            epochs_run: epochs.len() as u32,
            epochs: t.epochs,
        });
    }
    Some(SearchSummary {
        kind: def.kind.as_str().to_string(),
        metric: def.metric.as_str().to_string(),
        epochs_run: out.iter().map(|t| u64::from(t.epochs_run)).sum(),
        grid_epochs: out.iter().map(|t| u64::from(t.epochs)).sum(),
        trials: out,
        best,
    })
}

/// The summary in Markdown.
pub fn markdown(s: &SearchSummary) -> String {
    let mut out = format!("### Search ({}, by {})\n\n", s.kind, s.metric);
    let rows: Vec<Vec<String>> = s
        .trials
        .iter()
        .map(|t| {
            vec![
                t.trial.clone(),
                t.label.clone(),
                t.state.clone(),
                t.rung.map(|r| r.to_string()).unwrap_or_default(),
                format!("{}/{}", t.epochs_run, t.epochs),
            ]
        })
        .collect();
    out += &super::table::markdown_table(&["trial", "config", "state", "rung", "epochs"], &rows);
    let share = 100.0 * s.epochs_run as f64 / s.grid_epochs.max(1) as f64;
    out += &format!(
        "\nEpochs run: {} of the {} a grid would run ({share:.0}%).\n",
        s.epochs_run, s.grid_epochs
    );
    if let Some((label, v, epoch)) = &s.best {
        out += &format!(
            "Best configuration: {label} ({} {v:.4} at epoch {epoch}).\n",
            s.metric
        );
    }
    out + "\n"
}
