//! One trial's job as the Slurm backend reports it: the files `vovd task` and
//! vovctl keep in the work directory, and Slurm's word on its array task for what
//! the files cannot say (queued, running, or gone without a result).

use std::io;

use tokio::time::Instant;
use vov_proto::pb;
use vov_proto::taskdir::{write_atomically, TrialDir};
use vov_spec::FailureClass;

use super::parse::state::JobState;
use super::poll::Snapshot;

/// The array task of a trial's last attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchJob {
    /// The array's job id.
    pub job: u64,
    /// The task id in the array.
    pub task: u32,
    /// The attempt it runs.
    pub attempt: u32,
}

impl BatchJob {
    /// Slurm's name of the task: `JOB_TASK`.
    pub fn id(&self) -> String {
        format!("{}_{}", self.job, self.task)
    }

    /// The trial's batch job, if one was submitted.
    pub fn read(dir: &TrialDir) -> io::Result<Option<BatchJob>> {
        let text = match std::fs::read_to_string(dir.batch_job()) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: expected `JOB_TASK ATTEMPT`", dir.batch_job().display()),
            )
        };
        let (id, attempt) = text.trim().split_once(' ').ok_or_else(bad)?;
        let (job, task) = id.split_once('_').ok_or_else(bad)?;
        Ok(Some(BatchJob {
            job: job.parse().map_err(|_| bad())?,
            task: task.parse().map_err(|_| bad())?,
            attempt: attempt.parse().map_err(|_| bad())?,
        }))
    }

    /// Records it as the trial's batch job.
    pub fn write(&self, dir: &TrialDir) -> io::Result<()> {
        let text = format!("{} {}\n", self.id(), self.attempt);
        write_atomically(&dir.batch_job(), text.as_bytes())
    }
}

/// What Slurm's answer says of a task with no final record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It waits or runs: the job's state.
    Live(pb::JobState),
    /// It ended (or vanished) without writing a result.
    Gone(FailureClass, String),
}

/// The rule: a task listed as running runs, one listed as pending (or being
/// requeued) waits; one listed in a final state, or missing from an answer that was
/// asked after it was submitted, is gone; with no such answer yet it waits.
pub fn verdict(task: Option<&JobState>, answered_after_submit: bool) -> Verdict {
    match task {
        Some(JobState::Running) => Verdict::Live(pb::JobState::Running),
        Some(s) if s.is_final() => Verdict::Gone(
            s.clone().failure().unwrap_or(FailureClass::Crashed),
            format!("it ended {s} without a result"),
        ),
        Some(_) => Verdict::Live(pb::JobState::Queued),
        None if answered_after_submit => Verdict::Gone(
            FailureClass::HostLost,
            "Slurm no longer lists it and it left no result".into(),
        ),
        None => Verdict::Live(pb::JobState::Queued),
    }
}

