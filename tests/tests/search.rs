//! Adaptive search with real daemons: an ASHA sweep's rungs and promotions from
//! checkpoints, vovctl killed mid-search making the same decisions when run
//! again, median stopping, the daemon's pause, continue and checkpoint budget,
//! and the `[search]` errors.

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;
use vov_proto::pb;
use vov_tests::cli::{
    finish, hosts_arg, jobs, read_until, run, spawn_sweep, store_rows, sweep_file_with, vovctl,
};
use vov_tests::{submit, tiny_spec, wait_state, Daemon, DaemonOptions};
use vovctl::search::asha::{self, Candidate, Decision, Status};
use vovctl::search::{History, SearchDef, SearchKind};

const LRS: [f64; 4] = [1e-4, 1e-3, 1e-2, 5e-2];

fn asha_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let search = "[search]\nkind = \"asha\"\nmin_epochs = 1\nreduction_factor = 2\n";
    let path = sweep_file_with(dir, name, 4, 64, &LRS, "");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n{search}")).unwrap();
    path
}

/// The decisions of `sweep` in the store: (trial, kind, epochs).
fn decisions(store: &Path, sweep: &str) -> Vec<(String, String, u32)> {
    let db = rusqlite::Connection::open(store).unwrap();
    let mut stmt = db
        .prepare("SELECT trial_id, kind, epochs FROM decisions WHERE sweep = ?1 ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([sweep], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// The decisions ASHA makes on one slot, replayed with the rule itself on the
/// metrics the trials recorded (`rows`, in sweep order): what the sweep must
/// have decided.
fn replay(rows: &[serde_json::Value], def: &SearchDef) -> Vec<(String, String, u32)> {
    let full: Vec<History> = rows
        .iter()
        .map(|r| {
            r["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["epoch"].as_u64().unwrap() as u32,
                        e["val_acc"].as_f64().unwrap(),
                    )
                })
                .collect()
        })
        .collect();
    let max = 4;
    let mut known = vec![History::new(); rows.len()];
    let mut status = vec![Status::Unstarted; rows.len()];
    let mut out = Vec::new();
    loop {
        let cands: Vec<Candidate<'_>> = known
            .iter()
            .zip(&status)
            .map(|(h, s)| Candidate {
                epochs: max,
                history: h,
                status: *s,
            })
            .collect();
        let (trial, kind, epochs) = match asha::next(&cands, def) {
            Some(Decision::Start { trial, epochs }) => (trial, "start", epochs),
            Some(Decision::Promote { trial, epochs, .. }) => (trial, "promote", epochs),
            None => break,
        };
        known[trial] = full[trial]
            .range(..=epochs)
            .map(|(e, v)| (*e, *v))
            .collect();
        status[trial] = if epochs == max {
            Status::Ended
        } else {
            Status::Paused
        };
        out.push((
            rows[trial]["trial"].as_str().unwrap().to_string(),
            kind.to_string(),
            epochs,
        ));
    }
    for (i, s) in status.iter().enumerate() {
        if *s == Status::Paused {
            let at = known[i].keys().max().copied().unwrap_or(0);
            out.push((
                rows[i]["trial"].as_str().unwrap().to_string(),
                "stop".into(),
                at,
            ));
        }
    }
    out
}

/// Whether `path` is gone within a few seconds: the daemon removes a job's
/// checkpoints just after its new state is in the store that `Get` reads.
async fn gone(path: &Path) -> bool {
    for _ in 0..100 {
        if !path.exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn epochs_of(row: &serde_json::Value) -> Vec<u64> {
    row["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn an_asha_sweep_halves_each_rung_and_promotes_from_checkpoints() {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(
        &tmp.path().join("d"),
        DaemonOptions {
            slots: 2,
            ..Default::default()
        },
    );
    let file = asha_file(tmp.path(), "asha");
    let store = tmp.path().join("r.db");
    let child = spawn_sweep(tmp.path(), &file, &store, &hosts_arg(&[&d]), &[]);
    let (events, code) = finish(child);
    assert_eq!(code, Some(0), "{events:?}");
    let end = events.last().unwrap();
    assert_eq!(end["event"], "finished");

    let rows = store_rows(tmp.path(), &store, "asha");
    assert_eq!(rows.len(), 8);
    let mut at_rung = [0usize; 4];
    for row in &rows {
        let epochs = epochs_of(row);
        // Continued from its checkpoint: epochs 1..=n, none repeated.
        let want: Vec<u64> = (1..=epochs.len() as u64).collect();
        assert_eq!(epochs, want, "{row}");
        assert_eq!(row["epochs_run"], epochs.len() as u64);
        let rung = row["rung"].as_u64().unwrap() as usize;
        at_rung[rung] += 1;
        match row["state"].as_str().unwrap() {
            "succeeded" => assert_eq!((rung, epochs.len()), (3, 4), "{row}"),
            "stopped_early" => assert!(rung < 3 && [1, 2].contains(&epochs.len()), "{row}"),
            other => panic!("unexpected state {other}: {row}"),
        }
    }
    // Rungs 1, 2, 4 epochs: all 8 reach the first; each later rung holds about
    // half of the one before (at least half rounded down, as ASHA promotes the
    // top 1/eta whenever a slot frees).
    let reached = |k: usize| at_rung[k..].iter().sum::<usize>();
    assert_eq!(reached(1), 8, "{at_rung:?}");
    assert!((4..8).contains(&reached(2)), "{at_rung:?}");
    assert!((2..reached(2)).contains(&reached(3)), "{at_rung:?}");
    let total: u64 = rows.iter().map(|r| r["epochs_run"].as_u64().unwrap()).sum();
    assert!(total < 8 * 4, "ASHA ran {total} epochs of the grid's 32");

    // Each finished trial resumed from its last rung's checkpoint on the host.
    for job in jobs(&d, "asha").await {
        if job.state == pb::JobState::Succeeded as i32 {
            assert_eq!(
                job.result.unwrap().resumed_from_epoch,
                2,
                "{}",
                job.trial_id
            );
        } else {
            // Paused ones were cancelled when the search ended.
            assert_eq!(
                job.state,
                pb::JobState::Cancelled as i32,
                "{}",
                job.trial_id
            );
        }
    }
    let kept = std::fs::read_dir(d.state_dir.join("checkpoints"))
        .map(|e| e.count())
        .unwrap_or(0);
    assert_eq!(kept, 0, "every kept checkpoint is removed at the end");
    let kinds: Vec<String> = decisions(&store, "asha").into_iter().map(|d| d.1).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "start").count(), 8);
}

