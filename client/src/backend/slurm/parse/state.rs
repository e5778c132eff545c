//! Slurm's job states.

use vov_spec::FailureClass;

/// A job (or array task) state as `squeue` and `sacct` print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for resources.
    Pending,
    /// Running.
    Running,
    /// Suspended.
    Suspended,
    /// Finishing.
    Completing,
    /// Ended with exit code 0.
    Completed,
    /// Being started.
    Configuring,
    /// Cancelled.
    Cancelled,
    /// Ended with a non-zero exit code or a signal.
    Failed,
    /// Reached its time limit.
    Timeout,
    /// Preempted.
    Preempted,
    /// Its node failed.
    NodeFail,
    /// Its node failed to boot.
    BootFail,
    /// Missed its deadline.
    Deadline,
    /// Ran out of memory.
    OutOfMemory,
    /// Being requeued.
    Requeued,
    /// Requeued and held.
    RequeueHold,
    /// Requeued in a federation.
    RequeueFed,
    /// Changing size.
    Resizing,
    /// Revoked (federation).
    Revoked,
    /// Being signalled.
    Signaling,
    /// Ended with a special exit.
    SpecialExit,
    /// Staging out.
    StageOut,
    /// Stopped.
    Stopped,
    /// Held after its reservation was deleted.
    ResvDelHold,
    /// A state this parser does not know.
    Other(String),
}

impl std::str::FromStr for JobState {
    type Err = std::convert::Infallible;

    /// The first word (sacct writes `CANCELLED by 0`), case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        Ok(match word.as_str() {
            "PENDING" | "PD" => JobState::Pending,
            "RUNNING" | "R" => JobState::Running,
            "SUSPENDED" | "S" => JobState::Suspended,
            "COMPLETING" | "CG" => JobState::Completing,
            "COMPLETED" | "CD" => JobState::Completed,
            "CONFIGURING" | "CF" => JobState::Configuring,
            "CANCELLED" | "CA" => JobState::Cancelled,
            "FAILED" | "F" => JobState::Failed,
            "TIMEOUT" | "TO" => JobState::Timeout,
            "PREEMPTED" | "PR" => JobState::Preempted,
            "NODE_FAIL" | "NF" => JobState::NodeFail,
            "BOOT_FAIL" | "BF" => JobState::BootFail,
            "DEADLINE" | "DL" => JobState::Deadline,
            "OUT_OF_MEMORY" | "OOM" => JobState::OutOfMemory,
            "REQUEUED" | "RQ" => JobState::Requeued,
            "REQUEUE_HOLD" | "RH" => JobState::RequeueHold,
            "REQUEUE_FED" | "RF" => JobState::RequeueFed,
            "RESIZING" | "RS" => JobState::Resizing,
            "REVOKED" | "RV" => JobState::Revoked,
            "SIGNALING" | "SI" => JobState::Signaling,
            "SPECIAL_EXIT" | "SE" => JobState::SpecialExit,
            "STAGE_OUT" | "SO" => JobState::StageOut,
            "STOPPED" | "ST" => JobState::Stopped,
            "RESV_DEL_HOLD" | "RD" => JobState::ResvDelHold,
            _ => JobState::Other(word),
        })
    }
}

impl JobState {
    /// It ended: it will not run again unless resubmitted.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::Cancelled
                | JobState::Failed
                | JobState::Timeout
                | JobState::Preempted
                | JobState::NodeFail
                | JobState::BootFail
                | JobState::Deadline
                | JobState::OutOfMemory
                | JobState::SpecialExit
                | JobState::Revoked
        )
    }

    /// It runs, or waits to run (again).
    pub fn is_active(&self) -> bool {
        !self.is_final() && !matches!(self, JobState::Other(_))
    }

    /// The failure class of a task that ended in this state without a result
    /// (`None` for success and for states that are not final).
    pub fn failure(&self) -> Option<FailureClass> {
        Some(match self {
            JobState::OutOfMemory => FailureClass::Oom,
            JobState::Cancelled | JobState::Timeout | JobState::Deadline => FailureClass::Killed,
            JobState::NodeFail | JobState::BootFail | JobState::Preempted => FailureClass::HostLost,
            JobState::Completed => return None,
            s if s.is_final() => FailureClass::Crashed,
            _ => return None,
        })
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobState::Other(s) => f.write_str(s),
            s => {
                let name = format!("{s:?}");
                let mut out = String::new();
                for (i, c) in name.chars().enumerate() {
                    if c.is_ascii_uppercase() && i > 0 {
                        out.push('_');
                    }
                    out.push(c.to_ascii_uppercase());
                }
                f.write_str(&out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_from_squeue_and_sacct_spellings() {
        let p = |s: &str| s.parse::<JobState>().unwrap();
        assert_eq!(p("PENDING"), JobState::Pending);
        assert_eq!(p("CANCELLED by 0"), JobState::Cancelled);
        assert_eq!(p("OUT_OF_MEMORY"), JobState::OutOfMemory);
        assert_eq!(p("node_fail"), JobState::NodeFail);
        assert_eq!(p("WEIRD"), JobState::Other("WEIRD".into()));
        assert_eq!(JobState::OutOfMemory.to_string(), "OUT_OF_MEMORY");
        assert!(JobState::Requeued.is_active());
        assert!(JobState::Timeout.is_final());
        assert_eq!(JobState::Completed.failure(), None);
        assert_eq!(JobState::SpecialExit.failure(), Some(FailureClass::Crashed));
    }
}
