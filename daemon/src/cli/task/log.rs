//! A task's record in its trial folder: the events it appends and its attempt's
//! final job, both through [`TrialDir`].

use std::io;

use vov_proto::pb::job_event::Kind;
use vov_proto::taskdir::TrialDir;
use vov_proto::{convert, pb};

use crate::jobs::{now_ms, FailureClass, JobState};

/// One attempt's writer of a trial folder.
#[derive(Debug)]
pub(super) struct TaskLog {
    dir: TrialDir,
    request: pb::SubmitRequest,
    attempt: u32,
    host: String,
    created_ms: i64,
    started_ms: i64,
    last_seq: u64,
}

/// How a final job ends.
#[derive(Debug)]
pub(super) struct Ending {
    /// Its state.
    pub(super) state: JobState,
    /// Its failure class, when failed.
    pub(super) failure: Option<FailureClass>,
    /// Why, when failed.
    pub(super) message: String,
    /// The resolved model name.
    pub(super) model: String,
    /// The result, when succeeded.
    pub(super) result: Option<pb::TrialResult>,
}

impl TaskLog {
    /// Attempt `attempt` of `request` on `host`, writing into `dir`.
    pub(super) fn new(
        dir: TrialDir,
        request: pb::SubmitRequest,
        attempt: u32,
        host: String,
        created_ms: i64,
    ) -> Self {
        TaskLog {
            dir,
            request,
            attempt,
            host,
            created_ms,
            started_ms: now_ms(),
            last_seq: 0,
        }
    }

    /// The request this attempt runs.
    pub(super) fn request(&self) -> &pb::SubmitRequest {
        &self.request
    }

    /// The final job of a finished attempt: the first success of any attempt up
    /// to this one, else this attempt's own; its final events are logged if a
    /// killed run left them out.
    pub(super) fn finished(&self) -> io::Result<Option<pb::Job>> {
        let Some(job) = self.dir.best_result(self.attempt)? else {
            return Ok(None);
        };
        self.log_ending(&job)?;
        Ok(Some(job))
    }

    /// Appends an event.
    pub(super) fn append(&mut self, kind: Kind) -> io::Result<()> {
        if let Some(event) = self.dir.append_event(kind, now_ms(), |_| false)? {
            self.last_seq = event.seq;
        }
        Ok(())
    }

    /// Appends this attempt's RUNNING state change, saying `message`.
    pub(super) fn running(&mut self, message: String) -> io::Result<()> {
        self.append(Kind::State(pb::StateChange {
            state: pb::JobState::Running as i32,
            failure: pb::FailureClass::None as i32,
            message,
            attempt: self.attempt,
        }))
    }

    /// Writes this attempt's final job, then logs its result and final state;
    /// returns the job.
    pub(super) fn finish(&mut self, ending: Ending) -> io::Result<pb::Job> {
        let job = self.job(ending);
        self.dir.write_result(&job)?;
        self.log_ending(&job)?;
        Ok(job)
    }

    /// The final job; its `last_seq` is that of the final state change that
    /// follows it in the log.
    fn job(&self, ending: Ending) -> pb::Job {
        let events_to_come = 1 + u64::from(ending.result.is_some());
        pb::Job {
            trial_id: self.request.trial_id.clone(),
            sweep_id: self.request.sweep_id.clone(),
            spec: self.request.spec.clone(),
            model: ending.model,
            state: pb::JobState::from(ending.state) as i32,
            failure: convert::failure_to_pb(ending.failure) as i32,
            message: ending.message,
            attempt: self.attempt,
            created_unix_ms: self.created_ms,
            started_unix_ms: self.started_ms,
            finished_unix_ms: now_ms(),
            progress: None,
            result: ending.result,
            last_seq: self.last_seq + events_to_come,
            host: self.host.clone(),
            ..pb::Job::default()
        }
    }

    /// Appends `job`'s result event and final state change unless its attempt's
    /// final state is logged already.
    fn log_ending(&self, job: &pb::Job) -> io::Result<()> {
        let attempt = job.attempt;
        if let Some(result) = &job.result {
            self.dir
                .append_event(Kind::Result(result.clone()), now_ms(), |events| {
                    ended(events, attempt)
                        || matches!(
                            events.last().and_then(|e| e.kind.as_ref()),
                            Some(Kind::Result(_))
                        )
                })?;
        }
        let state = pb::StateChange {
            state: job.state,
            failure: job.failure,
            message: job.message.clone(),
            attempt,
        };
        self.dir
            .append_event(Kind::State(state), now_ms(), |events| {
                ended(events, attempt)
            })?;
        Ok(())
    }
}

/// Whether `events` hold a final state change of attempt `attempt`.
fn ended(events: &[pb::JobEvent], attempt: u32) -> bool {
    events.iter().any(|e| match &e.kind {
        Some(Kind::State(s)) => {
            s.attempt == attempt && convert::job_state(s.state).is_some_and(JobState::is_final)
        }
        _ => false,
    })
}

/// One line about a final job.
pub(super) fn summary(job: &pb::Job) -> String {
    let state = convert::job_state(job.state).map_or("unknown", JobState::as_str);
    let head = format!("trial {} attempt {}: {state}", job.trial_id, job.attempt);
    match &job.result {
        Some(r) => format!(
            "{head}, max val acc {:.4} at epoch {}",
            r.max_val_acc, r.max_val_acc_epoch
        ),
        None => format!("{head}: {}", job.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> (tempfile::TempDir, TaskLog) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = TrialDir::new(tmp.path(), "t1");
        std::fs::create_dir_all(dir.root()).unwrap();
        let request = pb::SubmitRequest {
            trial_id: "t1".into(),
            ..Default::default()
        };
        (tmp, TaskLog::new(dir, request, 1, "h".into(), 5))
    }

    fn ok() -> Ending {
        Ending {
            state: JobState::Succeeded,
            failure: None,
            message: String::new(),
            model: "m".into(),
            result: Some(pb::TrialResult::default()),
        }
    }

    #[test]
    fn a_finish_is_logged_once_and_last_seq_names_its_final_event() {
        let (_tmp, mut log) = log();
        log.running("on h".into()).unwrap();
        let job = log.finish(ok()).unwrap();
        assert_eq!(job.last_seq, 3);
        assert_eq!(log.dir.read_events(1).unwrap().len(), 3);
        let again = log.finished().unwrap().unwrap();
        assert_eq!(again, job);
        assert_eq!(log.dir.read_events(1).unwrap().len(), 3);
        assert!(summary(&job).starts_with("trial t1 attempt 1: succeeded"));
    }
}
