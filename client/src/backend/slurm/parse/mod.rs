//! Pure parsers of the Slurm command-line tools' outputs, and the formats we ask
//! them for: job states (`state`), `squeue` and `sacct` listings, `sinfo` nodes,
//! `scontrol show config`, and array index sets and `sbatch --parsable` replies
//! (`array`). No process is run here; the outputs recorded from a real one-node
//! Slurm 22.05 cluster (`scripts/slurm-up.sh`) are in `testdata/`.
//!
//! Findings on that cluster (Slurm 22.05.8, no accounting, `MinJobAge=600`):
//! - `squeue -h -r -t all` lists finished array tasks and jobs (COMPLETED,
//!   FAILED, CANCELLED) until `MinJobAge` seconds after their end, then they are
//!   gone; without `-t all` only pending, running and completing ones appear.
//! - `squeue -j ID` with one unknown (or expired) id prints nothing on stdout,
//!   `slurm_load_jobs error: Invalid job id specified` on stderr and exits 1;
//!   with a list such as `-j 1,999` the known ids are listed, the unknown one is
//!   ignored and it exits 0; `-j 1_99` (unknown task of a known job) prints
//!   nothing and exits 0. `squeue --name NAME` with no such job prints nothing and
//!   exits 0. Polling by `--name` (one name per sweep) therefore reads "gone" as
//!   an empty answer and never fails on expired ids: it is the better poll.
//! - `sacct` without accounting prints nothing on stdout,
//!   `Slurm accounting storage is disabled` on stderr and exits 1.
//! - `scancel --signal=USR1 --batch J_T` signals the batch shell of a running task
//!   (exit 0; once 229, i.e. ESLURM_ALREADY_DONE 2021 truncated, while sibling
//!   tasks were still pending, signal delivered all the same). For a task still
//!   pending it does not return: slurmctld answers "Job can not be altered now,
//!   try again later" for the array's pending record and scancel retries with a
//!   growing back-off (5, 6, 7, ... s) until the task starts; in one run the
//!   array's running siblings received the signal at each retry. So signal only
//!   tasks squeue shows RUNNING, under a timeout. A finished (even within
//!   `MinJobAge`) or unknown id: exit 1 and
//!   `scancel: error: Kill job error on job id 6_0: Invalid job id specified`.
//!   Without `--batch` (or `--full`) the signal goes to job steps only, and
//!   `sbatch --wrap` jobs have none but the batch one; `--full` signals every
//!   process of the batch step, children included.
//! - Plain `scancel 999` (unknown id, no signal) prints nothing and exits 0.
//! - squeue 22.05 has no exit-code field (`-O ExitCode` is rejected); a failed
//!   task shows state FAILED with reason `(NonZeroExitCode)`.

pub mod array;
pub mod cluster;
pub mod sacct;
pub mod sinfo;
pub mod squeue;
pub mod state;

use thiserror::Error;

pub use array::{chunks, format_indices, parse_sbatch};
pub use cluster::{parse_show_config, ClusterConfig};
pub use sacct::{parse_sacct, SACCT_FORMAT};
pub use sinfo::{parse_sinfo, Node, SINFO_FORMAT};
pub use squeue::{parse_squeue, TaskState, SQUEUE_FORMAT};
pub use state::JobState;

/// A line of a Slurm tool's output that does not read as expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line_no}: {reason}: {line:?}")]
pub struct ParseError {
    /// 1-based line number in the output (0 when the output is not line-based).
    pub line_no: usize,
    /// The offending line, as it was (trailing newline removed).
    pub line: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ParseError {
    /// An error about line `line_no` (1-based) holding `line`.
    pub fn new(line_no: usize, line: &str, reason: impl Into<String>) -> Self {
        ParseError {
            line_no,
            line: line.to_string(),
            reason: reason.into(),
        }
    }
}

/// The non-blank lines of `out` with their 1-based numbers, trailing spaces and
/// carriage returns trimmed.
pub(crate) fn lines(out: &str) -> impl Iterator<Item = (usize, &str)> {
    out.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end()))
        .filter(|(_, l)| !l.trim().is_empty())
}

/// Splits a `|`-separated line into exactly `n` fields (the last keeps any
/// further `|`), or an error naming the line.
pub(crate) fn fields(line_no: usize, line: &str, n: usize) -> Result<Vec<&str>, ParseError> {
    let f: Vec<&str> = line.splitn(n, '|').collect();
    if f.len() != n {
        return Err(ParseError::new(
            line_no,
            line,
            format!("expected {n} `|`-separated fields, found {}", f.len()),
        ));
    }
    Ok(f.into_iter().map(str::trim).collect())
}
