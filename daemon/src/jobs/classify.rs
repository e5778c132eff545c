//! How a finished worker process turns into a job outcome: its own report first,
//! then what the daemon asked of it, then how it died.

use super::plain::plain;
use super::protocol::{WorkerFailure, WorkerMessage};
use super::state::FailureClass;
use crate::train::evaluate::EvaluationRecord;
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
    /// An evaluation finished with its record.
    Evaluated(Box<EvaluationRecord>),
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
    /// Stopped after the epochs its submit asked for, the checkpoint kept.
    Paused {
        /// Epochs done.
        epochs_done: usize,
    },
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string())
}

/// The message with the worker's stderr tail, free of terminal control sequences
/// (both come from the worker).
fn with_tail(message: String, exit: &Exit) -> String {
    let tail = plain(&exit.stderr_tail);
    let message = plain(&message);
    if tail.trim().is_empty() {
        message
    } else {
        format!("{message}; stderr: {}", tail.trim())
    }
}

/// What a write that found the disk full says, in the system's words.
const DISK_FULL: [&str; 2] = ["No space left on device", "Disk quota exceeded"];

/// The failure class of a worker's own failure report (an interrupt nobody asked
/// for counts as killed).
pub fn failure_class(failure: WorkerFailure) -> FailureClass {
    match failure {
        WorkerFailure::InvalidSpec => FailureClass::InvalidSpec,
        WorkerFailure::Diverged => FailureClass::Diverged,
        WorkerFailure::Oom => FailureClass::Oom,
        WorkerFailure::DiskFull => FailureClass::DiskFull,
        WorkerFailure::Interrupted => FailureClass::Killed,
        WorkerFailure::Error => FailureClass::Crashed,
    }
}

/// Decides the outcome of a worker that reported `report` (its last result or
/// failure line), ended as `exit`, and was stopped by the daemon for `stop`.
pub fn classify(report: Option<WorkerMessage>, exit: &Exit, stop: Option<StopReason>) -> Outcome {
    match report {
        Some(WorkerMessage::Result { record }) => return Outcome::Succeeded(record),
        Some(WorkerMessage::Evaluated { record }) => return Outcome::Evaluated(record),
        _ => {}
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
    if let Some(WorkerMessage::Paused { epochs_done }) = report {
        return Outcome::Paused { epochs_done };
    }
    let failed = |class, message: String| Outcome::Failed {
        class,
        message: with_tail(message, exit),
    };
    if let Some(WorkerMessage::Failed { class, message }) = report {
        let message = match class {
            WorkerFailure::Interrupted => {
                format!("stopped by a signal this daemon did not send: {message}")
            }
            _ => message,
        };
        return failed(failure_class(class), message);
    }
    if exit.oom_killed || exit.stderr_tail.contains("memory allocation of") {
        return failed(FailureClass::Oom, "the worker ran out of memory".into());
    }
    if DISK_FULL.iter().any(|m| exit.stderr_tail.contains(m)) {
        return failed(
            FailureClass::DiskFull,
            "the worker stopped: a write found the disk full".into(),
        );
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

    #[test]
    fn full_disks_are_disk_full() {
        let clean = exit(Some(0), None, "");
        let report = Some(WorkerMessage::Failed {
            class: WorkerFailure::DiskFull,
            message: "cannot write checkpoint /s/checkpoints/t/checkpoint.safetensors: No space left on device (os error 28)".into(),
        });
        let outcome = classify(report, &clean, None);
        assert!(
            matches!(&outcome, Outcome::Failed { class: FailureClass::DiskFull, message } if message.contains("/s/checkpoints/t/checkpoint.safetensors")),
            "{outcome:?}"
        );
        let unreported = exit(
            Some(1),
            None,
            "Error: /s/checkpoints/t/lock: No space left on device (os error 28)",
        );
        let outcome = classify(None, &unreported, None);
        assert!(
            matches!(&outcome, Outcome::Failed { class: FailureClass::DiskFull, message } if message.contains("/s/checkpoints/t/lock")),
            "{outcome:?}"
        );
    }

    #[test]
    fn messages_carry_no_terminal_controls() {
        let tail = "\u{1b}[2m2024-01-01T00:00:00Z\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m vovd: boom\r\n\u{1b}[1mnext\u{1b}[0m\u{7}";
        let report = Some(WorkerMessage::Failed {
            class: WorkerFailure::Error,
            message: "bad \u{1b}[31mthing\u{1b}[0m".into(),
        });
        for outcome in [
            classify(None, &exit(None, Some(9), tail), None),
            classify(report, &exit(Some(0), None, tail), None),
        ] {
            let Outcome::Failed { message, .. } = outcome else {
                panic!("{outcome:?}");
            };
            assert!(
                !message
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t'),
                "{message:?}"
            );
            assert!(message.contains("ERROR vovd: boom\nnext"), "{message:?}");
        }
    }
}
