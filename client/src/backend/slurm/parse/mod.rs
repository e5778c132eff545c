//! Slurm's command outputs, parsed: pure functions, tested on recorded outputs.

pub mod array;
pub mod cluster;
pub mod sinfo;
pub mod squeue;
pub mod state;

use thiserror::Error;

/// A line of a Slurm command's output that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unexpected {what} line {line:?}: {why}")]
pub struct ParseError {
    /// Which output.
    pub what: &'static str,
    /// The line.
    pub line: String,
    /// What is wrong with it.
    pub why: String,
}
