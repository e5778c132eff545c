//! A job's life: states and failure classes, as stored and as sent.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a slot.
    Queued,
    /// A worker is training it.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Ended without a result.
    Failed,
    /// Cancelled on request.
    Cancelled,
}

/// Why a job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The spec can never run here (bad value, data set missing or malformed).
    InvalidSpec,
    /// The worker died unexpectedly (a crash, or a signal such as kill -9).
    Crashed,
    /// The worker ran out of memory.
    Oom,
    /// The worker was asked to terminate by someone other than the daemon.
    Killed,
    /// The loss became NaN or infinite.
    Diverged,
    /// The daemon restarted during the trial more often than allowed.
    HostLost,
}

macro_rules! names {
    ($t:ty, [$($v:path => $s:literal),+]) => {
        impl $t {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($v => $s),+ }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($v),)+
                    _ => Err(format!("unknown {} '{s}'", stringify!($t))),
                }
            }
        }
    };
}

names!(JobState, [
    JobState::Queued => "queued",
    JobState::Running => "running",
    JobState::Succeeded => "succeeded",
    JobState::Failed => "failed",
    JobState::Cancelled => "cancelled"
]);

names!(FailureClass, [
    FailureClass::InvalidSpec => "invalid_spec",
    FailureClass::Crashed => "crashed",
    FailureClass::Oom => "oom",
    FailureClass::Killed => "killed",
    FailureClass::Diverged => "diverged",
    FailureClass::HostLost => "host_lost"
]);

impl JobState {
    /// Whether the job will never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
        ] {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
        }
        for f in [
            FailureClass::InvalidSpec,
            FailureClass::Crashed,
            FailureClass::Oom,
            FailureClass::Killed,
            FailureClass::Diverged,
            FailureClass::HostLost,
        ] {
            assert_eq!(f.as_str().parse::<FailureClass>().unwrap(), f);
        }
        assert!("lost".parse::<JobState>().is_err());
        assert!(JobState::Cancelled.is_final() && !JobState::Running.is_final());
    }
}
