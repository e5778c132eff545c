//! Results store round trips.

use proptest::prelude::*;
use vov_proto::pb;

use super::*;
use crate::sweep::from_text;

fn store() -> (tempfile::TempDir, ResultsStore) {
    let tmp = tempfile::tempdir().unwrap();
    let s = ResultsStore::open(&tmp.path().join("r.db")).unwrap();
    (tmp, s)
}

const SWEEP: &str = "name = \"s\"\n[base]\nmodel = \"vovnet-39\"\ndataset = \"synthetic\"\n[grid]\nepochs = [1, 2]\n";

#[test]
fn register_place_finish_and_keep_one_result() {
    let (_t, mut s) = store();
    let sweep = from_text(SWEEP, &[]).unwrap();
    s.register("s", "s.toml", &sweep.trials).unwrap();
    s.register("s", "s.toml", &sweep.trials).unwrap();
    let rows = s.trials("s").unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].spec, sweep.trials[0].spec);
    assert_eq!(rows[0].state, TrialState::Pending);
    let id = &rows[0].trial_id;
    s.place(id, "http://a:1", 1).unwrap();
    let m = pb::EpochMetrics {
        epoch: 1,
        val_acc: 0.5,
        ..Default::default()
    };
    s.progress(id, 7, Some(&m)).unwrap();
    let r = pb::TrialResult {
        model: "vovnet-39".into(),
        max_val_acc: 0.6,
        ..Default::default()
    };
    assert!(s.record_result(id, "http://a:1", &r).unwrap());
    assert!(
        !s.record_result(id, "http://b:2", &r).unwrap(),
        "a second result is ignored"
    );
    s.set_state(id, TrialState::Failed, "crashed", "late")
        .unwrap();
    let row = s.trial(id).unwrap().unwrap();
    assert_eq!(
        (row.state, row.host.as_deref(), row.last_seq),
        (TrialState::Succeeded, Some("http://a:1"), 7)
    );
    assert_eq!(row.result, Some(r));
    assert_eq!(s.sweeps().unwrap(), vec!["s"]);
}

proptest! {
    /// Any result survives the store unchanged.
    #[test]
    fn results_round_trip(acc in 0.0f64..1.0, epochs in 1usize..20, secs in proptest::option::of(0.0f64..1e4), warn in ".{0,20}") {
        let (_t, mut s) = store();
        let sweep = from_text(SWEEP, &[]).unwrap();
        s.register("s", "f", &sweep.trials).unwrap();
        let r = pb::TrialResult {
            model: "m".into(),
            max_val_acc: acc,
            history: (0..epochs).map(|e| pb::EpochMetrics { epoch: e as u32 + 1, val_acc: acc, ..Default::default() }).collect(),
            train_s_per_epoch: secs,
            warnings: vec![warn],
            ..Default::default()
        };
        let id = &sweep.trials[1].id;
        s.record_result(id, "h", &r).unwrap();
        prop_assert_eq!(s.trial(id).unwrap().unwrap().result, Some(r));
    }
}
