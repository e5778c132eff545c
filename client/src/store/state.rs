//! A trial's state as the client tracks it, and the daemon's failure classes: both
//! defined once in `vov-spec`, converted from the wire in `vov-proto`.

pub use vov_spec::{FailureClass, TrialState};

/// A daemon's job state as the client tracks it.
pub use vov_proto::convert::trial_state as from_pb;

/// The daemon's failure class name, as stored and shown (empty when none).
pub fn failure_name(class: i32) -> &'static str {
    vov_proto::convert::failure(class).map_or("", FailureClass::as_str)
}
