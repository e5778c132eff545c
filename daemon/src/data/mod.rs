//! Data sets by name, held in memory as 8-bit CHW images, and the input pipeline
//! that feeds them to the trainer.
//!
//! A client asks for `cifar10`, `fashion-mnist` or `synthetic`; paths are resolved
//! here, under the host's own data directory, never from the request.

pub mod augment;
pub mod availability;
pub mod cifar10;
pub mod error;
pub mod fashion_mnist;
pub mod fetch;
pub mod loader;
pub mod synthetic;
#[cfg(test)]
mod testdata;
pub mod verify;

use std::path::PathBuf;

pub use error::DataError;
pub use loader::{Batch, BatchStream};
pub use vov_spec::{Augmentation, DatasetName};

use crate::model::InputShape;

/// One split (training or validation) in memory.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// Images, each `channels * height * width` bytes in CHW order.
    pub images: Vec<u8>,
    /// One label per image, below the class count.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps the first `n` images (all of them when there are fewer).
    pub fn truncate(&mut self, n: usize, image_len: usize) {
        self.labels.truncate(n);
        self.images.truncate(n * image_len);
    }
}

/// A loaded data set.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Which data set.
    pub name: DatasetName,
    /// Shape of each image as the model sees it.
    pub shape: InputShape,
    /// Number of classes.
    pub classes: usize,
    /// Training images.
    pub train: Split,
    /// Validation images (the official test split).
    pub val: Split,
    /// Where it was read from (a directory, or `generated`).
    pub source: String,
}

impl Dataset {
    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.shape.channels * self.shape.height * self.shape.width
    }
}

/// Where and how much to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Data root: `cifar10/` (or `cifar-10-batches-bin/`) and `fashion-mnist/` below it.
    pub root: Option<PathBuf>,
    /// Keep only the first N training images (for the synthetic set: generate N).
    pub train_limit: Option<usize>,
    /// Keep only the first N validation images (for the synthetic set: generate N).
    pub val_limit: Option<usize>,
}

/// Largest limit accepted: far beyond any real split, small enough to refuse typos.
pub const MAX_LIMIT: usize = 10_000_000;

impl LoadOptions {
    fn check(&self) -> Result<(), DataError> {
        for (name, v) in [
            ("train_limit", self.train_limit),
            ("val_limit", self.val_limit),
        ] {
            match v {
                Some(0) => {
                    return Err(DataError::InvalidOption {
                        name,
                        value: "0".into(),
                        reason: "must be at least 1".into(),
                    })
                }
                Some(n) if n > MAX_LIMIT => {
                    return Err(DataError::InvalidOption {
                        name,
                        value: n.to_string(),
                        reason: format!("must be at most {MAX_LIMIT}"),
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Loads `name` with `opts`, applying the limits.
pub fn load(name: DatasetName, opts: &LoadOptions) -> Result<Dataset, DataError> {
    opts.check()?;
    let mut ds = match name {
        DatasetName::Cifar10 => cifar10::load(opts)?,
        DatasetName::FashionMnist => fashion_mnist::load(opts)?,
        DatasetName::Synthetic => {
            return Ok(synthetic::generate(&synthetic::SyntheticOptions::sized(
                opts.train_limit,
                opts.val_limit,
            )))
        }
    };
    let len = ds.image_len();
    if let Some(n) = opts.train_limit {
        ds.train.truncate(n, len);
    }
    if let Some(n) = opts.val_limit {
        ds.val.truncate(n, len);
    }
    Ok(ds)
}

/// Checks that every label is below `classes`, naming the file and record at fault.
pub fn check_labels(
    labels: &[u8],
    classes: usize,
    path: &std::path::Path,
) -> Result<(), DataError> {
    match labels.iter().position(|&l| usize::from(l) >= classes) {
        Some(i) => Err(DataError::malformed(
            path,
            format!(
                "record {i} has label {}; labels must be 0..={}",
                labels[i],
                classes - 1
            ),
        )),
        None => Ok(()),
    }
}
