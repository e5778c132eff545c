//! The ASHA and median rules on recorded metric sequences, and the `[search]`
//! table's checks.

use super::asha::{self, Candidate, Decision, Status};
use super::median::should_stop;
use super::*;

fn hist(values: &[(u32, f64)]) -> History {
    values.iter().copied().collect()
}

fn asha_def(eta: u32) -> SearchDef {
    SearchDef {
        kind: SearchKind::Asha,
        reduction_factor: eta,
        ..SearchDef::default()
    }
}

fn cands<'a>(hs: &'a [History], status: &[Status], epochs: u32) -> Vec<Candidate<'a>> {
    hs.iter()
        .zip(status)
        .map(|(h, s)| Candidate {
            epochs,
            history: h,
            status: *s,
        })
        .collect()
}

#[test]
fn rungs_grow_by_eta_up_to_the_full_epochs() {
    assert_eq!(asha::rungs(1, 3, 9), vec![1, 3, 9]);
    assert_eq!(asha::rungs(1, 3, 10), vec![1, 3, 9, 10]);
    assert_eq!(asha::rungs(2, 2, 9), vec![2, 4, 8, 9]);
    assert_eq!(asha::rungs(3, 3, 3), vec![3]);
    assert_eq!(asha::rungs(1, 2, 1), vec![1]);
}

#[test]
fn asha_starts_configurations_until_a_rung_has_a_top_third() {
    use Status::*;
    let def = asha_def(3);
    // Two trials paused at rung 0: 2 / 3 = 0 may go on, so a new one starts.
    let hs = [hist(&[(1, 0.5)]), hist(&[(1, 0.7)]), hist(&[])];
    let c = cands(&hs, &[Paused, Paused, Unstarted], 9);
    assert_eq!(
        asha::next(&c, &def),
        Some(Decision::Start {
            trial: 2,
            epochs: 1
        })
    );
    // A third reaches rung 0: the best of the three goes to rung 1 (3 epochs).
    let hs = [
        hist(&[(1, 0.5)]),
        hist(&[(1, 0.7)]),
        hist(&[(1, 0.6)]),
        hist(&[]),
    ];
    let c = cands(&hs, &[Paused, Paused, Paused, Unstarted], 9);
    assert_eq!(
        asha::next(&c, &def),
        Some(Decision::Promote {
            trial: 1,
            rung: 1,
            epochs: 3
        })
    );
}

#[test]
fn asha_promotes_from_the_highest_rung_first_and_never_twice() {
    use Status::*;
    let def = asha_def(3);
    // Trial 1 already went on from rung 0 (it is active toward rung 1); with 6
    // in rung 0, the top two are 1 and 4: 4 goes next.
    let mut hs: Vec<History> = [0.1, 0.9, 0.2, 0.3, 0.8, 0.4]
        .iter()
        .map(|v| hist(&[(1, *v)]))
        .collect();
    let mut st = vec![Paused, Active, Paused, Paused, Paused, Paused];
    assert_eq!(
        asha::next(&cands(&hs, &st, 9), &def),
        Some(Decision::Promote {
            trial: 4,
            rung: 1,
            epochs: 3
        })
    );
    // Three trials reach rung 1: the best of them goes to rung 2 first.
    for (i, v) in [(1, 0.95), (4, 0.85), (3, 0.5)] {
        hs[i].extend([(2, v), (3, v)]);
        st[i] = Paused;
    }
    assert_eq!(
        asha::next(&cands(&hs, &st, 9), &def),
        Some(Decision::Promote {
            trial: 1,
            rung: 2,
            epochs: 9
        })
    );
    // Trial 1 finished its 9 epochs: rung 1's top third (one of three) is used
    // up, and rung 0's top two are promoted: nothing is left to start either.
    hs[1].insert(9, 0.97);
    st[1] = Ended;
    assert_eq!(asha::next(&cands(&hs, &st, 9), &def), None);
}

#[test]
fn asha_with_eta_two_keeps_half_and_ties_go_in_sweep_order() {
    use Status::*;
    let def = asha_def(2);
    let hs = [
        hist(&[(1, 0.5)]),
        hist(&[(1, 0.5)]),
        hist(&[(1, 0.5)]),
        hist(&[(1, 0.1)]),
    ];
    let mut st = vec![Paused, Paused, Paused, Paused];
    let first = asha::next(&cands(&hs, &st, 4), &def);
    assert_eq!(
        first,
        Some(Decision::Promote {
            trial: 0,
            rung: 1,
            epochs: 2
        })
    );
    st[0] = Active;
    let second = asha::next(&cands(&hs, &st, 4), &def);
    assert_eq!(
        second,
        Some(Decision::Promote {
            trial: 1,
            rung: 1,
            epochs: 2
        })
    );
    // Half of four is two: the third tie stays.
    st[1] = Active;
    assert_eq!(asha::next(&cands(&hs, &st, 4), &def), None);
}

