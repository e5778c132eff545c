//! `vovd task`, one trial run as a batch-system task, without a batch system: the
//! real binary on a trial folder (`vov_proto::taskdir::TrialDir`) as vovctl
//! prepares it. A finished trial never trains twice; SIGUSR1 stops it with a
//! checkpoint and no result, and the next run resumes; a bad spec fails as
//! `invalid_spec`.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vov_proto::pb;
use vov_proto::pb::job_event::Kind;
use vov_proto::taskdir::TrialDir;
use vov_tests::{bin, submit, tiny_spec};

const LONG: Duration = Duration::from_secs(120);

/// A trial folder under `work` prepared for attempt 1 of `spec`.
fn prepare(work: &Path, id: &str, spec: pb::TrialSpec) -> TrialDir {
    let dir = TrialDir::new(work, id);
    dir.prepare(&submit(id, "s", spec), 1).unwrap();
    dir
}

/// `vovd task` on `dir`, on the CPU, outside any Slurm job.
fn task(dir: &TrialDir) -> Command {
    let mut cmd = Command::new(bin("vovd"));
    cmd.arg("task")
        .arg("--spec")
        .arg(dir.request())
        .arg("--out")
        .arg(dir.root())
        .arg("--data-dir")
        .arg(dir.root().join("data"))
        .args(["--threads", "1", "--device", "cpu"])
        .env("CUDA_VISIBLE_DEVICES", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "SLURM_JOB_ID",
        "SLURM_ARRAY_JOB_ID",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_CPUS_PER_TASK",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `vovd task` on `dir` to the end, echoing its stderr.
fn run_task(dir: &TrialDir) -> Output {
    let out = task(dir).output().expect("vovd task runs");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn state_of(e: &pb::JobEvent) -> Option<&pb::StateChange> {
    match &e.kind {
        Some(Kind::State(s)) => Some(s),
        _ => None,
    }
}

/// Asserts the log is numbered 1.. without gaps; returns it.
fn events(dir: &TrialDir) -> Vec<pb::JobEvent> {
    let events = dir.read_events(1).unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(seqs, expected, "events numbered from 1 without gaps");
    events
}

fn start_epochs(events: &[pb::JobEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::Started(s)) => Some(s.start_epoch),
            _ => None,
        })
        .collect()
}

/// Waits until the log holds an event `found` accepts.
fn wait_event(dir: &TrialDir, child: &mut Child, found: impl Fn(&pb::JobEvent) -> bool) {
    let deadline = Instant::now() + LONG;
    while !dir.read_events(1).unwrap().iter().any(&found) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "vovd task ended before the awaited event"
        );
        assert!(Instant::now() < deadline, "timed out waiting for an event");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_trial_succeeds_once_and_a_second_run_does_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = prepare(work.path(), "t-ok", tiny_spec(1, 64, 16));
    let out = run_task(&dir);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vov task: trial t-ok attempt 1 on ")
            && stderr.contains("CUDA_VISIBLE_DEVICES="),
        "{stderr}"
    );
    let log = events(&dir);
    let first = state_of(&log[0]).expect("a state change first");
    assert_eq!(
        (first.state, first.attempt),
        (pb::JobState::Running as i32, 1)
    );
    let last = state_of(log.last().unwrap()).expect("a state change last");
    assert_eq!(last.state, pb::JobState::Succeeded as i32);
    assert!(matches!(log[log.len() - 2].kind, Some(Kind::Result(_))));
    let job = dir.read_result(1).unwrap().expect("result-1.pb");
    assert_eq!(job.state, pb::JobState::Succeeded as i32);
    assert_eq!((job.trial_id.as_str(), job.attempt), ("t-ok", 1));
    assert_eq!(job.last_seq, log.len() as u64);
    assert!(job.result.is_some_and(|r| r.history.len() == 1));

    let again = run_task(&dir);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("succeeded"));
    assert_eq!(
        events(&dir).len(),
        log.len(),
        "a second run appends nothing"
    );
}

#[test]
fn sigusr1_stops_with_a_checkpoint_and_the_next_run_resumes() {
    let work = tempfile::tempdir().unwrap();
    let dir = prepare(work.path(), "t-usr1", tiny_spec(3, 1024, 32));
    let mut child = task(&dir).stderr(Stdio::inherit()).spawn().unwrap();
    wait_event(&dir, &mut child, |e| {
        matches!(e.kind, Some(Kind::CheckpointEpoch(_)))
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(dir.read_result(1).unwrap().is_none(), "no result");
    assert!(dir.checkpoint().join("checkpoint.safetensors").is_file());
    let log = events(&dir);
    assert!(
        log.iter().any(|e| matches!(&e.kind,
            Some(Kind::Warning(w)) if w.contains("stopped at epoch") && w.contains("requeued"))),
        "{log:?}"
    );
    assert!(!log
        .iter()
        .filter_map(state_of)
        .any(|s| s.state != pb::JobState::Running as i32));

    let out = run_task(&dir);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let log = events(&dir);
    let starts = start_epochs(&log);
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!(starts[1] > 0, "the second run resumes: {starts:?}");
    let job = dir.read_result(1).unwrap().expect("result-1.pb");
    assert_eq!(job.state, pb::JobState::Succeeded as i32);
    let result = job.result.expect("a result");
    assert!(result.resumed_from_epoch > 0, "{result:?}");
    assert_eq!(result.history.len(), 3);
}

#[test]
fn an_invalid_spec_fails_as_invalid_spec() {
    let work = tempfile::tempdir().unwrap();
    let unknown = pb::TrialSpec {
        dataset: "imagenet".into(),
        ..tiny_spec(1, 64, 16)
    };
    for (id, spec) in [("t-data", unknown), ("t-epochs", tiny_spec(0, 64, 16))] {
        let dir = prepare(work.path(), id, spec);
        let out = run_task(&dir);
        assert_eq!(out.status.code(), Some(1), "{id}: {out:?}");
        let job = dir.read_result(1).unwrap().expect("result-1.pb");
        assert_eq!(job.state, pb::JobState::Failed as i32, "{id}");
        assert_eq!(
            job.failure,
            pb::FailureClass::InvalidSpec as i32,
            "{id}: {job:?}"
        );
        let log = events(&dir);
        let states: Vec<i32> = log.iter().filter_map(state_of).map(|s| s.state).collect();
        assert_eq!(
            states,
            [pb::JobState::Running as i32, pb::JobState::Failed as i32],
            "{id}"
        );
        assert_eq!(
            state_of(log.last().unwrap()).map(|s| s.failure),
            Some(pb::FailureClass::InvalidSpec as i32)
        );
    }
}
