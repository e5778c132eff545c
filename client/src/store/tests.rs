//! Results store round trips.

use proptest::prelude::*;
use vov_proto::pb;

use std::path::Path;

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

/// A copy of a committed fixture file in a temporary directory.
fn fixture(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/v0")
        .join(name);
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    (tmp, dst)
}

#[test]
fn a_fresh_store_is_at_the_current_version() {
    let (_t, s) = store();
    assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn the_v0_fixture_migrates_and_reads_back() {
    let (_t, path) = fixture("results.db");
    let raw = Connection::open(&path).unwrap();
    let v: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 0, "the fixture is a version-0 file");
    drop(raw);
    let s = ResultsStore::open(&path).unwrap();
    assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.sweeps().unwrap(), vec!["fixture"]);
    let rows = s.trials("fixture").unwrap();
    let text = include_str!("../../../tests/fixtures/v0/fixture.toml");
    let expanded = from_text(text, &[]).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r.trial_id.as_str()).collect();
    let want: Vec<&str> = expanded.trials.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, want, "the fixture's trials are the file's expansion");
    for r in &rows {
        assert_eq!(r.state, TrialState::Succeeded, "{r:?}");
        assert_eq!(r.epochs, 1);
        let result = r.result.as_ref().expect("a stored result");
        assert_eq!(result.history.len(), 1);
        assert!(result.fingerprint.is_some());
    }
    drop(s);
    // Opening again is a no-op at the current version.
    let again = ResultsStore::open(&path).unwrap();
    assert_eq!(again.trials("fixture").unwrap().len(), rows.len());
}

#[test]
fn a_store_from_a_newer_vovctl_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("r.db");
    drop(ResultsStore::open(&path).unwrap());
    let raw = Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(raw);
    for opened in [
        ResultsStore::open(&path).err(),
        ResultsStore::open_read_only(&path).err(),
    ] {
        match opened {
            Some(StoreError::TooNew {
                path: p,
                found,
                supported,
            }) => {
                assert_eq!((p.as_path(), found, supported), (path.as_path(), SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
    }
    let msg = ResultsStore::open(&path).err().unwrap().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("version {}", SCHEMA_VERSION + 1)), "{msg}");
    let raw = Connection::open(&path).unwrap();
    let v: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1, "never downgraded");
}
