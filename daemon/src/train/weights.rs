//! Kept weights: a trial's trained parameters (BatchNorm moving statistics
//! included) as one safetensors file whose metadata holds what it takes to use
//! them anywhere: the resolved spec, the parameter counts, the input shape and
//! classes, and the epoch they are from.
//!
//! A trial's `keep_weights` says which: `final` writes the file after the last
//! epoch, `best` after every epoch that beats every earlier one's validation
//! accuracy (ties keep the first, as MaxValAcc does), so a resumed run keeps the
//! best file written before it. Files are written atomically (a temporary sibling
//! and a rename).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use vov_spec::KeepWeights;

use super::checkpoint::{read_metadata, write_file};
use super::error::TrainError;
use super::metrics::EpochMetrics;
use super::spec::TrainSpec;
use crate::model::{InputShape, ParamCount};

/// The metadata key of a weights file.
const META_KEY: &str = "vov.weights";
/// The format version this build writes and reads.
pub const FORMAT: u32 = 1;

/// What a weights file records besides its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsMeta {
    /// Format version.
    pub format: u32,
    /// Which weights these are.
    pub kept: KeepWeights,
    /// The epoch (from 1) they are from.
    pub epoch: usize,
    /// That epoch's validation accuracy.
    pub val_acc: f64,
    /// The resolved spec of the trial that trained them.
    pub spec: TrainSpec,
    /// Parameter counts (Keras convention and trainable only).
    pub params: ParamCount,
    /// The input image shape the model takes.
    pub input: InputShape,
    /// The number of classes it tells apart.
    pub classes: usize,
    /// The vovd version that wrote them.
    pub version: String,
}

/// A kept weights file as a trial's result lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsInfo {
    /// Which weights these are.
    pub kept: KeepWeights,
    /// The epoch (from 1) they are from.
    pub epoch: usize,
    /// That epoch's validation accuracy.
    pub val_acc: f64,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
}

/// Loaded weights.
pub struct Weights {
    /// Their metadata.
    pub meta: WeightsMeta,
    /// Parameters by name.
    pub params: BTreeMap<String, Tensor>,
}

fn err(path: &Path, reason: impl std::fmt::Display) -> TrainError {
    TrainError::Weights {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Whether the epochs in `history` (the last just finished) call for writing the
/// weights of a `kept` trial of `epochs` epochs now.
pub fn due(kept: KeepWeights, history: &[EpochMetrics], epochs: usize) -> bool {
    let Some((last, earlier)) = history.split_last() else {
        return false;
    };
    match kept {
        KeepWeights::None => false,
        KeepWeights::Final => history.len() == epochs,
        KeepWeights::Best => earlier.iter().all(|m| m.val_acc < last.val_acc),
    }
}

/// Writes `params` with `meta` to `path` atomically.
pub fn save(
    path: &Path,
    meta: &WeightsMeta,
    params: &BTreeMap<String, Tensor>,
) -> Result<(), TrainError> {
    let json = serde_json::to_string(meta).map_err(|e| err(path, e))?;
    let tensors = params.iter().map(|(k, v)| (k.clone(), v)).collect();
    write_file(path, tensors, (META_KEY, json), err)
}

/// Reads a weights file's metadata without its tensors.
pub fn read_meta(path: &Path) -> Result<WeightsMeta, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e))?;
    meta_of(path, &bytes)
}

fn meta_of(path: &Path, bytes: &[u8]) -> Result<WeightsMeta, TrainError> {
    let key = (META_KEY, "weights file");
    read_metadata(bytes, key, |m: &WeightsMeta| m.format, FORMAT)
        .map_err(|reason| err(path, reason))
}

/// Reads a weights file onto `device`, with its listing from the same read.
pub fn load(path: &Path, device: &Device) -> Result<(Weights, WeightsInfo), TrainError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e))?;
    let meta = meta_of(path, &bytes)?;
    let listing = listing(&meta, &bytes);
    let params = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| err(path, e))?
        .into_iter()
        .collect();
    Ok((Weights { meta, params }, listing))
}

/// The listing of a weights file of `meta` whose whole content is `bytes`.
fn listing(meta: &WeightsMeta, bytes: &[u8]) -> WeightsInfo {
    let (bytes, sha256) = digest(bytes);
    WeightsInfo {
        kept: meta.kept,
        epoch: meta.epoch,
        val_acc: meta.val_acc,
        bytes,
        sha256,
    }
}

/// The size and SHA-256 (lowercase hex) of a file's `bytes`.
pub fn digest(bytes: &[u8]) -> (u64, String) {
    (bytes.len() as u64, vov_spec::digest::sha256(bytes))
}

/// The listing of the weights file at `path`, `None` when there is none: its
/// metadata and digest from one read of the file.
pub fn info(path: &Path) -> Result<Option<WeightsInfo>, TrainError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(path, e)),
    };
    let meta = meta_of(path, &bytes)?;
    Ok(Some(listing(&meta, &bytes)))
}

/// Where a trial's kept weights live under a directory of them.
pub fn file_in(dir: &Path, trial_id: &str) -> PathBuf {
    dir.join(format!("{trial_id}.safetensors"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(n: usize, val_acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch: n,
            val_acc,
            ..EpochMetrics::default()
        }
    }

    #[test]
    fn best_is_due_on_each_new_maximum_and_final_after_the_last_epoch() {
        let h = [epoch(1, 0.5), epoch(2, 0.4), epoch(3, 0.5), epoch(4, 0.6)];
        let best: Vec<bool> = (1..=4)
            .map(|n| due(KeepWeights::Best, &h[..n], 4))
            .collect();
        // A tie with an earlier epoch keeps the earlier one, as MaxValAcc does.
        assert_eq!(best, [true, false, false, true]);
        let last: Vec<bool> = (1..=4)
            .map(|n| due(KeepWeights::Final, &h[..n], 4))
            .collect();
        assert_eq!(last, [false, false, false, true]);
        assert!(!due(KeepWeights::None, &h, 4));
        assert!(!due(KeepWeights::Best, &[], 4));
    }

    #[test]
    fn a_file_that_is_not_weights_names_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.safetensors");
        std::fs::write(&path, b"not weights").unwrap();
        let e = read_meta(&path).unwrap_err().to_string();
        assert!(
            e.contains("x.safetensors") && e.contains("not a safetensors file"),
            "{e}"
        );
        assert_eq!(info(&tmp.path().join("absent")).unwrap(), None);
        let (bytes, sha) = digest(&std::fs::read(&path).unwrap());
        assert_eq!(bytes, 11);
        assert_eq!(sha.len(), 64);
    }
}
