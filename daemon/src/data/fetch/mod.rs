//! `vovd data fetch`: download (or take from a file) a data set's published
//! files, verify their checksums before anything is unpacked, unpack into a
//! temporary directory beside the target, decode every record there, and only
//! then rename it into place. A failed or interrupted fetch never leaves a half
//! data set where the loader reads: downloads wait in `<data dir>/.fetch/NAME/`
//! (resumed by the next run), and a checksum mismatch removes the file.
//!
//! The daemon never calls this on its own: downloads start only when an
//! operator asks.

pub mod checksum;
pub mod download;
mod error;
mod install;
pub mod source;
mod staging;
mod unpack;

use std::path::PathBuf;

use indicatif::ProgressBar;

pub use checksum::Checksum;
pub use download::Transfer;
pub use error::FetchError;
pub use install::fetch;
pub use source::{source, Source};

use super::verify::Verified;
use super::DatasetName;

/// A checksum given on the command line: for one file, or (no file) for the
/// only file of a one-file data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumOverride {
    /// The published file it replaces the checksum of.
    pub file: Option<String>,
    /// The checksum.
    pub checksum: Checksum,
}

impl std::str::FromStr for ChecksumOverride {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((file, sum)) => Ok(ChecksumOverride {
                file: Some(file.to_string()),
                checksum: sum.parse()?,
            }),
            None => Ok(ChecksumOverride {
                file: None,
                checksum: s.parse()?,
            }),
        }
    }
}

/// What to fetch and from where.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// The data set.
    pub name: DatasetName,
    /// The data root it is installed below.
    pub root: PathBuf,
    /// A mirror: a base URL the file names are appended to (or, for a one-file
    /// data set, the file's own URL when it does not end with `/`).
    pub url: Option<String>,
    /// Install from a local archive (or a directory holding the files) instead.
    pub from: Option<PathBuf>,
    /// Checksums replacing the published ones.
    pub checksums: Vec<ChecksumOverride>,
    /// Replace an installed data set that verifies.
    pub force: bool,
}

/// What a fetch did.
#[derive(Debug, Clone)]
pub enum FetchOutcome {
    /// A valid data set was already there and was left alone.
    AlreadyInstalled(Verified),
    /// The data set was installed.
    Installed {
        /// The installed set as verified.
        verified: Verified,
        /// Per file: where it came from and what the transfer did (none for `--from`).
        files: Vec<(String, Option<Transfer>)>,
    },
}

/// Makes the progress bar for one transfer, given its URL (hidden in tests).
pub type BarFactory<'a> = &'a dyn Fn(&str) -> ProgressBar;

#[cfg(test)]
mod tests;
