//! Checkpoints: one safetensors file holding the parameters (moving statistics
//! included), the optimizer state, and in its metadata the spec, the epochs done,
//! the optimizer step and the history. Random streams are derived from (seed,
//! epoch, batch), so the seed and the epoch count are the whole RNG state.
//!
//! Files are written to a temporary sibling and renamed, so a crash never leaves
//! a half-written checkpoint behind.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::error::TrainError;
use super::metrics::{EpochMetrics, Running};
use super::spec::TrainSpec;

/// File name inside a checkpoint directory.
pub const FILE_NAME: &str = "checkpoint.safetensors";
const META_KEY: &str = "vov";
const FORMAT: u32 = 1;

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Format version.
    pub format: u32,
    /// The spec of the run that wrote it.
    pub spec: TrainSpec,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// History of the completed epochs.
    pub history: Vec<EpochMetrics>,
    /// Where inside the next epoch the run stopped, for a checkpoint written on an
    /// interrupt; `None` at an epoch boundary.
    #[serde(default)]
    pub position: Option<EpochPosition>,
}

/// A point inside an epoch: enough to continue it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochPosition {
    /// The epoch (0-based) in progress.
    pub epoch: usize,
    /// Batches of it already trained.
    pub batches_done: usize,
    /// Loss and accuracy sums so far.
    pub running: Running,
    /// Wall seconds of the epoch so far.
    pub elapsed_s: f64,
    /// Seconds of it spent waiting for data.
    pub waited_s: f64,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Metadata.
    pub meta: CheckpointMeta,
    /// Parameters by name.
    pub params: BTreeMap<String, Tensor>,
    /// Optimizer state by name.
    pub optimizer: BTreeMap<String, Tensor>,
}

/// The checkpoint file for `path`: `path` itself, or `path/checkpoint.safetensors`
/// when `path` is a directory.
pub fn resolve(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(FILE_NAME)
    } else {
        path.to_path_buf()
    }
}

fn err(path: &Path, reason: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Writes a checkpoint atomically.
pub fn save(
    path: &Path,
    meta: &CheckpointMeta,
    params: &BTreeMap<String, Tensor>,
    optimizer: &BTreeMap<String, Tensor>,
) -> Result<(), TrainError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(path, e))?;
    }
    let json = serde_json::to_string(meta).map_err(|e| err(path, e))?;
    let tensors: Vec<(String, &Tensor)> = params
        .iter()
        .map(|(k, v)| (format!("param/{k}"), v))
        .chain(optimizer.iter().map(|(k, v)| (format!("opt/{k}"), v)))
        .collect();
    let metadata = HashMap::from([(META_KEY.to_string(), json)]);
    safetensors::serialize_to_file(tensors, Some(metadata), path).map_err(|e| err(path, e))?;
    // Make the rename durable before anyone relies on the file.
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| err(path, e))
}

/// Reads a checkpoint onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| err(path, format!("not a safetensors file: {e}")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| err(path, "not a vov checkpoint (no vov metadata)"))?;
    let meta: CheckpointMeta =
        serde_json::from_str(json).map_err(|e| err(path, format!("bad metadata: {e}")))?;
    if meta.format != FORMAT {
        return Err(err(
            path,
            format!(
                "format {} is not supported (expected {FORMAT})",
                meta.format
            ),
        ));
    }
    let tensors =
        candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| err(path, e))?;
    let mut params = BTreeMap::new();
    let mut optimizer = BTreeMap::new();
    for (name, t) in tensors {
        if let Some(p) = name.strip_prefix("param/") {
            params.insert(p.to_string(), t);
        } else if let Some(o) = name.strip_prefix("opt/") {
            optimizer.insert(o.to_string(), t);
        }
    }
    Ok(Checkpoint {
        meta,
        params,
        optimizer,
    })
}
