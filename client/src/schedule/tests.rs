//! The scheduling rules on scripted in-memory backends, in paused time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use vov_proto::pb;

use super::{run, Options, Summary};
use crate::backend::{
    Backend, BackendError, BackendInfo, EventStream, RunOptions, Submitted, CALL_TIMEOUT,
};
use crate::progress::{Ui, UiEvent};
use crate::store::{ResultsStore, TrialState};

/// What a scripted backend does with a submit.
#[derive(Debug, Clone)]
enum Outcome {
    /// Queue it and finish it with a result at once.
    Succeed,
    /// Queue it, start it, and fail it as crashed.
    Crash,
    /// Queue it and leave it there (the test finishes it).
    Hold,
    /// Answer with this error.
    Reject(BackendError),
    /// Never answer.
    Hang,
}

struct MockJob {
    job: pb::Job,
    events: Vec<pb::JobEvent>,
}

type Watcher = mpsc::UnboundedSender<Result<pb::JobEvent, BackendError>>;

struct SubmitCall {
    trial: String,
    retry: bool,
    at: Instant,
}

struct MockState {
    slots: u32,
    /// Answers nothing: info and list hang, watches fail, events are not delivered.
    hung: bool,
    /// Answers everything but `info`, which hangs (its job bookkeeping is stuck).
    slow_info: bool,
    outcomes: VecDeque<Outcome>,
    default: Outcome,
    jobs: HashMap<String, MockJob>,
    order: Vec<String>,
    watchers: Vec<(String, Watcher)>,
    submits: Vec<SubmitCall>,
    cancels: Vec<String>,
}

/// A backend whose behaviour the test scripts.
struct Mock {
    name: String,
    state: Mutex<MockState>,
}

fn result_from(name: &str) -> pb::TrialResult {
    pb::TrialResult {
        model: format!("from {name}"),
        final_val_acc: 0.5,
        ..Default::default()
    }
}

fn state_kind(state: pb::JobState, failure: pb::FailureClass) -> pb::job_event::Kind {
    pb::job_event::Kind::State(pb::StateChange {
        state: state as i32,
        failure: failure as i32,
        message: format!("{state:?}"),
        attempt: 1,
    })
}

impl MockState {
    fn emit(&mut self, trial: &str, kind: pb::job_event::Kind) {
        let Some(j) = self.jobs.get_mut(trial) else {
            return;
        };
        let event = pb::JobEvent {
            trial_id: trial.to_string(),
            seq: j.events.len() as u64 + 1,
            unix_ms: 0,
            kind: Some(kind.clone()),
        };
        j.job.last_seq = event.seq;
        match &kind {
            pb::job_event::Kind::State(s) => {
                j.job.state = s.state;
                j.job.failure = s.failure;
            }
            pb::job_event::Kind::Result(r) => j.job.result = Some(r.clone()),
            _ => {}
        }
        let ended = crate::store::state::from_pb(j.job.state).is_final();
        j.events.push(event.clone());
        if !self.hung {
            for (t, w) in &self.watchers {
                if t == trial {
                    let _ = w.send(Ok(event.clone()));
                }
            }
        }
        if ended {
            self.watchers.retain(|(t, _)| t != trial);
        }
    }

    fn finish(&mut self, trial: &str, name: &str) {
        use pb::{FailureClass as F, JobState as S};
        self.emit(trial, state_kind(S::Running, F::None));
        self.emit(trial, pb::job_event::Kind::Result(result_from(name)));
        self.emit(trial, state_kind(S::Succeeded, F::None));
    }
}

