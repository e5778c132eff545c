//! Errors of the data layer; every one names the file or the value at fault.

use std::path::PathBuf;

use thiserror::Error;

/// Why a data set could not be loaded.
#[derive(Debug, Error)]
pub enum DataError {
    /// A file the data set needs is not there.
    #[error("{}: file not found; {hint}", path.display())]
    Missing {
        /// The path looked at (the first one, when several were tried).
        path: PathBuf,
        /// How to get the file.
        hint: String,
    },
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// A file's content is not what its format requires.
    #[error("{}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A limit or size is out of range.
    #[error("{name} = {value}: {reason}")]
    InvalidOption {
        /// The option (`train_limit`, `val_limit`).
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

impl DataError {
    /// A [`DataError::Malformed`] for `path`.
    pub fn malformed(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::Malformed {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Reads a whole file, mapping a missing file to [`DataError::Missing`].
    pub fn read(path: &std::path::Path, hint: &str) -> Result<Vec<u8>, DataError> {
        std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                DataError::Missing {
                    path: path.to_path_buf(),
                    hint: hint.to_string(),
                }
            } else {
                DataError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
    }
}
