//! Transitions that must reach the store. A job's state change, its result and the
//! events announcing them are written in one transaction ([`Store::commit`]), and
//! announced to watchers only once written, so what a client sees is what the
//! store holds.
//!
//! The end of a job (and its return to the queue when the daemon stops it) is
//! kept as pending when the write fails (a full disk): it is written again after
//! a capped exponential backoff, one attempt (and one log line) per step, until
//! it succeeds. Meanwhile the job keeps its slot and its watchers, and the store
//! still says running, so a daemon that dies before the write succeeds recovers
//! the job at its next start as it recovers any interrupted trial.
//!
//! [`Store::commit`]: crate::store::Store::commit

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use vov_proto::pb;

use super::change::Change;
use super::{db, Actor};
use crate::jobs::manager::{Command, JobError};
use crate::jobs::now_ms;
use crate::store::Transition;

/// First wait before writing a failed transition again.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Longest wait between two attempts.
const MAX_RETRY: Duration = Duration::from_secs(8);

/// Capped exponential backoff: `FIRST_RETRY`, doubling up to `MAX_RETRY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_RETRY }
    }
}

impl Backoff {
    /// The wait before the next attempt; each call doubles the following one.
    fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(MAX_RETRY);
        now
    }
}

/// What happens once a pending transition is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    /// The job has ended: its checkpoints go and its watchers are released.
    Final,
    /// The job waits for a slot again, first in the queue.
    Requeue,
    /// The job is paused: its watchers are released, its checkpoints kept.
    Pause,
}

/// A transition not yet written.
pub(super) struct Pending {
    transition: Transition,
    events: Vec<Arc<pb::JobEvent>>,
    /// The slot the job keeps until the transition is written.
    slot: Option<usize>,
    after: After,
    backoff: Backoff,
    failures: u32,
}

impl Actor {
    /// The job's last event sequence number.
    pub(super) async fn last_seq(&self, id: &str) -> Result<u64, JobError> {
        if let Some(&seq) = self.seqs.get(id) {
            return Ok(seq);
        }
        let key = id.to_string();
        Ok(db(&self.store, move |s| s.get(&key))
            .await?
            .map_or(0, |r| r.last_seq))
    }

    /// The change as a store transition and the events to announce.
    async fn prepare(
        &self,
        id: &str,
        change: Change,
    ) -> Result<(Transition, Vec<Arc<pb::JobEvent>>), JobError> {
        let last = self.last_seq(id).await?;
        let events: Vec<Arc<pb::JobEvent>> = (last + 1..)
            .zip(change.kinds)
            .map(|(seq, kind)| {
                Arc::new(pb::JobEvent {
                    trial_id: id.to_string(),
                    seq,
                    unix_ms: now_ms(),
                    kind: Some(kind),
                })
            })
            .collect();
        let transition = Transition {
            update: change.update,
            result: change.result,
            events: events.iter().map(|e| (e.seq, e.encode_to_vec())).collect(),
        };
        Ok((transition, events))
    }

    /// Sends written events to the job's watchers.
    pub(super) fn announce(&mut self, id: &str, events: &[Arc<pb::JobEvent>]) {
        if let Some(last) = events.last() {
            self.seqs.insert(id.to_string(), last.seq);
        }
        if let Some(tx) = self.channels.get(id) {
            for event in events {
                // No receiver is fine: nobody is watching.
                let _ = tx.send(event.clone());
            }
        }
    }

    /// Writes a change once; on success its events go to the watchers. A failure
    /// is the caller's to report (the store keeps the previous state).
    pub(super) async fn record(&mut self, id: &str, change: Change) -> Result<(), JobError> {
        let (transition, events) = self.prepare(id, change).await?;
        let key = id.to_string();
        db(&self.store, move |s| s.commit(&key, &transition)).await?;
        self.announce(id, &events);
        Ok(())
    }

    /// Writes a change that must not be lost, retrying until it is written; `slot`
    /// stays taken until then, and `after` is done once it is.
    pub(super) async fn settle(
        &mut self,
        id: &str,
        change: Change,
        slot: Option<usize>,
        after: After,
    ) -> Result<(), JobError> {
        let (transition, events) = self.prepare(id, change).await?;
        self.pending.insert(
            id.to_string(),
            Pending {
                transition,
                events,
                slot,
                after,
                backoff: Backoff::default(),
                failures: 0,
            },
        );
        self.write_pending(id).await;
        Ok(())
    }

    /// Writes the pending transition of `id`, if any; schedules the next attempt
    /// when the write fails.
    pub(super) async fn write_pending(&mut self, id: &str) {
        let Some(pending) = self.pending.get(id) else {
            return;
        };
        let (key, transition) = (id.to_string(), pending.transition.clone());
        match db(&self.store, move |s| s.commit(&key, &transition)).await {
            Ok(()) => {
                if let Some(done) = self.pending.remove(id) {
                    self.written(id, done);
                }
            }
            Err(e) => {
                let Some(pending) = self.pending.get_mut(id) else {
                    return;
                };
                pending.failures += 1;
                let wait = pending.backoff.step();
                tracing::warn!(
                    trial.id = %id,
                    state = %pending.transition.update.state,
                    attempt = pending.failures,
                    retry_in_ms = wait.as_millis() as u64,
                    error = %e,
                    "could not record the job's new state; the job keeps its slot and the write is retried"
                );
                let (tx, id) = (self.commands.clone(), id.to_string());
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tx.send(Command::Commit(id)).await;
                });
            }
        }
    }

    /// A pending transition is in the store: announce it, then free the slot and
    /// release or re-queue the job.
    fn written(&mut self, id: &str, done: Pending) {
        if done.failures > 0 {
            tracing::info!(trial.id = %id, state = %done.transition.update.state, attempts = done.failures + 1, "recorded the job's new state");
        }
        self.announce(id, &done.events);
        if let Some(slot) = done.slot {
            self.slots[slot] = None;
        }
        match done.after {
            After::Requeue => self.queue.push_front(id.to_string()),
            After::Final | After::Pause => {
                if done.after == After::Final {
                    self.remove_checkpoints(id);
                    self.trim_weights(id);
                    self.release_uploads(id);
                }
                self.channels.remove(id);
                self.seqs.remove(id);
            }
        }
        self.maybe_drained();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..8).map(|_| b.step()).collect();
        assert_eq!(waits[0], FIRST_RETRY);
        assert_eq!(waits[1], FIRST_RETRY * 2);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), MAX_RETRY);
        assert!(waits.iter().all(|w| *w <= MAX_RETRY));
    }
}
