//! Placing a sweep's trials on the hosts' slots and following them to the end.
//!
//! One task owns every piece of state (trials, hosts, the results store); pingers
//! and watchers only send it messages. Each host gets at most as many trials as it
//! has slots (so a lost host holds few), trials go to free slots in sweep order,
//! and `Submit` is idempotent so a retried call never starts a second copy. A host
//! that stops answering for the lease time loses its trials, which are placed
//! elsewhere (at most `max_attempts` placements); if it comes back with a result
//! for one of them, the first result recorded is kept and the other copy cancelled.

mod place;
pub mod tasks;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::mpsc;
use vov_proto::pb;

use crate::hosts::Host;
use crate::progress::{Ui, UiEvent};
use crate::store::state::failure_name;
use crate::store::{ResultsStore, StoreError, TrialRow, TrialState};
use tasks::Msg;

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sweep.
    pub sweep: String,
    /// Time without an answer after which a host is lost.
    pub lease: Duration,
    /// Most placements of a trial.
    pub max_attempts: u32,
    /// Retry crashed and out-of-memory trials.
    pub retry_failed: bool,
    /// Place everything on the hosts' queues and return.
    pub detach: bool,
    /// Re-run trials that already ended (their new result replaces the old).
    pub rerun: bool,
}

/// How a sweep ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Trials with a result.
    pub succeeded: usize,
    /// Trials that failed.
    pub failed: usize,
    /// Trials cancelled.
    pub cancelled: usize,
    /// Trials left placed but unfinished (detach).
    pub placed: usize,
}

/// A sweep could not run.
#[derive(Debug, Error)]
pub enum ScheduleError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No host answered.
    #[error("no host is reachable: {0}")]
    NoHost(String),
}

struct HostState {
    host: Host,
    slots: usize,
    max_queued: usize,
    alive: bool,
    /// Its trials were taken away after the lease ran out.
    lost: bool,
    last_ok: Instant,
    placed: HashSet<String>,
}

struct Tracked {
    row: TrialRow,
    host: Option<usize>,
    rejected: HashMap<usize, String>,
    force: bool,
}

