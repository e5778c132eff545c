//! Sweeps on a real one-node Slurm (started by `scripts/slurm-up.sh`, which
//! `scripts/test.sh` and `.ci/run` run first; without Slurm these tests fail,
//! never pass silently): a grid completes exactly once, with `--gres` and each
//! task's `CUDA_VISIBLE_DEVICES`; a task told to stop with USR1 mid-trial resumes
//! from its checkpoint; a task killed outright is retried; vovctl killed
//! mid-sweep and run again repeats nothing; `--detach` then `results --collect`
//! gathers everything; `hosts` lists the partition's nodes and `cancel` stops a
//! sweep's tasks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vov_proto::pb;
use vov_proto::taskdir::TrialDir;
use vov_tests::cli::{finish_within, keep_weights, run, store_rows, sweep_file_with};
use vov_tests::slurm::{cluster, Cluster};

const LONG: Duration = Duration::from_secs(240);

/// A test's sweep on the cluster: its folder, work directory and store.
struct Case {
    tmp: TempDir,
    cluster: Cluster,
    name: String,
}

impl Case {
    fn new(name: &str) -> Case {
        let cluster = cluster();
        // Each run of the suite gets its own job names.
        let name = format!("{name}-{}", std::process::id());
        Case {
            tmp: TempDir::new().unwrap(),
            cluster,
            name,
        }
    }

    fn home(&self) -> &Path {
        self.tmp.path()
    }

    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    fn store(&self) -> PathBuf {
        self.tmp.path().join("r.db")
    }

    /// The `[slurm]` table of this case's sweep files.
    fn slurm_table(&self, extra: &str) -> String {
        format!(
            "[slurm]\nwork_dir = {:?}\nvovd = {:?}\ndata_dir = {:?}\npoll_secs = 1\ncpus_per_trial = 1\n{extra}\n",
            self.work(),
            vov_tests::bin("vovd"),
            self.tmp.path().join("data"),
        )
    }

    /// A sweep file of `lrs.len() * 2` tiny trials with `top` sweep keys and
    /// `slurm` lines in its `[slurm]` table.
    fn file(&self, epochs: u32, train: u32, lrs: &[f64], top: &str, slurm: &str) -> PathBuf {
        let extra = format!("{top}\n{}", self.slurm_table(slurm));
        sweep_file_with(self.home(), &self.name, epochs, train, lrs, &extra)
    }

    fn vovctl(&self) -> Command {
        let mut cmd = vov_tests::cli::vovctl(self.home());
        cmd.envs(self.cluster.env());
        cmd
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.vovctl()
            .args(args)
            .arg("--store")
            .arg(self.store())
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("vovctl starts")
    }

    fn sweep(&self, file: &Path, extra: &[&str]) -> Option<i32> {
        let mut args = vec!["sweep", file.to_str().unwrap()];
        args.extend(extra);
        finish_within(self.spawn(&args), "vovctl sweep", LONG).1
    }

