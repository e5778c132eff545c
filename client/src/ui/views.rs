//! What the dashboard's pages show, built from stored rows: pure functions, so
//! the numbers are the ones `vovctl report` and `vovctl results` compute.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{json, Value};
use vov_proto::pb;

use crate::report::search::{history, Histories};
use crate::report::{table, Report};
use crate::store::{EpochRow, EventRow, SweepInfo, TrialRow, TrialState};

/// One line of a sweep's trial table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TrialLine {
    /// Trial id.
    pub(crate) trial: String,
    /// Configuration label.
    pub(crate) label: String,
    /// Repeat index.
    pub(crate) repeat: u32,
    /// State.
    pub(crate) state: &'static str,
    /// Failure class (empty unless failed).
    pub(crate) failure: String,
    /// Last message.
    pub(crate) message: String,
    /// Host it is or was placed on.
    pub(crate) host: Option<String>,
    /// Placements so far.
    pub(crate) attempt: u32,
    /// Last finished epoch.
    pub(crate) epoch: u32,
    /// Epochs it is to run now (its search's rung, else all of them).
    pub(crate) epochs: u32,
    /// Training accuracy of the last epoch, %.
    pub(crate) train_acc: Option<f64>,
    /// Validation accuracy of the last epoch, %.
    pub(crate) val_acc: Option<f64>,
    /// Best validation accuracy so far, %.
    pub(crate) max_val_acc: Option<f64>,
    /// Mean seconds per epoch so far.
    pub(crate) s_per_epoch: Option<f64>,
    /// Seconds left at that pace, for a trial that is placed and not done.
    pub(crate) eta_s: Option<f64>,
    /// Whether a cancel would reach it (it is not final).
    pub(crate) cancellable: bool,
}

fn pct(x: f64) -> f64 {
    x * 100.0
}

/// A trial's table line from its row, the epochs recorded for it and the epochs
/// its search last sent it to.
pub(crate) fn trial_line(t: &TrialRow, recorded: &Histories, rung: Option<u32>) -> TrialLine {
    let h = history(t, recorded);
    let last = h.last();
    let epochs = rung.unwrap_or(t.epochs).min(t.epochs);
    let s_per_epoch =
        (!h.is_empty()).then(|| h.iter().map(|m| m.epoch_s).sum::<f64>() / h.len() as f64);
    let epoch = last.map_or(0, |m| m.epoch);
    let live = matches!(t.state, TrialState::Queued | TrialState::Running);
    TrialLine {
        trial: t.trial_id.clone(),
        label: t.label.clone(),
        repeat: t.repeat,
        state: t.state.as_str(),
        failure: t.failure.clone(),
        message: t.message.clone(),
        host: t.host.clone(),
        attempt: t.attempt,
        epoch,
        epochs,
        train_acc: last.map(|m| pct(m.train_acc)),
        val_acc: last.map(|m| pct(m.val_acc)),
        max_val_acc: t
            .result
            .as_ref()
            .map(|r| pct(r.max_val_acc))
            .or_else(|| h.iter().map(|m| pct(m.val_acc)).reduce(f64::max)),
        s_per_epoch,
        eta_s: s_per_epoch
            .filter(|_| live)
            .map(|s| s * f64::from(epochs.saturating_sub(epoch))),
        cancellable: !t.state.is_final(),
    }
}

