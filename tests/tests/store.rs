//! Black-box tests of the results store across versions and sweep edits, through
//! the real `vovctl` (and a real `vovd` where trials run): a store written by the
//! first release (tests/fixtures/v0) is read and extended by this build, an edited
//! sweep file runs and reports only its own trials, and a dry run writes nothing.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use vov_proto::pb;
use vov_tests::cli::{jobs, run, vovctl};
use vov_tests::{Daemon, DaemonOptions};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v0")
}

/// A copy of the v0 fixture's results store and sweep file in `dir`.
fn fixture_copy(dir: &Path) -> (PathBuf, PathBuf) {
    let store = dir.join("results.db");
    std::fs::copy(fixtures().join("results.db"), &store).unwrap();
    let file = dir.join("fixture.toml");
    std::fs::copy(fixtures().join("fixture.toml"), &file).unwrap();
    (store, file)
}

fn results(home: &Path, store: &Path, sweep: &str) -> Vec<serde_json::Value> {
    let out = run(vovctl(home)
        .args(["results", sweep, "--format", "json", "--store"])
        .arg(store));
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("results --format json is JSON")
}

fn ids(rows: &[serde_json::Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["trial"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_v0_store_skips_its_finished_trials() {
    let tmp = TempDir::new().unwrap();
    let (store, file) = fixture_copy(tmp.path());
    let before = results(tmp.path(), &store, "fixture");
    assert_eq!(before.len(), 2);
    assert!(
        before.iter().all(|r| r["state"] == "succeeded"),
        "{before:?}"
    );
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let out = run(vovctl(tmp.path())
        .arg("sweep")
        .arg(&file)
        .args(["--hosts", &d.addr.to_string(), "--store"])
        .arg(&store));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        jobs(&d, "fixture").await.is_empty(),
        "a finished trial reached the daemon"
    );
    let after = results(tmp.path(), &store, "fixture");
    assert_eq!(ids(&after), ids(&before));
    assert_eq!(after, before, "the stored results are untouched");
}

#[tokio::test]
async fn an_edited_sweep_runs_and_reports_only_its_own_trials() {
    let tmp = TempDir::new().unwrap();
    let (store, file) = fixture_copy(tmp.path());
    let old = ids(&results(tmp.path(), &store, "fixture"));
    // The first learning rate stays, the second is replaced.
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replace("lr = [1e-3, 2e-3]", "lr = [1e-3, 3e-3]");
    assert_ne!(text, edited);
    std::fs::write(&file, edited).unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let out = run(vovctl(tmp.path())
        .arg("sweep")
        .arg(&file)
        .args(["--hosts", &d.addr.to_string(), "--store"])
        .arg(&store));
    assert_eq!(out.status.code(), Some(0));
    let ran: Vec<String> = jobs(&d, "fixture")
        .await
        .into_iter()
        .map(|j| j.trial_id)
        .collect();
    assert_eq!(ran.len(), 1, "only the new trial runs: {ran:?}");
    assert!(!old.contains(&ran[0]));
    let now = ids(&results(tmp.path(), &store, "fixture"));
    assert_eq!(now, vec![old[0].clone(), ran[0].clone()]);
    let report = run(vovctl(tmp.path())
        .args(["report", "fixture", "--format", "json", "--store"])
        .arg(&store));
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let n: u64 = report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["rows"].as_array().unwrap())
        .map(|r| r["repeats"].as_u64().unwrap())
        .sum();
    assert_eq!(n, 2, "the report holds the two current trials: {report}");
    let status = run(vovctl(tmp.path())
        .args(["status", "--json", "--store"])
        .arg(&store));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["trials"], 2, "{status}");
}

#[test]
fn a_dry_run_writes_nothing() {
    let tmp = TempDir::new().unwrap();
    let (store, file) = fixture_copy(tmp.path());
    let fresh = tmp.path().join("fresh.db");
    let out = run(vovctl(tmp.path())
        .arg("sweep")
        .arg(&file)
        .arg("--dry-run")
        .arg("--store")
        .arg(&fresh));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 to run"));
    assert!(!fresh.exists(), "a dry run created a store");

    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("lr = [1e-3, 2e-3]", "lr = [4e-3]")).unwrap();
    let before = std::fs::read(&store).unwrap();
    let out = run(vovctl(tmp.path())
        .arg("sweep")
        .arg(&file)
        .arg("--dry-run")
        .arg("--store")
        .arg(&store));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 trials, 0 finished, 1 to run"));
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "a dry run changed the store"
    );
    assert!(!tmp.path().join("results.db-wal").exists());
    assert_eq!(results(tmp.path(), &store, "fixture").len(), 2);
}