    fn trials(&self) -> Vec<TrialDir> {
        let dir = self.work().join(vov_proto::taskdir::TRIALS);
        let mut out: Vec<TrialDir> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| TrialDir::at(e.path())).collect())
            .unwrap_or_default();
        out.sort_by(|a, b| a.root().cmp(b.root()));
        out
    }

    /// The Slurm logs of the sweep's tasks.
    fn logs(&self) -> Vec<String> {
        let dir = self.work().join("sweeps").join(&self.name).join("log");
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn manifest(&self) -> Vec<String> {
        let path = self.work().join("sweeps").join(&self.name).join("manifest");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Waits until `trial`'s log holds an event `pred` accepts; returns it.
fn wait_event(trial: &TrialDir, what: &str, pred: impl Fn(&pb::JobEvent) -> bool) -> pb::JobEvent {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(e) = trial.read_events(1).unwrap().into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} event in {}",
            trial.root().display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the case has `n` trial folders.
fn wait_trials(case: &Case, n: usize) -> Vec<TrialDir> {
    let deadline = Instant::now() + LONG;
    loop {
        let t = case.trials();
        if t.len() >= n {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "the sweep wrote no trial folders"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn state_changes(trial: &TrialDir) -> Vec<pb::StateChange> {
    trial
        .read_events(1)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            Some(pb::job_event::Kind::State(s)) => Some(s),
            _ => None,
        })
        .collect()
}

fn runs(trial: &TrialDir) -> usize {
    state_changes(trial)
        .iter()
        .filter(|s| s.state == pb::JobState::Running as i32)
        .count()
}

fn is_running(e: &pb::JobEvent) -> bool {
    matches!(&e.kind, Some(pb::job_event::Kind::State(s)) if s.state == pb::JobState::Running as i32)
}

/// The array task (`JOB_TASK`) of a trial's last submission.
fn task_of(trial: &TrialDir) -> String {
    let text = std::fs::read_to_string(trial.batch_job()).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

fn all_succeeded(case: &Case, n: usize) {
    let rows = store_rows(case.home(), &case.store(), &case.name);
    assert_eq!(rows.len(), n, "{rows:?}");
    assert!(rows.iter().all(|r| r["state"] == "succeeded"), "{rows:?}");
}

#[test]
fn a_grid_completes_exactly_once_and_each_task_sees_its_gpu() {
    let case = Case::new("grid");
    let file = case.file(
        1,
        64,
        &[1e-3, 2e-3],
        "",
        "gpus_per_trial = 1\nmax_parallel = 2",
    );
    assert_eq!(case.sweep(&file, &[]), Some(0));
    all_succeeded(&case, 4);
    let trials = case.trials();
    assert_eq!(trials.len(), 4);
    for t in &trials {
        assert_eq!(runs(t), 1, "{} ran more than once", t.root().display());
        let result = t.read_result(1).unwrap().expect("a result of attempt 1");
        assert_eq!(result.state, pb::JobState::Succeeded as i32);
        assert!(t.read_result(2).unwrap().is_none());
    }
    // One array for the whole grid, each task on one of the two stand-in GPUs.
    let jobs: std::collections::BTreeSet<String> = trials
        .iter()
        .map(|t| task_of(t).split('_').next().unwrap().to_string())
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    // The store keeps each trial's array task beside its placement.
    let db = rusqlite::Connection::open(case.store()).unwrap();
    for t in &trials {
        let id = t.root().file_name().unwrap().to_string_lossy().into_owned();
        let kept: Option<String> = db
            .query_row(
                "SELECT batch_job FROM trials WHERE trial_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, Some(task_of(t)), "{id}");
    }
    let logs = case.logs();
    assert_eq!(logs.len(), 4, "{logs:?}");
    for log in &logs {
        assert!(
            log.contains("CUDA_VISIBLE_DEVICES=0") || log.contains("CUDA_VISIBLE_DEVICES=1"),
            "{log}"
        );
    }
    // Run again: nothing is submitted.
    assert_eq!(case.sweep(&file, &[]), Some(0));
    assert_eq!(case.logs().len(), 4);
    assert!(case.trials().iter().all(|t| runs(t) == 1));
}

#[test]
fn a_task_told_to_stop_mid_trial_resumes_from_its_checkpoint() {
    let case = Case::new("usr1");
    let file = case.file(4, 512, &[1e-3], "", "");
    let child = case.spawn(&["sweep", file.to_str().unwrap()]);
    let trials = wait_trials(&case, 2);
    let t = &trials[0];
    wait_event(t, "checkpoint", |e| {
        matches!(e.kind, Some(pb::job_event::Kind::CheckpointEpoch(_)))
    });
    let out = Command::new("scancel")
        .envs(case.cluster.env())
        .args(["--signal=USR1", "--batch", &task_of(t)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(finish_within(child, "vovctl sweep", LONG).1, Some(0));
    all_succeeded(&case, 2);
    assert_eq!(runs(t), 2, "{:?}", state_changes(t));
    let result = t.read_result(1).unwrap().expect("attempt 1 finished");
    let r = result.result.expect("a result");
    assert!(r.resumed_from_epoch > 0, "{r:?}");
    let resumed = t
        .read_events(1)
        .unwrap()
        .into_iter()
        .any(|e| matches!(e.kind, Some(pb::job_event::Kind::Started(s)) if s.start_epoch > 0));
    assert!(resumed, "the requeued run started from epoch 1");
}

#[test]
fn a_task_killed_outright_is_retried() {
    let case = Case::new("kill");
    let file = case.file(3, 512, &[1e-3], "retry_failed = true", "");
    let child = case.spawn(&["sweep", file.to_str().unwrap()]);
    let trials = wait_trials(&case, 2);
    let t = &trials[0];
    wait_event(t, "running", is_running);
    let out = Command::new("scancel")
        .envs(case.cluster.env())
        .args(["--signal=KILL", &task_of(t)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(finish_within(child, "vovctl sweep", LONG).1, Some(0));
    all_succeeded(&case, 2);
    let first = t.read_result(1).unwrap().expect("attempt 1 recorded");
    assert_eq!(first.state, pb::JobState::Failed as i32, "{first:?}");
    let second = t.read_result(2).unwrap().expect("attempt 2 ran");
    assert_eq!(second.state, pb::JobState::Succeeded as i32, "{second:?}");
}

#[test]
fn vovctl_killed_mid_sweep_and_run_again_repeats_nothing() {
    let case = Case::new("again");
    let file = case.file(2, 256, &[1e-3, 2e-3], "", "max_parallel = 1");
    let mut child = case.spawn(&["sweep", file.to_str().unwrap()]);
    let trials = wait_trials(&case, 4);
    wait_event(&trials[0], "running", is_running);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(case.sweep(&file, &[]), Some(0));
    all_succeeded(&case, 4);
    assert_eq!(case.manifest().len(), 4);
    for t in case.trials() {
        assert_eq!(
            runs(&t),
            1,
            "{}: {:?}",
            t.root().display(),
            state_changes(&t)
        );
        assert!(t.read_result(2).unwrap().is_none());
    }
    assert_eq!(case.logs().len(), 4);
}

#[test]
fn kept_weights_are_copied_from_the_trial_folder() {
    let case = Case::new("weights");
    let file = case.file(1, 64, &[1e-3], "", "");
    keep_weights(&file, "final");
    assert_eq!(case.sweep(&file, &[]), Some(0));
    let trials = case.trials();
    assert_eq!(trials.len(), 2);
    for t in &trials {
        let id = t.root().file_name().unwrap().to_str().unwrap();
        let job = t.best_result(1).unwrap().expect("a result");
        let listed = job.result.and_then(|r| r.weights).expect("listed weights");
        let dest = case.home().join(format!("{id}.safetensors"));
        let out = run(case
            .vovctl()
            .args(["weights", id, "--json", "--out"])
            .arg(&dest)
            .arg("--store")
            .arg(case.store()));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let written: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(written["sha256"], listed.sha256.as_str());
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            std::fs::read(t.weights()).unwrap()
        );
    }
}

#[test]
fn detach_then_collect_gathers_everything() {
    let case = Case::new("detach");
    let file = case.file(1, 64, &[1e-3, 2e-3], "", "");
    assert_eq!(case.sweep(&file, &["--detach"]), Some(0));
    let deadline = Instant::now() + LONG;
    let trials = case.trials();
    assert_eq!(trials.len(), 4);
    while !trials.iter().all(|t| t.read_result(1).unwrap().is_some()) {
        assert!(
            Instant::now() < deadline,
            "the detached trials did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = run(case
        .vovctl()
        .args([
            "results",
            &case.name,
            "--collect",
            "--format",
            "json",
            "--store",
        ])
        .arg(case.store()));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    all_succeeded(&case, 4);
}

#[test]
fn hosts_lists_the_partitions_nodes_and_cancel_stops_a_sweep() {
    let case = Case::new("verbs");
    let file = case.file(50, 512, &[1e-3], "", "");
    let out = run(case
        .vovctl()
        .args(["hosts", file.to_str().unwrap(), "--json"]));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let nodes: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        nodes
            .iter()
            .any(|n| n["node"] == "localhost" && n["gpus"] == 2),
        "{nodes:?}"
    );
    assert_eq!(case.sweep(&file, &["--detach"]), Some(0));
    let trials = case.trials();
    assert_eq!(trials.len(), 2);
    wait_event(&trials[0], "running", is_running);
    let out = run(case
        .vovctl()
        .args(["cancel", &case.name, "--store"])
        .arg(case.store()));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for t in &trials {
        let job = t.read_result(1).unwrap().expect("a final job");
        assert_eq!(job.state, pb::JobState::Cancelled as i32, "{job:?}");
    }
    let rows = store_rows(case.home(), &case.store(), &case.name);
    assert!(rows.iter().all(|r| r["state"] == "cancelled"), "{rows:?}");
    // Slurm no longer runs them.
    let deadline = Instant::now() + LONG;
    loop {
        let out = case.cluster.run(
            "squeue",
            &[
                "--noheader",
                &format!("--name=vov-{}", case.name),
                "--format=%T",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if !text.contains("RUNNING") && !text.contains("PENDING") {
            break;
        }
        assert!(Instant::now() < deadline, "still in Slurm: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
