//! Job array index sets: writing them for `sbatch --array`, reading them back
//! from `squeue`/`sacct` job ids (`123_[1,3,5-6%2]`), splitting a sweep's
//! indices into submissions that respect `MaxArraySize`, and reading the job id
//! that `sbatch --parsable` prints.

use super::{lines, ParseError};

/// The largest task id accepted when reading index sets: Slurm's own ceiling
/// for `MaxArraySize` is 4,000,001, so ids are below 4,000,001.
pub const MAX_TASK_ID: u32 = 4_000_000;

/// The indices as Slurm's `--array` syntax: sorted, duplicates dropped, runs
/// compressed to ranges (`[0, 1, 2, 5, 7, 8]` → `"0-2,5,7-8"`); empty for none.
pub fn format_indices(indices: &[u32]) -> String {
    let mut v = indices.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        parts.push(if end > start {
            format!("{start}-{end}")
        } else {
            start.to_string()
        });
        i += 1;
    }
    parts.join(",")
}

/// Reads an index set as Slurm writes it in job ids and `--array`: comma-separated
/// ids and ranges (`1,3,5-6`), a range with a step (`1-9:2`), optionally inside
/// brackets and followed by a `%N` throttle (`[4-7%2]`). Sorted, without
/// duplicates. The error says what is wrong.
pub fn parse_indices(s: &str) -> Result<Vec<u32>, String> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    let s = match s.split_once('%') {
        Some((set, throttle)) => {
            throttle
                .parse::<u32>()
                .map_err(|_| format!("bad throttle `%{throttle}`"))?;
            set
        }
        None => s,
    };
    let num = |t: &str| -> Result<u32, String> {
        let n: u32 = t
            .trim()
            .parse()
            .map_err(|_| format!("bad array index `{t}`"))?;
        if n > MAX_TASK_ID {
            return Err(format!("array index {n} above {MAX_TASK_ID}"));
        }
        Ok(n)
    };
    let mut out = Vec::new();
    for part in s.split(',') {
        let (range, step) = match part.split_once(':') {
            Some((r, st)) => (r, num(st)?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("zero step in `{part}`"));
        }
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a {
                    return Err(format!("reversed range `{range}`"));
                }
                out.extend((a..=b).step_by(step as usize));
            }
            None => out.push(num(range)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Splits a sweep's indices into array submissions whose task ids are all below
/// `max_array_size` (Slurm rejects larger ones): each is `(offset, task ids)`
/// with the indices `offset + id`, offsets are multiples of `max_array_size`,
/// in increasing order, and empty groups are left out. Indices are sorted and
/// deduplicated first; a `max_array_size` of 0 is read as 1.
pub fn chunks(indices: &[u32], max_array_size: u32) -> Vec<(u32, Vec<u32>)> {
    let max = max_array_size.max(1);
    let mut v = indices.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<(u32, Vec<u32>)> = Vec::new();
    for i in v {
        let offset = i / max * max;
        match out.last_mut() {
            Some((o, ids)) if *o == offset => ids.push(i - offset),
            _ => out.push((offset, vec![i - offset])),
        }
    }
    out
}

/// The job id in `sbatch --parsable` output: `123`, or `123;cluster` on a
/// multi-cluster setup. Blank lines and spaces around are ignored; when there
/// are several lines the last one counts (anything before it is chatter).
pub fn parse_sbatch(out: &str) -> Result<u64, ParseError> {
    let Some((line_no, line)) = lines(out).last() else {
        return Err(ParseError::new(0, out, "sbatch printed no job id"));
    };
    let id = line.split(';').next().unwrap_or("").trim();
    id.parse::<u64>()
        .map_err(|_| ParseError::new(line_no, line, "not a job id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_ranges() {
        assert_eq!(format_indices(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_indices(&[8, 7, 2, 1, 0, 5, 5, 1]), "0-2,5,7-8");
        assert_eq!(format_indices(&[]), "");
        assert_eq!(format_indices(&[3]), "3");
        assert_eq!(format_indices(&[1, 3, 5]), "1,3,5");
        assert_eq!(format_indices(&[0, 1000]), "0,1000");
    }

    #[test]
    fn parses_index_sets() {
        assert_eq!(parse_indices("[4-7%2]").unwrap(), vec![4, 5, 6, 7]);
        assert_eq!(parse_indices("[1,3,5-6]").unwrap(), vec![1, 3, 5, 6]);
        assert_eq!(parse_indices("2-7%2").unwrap(), vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(parse_indices("5").unwrap(), vec![5]);
        assert_eq!(parse_indices("1-9:4").unwrap(), vec![1, 5, 9]);
        assert_eq!(parse_indices("3,1,3").unwrap(), vec![1, 3]);
        for bad in ["", "[]", "a", "5-3", "1-", "1-9:0", "[1-3%x]", "99999999"] {
            assert!(parse_indices(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn format_and_parse_agree() {
        let v = vec![0, 1, 2, 5, 7, 8, 100, 101, 999];
        assert_eq!(parse_indices(&format_indices(&v)).unwrap(), v);
    }

    #[test]
    fn chunks_respect_max_array_size() {
        assert_eq!(chunks(&[0, 1, 2], 1001), vec![(0, vec![0, 1, 2])]);
        assert_eq!(
            chunks(&[1000, 1001, 5, 2500, 3], 1001),
            vec![(0, vec![3, 5, 1000]), (1001, vec![0]), (2002, vec![498])]
        );
        assert_eq!(chunks(&[], 1001), vec![]);
        assert_eq!(chunks(&[7, 7], 4), vec![(4, vec![3])]);
        assert_eq!(chunks(&[0, 1], 0), vec![(0, vec![0]), (1, vec![0])]);
        for (offset, ids) in chunks(&(0..5000).collect::<Vec<_>>(), 1001) {
            assert_eq!(offset % 1001, 0);
            assert!(ids.iter().all(|&i| i < 1001));
        }
    }

    #[test]
    fn sbatch_replies() {
        assert_eq!(
            parse_sbatch(include_str!("testdata/sbatch.txt")).unwrap(),
            1
        );
        assert_eq!(parse_sbatch("123\n").unwrap(), 123);
        assert_eq!(parse_sbatch("  456;vovtest  \n\n").unwrap(), 456);
        assert_eq!(parse_sbatch("chatter\n789\n").unwrap(), 789);
        let e = parse_sbatch("").unwrap_err();
        assert_eq!(e.line_no, 0);
        let e = parse_sbatch("\nSubmitted batch job 12\n").unwrap_err();
        assert_eq!((e.line_no, e.line.as_str()), (2, "Submitted batch job 12"));
    }
}
