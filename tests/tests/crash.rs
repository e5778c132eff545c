//! Crashes: the daemon killed with SIGKILL mid-trial resumes the trial from its
//! checkpoint on restart; a worker killed with SIGKILL is recorded as crashed and
//! the daemon keeps serving.

use std::time::Duration;

use vov_proto::pb;
use vov_tests::{
    alive, events, submit, tiny_spec, wait_for, wait_state, workers_of, Daemon, DaemonOptions,
};

const LONG: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn daemon_killed_mid_trial_resumes_it_from_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let mut c = daemon.client().await;
    c.submit(submit("t-done", "k", tiny_spec(1, 64, 16)))
        .await
        .unwrap();
    let done = wait_state(&mut c, "t-done", pb::JobState::Succeeded, LONG).await;

    c.submit(submit("t-resume", "k", tiny_spec(3, 1024, 32)))
        .await
        .unwrap();
    // In epoch 2: epoch 1 finished (and was checkpointed).
    wait_for(&mut c, "t-resume", LONG, |j| {
        j.progress
            .as_ref()
            .is_some_and(|p| p.epoch >= 2 && p.step >= 1 && p.last_val_acc > 0.0)
    })
    .await;
    let old_workers = workers_of(daemon.pid());
    daemon.kill9();

    let daemon = daemon.restart();
    let mut c = daemon.client().await;
    let job = wait_state(&mut c, "t-resume", pb::JobState::Succeeded, LONG).await;
    assert_eq!(job.attempt, 2);
    let result = job.result.expect("result");
    assert!(
        result.resumed_from_epoch >= 1,
        "resumed from its checkpoint, not from epoch 1: {result:?}"
    );
    assert_eq!(result.history.len(), 3);
    let starts: Vec<u32> = events(&mut c, "t-resume")
        .await
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::job_event::Kind::Started(s)) => Some(s.start_epoch),
            _ => None,
        })
        .collect();
    assert_eq!(starts.len(), 2);
    assert!(
        starts[1] >= 1,
        "second start begins after epoch 1: {starts:?}"
    );
    assert!(
        old_workers.iter().all(|&p| !alive(p)),
        "the orphaned worker stopped"
    );
    let intact = c
        .get(pb::GetRequest {
            trial_id: "t-done".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(intact.result, done.result, "earlier results are intact");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_worker_is_crashed_and_the_daemon_serves_on() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let mut c = daemon.client().await;
    c.submit(submit("t-victim", "w", tiny_spec(500, 512, 32)))
        .await
        .unwrap();
    wait_for(&mut c, "t-victim", LONG, |j| {
        j.progress.as_ref().is_some_and(|p| p.step > 0)
    })
    .await;
    let workers = workers_of(daemon.pid());
    assert_eq!(workers.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(workers[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let job = wait_state(&mut c, "t-victim", pb::JobState::Failed, LONG).await;
    assert_eq!(job.failure, pb::FailureClass::Crashed as i32);
    assert!(job.message.contains("SIGKILL"), "{}", job.message);
    c.submit(submit("t-after", "w", tiny_spec(1, 64, 16)))
        .await
        .unwrap();
    wait_state(&mut c, "t-after", pb::JobState::Succeeded, LONG).await;
}
