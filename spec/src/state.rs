//! Where a trial is in its life and why it failed (the same enums in the
//! daemon's job store, on the wire and in the client's results store; SQL stores
//! their [`as_str`](JobState::as_str) names), and what a host's data set is
//! ([`DatasetState`], reported by `vovd data list` and `HostInfo`).

use crate::names::named;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names::UnknownName;

named!(
    /// A job's state on its host.
    JobState, "job state", {
        /// Waiting for a slot.
        Queued => "queued",
        /// A worker process is training it.
        Running => "running",
        /// Finished with a result.
        Succeeded => "succeeded",
        /// Ended without a result; see its failure class.
        Failed => "failed",
        /// Cancelled on request.
        Cancelled => "cancelled",
        /// Stopped at the epoch its submit asked for, its checkpoint kept: a
        /// later submit with `retry` continues it, a cancel removes it.
        Paused => "paused",
    }
);

impl JobState {
    /// Whether the job will never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// Whether the job holds no slot and waits for nothing: final, or paused
    /// until a client continues or cancels it. Its event stream ends here.
    pub fn is_settled(self) -> bool {
        self.is_final() || self == JobState::Paused
    }
}

named!(
    /// A trial's state as the client tracks it: a job state, or not placed yet.
    TrialState, "trial state", {
        /// Not placed on any backend yet.
        Pending => "pending",
        /// Placed; waiting for a slot.
        Queued => "queued",
        /// Training.
        Running => "running",
        /// Finished with a result.
        Succeeded => "succeeded",
        /// Ended without a result.
        Failed => "failed",
        /// Cancelled.
        Cancelled => "cancelled",
        /// Stopped at a rung of an adaptive search, its checkpoint kept on its
        /// host until the search promotes it or ends.
        Paused => "paused",
        /// Stopped for good by an adaptive search (a median rule, or a rung it
        /// was never promoted from); its epochs so far are kept.
        StoppedEarly => "stopped_early",
    }
);

impl TrialState {
    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TrialState::Succeeded
                | TrialState::Failed
                | TrialState::Cancelled
                | TrialState::StoppedEarly
        )
    }

    /// Whether a later state must never replace it (a result, or a search's
    /// decision to stop it).
    pub fn is_decided(self) -> bool {
        matches!(self, TrialState::Succeeded | TrialState::StoppedEarly)
    }
}

impl From<JobState> for TrialState {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Queued => TrialState::Queued,
            JobState::Running => TrialState::Running,
            JobState::Succeeded => TrialState::Succeeded,
            JobState::Failed => TrialState::Failed,
            JobState::Cancelled => TrialState::Cancelled,
            JobState::Paused => TrialState::Paused,
        }
    }
}

named!(
    /// A data set on a host, as a quick structural check finds it (the deep check,
    /// every record decoded, is `vovd data verify`).
    DatasetState, "data set state", {
        /// Every file there and structurally sane: trials on it can run.
        Present => "present",
        /// None of its files there.
        Absent => "absent",
        /// Some files missing, or a file structurally wrong.
        Broken => "broken",
    }
);

named!(
    /// Why a trial failed; decides whether it is retried.
    FailureClass, "failure class", {
        /// The spec can never run (bad value, data set missing or malformed): never retried.
        InvalidSpec => "invalid_spec",
        /// The worker died unexpectedly (a crash, or a signal such as kill -9).
        Crashed => "crashed",
        /// The worker ran out of host or device memory.
        Oom => "oom",
        /// The worker was asked to terminate by someone other than its daemon.
        Killed => "killed",
        /// The loss became NaN or infinite.
        Diverged => "diverged",
        /// Its host was lost or restarted more often than `max_attempts` allows.
        HostLost => "host_lost",
        /// No backend can ever start it (every one refused it).
        Unrunnable => "unrunnable",
        /// A write found its host's disk (or quota) full: a checkpoint, or the worker's own files.
        DiskFull => "disk_full",
    }
);

impl FailureClass {
    /// Whether a trial that failed so is placed again (attempts permitting):
    /// host losses always, crashes, out-of-memory, outside kills and full disks
    /// only with `retry_failed`, the rest never.
    pub fn retried(self, retry_failed: bool) -> bool {
        match self {
            FailureClass::HostLost => true,
            FailureClass::Crashed
            | FailureClass::Oom
            | FailureClass::Killed
            | FailureClass::DiskFull => retry_failed,
            FailureClass::InvalidSpec | FailureClass::Diverged | FailureClass::Unrunnable => false,
        }
    }

    /// What the class means, for help texts and the README (whether it is
    /// retried is [`retried`](Self::retried)'s to say).
    pub fn meaning(self) -> &'static str {
        match self {
            FailureClass::InvalidSpec => "the spec can never run (a bad value, a data set missing or malformed)",
            FailureClass::Crashed => "the worker died unexpectedly (a crash, or a signal such as `kill -9`) or could not be started",
            FailureClass::Oom => "the worker ran out of host or device memory (an allocation failed, or the cgroup's OOM killer ended it)",
            FailureClass::Killed => "the worker was terminated (SIGTERM, SIGINT, SIGHUP or SIGQUIT) by someone other than its daemon",
            FailureClass::Diverged => "the loss became NaN or infinite",
            FailureClass::HostLost => "its host stopped answering, or its daemon restarted during the trial more often than `max_attempts` allows",
            FailureClass::Unrunnable => "no host can ever start it (each refused it, e.g. it needs a GPU or a data set the host lacks); decided by the client",
            FailureClass::DiskFull => "a write found the host's disk or quota full (`No space left on device`): the worker's checkpoint, or its own files; the message names the file",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_classes() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), *s);
            assert_eq!(TrialState::from(*s).as_str(), s.as_str());
        }
        assert!(FailureClass::HostLost.retried(false));
        assert!(!FailureClass::Crashed.retried(false) && FailureClass::Crashed.retried(true));
        assert!(!FailureClass::Unrunnable.retried(true));
        assert!(TrialState::Cancelled.is_final() && !TrialState::Pending.is_final());
    }
}
