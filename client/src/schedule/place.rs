//! Starting a sweep (adopting earlier placements) and placing pending trials on
//! free slots.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vov_proto::pb;

use super::tasks::{self, Msg};
use super::{ScheduleError, Scheduler, Tracked};
use crate::progress::UiEvent;
use crate::store::{TrialRow, TrialState};

impl Scheduler<'_> {
    /// Starts the pingers, waits for the first answers, adopts trials already
    /// placed on these hosts and queues the rest.
    pub(super) async fn start(
        &mut self,
        rows: Vec<TrialRow>,
        rx: &mut mpsc::UnboundedReceiver<Msg>,
    ) -> Result<(), ScheduleError> {
        for (i, h) in self.hosts.iter().enumerate() {
            self.tasks
                .push(tasks::spawn_pinger(i, h.host.clone(), self.tx.clone()));
        }
        let work = rows.iter().any(|r| !r.state.is_final());
        let deadline = Instant::now() + tasks::CALL_TIMEOUT + Duration::from_secs(1);
        let mut answered = 0;
        while work && answered < self.hosts.len() && Instant::now() < deadline {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(Msg::Ping { host, info })) => {
                    answered += 1;
                    self.on_ping(host, info)?;
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        for h in &mut self.hosts {
            h.last_ok = Instant::now();
        }
        if work && !self.hosts.iter().any(|h| h.alive) {
            let urls: Vec<&str> = self.hosts.iter().map(|h| h.host.url.as_str()).collect();
            return Err(ScheduleError::NoHost(urls.join(", ")));
        }
        let finished = rows.iter().filter(|r| r.state.is_final()).count();
        let epochs = rows
            .iter()
            .filter(|r| !r.state.is_final())
            .map(|r| u64::from(r.epochs.saturating_sub(r.epoch)))
            .sum();
        self.ui.show(&UiEvent::Plan {
            trials: rows.len(),
            finished,
            hosts: self.hosts.iter().map(|h| h.host.url.clone()).collect(),
            epochs,
        });
        for row in rows {
            self.adopt(row);
        }
        let counts = self.counts();
        self.ui.show(&counts);
        Ok(())
    }

    fn adopt(&mut self, row: TrialRow) {
        let id = row.trial_id.clone();
        let placed_on = row
            .host
            .as_ref()
            .and_then(|u| self.hosts.iter().position(|h| &h.host.url == u));
        let mut tracked = Tracked {
            row,
            host: None,
            rejected: HashMap::new(),
            force: self.opts.rerun,
        };
        match (tracked.row.state, placed_on) {
            (s, _) if s.is_final() => {}
            (TrialState::Queued | TrialState::Running, Some(h)) => {
                tracked.host = Some(h);
                self.hosts[h].placed.insert(id.clone());
                let from = tracked.row.last_seq + 1;
                self.tasks.push(tasks::spawn_watcher(
                    h,
                    self.hosts[h].host.clone(),
                    id.clone(),
                    from,
                    Duration::ZERO,
                    self.tx.clone(),
                ));
            }
            _ => self.pending.push_back(id.clone()),
        }
        self.trials.insert(id, tracked);
    }

    fn capacity(&self, h: usize) -> usize {
        let host = &self.hosts[h];
        let limit = if self.opts.detach {
            host.max_queued.saturating_add(host.slots)
        } else {
            host.slots
        };
        limit.saturating_sub(host.placed.len())
    }

    /// The alive host with the most free capacity that has not refused `id`.
    fn best_host(&self, id: &str) -> Option<usize> {
        let rejected = &self.trials.get(id)?.rejected;
        (0..self.hosts.len())
            .filter(|&h| self.hosts[h].alive && !rejected.contains_key(&h) && self.capacity(h) > 0)
            .max_by_key(|&h| (self.capacity(h), std::cmp::Reverse(h)))
    }

    /// Places pending trials on free slots, in sweep order.
    pub(super) async fn fill(&mut self) -> Result<(), ScheduleError> {
        let mut waiting = std::collections::VecDeque::new();
        while let Some(id) = self.pending.pop_front() {
            if self.trials.get(&id).is_none_or(|t| t.row.state.is_final()) {
                continue;
            }
            if self.refused_everywhere(&id)? {
                continue;
            }
            match self.best_host(&id) {
                Some(h) => {
                    if !self.submit(h, &id).await? {
                        waiting.push_back(id);
                    }
                }
                None => waiting.push_back(id),
            }
        }
        self.pending = waiting;
        Ok(())
    }

    /// Fails a trial every host refused; returns whether it did.
    fn refused_everywhere(&mut self, id: &str) -> Result<bool, ScheduleError> {
        let Some(t) = self.trials.get(id) else {
            return Ok(false);
        };
        if t.rejected.len() < self.hosts.len() {
            return Ok(false);
        }
        let mut reasons: Vec<String> = t
            .rejected
            .iter()
            .map(|(h, why)| format!("{}: {why}", self.hosts[*h].host.url))
            .collect();
        reasons.sort();
        self.set_state(
            id,
            TrialState::Failed,
            "unrunnable",
            &format!("no host can run it ({})", reasons.join("; ")),
        )?;
        Ok(true)
    }

    /// Submits `id` to host `h`; returns whether it was placed.
    async fn submit(&mut self, h: usize, id: &str) -> Result<bool, ScheduleError> {
        let Some(t) = self.trials.get(id) else {
            return Ok(false);
        };
        let req = pb::SubmitRequest {
            trial_id: id.to_string(),
            sweep_id: self.opts.sweep.clone(),
            spec: Some(t.row.spec.clone()),
            retry: t.force,
        };
        let mut client = self.hosts[h].host.client.clone();
        let url = self.hosts[h].host.url.clone();
        match client.submit(tasks::request(req)).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                // A re-queued job's old events (its old result among them) are skipped.
                let from = match (&resp.job, resp.created) {
                    (Some(job), true) => job.last_seq.max(1),
                    _ => 1,
                };
                let Some(t) = self.trials.get_mut(id) else {
                    return Ok(false);
                };
                t.force = false;
                t.row.attempt += 1;
                t.row.last_seq = 0;
                t.host = Some(h);
                let (attempt, label) = (t.row.attempt, t.row.label.clone());
                self.store.place(id, &url, attempt)?;
                self.hosts[h].placed.insert(id.to_string());
                self.ui.show(&UiEvent::Placed {
                    trial: id.to_string(),
                    label,
                    host: url,
                    attempt,
                });
                self.set_state(id, TrialState::Queued, "", "")?;
                let task = tasks::spawn_watcher(
                    h,
                    self.hosts[h].host.clone(),
                    id.to_string(),
                    from,
                    Duration::ZERO,
                    self.tx.clone(),
                );
                self.tasks.push(task);
                Ok(true)
            }
            Err(status) => self.refused(h, id, status).map(|()| false),
        }
    }

    fn refused(&mut self, h: usize, id: &str, status: tonic::Status) -> Result<(), ScheduleError> {
        use tonic::Code;
        let why = status.message().to_string();
        match status.code() {
            Code::InvalidArgument | Code::AlreadyExists => {
                self.set_state(id, TrialState::Failed, "invalid_spec", &why)
            }
            Code::FailedPrecondition | Code::Unauthenticated | Code::PermissionDenied => {
                if let Some(t) = self.trials.get_mut(id) {
                    t.rejected.insert(h, format!("{:?}: {why}", status.code()));
                }
                Ok(())
            }
            Code::ResourceExhausted => {
                // The host's queue is full: stop placing there until the next answer.
                self.hosts[h].max_queued = self.hosts[h]
                    .placed
                    .len()
                    .saturating_sub(self.hosts[h].slots);
                Ok(())
            }
            _ => {
                tracing::debug!(host = %self.hosts[h].host.url, error = %status, "submit failed; host marked unreachable");
                self.hosts[h].alive = false;
                self.hosts[h].last_ok = Instant::now();
                Ok(())
            }
        }
    }
}