#[tokio::test]
async fn vovctl_killed_mid_search_makes_the_same_decisions_when_run_again() {
    let tmp = TempDir::new().unwrap();
    // The same search twice, on two one-slot daemons with their own stores:
    // once straight through, once with vovctl killed after two pauses.
    let straight = Daemon::start_in(&tmp.path().join("a"), DaemonOptions::default());
    let file = asha_file(tmp.path(), "again");
    let store_a = tmp.path().join("a.db");
    let (_, code) = finish(spawn_sweep(
        tmp.path(),
        &file,
        &store_a,
        &hosts_arg(&[&straight]),
        &[],
    ));
    assert_eq!(code, Some(0));
    // On one slot the decisions are the rule's, replayed on the recorded metrics.
    let def = SearchDef {
        kind: SearchKind::Asha,
        reduction_factor: 2,
        ..SearchDef::default()
    };
    let rows = store_rows(tmp.path(), &store_a, "again");
    let expected = replay(&rows, &def);
    assert_eq!(decisions(&store_a, "again"), expected);
    let per_rung = |e: u32| {
        expected
            .iter()
            .filter(|d| d.1 != "stop" && d.2 == e)
            .count()
    };
    assert_eq!(per_rung(1), 8, "{expected:?}");

    let cut = Daemon::start_in(&tmp.path().join("b"), DaemonOptions::default());
    let store_b = tmp.path().join("b.db");
    let hosts = hosts_arg(&[&cut]);
    let mut child = spawn_sweep(tmp.path(), &file, &store_b, &hosts, &[]);
    for _ in 0..3 {
        read_until(&mut child, |e| {
            e["event"] == "state" && e["state"] == "paused"
        });
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (_, code) = finish(spawn_sweep(tmp.path(), &file, &store_b, &hosts, &[]));
    assert_eq!(code, Some(0));
    assert_eq!(decisions(&store_a, "again"), decisions(&store_b, "again"));
    // No trial ran twice: the daemon started each job once per rung it was
    // sent to.
    let log = cut.log_text();
    let sent = decisions(&store_b, "again");
    for job in jobs(&cut, "again").await {
        let rungs = sent
            .iter()
            .filter(|d| d.0 == job.trial_id && d.1 != "stop")
            .count();
        let started = log
            .lines()
            .filter(|l| {
                l.contains("trial started") && l.contains(&format!("trial.id={}", job.trial_id))
            })
            .count();
        assert_eq!(started, rungs, "{}", job.trial_id);
    }
}

#[tokio::test]
async fn median_stopping_stops_trials_below_the_median_and_frees_their_slots() {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let path = sweep_file_with(tmp.path(), "med", 3, 64, &[1e-5, 2e-5, 3e-2, 5e-2], "");
    let text = std::fs::read_to_string(&path).unwrap();
    let search = "[search]\nkind = \"median\"\ngrace_epochs = 0\nmin_trials = 1\n";
    std::fs::write(&path, format!("{text}\n{search}")).unwrap();
    let store = tmp.path().join("r.db");
    let (_, code) = finish(spawn_sweep(
        tmp.path(),
        &path,
        &store,
        &hosts_arg(&[&d]),
        &[],
    ));
    assert_eq!(code, Some(0));
    let rows = store_rows(tmp.path(), &store, "med");
    let stopped: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["state"] == "stopped_early")
        .collect();
    assert!(!stopped.is_empty(), "{rows:?}");
    assert!(rows.iter().any(|r| r["state"] == "succeeded"), "{rows:?}");
    for row in stopped {
        assert!(row["epochs_run"].as_u64().unwrap() <= 3, "{row}");
        // Its job on the daemon was cancelled (the worker stops at its next batch).
        let trial = row["trial"].as_str().unwrap();
        let mut c = d.client().await;
        wait_state(
            &mut c,
            trial,
            pb::JobState::Cancelled,
            Duration::from_secs(30),
        )
        .await;
    }
    let stops = decisions(&store, "med");
    assert!(stops.iter().all(|d| d.1 == "stop"), "{stops:?}");
}

