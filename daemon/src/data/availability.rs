//! Which data sets a host can serve, and their sizes, without loading them.

use std::path::Path;

use super::{cifar10, fashion_mnist, DatasetName};

/// A data set as a host offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// The data set.
    pub name: DatasetName,
    /// Training images (0 when unbounded).
    pub train_images: u64,
    /// Validation images (0 when unbounded).
    pub val_images: u64,
    /// Where it is read from, or why it cannot be.
    pub detail: String,
    /// Whether trials on it can run.
    pub available: bool,
}

fn records(path: &Path, record: u64) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len() / record)
}

/// The availability of `name` under the data root `root`.
pub fn check(name: DatasetName, root: &Path) -> Availability {
    let (available, train_images, val_images, detail) = match name {
        DatasetName::Synthetic => (true, 0, 0, "generated on demand (any size)".to_string()),
        DatasetName::Cifar10 => {
            let dir = cifar10::directory(root);
            if cifar10::present(root) {
                let rec = cifar10::RECORD as u64;
                let train = cifar10::TRAIN_FILES
                    .iter()
                    .map(|f| records(&dir.join(f), rec))
                    .sum();
                (
                    true,
                    train,
                    records(&dir.join(cifar10::TEST_FILE), rec),
                    dir.display().to_string(),
                )
            } else {
                (
                    false,
                    0,
                    0,
                    format!(
                        "not found under {} (see the README to install it)",
                        dir.display()
                    ),
                )
            }
        }
        DatasetName::FashionMnist => {
            if fashion_mnist::present(Some(root)) {
                (
                    true,
                    60_000,
                    10_000,
                    "IDX files (Debian's dataset-fashion-mnist or <data dir>/fashion-mnist)"
                        .to_string(),
                )
            } else {
                (
                    false,
                    0,
                    0,
                    "not found (apt-get install dataset-fashion-mnist)".to_string(),
                )
            }
        }
    };
    Availability {
        name,
        train_images,
        val_images,
        detail,
        available,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_is_always_there_and_cifar_needs_files() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(check(DatasetName::Synthetic, tmp.path()).available);
        let cifar = check(DatasetName::Cifar10, tmp.path());
        assert!(!cifar.available);
        assert!(cifar.detail.contains("cifar10"), "{}", cifar.detail);
    }
}