/// The scheduler's state.
pub struct Scheduler<'a> {
    opts: Options,
    store: &'a mut ResultsStore,
    ui: &'a mut dyn Ui,
    hosts: Vec<HostState>,
    trials: HashMap<String, Tracked>,
    pending: VecDeque<String>,
    tx: mpsc::UnboundedSender<Msg>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<'a> Scheduler<'a> {
    fn counts(&self) -> UiEvent {
        let (mut done, mut running, mut failed, mut queued) = (0, 0, 0, 0);
        for t in self.trials.values() {
            match t.row.state {
                TrialState::Succeeded => done += 1,
                TrialState::Running => running += 1,
                TrialState::Failed | TrialState::Cancelled => failed += 1,
                TrialState::Pending | TrialState::Queued => queued += 1,
            }
        }
        UiEvent::Counts {
            done,
            running,
            failed,
            queued,
        }
    }

    fn all_final(&self) -> bool {
        self.trials.values().all(|t| t.row.state.is_final())
    }

    fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for t in self.trials.values() {
            match t.row.state {
                TrialState::Succeeded => s.succeeded += 1,
                TrialState::Failed => s.failed += 1,
                TrialState::Cancelled => s.cancelled += 1,
                _ => s.placed += 1,
            }
        }
        s
    }

    fn set_state(
        &mut self,
        id: &str,
        state: TrialState,
        failure: &str,
        message: &str,
    ) -> Result<(), ScheduleError> {
        let Some(t) = self.trials.get_mut(id) else {
            return Ok(());
        };
        if t.row.state == TrialState::Succeeded {
            return Ok(());
        }
        self.store.set_state(id, state, failure, message)?;
        t.row.state = state;
        t.row.failure = failure.to_string();
        t.row.message = message.to_string();
        let event = UiEvent::State {
            trial: id.to_string(),
            label: t.row.label.clone(),
            state: state.to_string(),
            failure: failure.to_string(),
            message: message.to_string(),
        };
        self.ui.show(&event);
        let counts = self.counts();
        self.ui.show(&counts);
        Ok(())
    }

    /// Takes a trial off its host (lost, or failed there) and queues it for another
    /// placement, or fails it when its placements are used up.
    fn unplace(&mut self, id: &str, why: &str) -> Result<(), ScheduleError> {
        let Some(t) = self.trials.get_mut(id) else {
            return Ok(());
        };
        if let Some(h) = t.host.take() {
            self.hosts[h].placed.remove(id);
        }
        if t.row.attempt >= self.opts.max_attempts {
            let msg = format!("{why}; {} placements used (max_attempts)", t.row.attempt);
            return self.set_state(id, TrialState::Failed, "host_lost", &msg);
        }
        self.pending.push_front(id.to_string());
        self.set_state(id, TrialState::Pending, "", why)
    }

    fn on_event(&mut self, host: usize, event: pb::JobEvent) -> Result<(), ScheduleError> {
        use pb::job_event::Kind;
        let id = event.trial_id.clone();
        let Some(t) = self.trials.get(&id) else {
            return Ok(());
        };
        let current = t.host == Some(host);
        match (&event.kind, current) {
            (Some(Kind::Result(result)), _) => {
                if self
                    .store
                    .record_result(&id, &self.hosts[host].host.url, result)?
                {
                    let dup = self
                        .trials
                        .get(&id)
                        .and_then(|t| t.host)
                        .filter(|&h| h != host);
                    if let Some(other) = dup {
                        self.cancel_on(other, &id);
                    }
                    self.set_done(&id, host, result.clone())?;
                }
            }
            (_, false) => {}
            (Some(Kind::Epoch(m)), true) => {
                self.store.progress(&id, event.seq, Some(m))?;
                let epochs = self.trials.get(&id).map_or(0, |t| t.row.epochs);
                self.ui.show(&UiEvent::Epoch {
                    trial: id.clone(),
                    epoch: m.epoch,
                    epochs,
                    val_acc: m.val_acc,
                });
            }
            (Some(Kind::State(s)), true) => {
                self.store.progress(&id, event.seq, None)?;
                self.on_state(host, &id, s)?;
            }
            _ => self.store.progress(&id, event.seq, None)?,
        }
        if let Some(t) = self.trials.get_mut(&id) {
            if current {
                t.row.last_seq = t.row.last_seq.max(event.seq);
            }
        }
        Ok(())
    }

    fn set_done(
        &mut self,
        id: &str,
        host: usize,
        result: pb::TrialResult,
    ) -> Result<(), ScheduleError> {
        if let Some(t) = self.trials.get_mut(id) {
            t.row.result = Some(result);
            if let Some(h) = t.host.take() {
                self.hosts[h].placed.remove(id);
            }
            t.row.state = TrialState::Succeeded;
            let event = UiEvent::State {
                trial: id.to_string(),
                label: t.row.label.clone(),
                state: "succeeded".into(),
                failure: String::new(),
                message: format!("on {}", self.hosts[host].host.url),
            };
            self.ui.show(&event);
        }
        let counts = self.counts();
        self.ui.show(&counts);
        Ok(())
    }

    fn on_state(
        &mut self,
        host: usize,
        id: &str,
        s: &pb::StateChange,
    ) -> Result<(), ScheduleError> {
        let state = crate::store::state::from_pb(s.state);
        match state {
            TrialState::Succeeded => Ok(()),
            TrialState::Failed => {
                let class = failure_name(s.failure);
                let retry = class == "host_lost"
                    || (self.opts.retry_failed && matches!(class, "crashed" | "oom" | "killed"));
                if retry {
                    if let Some(t) = self.trials.get_mut(id) {
                        t.force = true;
                        t.rejected.insert(host, format!("{class}: {}", s.message));
                    }
                    self.unplace(
                        id,
                        &format!("{class} on {}: {}", self.hosts[host].host.url, s.message),
                    )
                } else {
                    self.release(id);
                    self.set_state(id, TrialState::Failed, class, &s.message)
                }
            }
            TrialState::Cancelled => {
                self.release(id);
                self.set_state(id, TrialState::Cancelled, "", &s.message)
            }
            TrialState::Running | TrialState::Queued | TrialState::Pending => {
                let changed = self.trials.get(id).is_some_and(|t| t.row.state != state);
                if changed {
                    self.set_state(id, state, "", &s.message)?;
                }
                Ok(())
            }
        }
    }

    fn release(&mut self, id: &str) {
        if let Some(h) = self.trials.get_mut(id).and_then(|t| t.host.take()) {
            self.hosts[h].placed.remove(id);
        }
    }

    fn cancel_on(&self, host: usize, id: &str) {
        let mut client = self.hosts[host].host.client.clone();
        let req = tasks::request(pb::CancelRequest {
            trial_id: id.to_string(),
        });
        tokio::spawn(async move {
            let _ = client.cancel(req).await;
        });
    }

    fn on_watch_ended(
        &mut self,
        host: usize,
        id: &str,
        error: Option<tonic::Status>,
    ) -> Result<(), ScheduleError> {
        let Some(t) = self.trials.get(id) else {
            return Ok(());
        };
        if t.row.state.is_final() || t.host != Some(host) {
            return Ok(());
        }
        if error
            .as_ref()
            .is_some_and(|e| e.code() == tonic::Code::NotFound)
        {
            return self.unplace(
                id,
                &format!("{} no longer knows the trial", self.hosts[host].host.url),
            );
        }
        // The stream ended early (daemon draining, network): watch again shortly.
        let from = t.row.last_seq + 1;
        let task = tasks::spawn_watcher(
            host,
            self.hosts[host].host.clone(),
            id.to_string(),
            from,
            Duration::from_secs(1),
            self.tx.clone(),
        );
        self.tasks.push(task);
        Ok(())
    }

    fn on_ping(
        &mut self,
        host: usize,
        info: Option<Box<pb::HostInfoResponse>>,
    ) -> Result<(), ScheduleError> {
        let Some(info) = info else {
            return Ok(());
        };
        if let Some(fp) = &info.fingerprint {
            self.store.note_host(&self.hosts[host].host.url, &fp.id)?;
        }
        let h = &mut self.hosts[host];
        h.last_ok = Instant::now();
        h.slots = info.slots_total as usize;
        h.max_queued = info.max_queued as usize;
        h.alive = true;
        if h.lost {
            h.lost = false;
            let url = h.host.url.clone();
            self.ui.show(&UiEvent::Host {
                host: url,
                status: "back".into(),
            });
            let task = tasks::spawn_reconcile(
                host,
                self.hosts[host].host.clone(),
                self.opts.sweep.clone(),
                self.tx.clone(),
            );
            self.tasks.push(task);
        }
        Ok(())
    }

    /// A job of this sweep on a host that came back: keep its result if the trial
    /// has none yet (first one wins), adopt it if the trial waits for a placement,
    /// cancel it if the trial is placed elsewhere or already done.
    fn on_found(&mut self, host: usize, job: pb::Job) -> Result<(), ScheduleError> {
        let id = job.trial_id.clone();
        let Some(t) = self.trials.get(&id) else {
            return Ok(());
        };
        let (final_trial, placed_elsewhere) =
            (t.row.state.is_final(), t.host.is_some_and(|h| h != host));
        match crate::store::state::from_pb(job.state) {
            TrialState::Succeeded => {
                if let Some(result) = job.result {
                    let event = pb::JobEvent {
                        trial_id: id,
                        seq: 0,
                        unix_ms: 0,
                        kind: Some(pb::job_event::Kind::Result(result)),
                    };
                    self.on_event(host, event)?;
                }
            }
            TrialState::Queued | TrialState::Running if final_trial || placed_elsewhere => {
                self.cancel_on(host, &id)
            }
            TrialState::Queued | TrialState::Running if t.host.is_none() => {
                self.pending.retain(|p| p != &id);
                if let Some(t) = self.trials.get_mut(&id) {
                    t.host = Some(host);
                    t.row.attempt += 1;
                    t.row.last_seq = 0;
                    self.store
                        .place(&id, &self.hosts[host].host.url, t.row.attempt)?;
                }
                self.hosts[host].placed.insert(id.clone());
                let task = tasks::spawn_watcher(
                    host,
                    self.hosts[host].host.clone(),
                    id,
                    1,
                    Duration::ZERO,
                    self.tx.clone(),
                );
                self.tasks.push(task);
            }
            _ => {}
        }
        Ok(())
    }

    fn check_leases(&mut self) -> Result<(), ScheduleError> {
        for h in 0..self.hosts.len() {
            let state = &mut self.hosts[h];
            if !state.alive || state.last_ok.elapsed() < self.opts.lease {
                continue;
            }
            state.alive = false;
            state.lost = true;
            let url = state.host.url.clone();
            let lost: Vec<String> = state.placed.iter().cloned().collect();
            self.ui.show(&UiEvent::Host {
                host: url.clone(),
                status: format!("lost ({} trials to re-place)", lost.len()),
            });
            for id in lost {
                self.unplace(&id, &format!("host {url} stopped answering"))?;
            }
        }
        Ok(())
    }
}

