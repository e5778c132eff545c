//! A trial's state as the client tracks it.

use std::fmt;
use std::str::FromStr;

/// Where a trial is, from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrialState {
    /// Not placed on any host yet.
    Pending,
    /// Placed; waiting for a slot on its host.
    Queued,
    /// Training on its host.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Ended without a result.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl TrialState {
    /// Every state, in life order.
    pub const ALL: [TrialState; 6] = [
        TrialState::Pending,
        TrialState::Queued,
        TrialState::Running,
        TrialState::Succeeded,
        TrialState::Failed,
        TrialState::Cancelled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Pending => "pending",
            TrialState::Queued => "queued",
            TrialState::Running => "running",
            TrialState::Succeeded => "succeeded",
            TrialState::Failed => "failed",
            TrialState::Cancelled => "cancelled",
        }
    }

    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TrialState::Succeeded | TrialState::Failed | TrialState::Cancelled
        )
    }

    /// From a daemon's job state.
    pub fn from_pb(state: i32) -> TrialState {
        use vov_proto::pb::JobState;
        match JobState::try_from(state) {
            Ok(JobState::Running) => TrialState::Running,
            Ok(JobState::Succeeded) => TrialState::Succeeded,
            Ok(JobState::Failed) => TrialState::Failed,
            Ok(JobState::Cancelled) => TrialState::Cancelled,
            _ => TrialState::Queued,
        }
    }
}

impl fmt::Display for TrialState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TrialState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        TrialState::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown trial state '{s}'"))
    }
}

/// The daemon's failure class name, as stored and shown.
pub fn failure_name(class: i32) -> &'static str {
    use vov_proto::pb::FailureClass;
    match FailureClass::try_from(class) {
        Ok(FailureClass::InvalidSpec) => "invalid_spec",
        Ok(FailureClass::Crashed) => "crashed",
        Ok(FailureClass::Oom) => "oom",
        Ok(FailureClass::Killed) => "killed",
        Ok(FailureClass::Diverged) => "diverged",
        Ok(FailureClass::HostLost) => "host_lost",
        _ => "",
    }
}
