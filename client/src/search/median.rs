//! Median stopping: after `grace_epochs`, a running trial whose best value so
//! far is worse than the median of the other trials' values at the same epoch
//! is stopped (Vizier compares with running averages of completed trials; this
//! rule, like Optuna's median pruner, takes every other trial's value at that
//! epoch). The median counts only once `min_trials` other
//! trials have reached that epoch.

use super::{History, SearchDef};

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Whether a trial with `history`, just done with `epoch`, is stopped, against
/// `others` (the sweep's other trials).
pub fn should_stop(history: &History, epoch: u32, others: &[&History], def: &SearchDef) -> bool {
    if epoch <= def.grace_epochs {
        return false;
    }
    let mut at: Vec<f64> = others
        .iter()
        .filter_map(|h| h.get(&epoch).copied())
        .collect();
    if at.len() < def.min_trials as usize {
        return false;
    }
    let Some(mid) = median(&mut at) else {
        return false;
    };
    let best = history
        .range(..=epoch)
        .map(|(_, v)| *v)
        .reduce(|a, b| def.mode.best(a, b));
    best.is_some_and(|b| def.mode.better(mid, b))
}
