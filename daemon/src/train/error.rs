//! Errors of a training run.

use std::path::PathBuf;

use thiserror::Error;

use crate::data::DataError;
use crate::model::ModelError;
use vov_spec::SpecError;

/// Why a training run did not produce a record.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The spec is invalid.
    #[error("invalid spec: {0}")]
    Spec(#[from] SpecError),
    /// The data set could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The model could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A checkpoint could not be written.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Kept weights could not be written or read.
    #[error("kept weights {}: {reason}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A checkpoint could not be written because its disk (or the user's quota)
    /// is full.
    #[error("cannot write checkpoint {}: {reason}", path.display())]
    DiskFull {
        /// The checkpoint file.
        path: PathBuf,
        /// The system's words (`No space left on device`).
        reason: String,
    },
    /// The checkpoint to resume from cannot be used: unreadable, truncated, not a
    /// vov checkpoint, of another format, or written by another spec.
    #[error("checkpoint {} is unreadable ({reason})", path.display())]
    Unusable {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The run was cancelled; nothing is kept.
    #[error("cancelled after {epochs_done} epochs")]
    Cancelled {
        /// Epochs completed before the cancel.
        epochs_done: usize,
    },
    /// The run was asked to stop so it can resume later from its last checkpoint.
    #[error("interrupted after {epochs_done} epochs; resume from the last checkpoint")]
    Interrupted {
        /// Epochs completed (and checkpointed, when checkpoints are on).
        epochs_done: usize,
    },
    /// The run stopped after the epochs [`stop_after`](super::TrainOptions::stop_after)
    /// asked for, with its checkpoint written: a later run continues from it.
    #[error("paused after {epochs_done} epochs with its checkpoint kept")]
    Paused {
        /// Epochs completed and checkpointed.
        epochs_done: usize,
    },
    /// The loss became NaN or infinite.
    #[error("training diverged at epoch {epoch}, step {step}: loss is {loss}")]
    Diverged {
        /// Epoch (from 1).
        epoch: usize,
        /// Step within the epoch (from 1).
        step: usize,
        /// The loss value.
        loss: f64,
    },
    /// A tensor operation failed (for example, out of device memory).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl TrainError {
    /// Whether the error comes from the request itself (spec, data set, model
    /// knobs): retrying the same request can never succeed.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            TrainError::Spec(_) | TrainError::Data(_) | TrainError::Model(_)
        )
    }
}
