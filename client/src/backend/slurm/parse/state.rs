//! Slurm job states as `squeue -o %T` and `sacct -o State` write them, and what
//! each one means to vov: still going, or over, and how a failure is classed.

use std::fmt;
use std::str::FromStr;

use vov_spec::FailureClass;

/// A Slurm job (or array task) state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Queued, waiting for resources or a limit.
    Pending,
    /// Allocated and running.
    Running,
    /// Suspended; will resume.
    Suspended,
    /// Ended; its processes are being cleaned up (COMPLETED etc. follows).
    Completing,
    /// Ended with exit code 0.
    Completed,
    /// Allocated; nodes are booting or being configured.
    Configuring,
    /// Cancelled by a user or an administrator (`scancel`).
    Cancelled,
    /// Ended with a non-zero exit code or another failure.
    Failed,
    /// Reached its time limit and was killed.
    Timeout,
    /// Preempted by a higher-priority job.
    Preempted,
    /// One of its nodes failed.
    NodeFail,
    /// Its nodes failed to boot.
    BootFail,
    /// Reached its deadline before it could run.
    Deadline,
    /// Killed for using more memory than allowed.
    OutOfMemory,
    /// Being requeued; will run again.
    Requeued,
    /// Requeued and held.
    RequeueHold,
    /// Requeued by a federation.
    RequeueFed,
    /// Being resized.
    Resizing,
    /// A federation sibling was revoked (the job runs on another cluster).
    Revoked,
    /// Its processes are being signalled.
    Signaling,
    /// Requeued in a special exit state and held.
    SpecialExit,
    /// Staging out data (burst buffer).
    StageOut,
    /// Stopped with SIGSTOP; keeps its allocation.
    Stopped,
    /// Held because its reservation was deleted.
    ResvDelHold,
    /// A state this parser does not know, as Slurm wrote it (upper case).
    Other(String),
}

/// Every known state with its long name (`%T`, sacct) and short code (`%t`).
const NAMES: &[(&str, &str, JobState)] = &[
    ("PENDING", "PD", JobState::Pending),
    ("RUNNING", "R", JobState::Running),
    ("SUSPENDED", "S", JobState::Suspended),
    ("COMPLETING", "CG", JobState::Completing),
    ("COMPLETED", "CD", JobState::Completed),
    ("CONFIGURING", "CF", JobState::Configuring),
    ("CANCELLED", "CA", JobState::Cancelled),
    ("FAILED", "F", JobState::Failed),
    ("TIMEOUT", "TO", JobState::Timeout),
    ("PREEMPTED", "PR", JobState::Preempted),
    ("NODE_FAIL", "NF", JobState::NodeFail),
    ("BOOT_FAIL", "BF", JobState::BootFail),
    ("DEADLINE", "DL", JobState::Deadline),
    ("OUT_OF_MEMORY", "OOM", JobState::OutOfMemory),
    ("REQUEUED", "RQ", JobState::Requeued),
    ("REQUEUE_HOLD", "RH", JobState::RequeueHold),
    ("REQUEUE_FED", "RF", JobState::RequeueFed),
    ("RESIZING", "RS", JobState::Resizing),
    ("REVOKED", "RV", JobState::Revoked),
    ("SIGNALING", "SI", JobState::Signaling),
    ("SPECIAL_EXIT", "SE", JobState::SpecialExit),
    ("STAGE_OUT", "SO", JobState::StageOut),
    ("STOPPED", "ST", JobState::Stopped),
    ("RESV_DEL_HOLD", "RD", JobState::ResvDelHold),
];

impl JobState {
    /// Slurm's long name of the state (`OUT_OF_MEMORY`), or the unknown text.
    pub fn as_str(&self) -> &str {
        match self {
            JobState::Other(s) => s,
            known => NAMES
                .iter()
                .find(|(_, _, s)| s == known)
                .map(|(name, _, _)| *name)
                .expect("every known state is in NAMES"),
        }
    }

