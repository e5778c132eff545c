//! The job layer: the queue and slots owned by one actor task ([`JobManager`] is
//! its handle), one worker process per running trial, and the rules that turn a
//! worker's fate into a job state.

mod actor;
pub mod classify;
pub mod convert;
pub mod evaluation;
mod manager;
pub mod plain;
pub mod progress;
pub mod protocol;
pub mod retention;
pub mod state;
pub mod supervisor;

pub use manager::{JobError, JobManager, ManagerConfig, NewJob, Snapshot, Subscription};
pub use progress::Progress;
pub use state::{FailureClass, JobState};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
