//! The Trainer service end to end: submit, watch, get, list, cancel, idempotent
//! submits, resumable watches and slot queueing, against real `vovd` processes.

use std::time::Duration;

use tokio_stream::StreamExt;
use vov_proto::pb;
use vov_tests::{
    alive, submit, tiny_spec, wait_for, wait_state, workers_of, Daemon, DaemonOptions,
};

const LONG: Duration = Duration::from_secs(90);

async fn watch_all(
    client: &mut pb::trainer_client::TrainerClient<tonic::transport::Channel>,
    id: &str,
    from: u64,
) -> Vec<pb::JobEvent> {
    let mut stream = client
        .watch(pb::WatchRequest {
            trial_id: id.into(),
            from_seq: from,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut events = Vec::new();
    while let Some(e) = stream.next().await {
        events.push(e.expect("event"));
    }
    events
}

fn states(events: &[pb::JobEvent]) -> Vec<i32> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::job_event::Kind::State(s)) => Some(s.state),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_watch_get_list() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let mut c = daemon.client().await;
    let mut spec = tiny_spec(2, 128, 32);
    spec.measure_batch1 = true;
    spec.measure_batch32 = true;
    let r = c
        .submit(submit("t-basic", "sweep-a", spec.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(r.created);
    assert_eq!(r.job.as_ref().unwrap().spec.as_ref(), Some(&spec));

    let events = watch_all(&mut c, "t-basic", 1).await;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "gapless from 1"
    );
    use pb::JobState::*;
    assert_eq!(
        states(&events),
        vec![Queued as i32, Running as i32, Succeeded as i32]
    );
    let epochs = events
        .iter()
        .filter(|e| matches!(e.kind, Some(pb::job_event::Kind::Epoch(_))))
        .count();
    assert_eq!(epochs, 2);
    assert!(events
        .iter()
        .any(|e| matches!(e.kind, Some(pb::job_event::Kind::Result(_)))));

    let job = c
        .get(pb::GetRequest {
            trial_id: "t-basic".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.state, Succeeded as i32);
    let result = job.result.expect("result");
    assert_eq!(result.history.len(), 2);
    assert_eq!(result.batch1.expect("batch-1 timing").images, 32);
    assert!(result.batch32.expect("batch-32 timing").images_per_s > 0.0);
    assert_eq!(result.fingerprint.expect("fingerprint").threads, 1);
    assert_eq!(job.attempt, 1);
    assert_eq!(job.last_seq, events.len() as u64);

    let list = c
        .list(pb::ListRequest {
            sweep_id: "sweep-a".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.jobs.len(), 1);
    let none = c
        .list(pb::ListRequest {
            sweep_id: "sweep-a".into(),
            states: vec![Failed as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.jobs.is_empty());
    let missing = c
        .get(pb::GetRequest {
            trial_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_is_idempotent_on_the_trial_id() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let mut c = daemon.client().await;
    let spec = tiny_spec(1, 64, 16);
    let first = c
        .submit(submit("t-idem", "s", spec.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = c
        .submit(submit("t-idem", "s", spec.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(first.created && !again.created);
    assert_eq!(
        first.job.unwrap().created_unix_ms,
        again.job.unwrap().created_unix_ms
    );
    let mut other = spec;
    other.seed = 7;
    let err = c.submit(submit("t-idem", "s", other)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    assert!(
        err.message().contains("different spec"),
        "{}",
        err.message()
    );
    let list = c
        .list(pb::ListRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.jobs.len(),
        1,
        "a retried submit never starts a second copy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_resumes_from_a_sequence_number() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let mut c = daemon.client().await;
    c.submit(submit("t-watch", "", tiny_spec(3, 256, 32)))
        .await
        .unwrap();
    // Read the first events live, then disconnect.
    let mut stream = c
        .watch(pb::WatchRequest {
            trial_id: "t-watch".into(),
            from_seq: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(stream.next().await.unwrap().unwrap());
    }
    drop(stream);
    let rest = watch_all(&mut c, "t-watch", 5).await;
    assert_eq!(rest.first().map(|e| e.seq), Some(5));
    let all = watch_all(&mut c, "t-watch", 1).await;
    let joined: Vec<pb::JobEvent> = seen.into_iter().chain(rest).collect();
    assert_eq!(joined, all, "live prefix + resumed rest = full history");
    let tail = watch_all(&mut c, "t-watch", all.len() as u64).await;
    assert_eq!(tail.len(), 1);
    assert!(watch_all(&mut c, "t-watch", all.len() as u64 + 1)
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn second_trial_waits_for_the_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let mut c = daemon.client().await;
    c.submit(submit("t-first", "q", tiny_spec(2, 256, 32)))
        .await
        .unwrap();
    let second = c
        .submit(submit("t-second", "q", tiny_spec(1, 64, 16)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.job.unwrap().state, pb::JobState::Queued as i32);
    let info = c
        .host_info(pb::HostInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((info.slots_total, info.slots_free, info.queued), (1, 0, 1));
    let a = wait_state(&mut c, "t-first", pb::JobState::Succeeded, LONG).await;
    let b = wait_state(&mut c, "t-second", pb::JobState::Succeeded, LONG).await;
    assert!(
        b.started_unix_ms >= a.finished_unix_ms,
        "FIFO: the second starts once the slot is free"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_frees_the_slot_and_the_process_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_in(tmp.path(), DaemonOptions::default());
    let mut c = daemon.client().await;
    c.submit(submit("t-long", "c", tiny_spec(500, 512, 32)))
        .await
        .unwrap();
    c.submit(submit("t-next", "c", tiny_spec(1, 64, 16)))
        .await
        .unwrap();
    c.submit(submit("t-queued", "c", tiny_spec(1, 64, 16)))
        .await
        .unwrap();
    wait_for(&mut c, "t-long", LONG, |j| {
        j.progress.as_ref().is_some_and(|p| p.step > 0)
    })
    .await;
    let workers = workers_of(daemon.pid());
    assert_eq!(workers.len(), 1, "one worker per slot");

    let queued = c
        .cancel(pb::CancelRequest {
            trial_id: "t-queued".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queued.job.unwrap().state, pb::JobState::Cancelled as i32);
    c.cancel(pb::CancelRequest {
        trial_id: "t-long".into(),
    })
    .await
    .unwrap();
    let long = wait_state(&mut c, "t-long", pb::JobState::Cancelled, LONG).await;
    assert!(!alive(workers[0]), "the worker process is gone");
    assert!(long.finished_unix_ms > 0);
    wait_state(&mut c, "t-next", pb::JobState::Succeeded, LONG).await;
    assert!(
        !tmp.path().join("checkpoints").join("t-long").exists(),
        "checkpoints cleaned up"
    );
    let again = c
        .cancel(pb::CancelRequest {
            trial_id: "t-long".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.job.unwrap().state,
        pb::JobState::Cancelled as i32,
        "cancelling a finished job changes nothing"
    );

    let same = c
        .submit(submit("t-queued", "c", tiny_spec(1, 64, 16)))
        .await
        .unwrap()
        .into_inner();
    assert!(!same.created, "a plain resubmit returns the cancelled job");
    let mut retry = submit("t-queued", "c", tiny_spec(1, 64, 16));
    retry.retry = true;
    assert!(
        c.submit(retry).await.unwrap().into_inner().created,
        "retry queues it again"
    );
    wait_state(&mut c, "t-queued", pb::JobState::Succeeded, LONG).await;
}
