//! A trial's state as the client tracks it, and the daemon's failure classes: both
//! defined once in `vov-spec`, converted from the wire in `vov-proto`.

pub use vov_spec::{FailureClass, TrialState};

/// A daemon's job state as the client tracks it.
pub use vov_proto::convert::trial_state as from_pb;

/// The daemon's failure class name, as stored and shown (empty when none).
pub fn failure_name(class: i32) -> &'static str {
    vov_proto::convert::failure(class).map_or("", FailureClass::as_str)
}

/// SQL condition on `trials.state`: a state that a later one may replace (not a
/// result, nor a search's stop; see [`TrialState::is_decided`]).
pub(crate) const UNDECIDED: &str = "state NOT IN ('succeeded', 'stopped_early')";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_condition_names_the_decided_states() {
        let decided: Vec<String> = TrialState::ALL
            .iter()
            .filter(|s| s.is_decided())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        assert_eq!(UNDECIDED, format!("state NOT IN ({})", decided.join(", ")));
    }
}
