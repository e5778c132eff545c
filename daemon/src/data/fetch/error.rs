//! Why a fetch failed; each names the file, URL or value at fault.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// A fetch failure.
#[derive(Debug, Error)]
pub enum FetchError {
    /// A bad request: an unknown file in `--checksum`, `--from` missing, ... (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP {status} {reason}")]
    Http {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The transfer failed after its retries (what arrived is kept for a resume).
    #[error("{url}: {reason}")]
    Transfer {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// A file's digest is not the expected one (the file was removed).
    #[error("{file}: checksum mismatch: expected {expected}, got {actual}; nothing was installed")]
    Checksum {
        /// The file.
        file: String,
        /// The expected checksum.
        expected: String,
        /// The file's.
        actual: String,
    },
    /// The archive lacks a member, or a member cannot be read.
    #[error("{}: {reason}", path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The unpacked files do not decode as the data set.
    #[error("the files match their checksums but do not decode: {0}; nothing was installed")]
    Decode(#[from] crate::data::DataError),
    /// Another fetch of the same data set holds the lock.
    #[error("another `vovd data fetch {name}` is running (lock {})", lock.display())]
    Busy {
        /// The data set.
        name: String,
        /// The lock file.
        lock: PathBuf,
    },
}

impl FetchError {
    /// An [`FetchError::Io`] for `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        FetchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the request itself was wrong (exit 2) rather than the work (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, FetchError::Usage(_))
    }
}
