//! Changes of a job's state: the update the store gets and the events that
//! announce it.

use vov_proto::pb;

use crate::jobs::now_ms;
use crate::jobs::state::{FailureClass, JobState};
use crate::store::StateUpdate;

/// A change of a job's state, with the result and events that come with it.
pub(super) struct Change {
    /// The state change.
    pub(super) update: StateUpdate,
    /// The result record, JSON, for a success.
    pub(super) result: Option<String>,
    /// The events announcing it, in order.
    pub(super) kinds: Vec<pb::job_event::Kind>,
}

impl Change {
    /// A change of state announced by its state event, after `before` events.
    pub(super) fn state(update: StateUpdate, before: Vec<pb::job_event::Kind>) -> Self {
        let mut kinds = before;
        kinds.push(state_kind(&update));
        Change {
            update,
            result: None,
            kinds,
        }
    }
}

/// A change of state that ends a job (now).
pub(super) fn ended(
    state: JobState,
    failure: Option<FailureClass>,
    message: String,
    attempt: u32,
) -> StateUpdate {
    StateUpdate {
        state,
        failure,
        message,
        attempt,
        started_ms: None,
        finished_ms: Some(now_ms()),
    }
}

/// A change of state of a job that goes on (queued or running).
pub(super) fn moved(
    state: JobState,
    message: String,
    attempt: u32,
    started_ms: Option<i64>,
) -> StateUpdate {
    StateUpdate {
        state,
        failure: None,
        message,
        attempt,
        started_ms,
        finished_ms: None,
    }
}

/// The event announcing a change of state.
pub(super) fn state_kind(u: &StateUpdate) -> pb::job_event::Kind {
    pb::job_event::Kind::State(pb::StateChange {
        state: pb::JobState::from(u.state) as i32,
        failure: vov_proto::convert::failure_to_pb(u.failure) as i32,
        message: u.message.clone(),
        attempt: u.attempt,
    })
}
