//! `sinfo --noheader --Node --format=FORMAT`: the nodes.

use super::ParseError;

/// The `--format`: node, partition, state, CPUs, memory (MB), gres.
pub const SINFO_FORMAT: &str = "%N|%P|%T|%c|%m|%G";

/// One node of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Its state (`idle`, `mixed`, `allocated`, `down*`, ...).
    pub state: String,
    /// CPUs.
    pub cpus: u32,
    /// Memory, MB.
    pub memory_mb: u64,
    /// GPUs (from its gres).
    pub gpus: u32,
    /// The partition (`*` marks the default one).
    pub partition: String,
}

/// GPUs in a gres list: `gpu:2`, `gpu:a100:4(S:0-1)`, `(null)`.
pub fn gpus(gres: &str) -> u32 {
    gres.split(',')
        .filter(|g| g.starts_with("gpu"))
        .filter_map(|g| {
            let g = g.split('(').next().unwrap_or(g);
            g.rsplit(':').next().and_then(|n| n.parse::<u32>().ok())
        })
        .sum()
}

/// Every node line.
pub fn parse_sinfo(out: &str) -> Result<Vec<Node>, ParseError> {
    let mut nodes = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let bad = |why: &str| ParseError {
            what: "sinfo",
            line: line.to_string(),
            why: why.to_string(),
        };
        if f.len() < 6 {
            return Err(bad("expected 6 fields"));
        }
        nodes.push(Node {
            name: f[0].to_string(),
            partition: f[1].to_string(),
            state: f[2].to_string(),
            cpus: f[3].parse().map_err(|_| bad("bad CPU count"))?,
            memory_mb: f[4]
                .trim_end_matches('+')
                .parse()
                .map_err(|_| bad("bad memory"))?,
            gpus: gpus(f[5]),
        });
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_their_gpus() {
        let n = parse_sinfo("localhost|debug*|idle|2|8000|gpu:2\n").unwrap();
        assert_eq!(n[0].gpus, 2);
        assert_eq!(n[0].memory_mb, 8000);
        assert_eq!(gpus("gpu:a100:4(S:0-1)"), 4);
        assert_eq!(gpus("(null)"), 0);
        assert!(parse_sinfo("a|b").is_err());
    }
}
