//! Sweep file errors; each names the key path (`grid.epochs[1]`) and the value.

use thiserror::Error;

/// Why a sweep file was rejected.
#[derive(Debug, Error, PartialEq)]
pub enum SweepError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// The system error.
        message: String,
    },
    /// The file is not valid TOML.
    #[error("{path}: not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key is unknown, has the wrong type, or a value is out of range.
    #[error("{key}: {message}")]
    Key {
        /// The key path, e.g. `grid.epochs[1]`.
        key: String,
        /// What is wrong, with the value.
        message: String,
    },
}

impl SweepError {
    /// A [`SweepError::Key`].
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        SweepError::Key {
            key: key.into(),
            message: message.into(),
        }
    }
}
