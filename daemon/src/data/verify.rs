//! The deep check of an installed data set: every record decoded (counts, sizes,
//! labels in range) and a SHA-256 of the decoded records, which does not depend
//! on how the files were compressed, so Debian's re-packed Fashion-MNIST and the
//! data set's own files give the same digest.
//!
//! The digest covers, in order, the training labels, the training images, the
//! validation labels and the validation images, as the loader holds them (one
//! byte per label, CHW bytes per image, Fashion-MNIST padded to 32x32).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::fetch::{checksum::hex, source};
use super::{cifar10, fashion_mnist, DataError, Dataset, DatasetName, LoadOptions};

/// The install record `vovd data fetch` writes beside the files.
pub const MANIFEST: &str = "vov-data.json";

/// What `vovd data fetch` recorded when it installed a data set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The data set.
    pub name: String,
    /// Where the files came from (URLs or a local path).
    pub source: Vec<String>,
    /// The checksums the files were verified against (`ALGO:HEX`).
    pub checksums: Vec<String>,
    /// Training records.
    pub train_records: u64,
    /// Validation records.
    pub val_records: u64,
    /// SHA-256 of the decoded records.
    pub records_sha256: String,
    /// When, as seconds since the Unix epoch.
    pub installed_unix: u64,
}

/// A data set that decoded cleanly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The directory read.
    pub dir: PathBuf,
    /// Training records.
    pub train_records: u64,
    /// Validation records.
    pub val_records: u64,
    /// SHA-256 of the decoded records (see the module docs).
    pub records_sha256: String,
    /// Whether the records are the published ones: `None` when the published
    /// digest is not known or the set is not complete (fewer records). Shown,
    /// never a failure: a site may ship its own variant.
    pub official: Option<bool>,
    /// Whether an install record was found (and matched: a mismatch is broken).
    pub recorded: bool,
}

/// The outcome for one data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Generated on demand; nothing to check.
    Generated,
    /// None of its files is there; the text says where it was looked for.
    Absent(String),
    /// Files are there but do not decode (or changed since installed).
    Broken(String),
    /// Every record decoded.
    Ok(Verified),
}

impl Verdict {
    /// Whether this counts as a failure of `vovd data verify`.
    pub fn is_broken(&self) -> bool {
        matches!(self, Verdict::Broken(_))
    }
}

/// Checks `name` where the loader would read it under `root`.
pub fn verify(name: DatasetName, root: &Path) -> Verdict {
    let dir = match name {
        DatasetName::Synthetic => return Verdict::Generated,
        DatasetName::Cifar10 => {
            let dir = cifar10::directory(root);
            let any = cifar10::FILES.iter().any(|f| dir.join(f).exists());
            if !any {
                return Verdict::Absent(format!("no CIFAR-10 files in {}", dir.display()));
            }
            dir
        }
        DatasetName::FashionMnist => match fashion_mnist::holding_dir(Some(root)) {
            Some(dir) => dir,
            None => {
                let dirs: Vec<String> = fashion_mnist::search_dirs(Some(root))
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                return Verdict::Absent(format!("no Fashion-MNIST files in {}", dirs.join(" or ")));
            }
        },
    };
    match verify_dir(name, &dir) {
        Ok(v) => Verdict::Ok(v),
        Err(e) => Verdict::Broken(e.to_string()),
    }
}

/// Decodes `name` from the directory `dir` (no fallback elsewhere) and checks
/// it against its install record and the published digest.
pub fn verify_dir(name: DatasetName, dir: &Path) -> Result<Verified, DataError> {
    let opts = LoadOptions::default();
    let ds = match name {
        DatasetName::Cifar10 => cifar10::load_dir(dir, &opts)?,
        DatasetName::FashionMnist => fashion_mnist::load_dir(dir, &opts)?,
        DatasetName::Synthetic => super::load(name, &opts)?,
    };
    let digest = records_sha256(&ds);
    let (train_records, val_records) = (ds.train.len() as u64, ds.val.len() as u64);
    let recorded = check_manifest(dir, &digest)?;
    let official = official(name, &ds, &digest);
    Ok(Verified {
        dir: dir.to_path_buf(),
        train_records,
        val_records,
        records_sha256: digest,
        official,
        recorded,
    })
}

/// SHA-256 of the decoded records (see the module docs).
pub fn records_sha256(ds: &Dataset) -> String {
    let mut h = Sha256::new();
    for split in [&ds.train, &ds.val] {
        h.update(&split.labels);
        h.update(&split.images);
    }
    hex(&h.finalize())
}

/// Whether a complete set's digest is the published one, when that is known.
fn official(name: DatasetName, ds: &Dataset, digest: &str) -> Option<bool> {
    let src = source::source(name)?;
    let known = src.records_sha256?;
    let complete = (ds.train.len(), ds.val.len()) == src.records;
    complete.then(|| known == digest)
}

/// Whether `dir` has an install record; an error when the records changed since.
fn check_manifest(dir: &Path, digest: &str) -> Result<bool, DataError> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(DataError::Io { path, source }),
    };
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| DataError::malformed(&path, format!("not an install record: {e}")))?;
    if m.records_sha256 != digest {
        return Err(DataError::malformed(
            dir,
            format!(
                "records changed since they were installed: sha256 {digest}, recorded {}",
                m.records_sha256
            ),
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
