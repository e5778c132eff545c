//! `sacct` listings, for clusters with accounting: the states of jobs that
//! squeue has forgotten (more than `MinJobAge` seconds after their end).
//!
//! Without accounting (`AccountingStorageType=accounting_storage/none`, as on the
//! test cluster) sacct prints nothing on stdout,
//! `Slurm accounting storage is disabled` on stderr, and exits 1: check
//! [`ClusterConfig::accounting`](super::ClusterConfig::accounting) before
//! relying on it. The samples below are written by hand for that reason.

use super::squeue::parse_job_id;
use super::{fields, lines, JobState, ParseError, TaskState};

/// The `sacct -o` fields: `sacct -n -P -X -j IDS -o JobID,State` (`-n` no
/// header, `-P` `|`-separated, `-X` allocations only, no steps).
pub const SACCT_FORMAT: &str = "JobID,State";

/// Parses `sacct -n -P -X -j IDS -o` [`SACCT_FORMAT`]: one entry per job or array
/// task (a pending array's `123_[4-7]` is expanded), the state's first word only
/// (`CANCELLED by 0`). Steps (`123.batch`, `123_4.extern`), which `-X` leaves
/// out, are skipped if present, as are blank lines and a `JobID|State` header.
/// `reason` is always empty.
pub fn parse_sacct(out: &str) -> Result<Vec<TaskState>, ParseError> {
    let mut tasks = Vec::new();
    for (line_no, line) in lines(out) {
        let f = fields(line_no, line, 2)?;
        if f[0].eq_ignore_ascii_case("JobID") || f[0].contains('.') {
            continue;
        }
        if f[1].is_empty() {
            return Err(ParseError::new(line_no, line, "empty state"));
        }
        let Ok(state) = f[1].parse::<JobState>();
        let (job, ids) = parse_job_id(f[0]).map_err(|e| ParseError::new(line_no, line, e))?;
        let task = |task| TaskState {
            job,
            task,
            state: state.clone(),
            reason: String::new(),
        };
        match ids {
            None => tasks.push(task(None)),
            Some(ids) => tasks.extend(ids.into_iter().map(|t| task(Some(t)))),
        }
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_sample() {
        let t = parse_sacct(include_str!("testdata/sacct.txt")).unwrap();
        let got: Vec<_> = t.iter().map(|t| (t.job, t.task, t.state.clone())).collect();
        assert_eq!(
            got,
            vec![
                (41, Some(0), JobState::Completed),
                (41, Some(1), JobState::Failed),
                (41, Some(2), JobState::Cancelled),
                (41, Some(3), JobState::OutOfMemory),
                (41, Some(4), JobState::Pending),
                (41, Some(5), JobState::Pending),
                (41, Some(6), JobState::Pending),
                (42, None, JobState::Timeout),
                (43, None, JobState::NodeFail),
            ]
        );
        assert!(t.iter().all(|t| t.reason.is_empty()));
    }

    #[test]
    fn odd_lines() {
        let out = "JobID|State\n\n7|CANCELLED by 1000  \n7.batch|CANCELLED\n8|(null)\n";
        let t = parse_sacct(out).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].state, JobState::Cancelled);
        assert_eq!(t[1].state, JobState::Other("(NULL)".into()));
        assert_eq!(parse_sacct("").unwrap(), vec![]);
        let e = parse_sacct("7|RUNNING\nSlurm accounting storage is disabled\n").unwrap_err();
        assert_eq!(e.line_no, 2);
        for bad in ["x|RUNNING", "7|", "7_[a]|PENDING"] {
            assert!(parse_sacct(bad).is_err(), "{bad:?}");
        }
    }
}
