//! The trainer: Keras-faithful training of one spec, the published timings, and
//! the result record.
//!
//! [`run`] loads the data set, builds the model, trains (resuming from a
//! checkpoint when asked), measures inference and returns a [`TrainRecord`].
//! Progress goes to an observer callback as [`TrainEvent`]s; a [`StopFlag`] checked
//! between batches cancels or interrupts the run.

pub mod bench;
pub mod checkpoint;
mod epoch;
pub mod error;
pub mod evaluate;
pub mod kernel_check;
mod legacy;
pub mod metrics;
pub mod optimizer;
pub mod record;
pub mod spec;
pub mod timing;
mod trainer;
pub mod weights;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use candle_core::Device;
use serde::{Deserialize, Serialize};

pub use epoch::Validation;
pub use error::TrainError;
pub use metrics::EpochMetrics;
pub use record::TrainRecord;
pub use spec::TrainSpec;
pub use trainer::{run, run_with_data, Observer};
pub use vov_spec::{Measure, Optimizer, SpecError, WdMode};

use crate::model::ParamCount;

/// Progress of a run, in the order it happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    /// Data and model are ready; training starts at `start_epoch` (0-based).
    Started {
        /// Epochs in the run.
        epochs: usize,
        /// Epochs already done (from a checkpoint).
        start_epoch: usize,
        /// Optimizer steps per epoch.
        steps_per_epoch: usize,
        /// Parameter counts.
        params: ParamCount,
        /// Training images.
        train_images: usize,
        /// Validation images.
        val_images: usize,
    },
    /// One optimizer step finished.
    Step {
        /// Epoch, from 1.
        epoch: usize,
        /// Step within the epoch, from 1.
        step: usize,
        /// Steps in the epoch.
        steps: usize,
        /// Mean loss of the batch.
        loss: f64,
    },
    /// An epoch finished (training and validation).
    Epoch(EpochMetrics),
    /// A checkpoint was written after `epoch`.
    Checkpoint {
        /// Epochs done.
        epoch: usize,
        /// The file.
        path: PathBuf,
    },
    /// An inference timing started (`batch1` or `batch32`).
    Timing {
        /// Which one.
        phase: String,
    },
    /// Something the user should know.
    Warning {
        /// The text.
        message: String,
    },
}

const RUNNING: u8 = 0;
const CANCEL: u8 = 1;
const INTERRUPT: u8 = 2;

/// A request to stop a run, checked between batches; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicU8>);

/// What a [`StopFlag`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// Keep going.
    None,
    /// Stop and discard the run.
    Cancel,
    /// Stop; the run will resume from its last checkpoint.
    Interrupt,
}

impl StopFlag {
    /// Asks the run to stop for good.
    pub fn cancel(&self) {
        self.0.store(CANCEL, Ordering::SeqCst);
    }

    /// Asks the run to stop so that it can resume later.
    pub fn interrupt(&self) {
        // A cancel already asked for wins over an interrupt.
        let _ = self
            .0
            .compare_exchange(RUNNING, INTERRUPT, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The current request.
    pub fn get(&self) -> StopRequest {
        match self.0.load(Ordering::SeqCst) {
            CANCEL => StopRequest::Cancel,
            INTERRUPT => StopRequest::Interrupt,
            _ => StopRequest::None,
        }
    }
}

/// How and where a spec runs; nothing here changes the outcome.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Compute device.
    pub device: Device,
    /// Device label for the fingerprint (`cpu`, `cuda:0`).
    pub device_label: String,
    /// Device name for the fingerprint (a GPU's name); the CPU model when `None`.
    pub device_name: Option<String>,
    /// Compute threads (already configured in this process).
    pub threads: usize,
    /// Data root.
    pub data_dir: Option<PathBuf>,
    /// Where checkpoints go; none are written when `None`.
    pub checkpoint_dir: Option<PathBuf>,
    /// Write a checkpoint every N epochs (and after the last one).
    pub checkpoint_every: usize,
    /// Where the weights the spec's `keep_weights` asks for go; none are kept when
    /// `None`.
    pub weights_file: Option<PathBuf>,
    /// Resume from this checkpoint (file, or directory holding one).
    pub resume: Option<PathBuf>,
    /// Pause after this many epochs (fewer than the spec's) with a checkpoint
    /// written: the run ends with [`TrainError::Paused`].
    pub stop_after: Option<usize>,
    /// Stop requests.
    pub stop: StopFlag,
}

impl TrainOptions {
    /// CPU defaults: no checkpoints, the configured thread count.
    pub fn cpu(threads: usize) -> Self {
        TrainOptions {
            device: Device::Cpu,
            device_label: "cpu".into(),
            device_name: None,
            threads,
            data_dir: None,
            checkpoint_dir: None,
            checkpoint_every: 1,
            weights_file: None,
            resume: None,
            stop_after: None,
            stop: StopFlag::default(),
        }
    }
}