const TOKEN: &str = "remembered-token-0123456789";

/// Every job of `sweep` on a daemon that wants [`TOKEN`].
async fn jobs_with_token(daemon: &Daemon, sweep: &str) -> Vec<pb::Job> {
    let channel = tonic::transport::Channel::from_shared(daemon.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let value: tonic::metadata::MetadataValue<_> = format!("Bearer {TOKEN}").parse().unwrap();
    let mut client = pb::trainer_client::TrainerClient::with_interceptor(
        channel,
        move |mut req: tonic::Request<()>| {
            req.metadata_mut().insert("authorization", value.clone());
            Ok(req)
        },
    );
    client
        .list(pb::ListRequest {
            sweep_id: sweep.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .jobs
}

/// A sweep file naming `daemon` and the token file in its `[hosts]`.
fn sweep_with_hosts(dir: &Path, name: &str, daemon: &Daemon, train: u32) -> PathBuf {
    let text = std::fs::read_to_string(fixtures().join("fixture.toml"))
        .unwrap()
        .replace(
            "name = \"fixture\"",
            &format!("name = \"{name}\"\nmax_attempts = 2"),
        )
        .replace("train_limit = 64", &format!("train_limit = {train}"))
        + &format!(
            "\n[hosts]\naddresses = [\"{}\"]\ntoken_file = \"token\"\n",
            daemon.addr
        );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn every_verb_uses_the_sweeps_remembered_hosts() {
    let tmp = TempDir::new().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let mut opts = DaemonOptions::default();
    opts.env
        .push(("VOVD__TOKEN_FILE".into(), token.display().to_string()));
    let d = Daemon::start_in(&tmp.path().join("d"), opts);
    let store = tmp.path().join("r.db");
    let local_state = tmp.path().join("r.db.vovd");
    // The token file is named relative to the directory the sweep runs in.
    let file = sweep_with_hosts(tmp.path(), "remember", &d, 64);
    let out = run(vovctl(tmp.path())
        .current_dir(tmp.path())
        .arg("sweep")
        .arg(&file)
        .arg("--detach")
        .arg("--store")
        .arg(&store));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(jobs_with_token(&d, "remember").await.len(), 2);

    // From elsewhere, by name only: hosts, attach and collect go to the same
    // daemon, with the same token, and no local vovd starts.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = run(vovctl(tmp.path())
        .current_dir(&elsewhere)
        .args(["hosts", "remember", "--json", "--store"])
        .arg(&store));
    assert_eq!(out.status.code(), Some(0));
    let hosts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 1, "{hosts}");
    assert!(hosts[0]["host"]
        .as_str()
        .unwrap()
        .contains(&d.addr.to_string()));
    assert_eq!(hosts[0]["reachable"], true, "{hosts}");

    let out = run(vovctl(tmp.path())
        .current_dir(&elsewhere)
        .args(["attach", "remember", "--store"])
        .arg(&store));
    assert_eq!(out.status.code(), Some(0));
    let rows = results(tmp.path(), &store, "remember");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["state"] == "succeeded"), "{rows:?}");

    let out = run(vovctl(tmp.path())
        .current_dir(&elsewhere)
        .args([
            "results",
            "remember",
            "--collect",
            "--format",
            "json",
            "--store",
        ])
        .arg(&store));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("collected 0 new result(s)"));
    assert!(!local_state.exists(), "a local vovd was started");

    // Cancel: a second sweep on a one-slot daemon leaves trials waiting.
    let file = sweep_with_hosts(tmp.path(), "stop", &d, 2048);
    let out = run(vovctl(tmp.path())
        .current_dir(tmp.path())
        .arg("sweep")
        .arg(&file)
        .arg("--detach")
        .arg("--store")
        .arg(&store));
    assert_eq!(out.status.code(), Some(0));
    let out = run(vovctl(tmp.path())
        .current_dir(&elsewhere)
        .args(["cancel", "stop", "--store"])
        .arg(&store));
    assert_eq!(
        out.status.code(),
        Some(0),
        "cancel reached the host with its token"
    );
    let cancelled = jobs_with_token(&d, "stop")
        .await
        .into_iter()
        .filter(|j| j.state == pb::JobState::Cancelled as i32)
        .count();
    assert!(cancelled >= 1, "nothing was cancelled on the host");
    assert!(!local_state.exists(), "a local vovd was started");
}