/// The published table as the page shows it: the same header and cells as
/// `vovctl report`, one table per hardware fingerprint.
pub(crate) fn published(rep: &Report) -> Value {
    json!({
        "header": table::HEADER,
        "sections": rep.sections.iter().map(|s| json!({
            "fingerprint": s.fingerprint,
            "device": s.device,
            "cpu": s.cpu,
            "version": s.version,
            "rows": s.rows.iter().map(table::cells).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Everything of a sweep but its epochs: trial lines, the published table,
/// failures, accuracy against batch-1 latency, and the search's summary.
pub(crate) fn sweep(
    info: &SweepInfo,
    rows: &[TrialRow],
    recorded: &Histories,
    rungs: &HashMap<String, u32>,
    rep: &Report,
) -> Value {
    let lines: Vec<TrialLine> = rows
        .iter()
        .map(|t| trial_line(t, recorded, rungs.get(&t.trial_id).copied()))
        .collect();
    let failures: Vec<Value> = rows
        .iter()
        .filter(|t| t.state == TrialState::Failed)
        .map(|t| json!({"trial": t.trial_id, "label": t.label, "failure": t.failure, "message": t.message}))
        .collect();
    let points: Vec<Value> = rows
        .iter()
        .filter_map(|t| {
            let r = t.result.as_ref()?;
            Some(json!({
                "trial": t.trial_id,
                "label": t.label,
                "p50_ms": r.batch1.as_ref()?.p50_ms,
                "max_val_acc": pct(r.max_val_acc),
            }))
        })
        .collect();
    json!({
        "summary": summary(info, rows),
        "trials": lines,
        "report": published(rep),
        "failures": failures,
        "points": points,
        "search": rep.search,
    })
}

/// A sweep's line in the list: trials by state, progress in epochs, times and
/// its best accuracy.
pub(crate) fn summary(info: &SweepInfo, rows: &[TrialRow]) -> Value {
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for t in rows {
        *states.entry(t.state.as_str()).or_default() += 1;
    }
    let total: u64 = rows.iter().map(|t| u64::from(t.epochs)).sum();
    let done: u64 = rows
        .iter()
        .map(|t| {
            if t.state.is_final() {
                u64::from(t.epochs)
            } else {
                u64::from(t.epoch.min(t.epochs))
            }
        })
        .sum();
    let best = rows
        .iter()
        .filter_map(|t| Some((t, t.result.as_ref()?.max_val_acc)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let ended = !rows.is_empty() && rows.iter().all(|t| t.state.is_final());
    json!({
        "name": info.name,
        "file": info.file,
        "trials": rows.len(),
        "states": states,
        "epochs_done": done,
        "epochs_total": total,
        "created_ms": info.created_ms,
        "started_ms": info.started_ms,
        "ended_ms": if ended { info.last_change_ms } else { None },
        "best": best.map(|(t, acc)| json!({"trial": t.trial_id, "label": t.label, "max_val_acc": pct(acc)})),
    })
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn point(m: &pb::EpochMetrics) -> [f64; 3] {
    [
        f64::from(m.epoch),
        round4(pct(m.train_acc)),
        round4(pct(m.val_acc)),
    ]
}

/// Epochs for the curves, by trial: `[epoch, train %, val %]`, with the cursor
/// of the last one (`after` when none); `full` false: they add to a page's.
pub(crate) fn epochs(rows: &[EpochRow], after: i64) -> Value {
    let mut by_trial: BTreeMap<&str, Vec<[f64; 3]>> = BTreeMap::new();
    for e in rows {
        by_trial
            .entry(&e.trial_id)
            .or_default()
            .push(point(&e.metrics));
    }
    json!({
        "cursor": rows.last().map_or(after, |e| e.seq),
        "full": false,
        "trials": by_trial,
    })
}

/// Every trial's curve as [`epochs`] gives them, from its result's history
/// when it has one (a collected result may have no recorded epochs), else its
/// recorded epochs; `cursor` is the store's last; `full` true: they replace a
/// page's.
pub(crate) fn all_epochs(rows: &[TrialRow], recorded: &Histories, cursor: i64) -> Value {
    let by_trial: BTreeMap<&str, Vec<[f64; 3]>> = rows
        .iter()
        .map(|t| {
            (
                t.trial_id.as_str(),
                history(t, recorded).iter().map(point).collect(),
            )
        })
        .filter(|(_, h): &(&str, Vec<[f64; 3]>)| !h.is_empty())
        .collect();
    json!({ "cursor": cursor, "full": true, "trials": by_trial })
}

fn fingerprint(f: &pb::Fingerprint) -> Value {
    json!({
        "id": f.id,
        "device": f.device,
        "device_name": f.device_name,
        "cpu_model": f.cpu_model,
        "cpu_cores": f.cpu_cores,
        "cpu_threads": f.cpu_threads,
        "threads": f.threads,
        "build_features": f.build_features,
        "platform": f.platform,
        "vovd_version": f.vovd_version,
        "gpu_driver": f.gpu_driver,
        "cuda_version": f.cuda_version,
    })
}

fn timings(r: &pb::TrialResult) -> Value {
    json!({
        "params": r.params,
        "train_images": r.train_images,
        "val_images": r.val_images,
        "max_val_acc": pct(r.max_val_acc),
        "max_val_acc_epoch": r.max_val_acc_epoch,
        "first_epoch_s": r.first_epoch_s,
        "train_s_per_epoch": r.train_s_per_epoch,
        "pipeline_s_per_epoch": r.pipeline_s_per_epoch,
        "data_wait_s_per_epoch": r.data_wait_s_per_epoch,
        "train_images_per_s": r.train_images_per_s,
        "batch1_total_s": r.batch1.as_ref().map(|b| b.total_s),
        "batch1_p50_ms": r.batch1.as_ref().map(|b| b.p50_ms),
        "batch1_p99_ms": r.batch1.as_ref().map(|b| b.p99_ms),
        "batch32_total_s": r.batch32.as_ref().map(|b| b.total_s),
        "batch32_images_per_s": r.batch32.as_ref().map(|b| b.images_per_s),
        "peak_rss_bytes": r.peak_rss_bytes,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
    })
}

/// A spec as every key of the sweep-file key table with a value (defaults
/// included) and its seed; `null` for a spec this build cannot read.
fn spec(p: &pb::TrialSpec) -> Value {
    let Ok(typed) = vov_spec::TrialSpec::try_from(p) else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for k in vov_spec::keys::KEYS {
        if let Some(v) = (k.get)(&typed) {
            out.insert(k.name.to_string(), Value::String(v.to_string()));
        }
    }
    out.insert("seed".into(), json!(typed.seed));
    Value::Object(out)
}

/// What the trial page shows, gathered from the store.
pub(crate) struct TrialPage<'a> {
    /// The trial.
    pub(crate) row: &'a TrialRow,
    /// The sweep it belongs to now.
    pub(crate) sweep: Option<String>,
    /// The epochs its search last sent it to.
    pub(crate) rung: Option<u32>,
    /// The fingerprint id last seen for its host.
    pub(crate) host_fingerprint: Option<String>,
    /// Its recorded epochs (by its id).
    pub(crate) recorded: Histories,
    /// Its events.
    pub(crate) events: Vec<EventRow>,
}

/// One trial: spec, host and fingerprint, every epoch, timings and events.
pub(crate) fn trial(page: &TrialPage<'_>) -> Value {
    let t = page.row;
    let history = history(t, &page.recorded);
    json!({
        "line": trial_line(t, &page.recorded, page.rung),
        "sweep": page.sweep,
        "model": t.model,
        "config": spec(&t.spec),
        "fingerprint": t.result.as_ref().and_then(|r| r.fingerprint.as_ref()).map(fingerprint),
        "host_fingerprint": page.host_fingerprint,
        "timings": t.result.as_ref().map(timings),
        "warnings": t.result.as_ref().map(|r| r.warnings.clone()).unwrap_or_default(),
        "history": history.iter().map(|m| json!({
            "epoch": m.epoch,
            "train_loss": m.train_loss,
            "train_acc": pct(m.train_acc),
            "val_loss": m.val_loss,
            "val_acc": pct(m.val_acc),
            "epoch_s": m.epoch_s,
            "data_wait_s": m.data_wait_s,
        })).collect::<Vec<_>>(),
        "events": page.events.iter().map(|e| json!({
            "at_ms": e.at_ms,
            "state": e.state,
            "host": e.host,
            "attempt": e.attempt,
            "failure": e.failure,
            "message": e.message,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: TrialState, epochs: &[(u32, f64, f64)]) -> (TrialRow, Histories) {
        let t = TrialRow {
            trial_id: "t1".into(),
            config_id: "c".into(),
            repeat: 0,
            label: "vovnet-27-slim".into(),
            model: "vovnet-27-slim".into(),
            epochs: 10,
            spec: pb::TrialSpec::default(),
            state,
            failure: String::new(),
            message: String::new(),
            host: Some("http://a:1".into()),
            attempt: 1,
            last_seq: 0,
            epoch: 0,
            last_val_acc: 0.0,
            result: None,
            stop_after: None,
        };
        let h = epochs
            .iter()
            .map(|&(epoch, val_acc, epoch_s)| pb::EpochMetrics {
                epoch,
                val_acc,
                train_acc: val_acc + 0.1,
                epoch_s,
                ..Default::default()
            })
            .collect();
        (t, HashMap::from([("t1".to_string(), h)]))
    }

    #[test]
    fn a_running_trial_has_its_pace_and_time_left() {
        let (t, h) = row(TrialState::Running, &[(1, 0.3, 2.0), (2, 0.5, 4.0)]);
        let l = trial_line(&t, &h, None);
        assert_eq!((l.epoch, l.epochs), (2, 10));
        assert_eq!(l.s_per_epoch, Some(3.0));
        assert_eq!(l.eta_s, Some(24.0));
        assert_eq!(l.val_acc, Some(50.0));
        assert_eq!(l.max_val_acc, Some(50.0));
        // A rung of 4 epochs leaves 2 of them.
        assert_eq!(trial_line(&t, &h, Some(4)).eta_s, Some(6.0));
    }

    #[test]
    fn a_finished_or_unplaced_trial_has_no_time_left() {
        let (t, h) = row(TrialState::Failed, &[(1, 0.3, 2.0)]);
        assert_eq!(trial_line(&t, &h, None).eta_s, None);
        let (t, h) = row(TrialState::Pending, &[]);
        let l = trial_line(&t, &h, None);
        assert_eq!((l.eta_s, l.s_per_epoch, l.val_acc), (None, None, None));
    }

    #[test]
    fn curves_are_grouped_by_trial_with_the_last_cursor() {
        let e = |seq, trial: &str, epoch| EpochRow {
            seq,
            trial_id: trial.into(),
            metrics: pb::EpochMetrics {
                epoch,
                val_acc: 0.123456,
                ..Default::default()
            },
        };
        let v = epochs(&[e(3, "a", 1), e(5, "b", 1), e(9, "a", 2)], 0);
        assert_eq!(v["cursor"], 9);
        assert_eq!(v["trials"]["a"][1], json!([2.0, 0.0, 12.3456]));
        assert_eq!(epochs(&[], 7)["cursor"], 7);
    }
}
