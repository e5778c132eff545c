//! How a finished worker process turns into a job outcome: its own report first,
//! then what the daemon asked of it, then how it died.

use super::protocol::{WorkerFailure, WorkerMessage};
use super::state::FailureClass;
use crate::train::TrainRecord;

/// Why the daemon stopped a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A client cancelled the job.
    Cancel,
    /// The daemon is shutting down; the job resumes at the next start.
    Shutdown,
}

/// How the process ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exit {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal, when a signal ended it.
    pub signal: Option<i32>,
    /// The last lines of its stderr.
    pub stderr_tail: String,
    /// Whether the cgroup's OOM-kill count rose while it ran.
    pub oom_killed: bool,
}

/// What becomes of the job.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finished with a result.
    Succeeded(Box<TrainRecord>),
    /// Failed, with its class and message.
    Failed {
        /// The class.
        class: FailureClass,
        /// The message (with the stderr tail).
        message: String,
    },
    /// Cancelled on request.
    Cancelled,
    /// Back to the queue, to resume from its checkpoint.
    Requeue(String),
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string())
}

fn with_tail(message: String, exit: &Exit) -> String {
    if exit.stderr_tail.trim().is_empty() {
        message
    } else {
        format!("{message}; stderr: {}", exit.stderr_tail.trim())
    }
}

/// Decides the outcome of a worker that reported `report` (its last result or
/// failure line), ended as `exit`, and was stopped by the daemon for `stop`.
pub fn classify(report: Option<WorkerMessage>, exit: &Exit, stop: Option<StopReason>) -> Outcome {
    if let Some(WorkerMessage::Result { record }) = report {
        return Outcome::Succeeded(record);
    }
    match stop {
        Some(StopReason::Cancel) => return Outcome::Cancelled,
        Some(StopReason::Shutdown) => {
            return Outcome::Requeue(
                "interrupted by daemon shutdown; resumes from its last checkpoint".into(),
            )
        }
        None => {}
    }
    let failed = |class, message: String| Outcome::Failed {
        class,
        message: with_tail(message, exit),
    };
    if let Some(WorkerMessage::Failed { class, message }) = report {
        return match class {
            WorkerFailure::InvalidSpec => failed(FailureClass::InvalidSpec, message),
            WorkerFailure::Diverged => failed(FailureClass::Diverged, message),
            WorkerFailure::Oom => failed(FailureClass::Oom, message),
            WorkerFailure::Interrupted => failed(
                FailureClass::Killed,
                format!("stopped by a signal this daemon did not send: {message}"),
            ),
            WorkerFailure::Error => failed(FailureClass::Crashed, message),
        };
    }
    if exit.oom_killed || exit.stderr_tail.contains("memory allocation of") {
        return failed(FailureClass::Oom, "the worker ran out of memory".into());
    }
    match (exit.signal, exit.code) {
        (Some(sig), _) if [1, 2, 3, 15].contains(&sig) => failed(
            FailureClass::Killed,
            format!(
                "the worker was terminated by {} from outside the daemon",
                signal_name(sig)
            ),
        ),
        (Some(sig), _) => failed(
            FailureClass::Crashed,
            format!("the worker died from {}", signal_name(sig)),
        ),
        (None, Some(0)) => failed(
            FailureClass::Crashed,
            "the worker exited without a report".into(),
        ),
        (None, code) => failed(
            FailureClass::Crashed,
            format!("the worker exited with code {}", code.unwrap_or(-1)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: Option<i32>, signal: Option<i32>, stderr: &str) -> Exit {
        Exit {
            code,
            signal,
            stderr_tail: stderr.into(),
            oom_killed: false,
        }
    }

    fn class(o: &Outcome) -> Option<FailureClass> {
        match o {
            Outcome::Failed { class, .. } => Some(*class),
            _ => None,
        }
    }

    #[test]
    fn deaths_by_signal() {
        let kill9 = classify(None, &exit(None, Some(9), ""), None);
        assert_eq!(class(&kill9), Some(FailureClass::Crashed));
        assert!(matches!(&kill9, Outcome::Failed { message, .. } if message.contains("SIGKILL")));
        assert_eq!(
            class(&classify(None, &exit(None, Some(11), ""), None)),
            Some(FailureClass::Crashed)
        );
        assert_eq!(
            class(&classify(None, &exit(None, Some(1), ""), None)),
            Some(FailureClass::Killed)
        );
        let oom = Exit {
            oom_killed: true,
            ..exit(None, Some(9), "")
        };
        assert_eq!(class(&classify(None, &oom, None)), Some(FailureClass::Oom));
        let abort = exit(None, Some(6), "memory allocation of 123 bytes failed");
        assert_eq!(
            class(&classify(None, &abort, None)),
            Some(FailureClass::Oom)
        );
    }

    #[test]
    fn reports_and_requests_decide_first() {
        let report = |class| {
            Some(WorkerMessage::Failed {
                class,
                message: "m".into(),
            })
        };
        let clean = exit(Some(0), None, "");
        assert_eq!(
            class(&classify(report(WorkerFailure::InvalidSpec), &clean, None)),
            Some(FailureClass::InvalidSpec)
        );
        assert_eq!(
            class(&classify(report(WorkerFailure::Diverged), &clean, None)),
            Some(FailureClass::Diverged)
        );
        assert_eq!(
            class(&classify(report(WorkerFailure::Oom), &clean, None)),
            Some(FailureClass::Oom)
        );
        assert_eq!(
            class(&classify(report(WorkerFailure::Interrupted), &clean, None)),
            Some(FailureClass::Killed)
        );
        assert_eq!(
            classify(
                report(WorkerFailure::Interrupted),
                &clean,
                Some(StopReason::Cancel)
            ),
            Outcome::Cancelled
        );
        assert!(matches!(
            classify(None, &exit(None, Some(9), ""), Some(StopReason::Shutdown)),
            Outcome::Requeue(_)
        ));
        let failed = classify(None, &exit(Some(3), None, "panicked at x"), None);
        assert!(
            matches!(failed, Outcome::Failed { class: FailureClass::Crashed, ref message } if message.contains("code 3") && message.contains("panicked at x"))
        );
    }
}
