//! The real `vovctl` on failure paths of scheduling, against real daemons: two
//! clients on one results store (and `attach` beside a sweep) all finish; a
//! sweep too big to expand is refused at once; `retry_failed` runs a crashed trial
//! again on the only host, and a crash without it is reported as a crash; a host
//! whose job bookkeeping is stuck keeps its lease while its health answers.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vov_proto::pb;
use vov_tests::cli::{
    finish_within, jobs, read_until, run, spawn_sweep, store_rows, sweep_file_with, wait_within,
};
use vov_tests::{workers_of, Daemon, DaemonOptions};

const LONG: Duration = Duration::from_secs(180);

fn vovctl_in(home: &Path) -> Command {
    vov_tests::cli::vovctl(home)
}

/// Every job of the sweep succeeded on its first worker start.
async fn each_ran_once(daemon: &Daemon, sweep: &str, n: usize) {
    let jobs = jobs(daemon, sweep).await;
    assert_eq!(jobs.len(), n, "{jobs:?}");
    for j in &jobs {
        assert_eq!(j.state, pb::JobState::Succeeded as i32, "{j:?}");
        assert_eq!(j.attempt, 1, "{}: started more than once", j.trial_id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sweeps_and_an_attach_on_one_store_all_finish() {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let file = sweep_file_with(tmp.path(), "both", 1, 128, &[1e-3, 2e-3], "");
    let store = tmp.path().join("r.db");
    let hosts = d.addr.to_string();
    let mut first = spawn_sweep(tmp.path(), &file, &store, &hosts, &[]);
    read_until(&mut first, |e| e["event"] == "placed");
    let second = spawn_sweep(tmp.path(), &file, &store, &hosts, &[]);
    let mut attach = vovctl_in(tmp.path())
        .args(["attach", "both", "--hosts", &hosts, "--json", "--store"])
        .arg(&store)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let second = std::thread::spawn(move || finish_within(second, "the second sweep", LONG).1);
    assert_eq!(finish_within(first, "the first sweep", LONG).1, Some(0));
    assert_eq!(second.join().unwrap(), Some(0));
    assert_eq!(wait_within(&mut attach, "attach", LONG), Some(0));
    let rows = store_rows(tmp.path(), &store, "both");
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["state"] == "succeeded"), "{rows:?}");
    each_ran_once(&d, "both", 4).await;
}

#[test]
fn a_sweep_above_max_trials_is_refused_before_it_is_expanded() {
    let tmp = TempDir::new().unwrap();
    let list =
        |n: usize, f: &dyn Fn(usize) -> String| (1..=n).map(f).collect::<Vec<_>>().join(", ");
    let text = format!(
        "name = \"huge\"\n[base]\nmodel = \"vovnet-27-slim\"\ndataset = \"synthetic\"\n\
         [grid]\nlr = [{}]\nweight_decay = [{}]\nbn_momentum = [{}]\nepochs = [{}]\n",
        list(100, &|i| format!("{}e-4", i)),
        list(100, &|i| format!("{}e-6", i)),
        list(100, &|i| format!("0.{:03}", 899 + i)),
        list(10, &|i| i.to_string()),
    );
    let file = tmp.path().join("huge.toml");
    std::fs::write(&file, text).unwrap();
    let out = run(vovctl_in(tmp.path())
        .args(["sweep", "--dry-run", "--hosts", "127.0.0.1:9"])
        .arg(&file));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "the sweep expands to 100 (grid.lr) x 100 (grid.weight_decay) x 100 (grid.bn_momentum) \
             x 10 (grid.epochs) x 1 (repeats) = 10000000 trials, above max_trials = 100000"
        ),
        "{err}"
    );

    let random = tmp.path().join("random.toml");
    std::fs::write(
        &random,
        "name = \"r\"\n[base]\nmodel = \"vovnet-27-slim\"\n[grid]\nepochs = [1, 2]\n\
         [random]\nsamples = 100000\nlr = { loguniform = [1e-4, 1e-2] }\n",
    )
    .unwrap();
    let out = run(vovctl_in(tmp.path())
        .args(["sweep", "--dry-run", "--hosts", "127.0.0.1:9"])
        .arg(&random));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("= 200000 trials, above max_trials = 100000"),
        "{err}"
    );
}

/// A one-host sweep of two trials where the first worker is killed with SIGKILL.
async fn sweep_with_a_killed_worker(retry_failed: bool) -> (Vec<serde_json::Value>, Option<i32>) {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let extra = format!("max_attempts = 3\nretry_failed = {retry_failed}");
    let file = sweep_file_with(tmp.path(), "retry", 2, 512, &[1e-3], &extra);
    let store = tmp.path().join("r.db");
    let mut child = spawn_sweep(tmp.path(), &file, &store, &d.addr.to_string(), &[]);
    read_until(&mut child, |e| {
        e["event"] == "state" && e["state"] == "running"
    });
    let deadline = Instant::now() + LONG;
    let worker = loop {
        if let Some(pid) = workers_of(d.pid()).first() {
            break *pid;
        }
        assert!(Instant::now() < deadline, "no worker started");
        std::thread::sleep(Duration::from_millis(20));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (_, code) = finish_within(child, "the sweep", LONG);
    let rows = store_rows(tmp.path(), &store, "retry");
    let retried: Vec<_> = jobs(&d, "retry")
        .await
        .into_iter()
        .filter(|j| j.attempt > 1)
        .collect();
    assert_eq!(retried.len(), usize::from(retry_failed), "{retried:?}");
    (rows, code)
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_failed_runs_a_crashed_trial_again_on_the_only_host() {
    let (rows, code) = sweep_with_a_killed_worker(true).await;
    assert_eq!(code, Some(0), "{rows:?}");
    assert!(rows.iter().all(|r| r["state"] == "succeeded"), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_without_retry_is_reported_as_crashed() {
    let (rows, code) = sweep_with_a_killed_worker(false).await;
    assert_eq!(code, Some(1), "{rows:?}");
    let failed: Vec<_> = rows.iter().filter(|r| r["state"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{rows:?}");
    assert_eq!(failed[0]["failure"], "crashed", "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_its_job_store_locked_keeps_its_lease() {
    let tmp = TempDir::new().unwrap();
    let d = Daemon::start_in(&tmp.path().join("d"), DaemonOptions::default());
    let file = sweep_file_with(tmp.path(), "held", 3, 256, &[1e-3], "");
    let store = tmp.path().join("r.db");
    let mut child = spawn_sweep(
        tmp.path(),
        &file,
        &store,
        &d.addr.to_string(),
        &["--lease", "2"],
    );
    read_until(&mut child, |e| {
        e["event"] == "state" && e["state"] == "running"
    });
    // Another process holds the job store's write lock: the daemon's bookkeeping
    // (and so HostInfo) waits on it for longer than the lease, while the process
    // and its health service are fine.
    let db = rusqlite::Connection::open(d.state_dir.join("jobs.sqlite")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    std::thread::sleep(Duration::from_secs(6));
    db.execute_batch("COMMIT").unwrap();
    drop(db);
    let (events, code) = finish_within(child, "the sweep", LONG);
    let lost: Vec<_> = events.iter().filter(|e| e["event"] == "host").collect();
    assert!(lost.is_empty(), "the host was declared lost: {lost:?}");
    assert_eq!(code, Some(0));
    each_ran_once(&d, "held", 2).await;
}
