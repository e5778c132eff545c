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
    s.place(id, "http://a:1", 1, Some("12_3")).unwrap();
    assert_eq!(s.batch_job(id).unwrap().as_deref(), Some("12_3"));
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
                assert_eq!(
                    (p.as_path(), found, supported),
                    (path.as_path(), SCHEMA_VERSION + 1, SCHEMA_VERSION)
                );
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
    }
    let msg = ResultsStore::open(&path).err().unwrap().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("version {}", SCHEMA_VERSION + 1)),
        "{msg}"
    );
    let raw = Connection::open(&path).unwrap();
    let v: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1, "never downgraded");
}

#[test]
fn a_sweep_is_its_latest_expansion() {
    let (_t, mut s) = store();
    let first = from_text(SWEEP, &[]).unwrap();
    s.register("s", "s.toml", &first.trials).unwrap();
    let kept = &first.trials[0].id;
    let dropped = &first.trials[1].id;
    let r = pb::TrialResult {
        max_val_acc: 0.5,
        ..Default::default()
    };
    s.record_result(dropped, "h", &r).unwrap();
    let edited = SWEEP.replace("epochs = [1, 2]", "epochs = [1, 3]");
    let second = from_text(&edited, &[]).unwrap();
    assert_eq!(&second.trials[0].id, kept);
    s.register("s", "s.toml", &second.trials).unwrap();
    let ids = |rows: Vec<TrialRow>| rows.into_iter().map(|r| r.trial_id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.trials("s").unwrap()),
        vec![kept.clone(), second.trials[1].id.clone()]
    );
    assert_eq!(ids(s.former_trials("s").unwrap()), vec![dropped.clone()]);
    // History keeps its result, and neither a forced re-run nor collecting the
    // job again from a host brings it back.
    s.reset("s").unwrap();
    assert_eq!(s.trial(dropped).unwrap().unwrap().result, Some(r));
    let job = pb::Job {
        trial_id: dropped.clone(),
        ..Default::default()
    };
    assert!(!s.adopt_remote("s", &job).unwrap());
    assert_eq!(s.trials("s").unwrap().len(), 2);
    // Going back to the first file brings the trial, with its result, back.
    s.register("s", "s.toml", &first.trials).unwrap();
    let back = s.trials("s").unwrap();
    assert_eq!(ids(back.clone()), vec![kept.clone(), dropped.clone()]);
    assert_eq!(back[1].result.as_ref().map(|r| r.max_val_acc), Some(0.5));
}

#[test]
fn jobs_of_a_sweep_known_only_from_its_hosts_join_it() {
    let (_t, mut s) = store();
    let job = pb::Job {
        trial_id: "remote1".into(),
        model: "m".into(),
        spec: Some(pb::TrialSpec::default()),
        ..Default::default()
    };
    assert!(s.adopt_remote("elsewhere", &job).unwrap());
    assert_eq!(s.trials("elsewhere").unwrap().len(), 1);
}

#[test]
fn read_only_opening_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("r.db");
    assert!(
        ResultsStore::open_read_only(&path).is_err(),
        "no file is created"
    );
    assert!(!path.exists());
    let (_f, v0) = fixture("results.db");
    let before = std::fs::read(&v0).unwrap();
    {
        let s = ResultsStore::open_read_only(&v0).unwrap();
        assert_eq!(s.version().unwrap(), 0, "not migrated");
        let id = from_text(include_str!("../../../tests/fixtures/v0/fixture.toml"), &[])
            .unwrap()
            .trials[0]
            .id
            .clone();
        assert!(s.trial(&id).unwrap().is_some());
        assert!(s.note_host("h", "fp").is_err(), "writes are refused");
    }
    assert_eq!(std::fs::read(&v0).unwrap(), before);
    let wal = v0.with_extension("db-wal");
    assert!(!wal.exists(), "no WAL left behind");
}

#[test]
fn a_sweep_remembers_its_hosts_and_retry_policy() {
    let (_t, mut s) = store();
    let text = format!(
        "max_attempts = 5\nretry_failed = true\n{SWEEP}[hosts]\naddresses = [\"gpu1:7070\", \"https://gpu2:7070\"]\ntoken_file = \"tok\"\ntls_ca = \"~/ca.pem\"\n"
    );
    let sweep = from_text(&text, &[]).unwrap();
    s.register("s", "s.toml", &sweep.trials).unwrap();
    assert_eq!(s.settings("s").unwrap(), None, "nothing remembered yet");
    let settings = SweepSettings::of(&sweep.def);
    s.remember("s", &settings).unwrap();
    let back = s.settings("s").unwrap().unwrap();
    assert_eq!(back, settings);
    assert_eq!((back.max_attempts, back.retry_failed), (5, true));
    let hosts = back.hosts.unwrap();
    assert_eq!(hosts.addresses, vec!["gpu1:7070", "https://gpu2:7070"]);
    assert!(
        hosts.token_file.unwrap().is_absolute(),
        "relative paths are made absolute"
    );
    assert_eq!(hosts.tls_ca, Some(std::path::PathBuf::from("~/ca.pem")));
    assert_eq!(hosts.tls_cert, None);
    assert_eq!(
        s.sweep_of(&sweep.trials[0].id).unwrap().as_deref(),
        Some("s")
    );
    assert_eq!(s.sweep_of("nope").unwrap(), None);
    assert_eq!(s.settings("unknown").unwrap(), None);
}

/// Results pulled from a host (`--collect`) get the config id of the locally
/// expanded trial with the same spec, so their repeats group in the report.
#[test]
fn collected_results_share_the_local_config_id() {
    let (_t, mut s) = store();
    let sweep = from_text(SWEEP, &["repeats=2".into()]).unwrap();
    let local = &sweep.trials[0];
    s.register("s", "s.toml", &sweep.trials[..1]).unwrap();
    let mut spec = local.spec.clone();
    spec.seed += 1;
    let job = pb::Job {
        trial_id: "t-from-another-client".into(),
        sweep_id: "s".into(),
        spec: Some(spec),
        model: "vovnet-39".into(),
        ..Default::default()
    };
    assert!(s.adopt_remote("s", &job).unwrap());
    let remote = s.trial("t-from-another-client").unwrap().unwrap();
    assert_eq!(remote.config_id, local.config_id);
}
