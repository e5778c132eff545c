//! Checkpoints: one safetensors file holding the parameters (moving statistics
//! included), the optimizer state, and in its metadata the spec, the epochs done,
//! the optimizer step and the history. Random streams are derived from (seed,
//! epoch, batch), so the seed and the epoch count are the whole RNG state.
//!
//! Files are written to a temporary sibling and renamed, so a crash or a full disk
//! never leaves a half-written checkpoint behind; a write that fails because the
//! disk is full is [`TrainError::DiskFull`]. A checkpoint that cannot be resumed
//! from is [`TrainError::Unusable`], and [`set_aside`] moves it out of the way.

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

/// Whether an I/O error means the disk or the quota is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == libc::ENOSPC || code == libc::EDQUOT)
}

/// A failed write of `path`: [`TrainError::DiskFull`] when the disk is full, else
/// `other(path, reason)`.
fn write_failure(
    path: &Path,
    e: std::io::Error,
    other: fn(&Path, String) -> TrainError,
) -> TrainError {
    if is_disk_full(&e) {
        TrainError::DiskFull {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    } else {
        other(path, e.to_string())
    }
}

/// A checkpoint that cannot be resumed from.
pub(super) fn unusable(path: &Path, reason: impl std::fmt::Display) -> TrainError {
    TrainError::Unusable {
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
    let json = serde_json::to_string(meta).map_err(|e| err(path, e))?;
    let tensors: Vec<(String, &Tensor)> = params
        .iter()
        .map(|(k, v)| (format!("param/{k}"), v))
        .chain(optimizer.iter().map(|(k, v)| (format!("opt/{k}"), v)))
        .collect();
    write_file(path, tensors, (META_KEY, json), err)
}

/// Writes `tensors` with the metadata entry `meta` to `path` (through a temporary
/// sibling and a rename) and syncs it; a full disk is [`TrainError::DiskFull`],
/// any other failure `other(path, reason)`.
pub(super) fn write_file(
    path: &Path,
    tensors: Vec<(String, &Tensor)>,
    meta: (&str, String),
    other: fn(&Path, String) -> TrainError,
) -> Result<(), TrainError> {
    let fail = |e: std::io::Error| write_failure(path, e, other);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let metadata = HashMap::from([(meta.0.to_string(), meta.1)]);
    safetensors::serialize_to_file(tensors, Some(metadata), path).map_err(|e| match e {
        safetensors::SafeTensorError::IoError(io) => fail(io),
        e => other(path, e.to_string()),
    })?;
    // Make the rename durable before anyone relies on the file.
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(fail)
}

/// The metadata entry `key.0` of a safetensors file's `bytes` (a vov `key.1`,
/// named in the errors), read as JSON and of format `expected`.
pub(super) fn read_metadata<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    key: (&str, &str),
    format: fn(&T) -> u32,
    expected: u32,
) -> Result<T, String> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| format!("not a safetensors file: {e}"))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(key.0))
        .ok_or_else(|| format!("not a vov {} (no {} metadata)", key.1, key.0))?;
    let meta: T = serde_json::from_str(json).map_err(|e| format!("bad metadata: {e}"))?;
    match format(&meta) {
        f if f == expected => Ok(meta),
        f => Err(format!("format {f} is not supported (expected {expected})")),
    }
}

/// Reads a checkpoint onto `device`; any flaw is [`TrainError::Unusable`].
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| unusable(path, e))?;
    let meta: CheckpointMeta = read_metadata(
        &bytes,
        (META_KEY, "checkpoint"),
        |m: &CheckpointMeta| m.format,
        FORMAT,
    )
    .map_err(|reason| unusable(path, reason))?;
    let tensors =
        candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| unusable(path, e))?;
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

/// Moves the unusable checkpoint `path` into `dir` as `<name>.<unix ms>.safetensors`
/// (kept for inspection; nothing reads it again); returns where it went.
pub fn set_aside(path: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let dest = dir.join(format!("{name}.{ms}.safetensors"));
    std::fs::rename(path, &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The history's floats come back bit for bit: serde_json's default parser
    /// can land one bit away (this loss did), which broke exact resumes.
    #[test]
    fn metadata_floats_round_trip_exactly() {
        let loss = 2.2906511306762694f64;
        let back: f64 = serde_json::from_str(&serde_json::to_string(&loss).unwrap()).unwrap();
        assert_eq!(back.to_bits(), loss.to_bits());
    }

    #[test]
    fn unreadable_files_are_unusable_and_name_themselves() {
        let tmp = tempfile::tempdir().unwrap();
        let garbage = tmp.path().join("garbage.safetensors");
        std::fs::write(&garbage, b"this is not a checkpoint at all").unwrap();
        let empty = tmp.path().join("empty.safetensors");
        std::fs::write(&empty, b"").unwrap();
        for path in [&garbage, &empty, &tmp.path().join("missing.safetensors")] {
            match load(path, &Device::Cpu) {
                Err(e @ TrainError::Unusable { .. }) => {
                    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
                }
                Err(e) => panic!("{}: expected Unusable, got {e}", path.display()),
                Ok(_) => panic!("{} loaded", path.display()),
            }
        }
    }

    #[test]
    fn set_aside_moves_the_file_into_its_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("trial").join(FILE_NAME);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"junk").unwrap();
        let dest = set_aside(&path, &tmp.path().join("corrupt"), "trial").unwrap();
        assert!(!path.exists());
        assert_eq!(std::fs::read(&dest).unwrap(), b"junk");
        assert!(
            dest.starts_with(tmp.path().join("corrupt")),
            "{}",
            dest.display()
        );
    }

    #[test]
    fn full_disks_are_told_apart() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(is_disk_full(&full));
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(
            libc::EDQUOT
        )));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(
            libc::EACCES
        )));
        let e = write_failure(
            Path::new("/s/checkpoints/t/checkpoint.safetensors"),
            full,
            err,
        );
        assert!(matches!(e, TrainError::DiskFull { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot write checkpoint /s/checkpoints/t/checkpoint.safetensors: "),
            "{e}"
        );
    }
}
