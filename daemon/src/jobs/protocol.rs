//! The pipe protocol between the daemon and a `vovd worker` process: one JSON
//! [`WorkerInput`] on the worker's stdin, then one JSON [`WorkerMessage`] per line on
//! its stdout, ending with a result or a failure report. Anything on stderr is kept
//! (its tail goes into the failure message).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use vov_spec::{DatasetName, Measure};

use crate::train::evaluate::EvaluationRecord;
use crate::train::{TrainEvent, TrainRecord, TrainSpec};

/// What a worker is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInput {
    /// The trial.
    pub spec: TrainSpec,
    /// Compute threads.
    pub threads: usize,
    /// Device: `cpu` or `cuda:N`.
    pub device: String,
    /// Data root.
    pub data_dir: PathBuf,
    /// Checkpoint directory of this trial (locked by the worker while it runs).
    pub checkpoint_dir: PathBuf,
    /// Where an unusable checkpoint is moved before the trial restarts from
    /// epoch 1 (beside the checkpoint, with a `.corrupt` suffix, when unset).
    #[serde(default)]
    pub corrupt_dir: Option<PathBuf>,
    /// Pause after this many epochs with the checkpoint kept (the job's
    /// `stop_after`); run to the end when unset.
    #[serde(default)]
    pub stop_after: Option<usize>,
    /// Where the weights the spec's `keep_weights` asks for go.
    #[serde(default)]
    pub weights_file: Option<PathBuf>,
    /// Set for an evaluation job: evaluate these weights instead of training
    /// (`spec` is then the weights' own).
    #[serde(default)]
    pub evaluate: Option<EvaluateTask>,
}

/// What an evaluation job's worker measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateTask {
    /// The weights file.
    pub weights: PathBuf,
    /// The data set; the one they were trained on when `None`.
    pub dataset: Option<DatasetName>,
    /// First N validation images; the trial's own limit when `None`.
    pub val_limit: Option<usize>,
    /// Take the validation accuracy.
    pub accuracy: bool,
    /// Timings to take.
    pub measure: Measure,
}

/// Why a worker stopped without a result, as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerFailure {
    /// The spec or its data cannot work.
    InvalidSpec,
    /// The loss became NaN or infinite.
    Diverged,
    /// Out of host or device memory.
    Oom,
    /// A write (a checkpoint) failed because the disk or the quota is full.
    DiskFull,
    /// Stopped on request after checkpointing; can resume.
    Interrupted,
    /// Any other error.
    Error,
}

/// One line on a worker's stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerMessage {
    /// Training progress.
    Event {
        /// The event.
        event: TrainEvent,
    },
    /// The trial finished.
    Result {
        /// Its record.
        record: Box<TrainRecord>,
    },
    /// The evaluation finished.
    Evaluated {
        /// Its record.
        record: Box<EvaluationRecord>,
    },
    /// The trial stopped where it was asked to, its checkpoint written.
    Paused {
        /// Epochs done (and checkpointed).
        epochs_done: usize,
    },
    /// The trial stopped without a result.
    Failed {
        /// Why.
        class: WorkerFailure,
        /// Details.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_json_object_per_line() {
        let m = WorkerMessage::Failed {
            class: WorkerFailure::Oom,
            message: "out of memory".into(),
        };
        let line = serde_json::to_string(&m).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(
            line,
            r#"{"kind":"failed","class":"oom","message":"out of memory"}"#
        );
        assert_eq!(serde_json::from_str::<WorkerMessage>(&line).unwrap(), m);
        let e = WorkerMessage::Event {
            event: TrainEvent::Timing {
                phase: "batch1".into(),
            },
        };
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<WorkerMessage>(&line).unwrap(), e);
    }
}
