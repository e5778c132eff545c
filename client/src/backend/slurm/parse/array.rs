//! Array task ids: `--array` lists, splitting by `MaxArraySize`, `sbatch` output.

use super::ParseError;

/// Sorted, deduplicated and compressed: `[0,1,2,5,7,8]` is `0-2,5,7-8`.
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
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// Manifest indices split into submissions whose task ids are all below
/// `max_array_size`: (offset, task ids relative to it), offsets multiples of it.
pub fn chunks(indices: &[u32], max_array_size: u32) -> Vec<(u32, Vec<u32>)> {
    let max = max_array_size.max(1);
    let mut v = indices.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<(u32, Vec<u32>)> = Vec::new();
    for i in v {
        let offset = i / max * max;
        match out.last_mut() {
            Some((o, tasks)) if *o == offset => tasks.push(i - offset),
            _ => out.push((offset, vec![i - offset])),
        }
    }
    out
}

/// The job id `sbatch --parsable` prints (`123`, or `123;cluster`).
pub fn parse_sbatch(out: &str) -> Result<u64, ParseError> {
    let line = out
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.split(';')
        .next()
        .and_then(|id| id.trim().parse().ok())
        .ok_or_else(|| ParseError {
            what: "sbatch",
            line: line.to_string(),
            why: "expected a job id".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_compress_and_split() {
        assert_eq!(format_indices(&[8, 0, 1, 2, 5, 7, 2]), "0-2,5,7-8");
        assert_eq!(format_indices(&[3]), "3");
        assert_eq!(
            chunks(&[0, 1, 1000, 1001, 2500], 1000),
            vec![(0, vec![0, 1]), (1000, vec![0, 1]), (2000, vec![500])]
        );
        assert_eq!(parse_sbatch("123\n").unwrap(), 123);
        assert_eq!(parse_sbatch("77;vovtest\n").unwrap(), 77);
        assert!(parse_sbatch("sbatch: error").is_err());
    }
}
