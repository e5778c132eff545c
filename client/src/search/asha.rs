//! Asynchronous successive halving, as published (Li et al., "A System for
//! Massively Parallel Hyperparameter Tuning", MLSys 2020): whenever a slot frees,
//! promote the best trial of the highest rung that has one in its top 1/eta not
//! yet promoted; otherwise start a new configuration at the bottom rung. No rung
//! waits for a full cohort.
//!
//! Everything is derived from what the store records (each trial's metric by
//! epoch and whether it is paused), so a restarted client reaches the same
//! decisions.

use super::{History, SearchDef};

/// The epochs at which a trial of `max` epochs pauses, and finally ends: `r`,
/// `r*eta`, `r*eta^2`, ... below `max`, then `max`.
pub fn rungs(min_epochs: u32, eta: u32, max: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut at = u64::from(min_epochs.max(1));
    while at < u64::from(max) {
        out.push(at as u32);
        at *= u64::from(eta.max(2));
    }
    out.push(max);
    out
}

/// Where a trial stands, as the search sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not started by the search yet.
    Unstarted,
    /// Placed or training toward a rung.
    Active,
    /// Paused at its highest rung reached, its checkpoint kept: promotable.
    Paused,
    /// Nothing more will happen (finished, failed, stopped).
    Ended,
}

/// One trial of the sweep, in sweep order.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its full epochs (the top rung).
    pub epochs: u32,
    /// Its metric by epoch.
    pub history: &'a History,
    /// Where it stands.
    pub status: Status,
}

/// What to do with a free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start candidate `trial` at the bottom rung (to `epochs`).
    Start {
        /// Its index.
        trial: usize,
        /// Epochs of the bottom rung.
        epochs: u32,
    },
    /// Continue candidate `trial` from rung `rung - 1` to rung `rung` (`epochs`).
    Promote {
        /// Its index.
        trial: usize,
        /// The rung it goes to (1 = the second).
        rung: usize,
        /// Epochs of that rung.
        epochs: u32,
    },
}

impl Candidate<'_> {
    fn rungs(&self, def: &SearchDef) -> Vec<u32> {
        rungs(def.min_epochs, def.reduction_factor, self.epochs)
    }

    /// Its value at rung `k`, when it reached it.
    fn at(&self, def: &SearchDef, k: usize) -> Option<f64> {
        let r = self.rungs(def);
        r.get(k).and_then(|e| self.history.get(e)).copied()
    }

    /// The highest rung it reached.
    pub fn reached(&self, def: &SearchDef) -> Option<usize> {
        let r = self.rungs(def);
        (0..r.len())
            .rev()
            .find(|&k| self.history.contains_key(&r[k]))
    }
}

/// The rung `trial` has reached, counted from 0, and how many rungs it has.
pub fn rung_of(def: &SearchDef, epochs: u32, history: &History) -> (Option<usize>, usize) {
    let c = Candidate {
        epochs,
        history,
        status: Status::Ended,
    };
    (c.reached(def), c.rungs(def).len())
}

/// The next decision for one free slot, or none (every configuration started
/// and no rung has a promotable trial in its top 1/eta).
pub fn next(trials: &[Candidate<'_>], def: &SearchDef) -> Option<Decision> {
    let eta = def.reduction_factor.max(2) as usize;
    let top = trials.iter().map(|t| t.rungs(def).len()).max().unwrap_or(0);
    for k in (0..top.saturating_sub(1)).rev() {
        let mut members: Vec<(usize, f64)> = trials
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.at(def, k).map(|v| (i, v)))
            .collect();
        // Best first; equal values keep sweep order (the sort is stable).
        members.sort_by(|a, b| {
            if def.mode.better(a.1, b.1) {
                std::cmp::Ordering::Less
            } else if def.mode.better(b.1, a.1) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        let keep = members.len() / eta;
        let promotable = members.iter().take(keep).find(|(i, _)| {
            let t = &trials[*i];
            t.status == Status::Paused && t.reached(def) == Some(k) && k + 1 < t.rungs(def).len()
        });
        if let Some(&(i, _)) = promotable {
            let epochs = trials[i].rungs(def)[k + 1];
            return Some(Decision::Promote {
                trial: i,
                rung: k + 1,
                epochs,
            });
        }
    }
    let first = trials.iter().position(|t| t.status == Status::Unstarted)?;
    Some(Decision::Start {
        trial: first,
        epochs: trials[first].rungs(def)[0],
    })
}