#[tokio::test]
async fn a_paused_job_keeps_its_checkpoint_continues_and_counts_against_the_budget() {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let mut c = d.client().await;
    let ck = |id: &str| {
        d.state_dir
            .join("checkpoints")
            .join(id)
            .join("checkpoint.safetensors")
    };
    // A learning rate whose JSON round trip is not exact: continuing the job
    // must still find the same spec.
    let spec = pb::TrialSpec {
        lr: 9.271563291890493e-5,
        ..tiny_spec(3, 64, 32)
    };
    let pause = |id: &str, retry: bool, at: u32| pb::SubmitRequest {
        retry,
        stop_after_epochs: at,
        ..submit(id, "p", spec.clone())
    };
    c.submit(pause("t-p", false, 1)).await.unwrap();
    let job = wait_state(&mut c, "t-p", pb::JobState::Paused, Duration::from_secs(60)).await;
    assert!(job.message.contains("paused after 1 epochs"), "{job:?}");
    assert!(ck("t-p").is_file());
    c.submit(pause("t-p", true, 2)).await.unwrap();
    wait_state(&mut c, "t-p", pb::JobState::Paused, Duration::from_secs(60)).await;
    c.submit(pause("t-p", true, 0)).await.unwrap();
    let done = wait_state(
        &mut c,
        "t-p",
        pb::JobState::Succeeded,
        Duration::from_secs(60),
    )
    .await;
    let result = done.result.unwrap();
    assert_eq!(result.resumed_from_epoch, 2);
    let epochs: Vec<u32> = result.history.iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, vec![1, 2, 3]);
    assert!(
        gone(&ck("t-p")).await,
        "a finished job's checkpoint is removed"
    );

    // A cancel removes a paused job's checkpoint.
    c.submit(pause("t-c", false, 1)).await.unwrap();
    wait_state(&mut c, "t-c", pb::JobState::Paused, Duration::from_secs(60)).await;
    c.cancel(pb::CancelRequest {
        trial_id: "t-c".into(),
    })
    .await
    .unwrap();
    wait_state(
        &mut c,
        "t-c",
        pb::JobState::Cancelled,
        Duration::from_secs(10),
    )
    .await;
    assert!(gone(&ck("t-c")).await);

    // Above max_checkpoint_bytes a job cannot pause: it fails as disk_full.
    let env = vec![("VOVD__MAX_CHECKPOINT_BYTES".to_string(), "1000".to_string())];
    let mut opts = DaemonOptions::default();
    opts.env.extend(env);
    let small = Daemon::start_in(&tmp.path().join("small"), opts);
    let mut c = small.client().await;
    c.submit(pause("t-b", false, 1)).await.unwrap();
    let job = wait_state(&mut c, "t-b", pb::JobState::Failed, Duration::from_secs(60)).await;
    assert_eq!(job.failure, pb::FailureClass::DiskFull as i32);
    assert!(
        job.message.contains("max_checkpoint_bytes = 1000"),
        "{}",
        job.message
    );
    assert!(
        gone(
            &small
                .state_dir
                .join("checkpoints/t-b/checkpoint.safetensors")
        )
        .await
    );
}

#[test]
fn bad_search_values_and_detach_are_usage_errors_naming_the_key() {
    let tmp = TempDir::new().unwrap();
    let bad = |name: &str, search: &str| {
        let path = sweep_file_with(tmp.path(), name, 2, 64, &[1e-3], "");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}\n[search]\n{search}\n")).unwrap();
        path
    };
    let cases = [
        (
            "eta",
            "kind = \"asha\"\nreduction_factor = 1",
            "search.reduction_factor",
        ),
        (
            "rmin",
            "kind = \"asha\"\nmin_epochs = 3",
            "search.min_epochs: 3 is above the 2 epochs",
        ),
        (
            "metric",
            "kind = \"median\"\nmetric = \"top5\"",
            "search.metric: unknown value \"top5\"",
        ),
    ];
    for (name, search, want) in cases {
        let file = bad(name, search);
        let out = run(vovctl(tmp.path()).arg("sweep").arg(&file).args([
            "--hosts",
            "127.0.0.1:1",
            "--dry-run",
        ]));
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{name}: {err}");
    }
    let file = bad("detach", "kind = \"asha\"");
    let out = run(vovctl(tmp.path())
        .arg("sweep")
        .arg(&file)
        .args(["--hosts", "127.0.0.1:1", "--detach", "--store"])
        .arg(tmp.path().join("r.db")));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot --detach"));
}
