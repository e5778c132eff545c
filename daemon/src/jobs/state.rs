//! A job's life: states and failure classes, defined once in `vov-spec`.

pub use vov_spec::{FailureClass, JobState};
