//! `squeue` listings: one [`TaskState`] per job or array task.
//!
//! The backend runs `squeue -h -r -t all --name NAME -o` [`SQUEUE_FORMAT`]
//! (`-r`: one line per array task, `-t all`: finished ones too, for
//! `MinJobAge` seconds after they end). See the module `parse` for what squeue
//! does with unknown ids and names.

use super::array::parse_indices;
use super::{fields, lines, JobState, ParseError};

/// The `squeue -o` format: job id with array task (`%i`, e.g. `12_3`), long
/// state name (`%T`), and node list if running or `(reason)` if not (`%R`).
pub const SQUEUE_FORMAT: &str = "%i|%T|%R";

/// One job, or one task of a job array, and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// The job id (for an array task, the array's job id: `12` in `12_3`).
    pub job: u64,
    /// The array task id (`3` in `12_3`); `None` for a job that is no array.
    pub task: Option<u32>,
    /// Its state.
    pub state: JobState,
    /// squeue's `%R`: the node list when running or done (`localhost`), the
    /// pending or failure reason in parentheses otherwise (`(Resources)`,
    /// `(JobArrayTaskLimit)`, `(NonZeroExitCode)`); empty when Slurm has none
    /// (blank or `(null)`), and always empty from sacct.
    pub reason: String,
}

/// Parses the output of `squeue -h -r -t all -o` [`SQUEUE_FORMAT`]: one entry
/// per array task, expanding compressed ids (`123_[4-7%2]`, `123_[1,3,5-6]`)
/// that appear without `-r`. Blank lines and a `JOBID|...` header are skipped;
/// any other line that does not read is an error naming it.
pub fn parse_squeue(out: &str) -> Result<Vec<TaskState>, ParseError> {
    let mut tasks = Vec::new();
    for (line_no, line) in lines(out) {
        let f = fields(line_no, line, 3)?;
        if f[0].eq_ignore_ascii_case("JOBID") {
            continue;
        }
        if f[1].is_empty() {
            return Err(ParseError::new(line_no, line, "empty state"));
        }
        let Ok(state) = f[1].parse::<JobState>();
        let reason = if f[2] == "(null)" { "" } else { f[2] };
        let (job, ids) = parse_job_id(f[0]).map_err(|e| ParseError::new(line_no, line, e))?;
        match ids {
            None => tasks.push(TaskState {
                job,
                task: None,
                state,
                reason: reason.to_string(),
            }),
            Some(ids) => tasks.extend(ids.into_iter().map(|t| TaskState {
                job,
                task: Some(t),
                state: state.clone(),
                reason: reason.to_string(),
            })),
        }
    }
    Ok(tasks)
}

/// Reads a job id as squeue and sacct write it: `123` (no array), `123_5`,
/// `123_[1,3,5-6%2]` (several tasks of array 123). The tasks come sorted.
pub fn parse_job_id(s: &str) -> Result<(u64, Option<Vec<u32>>), String> {
    let (job, tasks) = match s.split_once('_') {
        Some((job, tasks)) => (job, Some(tasks)),
        None => (s, None),
    };
    let job: u64 = job.parse().map_err(|_| format!("bad job id `{s}`"))?;
    match tasks {
        None => Ok((job, None)),
        Some(t) => Ok((
            job,
            Some(parse_indices(t).map_err(|e| format!("job id `{s}`: {e}"))?),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(job: u64, task: Option<u32>, state: JobState, reason: &str) -> TaskState {
        TaskState {
            job,
            task,
            state,
            reason: reason.into(),
        }
    }

    /// Recorded: an array `0-7%2`, an array `1,3,5-6` and a plain job, without `-r`.
    #[test]
    fn compact_ids_expand() {
        let t = parse_squeue(include_str!("testdata/squeue_compact.txt")).unwrap();
        let expanded = parse_squeue(include_str!("testdata/squeue_expanded.txt")).unwrap();
        let key = |v: &[TaskState]| {
            let mut k: Vec<_> = v.iter().map(|t| (t.job, t.task, t.state.clone())).collect();
            k.sort_by_key(|x| (x.0, x.1));
            k
        };
        assert_eq!(key(&t), key(&expanded), "-r lists the same tasks");
        assert_eq!(t.len(), 13);
        assert_eq!(
            t[0],
            ts(1, Some(2), JobState::Pending, "(JobArrayTaskLimit)")
        );
        assert_eq!(
            t[5],
            ts(1, Some(7), JobState::Pending, "(JobArrayTaskLimit)")
        );
        let tasks2: Vec<_> = t
            .iter()
            .filter(|t| t.job == 2)
            .map(|t| t.task.unwrap())
            .collect();
        assert_eq!(tasks2, vec![1, 3, 5, 6]);
        assert!(t.contains(&ts(3, None, JobState::Pending, "(Priority)")));
        assert!(t.contains(&ts(1, Some(0), JobState::Running, "localhost")));
    }

    /// Recorded after `scancel` of those three jobs: `-t all` still lists them.
    #[test]
    fn finished_tasks_stay_listed() {
        let t = parse_squeue(include_str!("testdata/squeue_finished.txt")).unwrap();
        assert!(t
            .iter()
            .any(|t| t.job == 1 && t.state == JobState::Cancelled));
        assert!(t
            .iter()
            .any(|t| t.job == 6 && t.state == JobState::Completed));
        assert!(t.iter().all(|t| t.state.is_final() || t.state.is_active()));
    }

    /// Recorded: `--wrap 'exit $SLURM_ARRAY_TASK_ID'` over `0-2`.
    #[test]
    fn failed_tasks() {
        let mut t = parse_squeue(include_str!("testdata/squeue_failed.txt")).unwrap();
        t.sort_by_key(|t| t.task);
        assert_eq!(
            t,
            vec![
                ts(17, Some(0), JobState::Completed, "localhost"),
                ts(17, Some(1), JobState::Failed, "(NonZeroExitCode)"),
                ts(17, Some(2), JobState::Failed, "(NonZeroExitCode)"),
            ]
        );
    }

    #[test]
    fn odd_lines() {
        let out = "JOBID|STATE|NODELIST(REASON)\n\n  \n7_[0-1]|PENDING|(null)   \r\n8|WEIRD_STATE|\n9_4|RUNNING|node[1-2]\n";
        assert_eq!(
            parse_squeue(out).unwrap(),
            vec![
                ts(7, Some(0), JobState::Pending, ""),
                ts(7, Some(1), JobState::Pending, ""),
                ts(8, None, JobState::Other("WEIRD_STATE".into()), ""),
                ts(9, Some(4), JobState::Running, "node[1-2]"),
            ]
        );
        assert_eq!(parse_squeue("").unwrap(), vec![]);
        assert_eq!(parse_squeue("\n\n").unwrap(), vec![]);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse_squeue("1|RUNNING|x\nslurm_load_jobs error: Invalid job id specified\n")
            .unwrap_err();
        assert_eq!(e.line_no, 2);
        assert_eq!(e.line, "slurm_load_jobs error: Invalid job id specified");
        assert!(e.to_string().contains("line 2"), "{e}");
        for bad in [
            "x|RUNNING|n",
            "12_|RUNNING|n",
            "12_[3-1]|PENDING|",
            "12|",
            "5+0|RUNNING|n",
            "4||n",
        ] {
            assert!(parse_squeue(bad).is_err(), "{bad:?}");
        }
    }
}
