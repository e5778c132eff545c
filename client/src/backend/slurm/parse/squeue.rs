//! `squeue --noheader --array --states=all --format=FORMAT`: one line a task.

use super::state::JobState;
use super::ParseError;

/// The `--format`: job id with array task (`123_4`, `123_[4-7%2]`), state.
pub const SQUEUE_FORMAT: &str = "%i|%T";

/// One array task's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// The array's job id (or the job's, for a job that is no array).
    pub job: u64,
    /// The task id, for an array task.
    pub task: Option<u32>,
    /// Its state.
    pub state: JobState,
}

fn error(line: &str, why: &str) -> ParseError {
    ParseError {
        what: "squeue",
        line: line.to_string(),
        why: why.to_string(),
    }
}

/// The tasks a job id names: `123`, `123_5`, `123_[4-7%2]`, `123_[1,3,5-6]`.
pub fn expand_id(id: &str) -> Result<(u64, Vec<Option<u32>>), String> {
    let (job, tasks) = match id.split_once('_') {
        Some((j, t)) => (j, Some(t)),
        None => (id, None),
    };
    let job: u64 = job.parse().map_err(|_| format!("bad job id {job:?}"))?;
    let Some(tasks) = tasks else {
        return Ok((job, vec![None]));
    };
    let Some(inner) = tasks.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
        let t = tasks
            .parse()
            .map_err(|_| format!("bad task id {tasks:?}"))?;
        return Ok((job, vec![Some(t)]));
    };
    let inner = inner.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in inner.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |s: &str| s.parse::<u32>().map_err(|_| format!("bad range {part:?}"));
        let (a, b) = (num(a)?, num(b)?);
        if b < a {
            return Err(format!("bad range {part:?}"));
        }
        out.extend((a..=b).map(Some));
    }
    Ok((job, out))
}

/// Every task's state, ranges expanded; blank lines are skipped.
pub fn parse_squeue(out: &str) -> Result<Vec<TaskState>, ParseError> {
    let mut tasks = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (id, state) = line
            .split_once('|')
            .ok_or_else(|| error(line, "expected ID|STATE"))?;
        let state: JobState = state
            .split('|')
            .next()
            .unwrap_or("")
            .parse()
            .unwrap_or_else(|e| match e {});
        let (job, ids) = expand_id(id.trim()).map_err(|why| error(line, &why))?;
        tasks.extend(ids.into_iter().map(|task| TaskState {
            job,
            task,
            state: state.clone(),
        }));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ids_expand() {
        assert_eq!(expand_id("123").unwrap(), (123, vec![None]));
        assert_eq!(expand_id("123_5").unwrap(), (123, vec![Some(5)]));
        assert_eq!(
            expand_id("123_[4-7%2]").unwrap().1,
            [4, 5, 6, 7].map(Some).to_vec()
        );
        assert_eq!(
            expand_id("123_[1,3,5-6]").unwrap().1,
            [1, 3, 5, 6].map(Some).to_vec()
        );
        assert!(expand_id("x_1").is_err());
        assert!(expand_id("1_[5-3]").is_err());
    }

    #[test]
    fn lines_give_one_entry_a_task() {
        let out = "12_[2-3%2]|PENDING\n12_0|RUNNING\n\n12_1|COMPLETED  \n";
        let t = parse_squeue(out).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].task, Some(2));
        assert_eq!(t[2].state, JobState::Running);
        assert_eq!(t[3].state, JobState::Completed);
        assert!(parse_squeue("garbage").is_err());
    }
}