impl Drop for Scheduler<'_> {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs (or, with `detach`, places) the unfinished trials of `opts.sweep` on `hosts`.
pub async fn run(
    store: &mut ResultsStore,
    hosts: Vec<Host>,
    opts: Options,
    ui: &mut dyn Ui,
) -> Result<Summary, ScheduleError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rows = store.trials(&opts.sweep)?;
    let mut scheduler = Scheduler {
        hosts: hosts
            .into_iter()
            .map(|host| HostState {
                host,
                slots: 0,
                max_queued: usize::MAX,
                alive: false,
                lost: false,
                last_ok: Instant::now(),
                placed: HashSet::new(),
            })
            .collect(),
        trials: HashMap::new(),
        pending: VecDeque::new(),
        tx,
        tasks: Vec::new(),
        opts,
        store,
        ui,
    };
    scheduler.start(rows, &mut rx).await?;
    loop {
        scheduler.fill().await?;
        if scheduler.all_final() || (scheduler.opts.detach && scheduler.pending.is_empty()) {
            break;
        }
        let msg = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
        match msg {
            Ok(Some(Msg::Event { host, event })) => scheduler.on_event(host, *event)?,
            Ok(Some(Msg::WatchEnded { host, trial, error })) => {
                scheduler.on_watch_ended(host, &trial, error)?
            }
            Ok(Some(Msg::Ping { host, info })) => scheduler.on_ping(host, info)?,
            Ok(Some(Msg::Found { host, job })) => scheduler.on_found(host, *job)?,
            Ok(None) | Err(_) => {}
        }
        scheduler.check_leases()?;
    }
    scheduler.ui.finish();
    Ok(scheduler.summary())
}