impl Mock {
    fn new(name: &str, slots: u32, default: Outcome) -> Arc<Self> {
        Arc::new(Mock {
            name: format!("mem://{name}"),
            state: Mutex::new(MockState {
                slots,
                hung: false,
                slow_info: false,
                outcomes: VecDeque::new(),
                default,
                jobs: HashMap::new(),
                order: Vec::new(),
                watchers: Vec::new(),
                submits: Vec::new(),
                cancels: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().unwrap()
    }

    /// The next submits get these outcomes, then the default.
    fn then(self: &Arc<Self>, outcomes: &[Outcome]) -> Arc<Self> {
        self.lock().outcomes.extend(outcomes.iter().cloned());
        self.clone()
    }

    /// Stops (or starts again) answering; coming back drops the streams it held.
    fn hang(&self, hung: bool) {
        let mut s = self.lock();
        s.hung = hung;
        if !hung {
            s.watchers.clear();
        }
    }

    /// A held job finishes with a result (delivered only while answering).
    fn finish(&self, trial: &str) {
        let name = self.name.clone();
        self.lock().finish(trial, &name);
    }

    fn submits(&self, trial: &str) -> Vec<(bool, Instant)> {
        let s = self.lock();
        s.submits
            .iter()
            .filter(|c| c.trial == trial)
            .map(|c| (c.retry, c.at))
            .collect()
    }

    fn has_job(&self, trial: &str) -> bool {
        self.lock().jobs.contains_key(trial)
    }

    fn cancelled(&self, trial: &str) -> bool {
        self.lock().cancels.iter().any(|c| c == trial)
    }
}

#[async_trait]
impl Backend for Mock {
    fn name(&self) -> &str {
        &self.name
    }

    async fn info(&self) -> Result<BackendInfo, BackendError> {
        let answer = {
            let s = self.lock();
            (!s.hung && !s.slow_info).then(|| BackendInfo {
                version: "test".into(),
                slots_total: s.slots,
                slots_free: s.slots,
                max_queued: 100,
                fingerprint: Some(format!("fp-{}", self.name)),
            })
        };
        match answer {
            Some(info) => Ok(info),
            None => std::future::pending().await,
        }
    }

    async fn alive(&self) -> Result<(), BackendError> {
        let hung = self.lock().hung;
        if hung {
            std::future::pending().await
        }
        Ok(())
    }

    async fn submit(
        &self,
        trial_id: &str,
        sweep: &str,
        spec: pb::TrialSpec,
        run: RunOptions,
    ) -> Result<Submitted, BackendError> {
        let retry = run.retry;
        let answer = {
            let mut s = self.lock();
            s.submits.push(SubmitCall {
                trial: trial_id.to_string(),
                retry,
                at: Instant::now(),
            });
            let outcome = s.outcomes.pop_front().unwrap_or_else(|| s.default.clone());
            match outcome {
                _ if s.hung => None,
                Outcome::Hang => None,
                Outcome::Reject(e) => Some(Err(e)),
                outcome => {
                    let ended = s
                        .jobs
                        .get(trial_id)
                        .map(|j| crate::store::state::from_pb(j.job.state).is_final());
                    if ended == Some(false) || (ended == Some(true) && !retry) {
                        let job = s.jobs[trial_id].job.clone();
                        Some(Ok(Submitted {
                            job,
                            created: false,
                            batch_job: None,
                        }))
                    } else {
                        if ended.is_none() {
                            s.order.push(trial_id.to_string());
                        }
                        let j = s.jobs.entry(trial_id.to_string()).or_insert(MockJob {
                            job: pb::Job::default(),
                            events: Vec::new(),
                        });
                        j.job.trial_id = trial_id.to_string();
                        j.job.sweep_id = sweep.to_string();
                        j.job.spec = Some(spec);
                        j.job.result = None;
                        use pb::{FailureClass as F, JobState as S};
                        s.emit(trial_id, state_kind(S::Queued, F::None));
                        let job = s.jobs[trial_id].job.clone();
                        match outcome {
                            Outcome::Succeed => {
                                let name = self.name.clone();
                                s.finish(trial_id, &name);
                            }
                            Outcome::Crash => {
                                s.emit(trial_id, state_kind(S::Running, F::None));
                                s.emit(trial_id, state_kind(S::Failed, F::Crashed));
                            }
                            _ => {}
                        }
                        Some(Ok(Submitted {
                            job,
                            created: true,
                            batch_job: None,
                        }))
                    }
                }
            }
        };
        match answer {
            Some(a) => a,
            None => std::future::pending().await,
        }
    }

    async fn watch(&self, trial_id: &str, from_seq: u64) -> Result<EventStream, BackendError> {
        let mut s = self.lock();
        if s.hung {
            return Err(BackendError::Unavailable("connection refused".into()));
        }
        let j = s
            .jobs
            .get(trial_id)
            .ok_or_else(|| BackendError::NotFound(trial_id.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        for e in j.events.iter().filter(|e| e.seq >= from_seq) {
            let _ = tx.send(Ok(e.clone()));
        }
        if !crate::store::state::from_pb(j.job.state).is_final() {
            s.watchers.push((trial_id.to_string(), tx));
        }
        Ok(Box::pin(UnboundedReceiverStream::new(rx)))
    }

    async fn get(&self, trial_id: &str) -> Result<pb::Job, BackendError> {
        let s = self.lock();
        s.jobs
            .get(trial_id)
            .map(|j| j.job.clone())
            .ok_or_else(|| BackendError::NotFound(trial_id.to_string()))
    }

    async fn list(&self, sweep: &str) -> Result<Vec<pb::Job>, BackendError> {
        let jobs = {
            let s = self.lock();
            (!s.hung).then(|| {
                s.order
                    .iter()
                    .map(|id| s.jobs[id].job.clone())
                    .filter(|j| j.sweep_id == sweep)
                    .collect()
            })
        };
        match jobs {
            Some(jobs) => Ok(jobs),
            None => std::future::pending().await,
        }
    }

    async fn cancel(&self, trial_id: &str) -> Result<pb::Job, BackendError> {
        let mut s = self.lock();
        s.cancels.push(trial_id.to_string());
        let job = s.jobs.get(trial_id).map(|j| j.job.clone());
        let job = job.ok_or_else(|| BackendError::NotFound(trial_id.to_string()))?;
        if !crate::store::state::from_pb(job.state).is_final() {
            use pb::{FailureClass as F, JobState as S};
            s.emit(trial_id, state_kind(S::Cancelled, F::None));
        }
        Ok(s.jobs[trial_id].job.clone())
    }
}

/// Records what the scheduler shows, with when.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Instant, UiEvent)>>>);

impl Ui for Recorder {
    fn show(&mut self, event: &UiEvent) {
        self.0.lock().unwrap().push((Instant::now(), event.clone()));
    }
}

impl Recorder {
    /// (when, state, failure) of each state change of `trial`.
    fn states(&self, trial: &str) -> Vec<(Instant, String, String)> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter_map(|(at, e)| match e {
                UiEvent::State {
                    trial: t,
                    state,
                    failure,
                    ..
                } if t == trial => Some((*at, state.clone(), failure.clone())),
                _ => None,
            })
            .collect()
    }

    fn host_events(&self) -> Vec<(String, String)> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter_map(|(_, e)| match e {
                UiEvent::Host { host, status } => Some((host.clone(), status.clone())),
                _ => None,
            })
            .collect()
    }
}

/// A store in a temporary directory with a sweep `s` of `n` trials.
fn sweep_store(n: usize) -> (tempfile::TempDir, ResultsStore, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = ResultsStore::open(&tmp.path().join("r.db")).unwrap();
    let epochs: Vec<String> = (1..=n).map(|e| e.to_string()).collect();
    let text = format!(
        "name = \"s\"\n[base]\nmodel = \"vovnet-39\"\ndataset = \"synthetic\"\n[grid]\nepochs = [{}]\n",
        epochs.join(", ")
    );
    let sweep = crate::sweep::from_text(&text, &[]).unwrap();
    store.register("s", "s.toml", &sweep.trials).unwrap();
    let ids = sweep.trials.iter().map(|t| t.id.clone()).collect();
    (tmp, store, ids)
}

fn opts(retry_failed: bool) -> Options {
    Options {
        sweep: "s".into(),
        lease: Duration::from_secs(5),
        max_attempts: 3,
        retry_failed,
        detach: false,
        rerun: false,
        search: crate::search::SearchDef::default(),
    }
}

/// Runs the sweep to its end; a run that never ends fails the test.
async fn go(
    store: &mut ResultsStore,
    backends: Vec<Arc<Mock>>,
    opts: Options,
    ui: &Recorder,
) -> Summary {
    let backends = backends
        .into_iter()
        .map(|b| b as Arc<dyn Backend>)
        .collect();
    let mut ui = ui.clone();
    tokio::time::timeout(
        Duration::from_secs(3600),
        run(store, backends, opts, &mut ui),
    )
    .await
    .expect("the sweep never finished")
    .unwrap()
}

/// Waits (in paused time) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn summary(succeeded: usize, failed: usize) -> Summary {
    Summary {
        succeeded,
        failed,
        ..Summary::default()
    }
}

#[tokio::test(start_paused = true)]
async fn hung_host_loses_its_trials_to_the_other_after_the_lease() {
    let (_tmp, mut store, ids) = sweep_store(2);
    let (a, b) = (
        Mock::new("a", 1, Outcome::Hold),
        Mock::new("b", 1, Outcome::Succeed),
    );
    let ui = Recorder::default();
    let start = Instant::now();
    let script = async {
        until("a gets the first trial", || a.has_job(&ids[0])).await;
        a.hang(true);
    };
    let (s, ()) = tokio::join!(
        go(&mut store, vec![a.clone(), b.clone()], opts(false), &ui),
        script
    );
    assert_eq!(s, summary(2, 0));
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "moved only after the lease"
    );
    let row = store.trial(&ids[0]).unwrap().unwrap();
    assert_eq!(row.host.as_deref(), Some(b.name()));
    assert_eq!(row.attempt, 2);
    assert_eq!(row.result.unwrap().model, "from mem://b");
    assert_eq!(b.submits(&ids[0]).len(), 1);
    assert!(ui
        .host_events()
        .iter()
        .any(|(h, status)| h == a.name() && status.starts_with("lost (1 trials")));
}

#[tokio::test(start_paused = true)]
async fn a_host_whose_info_hangs_keeps_its_lease_while_it_answers_pings() {
    let (_tmp, mut store, ids) = sweep_store(1);
    let (a, b) = (
        Mock::new("a", 1, Outcome::Hold),
        Mock::new("b", 1, Outcome::Succeed),
    );
    let ui = Recorder::default();
    let script = async {
        until("a gets the trial", || a.has_job(&ids[0])).await;
        a.lock().slow_info = true;
        tokio::time::sleep(Duration::from_secs(60)).await;
        a.finish(&ids[0]);
    };
    let (s, ()) = tokio::join!(
        go(&mut store, vec![a.clone(), b.clone()], opts(false), &ui),
        script
    );
    assert_eq!(s, summary(1, 0));
    let row = store.trial(&ids[0]).unwrap().unwrap();
    assert_eq!((row.host.as_deref(), row.attempt), (Some(a.name()), 1));
    assert!(b.submits(&ids[0]).is_empty(), "never moved");
    assert!(ui.host_events().is_empty(), "{:?}", ui.host_events());
}

#[tokio::test(start_paused = true)]
async fn host_back_with_a_result_keeps_one_result_and_cancels_the_other_copy() {
    let (_tmp, mut store, ids) = sweep_store(1);
    let (a, b) = (
        Mock::new("a", 1, Outcome::Hold),
        Mock::new("b", 1, Outcome::Hold),
    );
    let ui = Recorder::default();
    let script = async {
        until("a gets the trial", || a.has_job(&ids[0])).await;
        a.hang(true);
        until("b gets the trial after the lease", || b.has_job(&ids[0])).await;
        a.finish(&ids[0]);
        a.hang(false);
    };
    let (s, ()) = tokio::join!(
        go(&mut store, vec![a.clone(), b.clone()], opts(false), &ui),
        script
    );
    assert_eq!(s, summary(1, 0));
    let row = store.trial(&ids[0]).unwrap().unwrap();
    assert_eq!(row.state, TrialState::Succeeded);
    assert_eq!(row.host.as_deref(), Some(a.name()));
    assert_eq!(row.result.unwrap().model, "from mem://a");
    until("b's copy is cancelled", || b.cancelled(&ids[0])).await;
    let done: Vec<_> = ui
        .states(&ids[0])
        .into_iter()
        .filter(|(_, state, _)| state == "succeeded")
        .collect();
    assert_eq!(done.len(), 1, "one result kept");
    assert!(ui
        .host_events()
        .iter()
        .any(|(h, status)| h == a.name() && status == "back"));
}

#[tokio::test(start_paused = true)]
async fn busy_host_is_retried_later_and_the_trial_does_not_fail() {
    let (_tmp, mut store, ids) = sweep_store(1);
    let busy = Outcome::Reject(BackendError::Busy("queue full".into()));
    let a = Mock::new("a", 1, Outcome::Succeed).then(&[busy.clone(), busy]);
    let ui = Recorder::default();
    let s = go(&mut store, vec![a.clone()], opts(false), &ui).await;
    assert_eq!(s, summary(1, 0));
    let submits = a.submits(&ids[0]);
    assert_eq!(submits.len(), 3);
    assert!(
        submits[1].1 > submits[0].1 && submits[2].1 > submits[1].1,
        "retried later, not in a tight loop"
    );
    assert!(ui
        .states(&ids[0])
        .iter()
        .all(|(_, state, _)| state != "failed"));
    assert_eq!(store.trial(&ids[0]).unwrap().unwrap().attempt, 1);
}

#[tokio::test(start_paused = true)]
async fn unrunnable_everywhere_is_reported_at_once() {
    let (_tmp, mut store, ids) = sweep_store(2);
    let no = Outcome::Reject(BackendError::Unrunnable(
        "FailedPrecondition: needs a GPU".into(),
    ));
    let (a, b) = (Mock::new("a", 1, no.clone()), Mock::new("b", 1, no));
    let ui = Recorder::default();
    let start = Instant::now();
    let s = go(&mut store, vec![a.clone(), b.clone()], opts(true), &ui).await;
    assert_eq!(s, summary(0, 2));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    for id in &ids {
        let row = store.trial(id).unwrap().unwrap();
        assert_eq!(row.failure, "unrunnable");
        assert!(row
            .message
            .contains("mem://a: FailedPrecondition: needs a GPU"));
        assert!(row.message.contains("mem://b: "), "{}", row.message);
        assert_eq!((a.submits(id).len(), b.submits(id).len()), (1, 1));
    }
}

#[tokio::test(start_paused = true)]
async fn crash_without_retry_is_reported_as_crashed() {
    let (_tmp, mut store, ids) = sweep_store(1);
    let (a, b) = (
        Mock::new("a", 1, Outcome::Crash),
        Mock::new("b", 1, Outcome::Succeed),
    );
    let ui = Recorder::default();
    let s = go(&mut store, vec![a.clone(), b.clone()], opts(false), &ui).await;
    assert_eq!(s, summary(0, 1));
    let row = store.trial(&ids[0]).unwrap().unwrap();
    assert_eq!(
        (row.state, row.failure.as_str()),
        (TrialState::Failed, "crashed")
    );
    assert_eq!((a.submits(&ids[0]).len(), b.submits(&ids[0]).len()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn crash_with_retry_on_the_only_host_runs_there_again() {
    let (_tmp, mut store, ids) = sweep_store(1);
    let a = Mock::new("a", 1, Outcome::Succeed).then(&[Outcome::Crash]);
    let ui = Recorder::default();
    let s = go(&mut store, vec![a.clone()], opts(true), &ui).await;
    assert_eq!(s, summary(1, 0));
    let submits = a.submits(&ids[0]);
    assert_eq!(submits.len(), 2);
    assert!(submits[1].0, "the second submit re-queues the ended job");
    assert_eq!(store.trial(&ids[0]).unwrap().unwrap().attempt, 2);
}

#[tokio::test(start_paused = true)]
async fn crash_with_retry_on_the_only_host_used_up_is_reported_as_crashed() {
    let (_tmp, mut store, ids) = sweep_store(1);
    let a = Mock::new("a", 1, Outcome::Crash);
    let ui = Recorder::default();
    let s = go(&mut store, vec![a.clone()], opts(true), &ui).await;
    assert_eq!(s, summary(0, 1));
    let row = store.trial(&ids[0]).unwrap().unwrap();
    assert_eq!(row.failure, "crashed");
    assert!(row.message.contains("3 placements used"), "{}", row.message);
    assert_eq!((a.submits(&ids[0]).len(), row.attempt), (3, 3));
}

#[tokio::test(start_paused = true)]
async fn crash_with_retry_on_two_hosts_moves_to_the_other() {
    let (_tmp, mut store, ids) = sweep_store(1);
    let (a, b) = (
        Mock::new("a", 1, Outcome::Crash),
        Mock::new("b", 1, Outcome::Succeed),
    );
    let ui = Recorder::default();
    let s = go(&mut store, vec![a.clone(), b.clone()], opts(true), &ui).await;
    assert_eq!(s, summary(1, 0));
    let row = store.trial(&ids[0]).unwrap().unwrap();
    assert_eq!(row.host.as_deref(), Some(b.name()));
    assert_eq!((a.submits(&ids[0]).len(), b.submits(&ids[0]).len()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn crash_with_retry_on_two_hosts_used_up_is_reported_as_crashed() {
    let (_tmp, mut store, ids) = sweep_store(1);
    let (a, b) = (
        Mock::new("a", 1, Outcome::Crash),
        Mock::new("b", 1, Outcome::Crash),
    );
    let ui = Recorder::default();
    let s = go(&mut store, vec![a.clone(), b.clone()], opts(true), &ui).await;
    assert_eq!(s, summary(0, 1));
    let row = store.trial(&ids[0]).unwrap().unwrap();
    assert_eq!((row.failure.as_str(), row.attempt), ("crashed", 3));
    let (on_a, on_b) = (a.submits(&ids[0]).len(), b.submits(&ids[0]).len());
    assert_eq!((on_a + on_b, on_a.min(on_b)), (3, 1), "both hosts tried");
}

#[tokio::test(start_paused = true)]
async fn hung_submit_does_not_stall_placement_on_the_other_hosts() {
    let (_tmp, mut store, ids) = sweep_store(4);
    let (a, b) = (
        Mock::new("a", 2, Outcome::Hang),
        Mock::new("b", 2, Outcome::Succeed),
    );
    let ui = Recorder::default();
    let start = Instant::now();
    let s = go(&mut store, vec![a.clone(), b.clone()], opts(false), &ui).await;
    assert_eq!(s, summary(4, 0));
    let hung: Vec<&String> = ids.iter().filter(|id| !a.submits(id).is_empty()).collect();
    assert_eq!(hung.len(), 2, "a got two submits, one per slot");
    for id in &ids {
        let row = store.trial(id).unwrap().unwrap();
        assert_eq!(row.host.as_deref(), Some(b.name()), "{id} ran on b");
        let done = ui.states(id).into_iter().find(|(_, s, _)| s == "succeeded");
        let at = done.expect("succeeded").0 - start;
        if hung.contains(&id) {
            assert!(at >= CALL_TIMEOUT, "{id} moved after the submit deadline");
        } else {
            assert!(
                at < Duration::from_secs(1),
                "{id} waited {at:?} on a's submits"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn result_recorded_by_another_client_on_the_same_store_finishes_the_trial() {
    let (tmp, mut store, ids) = sweep_store(1);
    let other = ResultsStore::open(&tmp.path().join("r.db")).unwrap();
    let a = Mock::new("a", 1, Outcome::Hold);
    let ui = Recorder::default();
    let script = async {
        until("a gets the trial", || a.has_job(&ids[0])).await;
        // Another vovctl following the same host records the result first.
        let theirs = result_from("the other client");
        assert!(other.record_result(&ids[0], a.name(), &theirs).unwrap());
        a.finish(&ids[0]);
    };
    let (s, ()) = tokio::join!(go(&mut store, vec![a.clone()], opts(false), &ui), script);
    assert_eq!(s, summary(1, 0));
    let row = store.trial(&ids[0]).unwrap().unwrap();
    assert_eq!(row.result.unwrap().model, "from the other client");
    let states = ui.states(&ids[0]);
    assert_eq!(states.last().map(|s| s.1.as_str()), Some("succeeded"));
}
