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
    /// The sweep expands to more trials than `max_trials` allows.
    #[error(
        "the sweep expands to {product} = {trials} trials, above max_trials = {max}: \
         shrink the grid, or raise max_trials (a top-level key, or --set max_trials=N)"
    )]
    TooLarge {
        /// How the count is made, e.g. `100 (grid.lr) x 10 (grid.epochs) x 2 repeats`.
        product: String,
        /// The count (saturating).
        trials: u128,
        /// The cap.
        max: u64,
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