    /// Whether the job is running or will still run without anyone acting:
    /// pending, running, suspended, stopped, completing, configuring, requeued
    /// (in any form, held included), resizing, signalling, staging out.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            JobState::Pending
                | JobState::Running
                | JobState::Suspended
                | JobState::Completing
                | JobState::Configuring
                | JobState::Requeued
                | JobState::RequeueHold
                | JobState::RequeueFed
                | JobState::Resizing
                | JobState::Signaling
                | JobState::StageOut
                | JobState::Stopped
                | JobState::ResvDelHold
        )
    }

    /// Whether the job is over: completed, or ended any other way. An unknown
    /// state is neither active nor final.
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
                | JobState::Revoked
                | JobState::SpecialExit
        )
    }

    /// How a final state other than success is classed: out of memory → `Oom`,
    /// cancelled, timed out or past its deadline → `Killed`, node or boot failure
    /// or preemption → `HostLost`, any other end → `Crashed`. `None` for
    /// COMPLETED and for states that are not final.
    pub fn failure(self) -> Option<FailureClass> {
        if !self.is_final() {
            return None;
        }
        Some(match self {
            JobState::Completed => return None,
            JobState::OutOfMemory => FailureClass::Oom,
            JobState::Failed => FailureClass::Crashed,
            JobState::Cancelled | JobState::Timeout | JobState::Deadline => FailureClass::Killed,
            JobState::NodeFail | JobState::BootFail | JobState::Preempted => FailureClass::HostLost,
            _ => FailureClass::Crashed,
        })
    }
}

impl FromStr for JobState {
    type Err = std::convert::Infallible;

    /// Reads a long name or a short code, in any case. Only the first word
    /// counts (sacct writes `CANCELLED by 0`), and a trailing `+` (sacct's mark
    /// of a truncated column) is dropped. Anything else is [`JobState::Other`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.split_whitespace().next().unwrap_or("");
        let word = word.trim_end_matches('+').to_ascii_uppercase();
        Ok(NAMES
            .iter()
            .find(|(name, code, _)| *name == word || *code == word)
            .map(|(_, _, state)| state.clone())
            .unwrap_or(JobState::Other(word)))
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> JobState {
        s.parse().unwrap()
    }

    #[test]
    fn every_name_and_code_round_trips() {
        for (name, code, state) in NAMES {
            assert_eq!(&parse(name), state, "{name}");
            assert_eq!(&parse(code), state, "{code}");
            assert_eq!(state.as_str(), *name);
            assert_eq!(state.to_string(), *name);
            assert!(
                state.is_active() != state.is_final(),
                "{name} is exactly one of active or final"
            );
        }
    }

    #[test]
    fn sacct_spellings() {
        assert_eq!(parse("CANCELLED by 0"), JobState::Cancelled);
        assert_eq!(parse("CANCELLED+"), JobState::Cancelled);
        assert_eq!(parse("  running  "), JobState::Running);
        assert_eq!(parse("OUT_OF_ME+"), JobState::Other("OUT_OF_ME".into()));
    }

    #[test]
    fn unknown_states_are_kept_and_neither_active_nor_final() {
        let s = parse("LAUNCH_FAILED");
        assert_eq!(s, JobState::Other("LAUNCH_FAILED".into()));
        assert_eq!(s.as_str(), "LAUNCH_FAILED");
        assert!(!s.is_active() && !s.is_final());
        assert_eq!(s.failure(), None);
        assert_eq!(parse(""), JobState::Other(String::new()));
    }

    #[test]
    fn failure_classes() {
        use FailureClass::*;
        let cases = [
            ("COMPLETED", None),
            ("OUT_OF_MEMORY", Some(Oom)),
            ("FAILED", Some(Crashed)),
            ("CANCELLED", Some(Killed)),
            ("TIMEOUT", Some(Killed)),
            ("DEADLINE", Some(Killed)),
            ("NODE_FAIL", Some(HostLost)),
            ("BOOT_FAIL", Some(HostLost)),
            ("PREEMPTED", Some(HostLost)),
            ("SPECIAL_EXIT", Some(Crashed)),
            ("REVOKED", Some(Crashed)),
            ("RUNNING", None),
            ("PENDING", None),
            ("REQUEUED", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse(name).failure(), want, "{name}");
        }
    }

    #[test]
    fn active_states() {
        for name in [
            "PENDING",
            "RUNNING",
            "SUSPENDED",
            "COMPLETING",
            "REQUEUED",
            "CONFIGURING",
        ] {
            assert!(parse(name).is_active(), "{name}");
        }
        for name in [
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
        ] {
            assert!(parse(name).is_final(), "{name}");
        }
    }
}
