//! Which of a sweep's kept weights matter most: each configuration's best
//! trial (highest MaxValAcc over its repeats, the first on a tie) among those
//! whose result lists kept weights. `vovctl results --collect --weights`
//! fetches them; `vovctl prune` spares them.

use crate::store::TrialRow;

/// The trials whose results list kept weights.
pub fn with_weights(trials: &[TrialRow]) -> impl Iterator<Item = &TrialRow> {
    trials
        .iter()
        .filter(|t| t.result.as_ref().is_some_and(|r| r.weights.is_some()))
}

/// Each configuration's best trial with kept weights, in sweep order.
pub fn best_per_config(trials: &[TrialRow]) -> Vec<&TrialRow> {
    let acc = |t: &TrialRow| t.result.as_ref().map_or(0.0, |r| r.max_val_acc);
    let mut best: Vec<&TrialRow> = Vec::new();
    for t in with_weights(trials) {
        match best.iter_mut().find(|b| b.config_id == t.config_id) {
            Some(b) if acc(t) > acc(b) => *b = t,
            Some(_) => {}
            None => best.push(t),
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use vov_proto::pb;

    fn trial(id: &str, config: &str, acc: f64, kept: bool) -> TrialRow {
        TrialRow {
            trial_id: id.into(),
            config_id: config.into(),
            repeat: 0,
            label: config.into(),
            model: String::new(),
            epochs: 1,
            spec: pb::TrialSpec::default(),
            state: crate::store::TrialState::Succeeded,
            failure: String::new(),
            message: String::new(),
            host: None,
            attempt: 1,
            last_seq: 0,
            epoch: 1,
            last_val_acc: acc,
            result: Some(pb::TrialResult {
                max_val_acc: acc,
                weights: kept.then(pb::KeptWeights::default),
                ..Default::default()
            }),
            stop_after: None,
        }
    }

    #[test]
    fn the_best_with_weights_of_each_configuration_the_first_on_a_tie() {
        let ts = vec![
            trial("a1", "a", 0.5, true),
            trial("a2", "a", 0.7, true),
            trial("a3", "a", 0.9, false),
            trial("b1", "b", 0.6, true),
            trial("b2", "b", 0.6, true),
            trial("c1", "c", 0.9, false),
        ];
        let ids: Vec<&str> = best_per_config(&ts)
            .iter()
            .map(|t| t.trial_id.as_str())
            .collect();
        assert_eq!(ids, ["a2", "b1"]);
        assert_eq!(with_weights(&ts).count(), 4);
    }
}