#[test]
fn asha_counts_a_trial_that_failed_after_a_rung_but_never_promotes_it() {
    use Status::*;
    let def = asha_def(3);
    // Trial 0 was best at rung 0 but failed on its way to rung 1; trial 3 failed
    // before reaching rung 0 and counts nowhere.
    let hs = [
        hist(&[(1, 0.9), (2, 0.9)]),
        hist(&[(1, 0.2)]),
        hist(&[(1, 0.3)]),
        hist(&[]),
    ];
    let st = [Ended, Paused, Paused, Ended];
    assert_eq!(asha::next(&cands(&hs, &st, 9), &def), None);
    // Three more members make the top two: 0 (ended) and then the next best.
    let hs2 = [
        hs[0].clone(),
        hs[1].clone(),
        hs[2].clone(),
        hist(&[(1, 0.4)]),
        hist(&[(1, 0.1)]),
        hist(&[(1, 0.0)]),
    ];
    let st2 = [Ended, Paused, Paused, Paused, Paused, Paused];
    assert_eq!(
        asha::next(&cands(&hs2, &st2, 9), &def),
        Some(Decision::Promote {
            trial: 3,
            rung: 1,
            epochs: 3
        })
    );
}

#[test]
fn asha_with_loss_ranks_the_lowest_first() {
    use Status::*;
    let def = SearchDef {
        metric: Metric::ValLoss,
        mode: Mode::Min,
        ..asha_def(3)
    };
    let hs = [hist(&[(1, 2.0)]), hist(&[(1, 0.5)]), hist(&[(1, 1.0)])];
    let c = cands(&hs, &[Paused, Paused, Paused], 9);
    assert_eq!(
        asha::next(&c, &def),
        Some(Decision::Promote {
            trial: 1,
            rung: 1,
            epochs: 3
        })
    );
}

fn median_def(grace: u32, min_trials: u32) -> SearchDef {
    SearchDef {
        kind: SearchKind::Median,
        grace_epochs: grace,
        min_trials,
        ..SearchDef::default()
    }
}

#[test]
fn median_stops_a_trial_whose_best_is_below_the_others_median() {
    let def = median_def(1, 3);
    let others = [
        hist(&[(1, 0.3), (2, 0.5)]),
        hist(&[(1, 0.4), (2, 0.6)]),
        hist(&[(1, 0.2), (2, 0.7)]),
    ];
    let refs: Vec<&History> = others.iter().collect();
    let low = hist(&[(1, 0.1), (2, 0.4)]);
    // Epoch 1 is within the grace period.
    assert!(!should_stop(&low, 1, &refs, &def));
    // Median at epoch 2 is 0.6; its best so far is 0.4.
    assert!(should_stop(&low, 2, &refs, &def));
    // Its best so far counts, not its last value; equal to the median is kept.
    let once_good = hist(&[(1, 0.6), (2, 0.1)]);
    assert!(!should_stop(&once_good, 2, &refs, &def));
    // Fewer than min_trials others at that epoch: no median yet.
    assert!(!should_stop(&low, 2, &refs[..2], &def));
    // An even count takes the mean of the middle two: (0.5 + 0.6) / 2.
    let def2 = median_def(0, 2);
    assert!(should_stop(&hist(&[(2, 0.54)]), 2, &refs[..2], &def2));
    assert!(!should_stop(&hist(&[(2, 0.56)]), 2, &refs[..2], &def2));
}

#[test]
fn median_with_loss_stops_the_highest() {
    let def = SearchDef {
        metric: Metric::ValLoss,
        mode: Mode::Min,
        ..median_def(0, 1)
    };
    let others = [hist(&[(1, 1.0)])];
    let refs: Vec<&History> = others.iter().collect();
    assert!(should_stop(&hist(&[(1, 1.5)]), 1, &refs, &def));
    assert!(!should_stop(&hist(&[(1, 0.5)]), 1, &refs, &def));
}

fn parsed(text: &str) -> Result<SearchDef, crate::sweep::SweepError> {
    let t: toml::Table = text.parse().unwrap();
    parse(Some(&t))
}

#[test]
fn the_search_table_names_its_bad_keys() {
    assert_eq!(parse(None).unwrap(), SearchDef::default());
    let d = parsed("kind = \"asha\"\nmin_epochs = 2\nreduction_factor = 2").unwrap();
    assert_eq!(
        (d.kind, d.min_epochs, d.reduction_factor),
        (SearchKind::Asha, 2, 2)
    );
    assert_eq!(parsed("metric = \"val_loss\"").unwrap().mode, Mode::Min);
    let err = |t: &str| parsed(t).unwrap_err().to_string();
    assert!(err("kind = \"asha\"\nreduction_factor = 1")
        .starts_with("search.reduction_factor: 1 is out of range"));
    assert!(err("metric = \"acc\"").starts_with("search.metric: unknown value \"acc\""));
    assert!(err("kind = \"bohb\"").starts_with("search.kind: unknown value"));
    assert!(err("kind = \"median\"\nreduction_factor = 3")
        .starts_with("search.reduction_factor: applies to kind = \"asha\""));
    assert!(err("eta = 3").starts_with("search.eta: unknown key"));
    let asha = parsed("kind = \"asha\"\nmin_epochs = 4").unwrap();
    let e = asha.check_epochs(3, "base.epochs").unwrap_err().to_string();
    assert!(
        e.starts_with("search.min_epochs: 4 is above the 3 epochs"),
        "{e}"
    );
}

#[test]
fn readme_search_keys_match_the_table() {
    crate::readme::check_section(
        "<!-- search keys: generated from client/src/search/def.rs, do not edit -->\n",
        "<!-- end of search keys -->",
        &keys_markdown(),
    );
}