/// A trial's job as known from its folder (under `work_dir`), the latest
/// `squeue` answer and when this process submitted it (`None`: before this
/// process started). A task found
/// gone gets its failure recorded here, once, for every reader. `None` when the
/// folder has no trial.
pub fn observe(
    dir: &TrialDir,
    snapshot: Option<&Snapshot>,
    submitted: Option<Instant>,
    backend: &str,
    work_dir: &std::path::Path,
) -> io::Result<Option<pb::Job>> {
    let request = match dir.read_request() {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let attempt = dir.read_attempt()?.max(1);
    // Slurm's answer is read before the files: a task that ended before the
    // answer was asked for wrote its result before that, so the files show it.
    if let Some(job) = dir.best_result(attempt)? {
        return Ok(Some(with_seq(dir, job)?));
    }
    let mut job = base(&request, attempt, backend);
    let batch = BatchJob::read(dir)?.filter(|b| b.attempt == attempt);
    let Some(batch) = batch else {
        // Prepared, not yet submitted: the submit that prepared it will.
        job.state = pb::JobState::Queued as i32;
        return Ok(Some(with_seq(dir, job)?));
    };
    // Only an answer that asked for this sweep's arrays, after the submission,
    // can say the task is gone.
    let name = super::script::job_name(&request.sweep_id);
    let snapshot = snapshot.filter(|s| s.names.contains(&name));
    let state = snapshot.and_then(|s| s.tasks.get(&(batch.job, batch.task)));
    let after = snapshot.is_some_and(|s| submitted.is_none_or(|t| s.started > t));
    match verdict(state, after) {
        Verdict::Live(s) => {
            job.state = s as i32;
            job.message = format!("Slurm task {}", batch.id());
        }
        Verdict::Gone(class, why) => {
            job.state = pb::JobState::Failed as i32;
            job.failure = vov_proto::convert::failure_to_pb(Some(class)) as i32;
            let log = super::script::log_dir(work_dir, &request.sweep_id)
                .join(format!("{}.out", batch.id()));
            job.message = format!("Slurm task {}: {why} (log: {})", batch.id(), log.display());
            job.finished_unix_ms = now_ms();
            record_final(dir, &job)?;
            if let Some(kept) = dir.read_result(attempt)? {
                return Ok(Some(with_seq(dir, kept)?));
            }
        }
    }
    Ok(Some(with_seq(dir, job)?))
}

/// Writes a final job as its attempt's result (unless one is there) and logs its
/// state change (unless the attempt's final state is logged already).
pub fn record_final(dir: &TrialDir, job: &pb::Job) -> io::Result<()> {
    if !dir.write_result(job)? {
        return Ok(());
    }
    let change = pb::StateChange {
        state: job.state,
        failure: job.failure,
        message: job.message.clone(),
        attempt: job.attempt,
    };
    let attempt = job.attempt;
    dir.append_event(pb::job_event::Kind::State(change), now_ms(), |events| {
        events.iter().rev().any(|e| is_final_of(e, attempt))
    })?;
    Ok(())
}

/// Whether `e` is a final state change of attempt `attempt`.
pub fn is_final_of(e: &pb::JobEvent, attempt: u32) -> bool {
    matches!(&e.kind, Some(pb::job_event::Kind::State(s))
        if s.attempt == attempt && is_final(s.state))
}

/// Whether a job state (as the protocol sends it) is final.
pub fn is_final(state: i32) -> bool {
    vov_proto::convert::job_state(state).is_some_and(vov_spec::JobState::is_final)
}

/// The job of `request`'s trial at `attempt`, before its state is known.
pub fn base(request: &pb::SubmitRequest, attempt: u32, backend: &str) -> pb::Job {
    pb::Job {
        trial_id: request.trial_id.clone(),
        sweep_id: request.sweep_id.clone(),
        model: request
            .spec
            .as_ref()
            .map(|s| s.model.clone())
            .unwrap_or_default(),
        spec: request.spec.clone(),
        attempt,
        host: backend.to_string(),
        ..pb::Job::default()
    }
}

fn with_seq(dir: &TrialDir, mut job: pb::Job) -> io::Result<pb::Job> {
    job.last_seq = dir.read_events(1)?.last().map_or(0, |e| e.seq);
    Ok(job)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_pending_and_requeued_tasks_are_live() {
        assert_eq!(
            verdict(Some(&JobState::Running), true),
            Verdict::Live(pb::JobState::Running)
        );
        for s in [JobState::Pending, JobState::Requeued, JobState::Completing] {
            assert_eq!(verdict(Some(&s), true), Verdict::Live(pb::JobState::Queued));
        }
        assert_eq!(verdict(None, false), Verdict::Live(pb::JobState::Queued));
    }

    #[test]
    fn a_task_that_ended_without_a_result_is_gone_with_its_class() {
        let class = |s: JobState| match verdict(Some(&s), true) {
            Verdict::Gone(c, _) => c,
            v => panic!("{v:?}"),
        };
        assert_eq!(class(JobState::OutOfMemory), FailureClass::Oom);
        assert_eq!(class(JobState::Failed), FailureClass::Crashed);
        assert_eq!(class(JobState::Cancelled), FailureClass::Killed);
        assert_eq!(class(JobState::Timeout), FailureClass::Killed);
        assert_eq!(class(JobState::NodeFail), FailureClass::HostLost);
        // It said it completed, but left no result.
        assert_eq!(class(JobState::Completed), FailureClass::Crashed);
        assert!(matches!(
            verdict(None, true),
            Verdict::Gone(FailureClass::HostLost, _)
        ));
    }

    #[test]
    fn a_batch_job_round_trips_through_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = TrialDir::new(tmp.path(), "t");
        std::fs::create_dir_all(dir.root()).unwrap();
        assert_eq!(BatchJob::read(&dir).unwrap(), None);
        let b = BatchJob {
            job: 12,
            task: 3,
            attempt: 2,
        };
        b.write(&dir).unwrap();
        assert_eq!(BatchJob::read(&dir).unwrap(), Some(b));
        assert_eq!(b.id(), "12_3");
    }
}
