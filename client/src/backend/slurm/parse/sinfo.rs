//! `sinfo` node listings: what each node offers (CPUs, memory, GPUs).

use super::{fields, lines, ParseError};

/// The `sinfo -o` format: node name (`%N`), state (`%T`), CPUs (`%c`), memory in
/// MB (`%m`), generic resources (`%G`), partition (`%P`).
pub const SINFO_FORMAT: &str = "%N|%T|%c|%m|%G|%P";

/// One node in one partition, as `sinfo -h -N -o` [`SINFO_FORMAT`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's name.
    pub name: String,
    /// Its state in sinfo's long form (`idle`, `mixed`, `allocated`, `down*`,
    /// `drained`, ...), as written.
    pub state: String,
    /// CPUs.
    pub cpus: u32,
    /// Memory in megabytes (`RealMemory`).
    pub memory_mb: u64,
    /// GPUs: the sum of the counts of its `gpu` generic resources.
    pub gpus: u32,
    /// The partition, without the `*` that marks the default one.
    pub partition: String,
}

/// Parses `sinfo -h -N -o` [`SINFO_FORMAT`]: one [`Node`] per line (a node in
/// two partitions has two lines). Reads gres such as `gpu:2`,
/// `gpu:a100:4(S:0-1)`, `gpu:a100:2,gpu:v100:1`, `shard:4` (no GPU) and
/// `(null)`; a trailing `+` on numbers (sinfo's "some more" without `-N`) is
/// dropped. Blank lines and a `NODELIST|...` header are skipped.
pub fn parse_sinfo(out: &str) -> Result<Vec<Node>, ParseError> {
    let mut nodes = Vec::new();
    for (line_no, line) in lines(out) {
        let f = fields(line_no, line, 6)?;
        if f[0].eq_ignore_ascii_case("NODELIST") || f[0].eq_ignore_ascii_case("HOSTNAMES") {
            continue;
        }
        let err = |what: &str| ParseError::new(line_no, line, what.to_string());
        if f[0].is_empty() {
            return Err(err("empty node name"));
        }
        let cpus = f[2]
            .trim_end_matches('+')
            .parse()
            .map_err(|_| err("bad CPU count"))?;
        let memory_mb = f[3]
            .trim_end_matches('+')
            .parse()
            .map_err(|_| err("bad memory size"))?;
        let gpus = parse_gpus(f[4]).map_err(|e| err(&e))?;
        nodes.push(Node {
            name: f[0].to_string(),
            state: f[1].to_string(),
            cpus,
            memory_mb,
            gpus,
            partition: f[5].trim_end_matches('*').to_string(),
        });
    }
    Ok(nodes)
}

/// The number of GPUs in a gres string (`gpu:2`, `gpu:a100:4(S:0-1),mps:400`,
/// `(null)`): the sum over its `gpu` entries; a `gpu` entry without a count is one.
pub fn parse_gpus(gres: &str) -> Result<u32, String> {
    let gres = gres.trim();
    if gres.is_empty() || gres == "(null)" {
        return Ok(0);
    }
    let mut total = 0u32;
    for entry in split_top_level(gres) {
        // Drop the socket binding: `gpu:a100:4(S:0-1)` → `gpu:a100:4`.
        let entry = entry.split('(').next().unwrap_or("").trim();
        let mut parts = entry.split(':');
        if parts.next() != Some("gpu") {
            continue;
        }
        let rest: Vec<&str> = parts.collect();
        let count = match rest.last() {
            None => 1,
            Some(last) => match last.parse::<u32>() {
                Ok(n) => n,
                // `gpu:a100`: a type without a count.
                Err(_) if rest.len() == 1 => 1,
                Err(_) => return Err(format!("bad GPU count in `{entry}`")),
            },
        };
        total = total
            .checked_add(count)
            .ok_or_else(|| format!("GPU count overflows in `{gres}`"))?;
    }
    Ok(total)
}

/// Splits at commas outside parentheses (`gpu:2(S:0,1),mps:4` → two entries).
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded on the one-node test cluster.
    #[test]
    fn recorded() {
        assert_eq!(
            parse_sinfo(include_str!("testdata/sinfo.txt")).unwrap(),
            vec![Node {
                name: "localhost".into(),
                state: "idle".into(),
                cpus: 2,
                memory_mb: 1024,
                gpus: 2,
                partition: "debug".into(),
            }]
        );
    }

    #[test]
    fn gres_forms() {
        for (gres, n) in [
            ("gpu:2", 2),
            ("gpu:a100:4(S:0-1)", 4),
            ("gpu:a100:4(S:0,1)", 4),
            ("gpu:a100:2,gpu:v100:1", 3),
            ("gpu:a100:4(S:0-1),mps:400", 4),
            ("shard:4", 0),
            ("(null)", 0),
            ("", 0),
            ("gpu", 1),
            ("gpu:a100", 1),
        ] {
            assert_eq!(parse_gpus(gres), Ok(n), "{gres}");
        }
        assert!(parse_gpus("gpu:a100:x").is_err());
    }

    #[test]
    fn odd_lines() {
        let out = "NODELIST|STATE|CPUS|MEMORY|GRES|PARTITION\n\n\
                   n1|down*|64+|257000+|(null)|gpu   \n\
                   n2|drained|8|1000|gpu:a100:4(S:0-1)|batch*\n";
        let n = parse_sinfo(out).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!((n[0].cpus, n[0].memory_mb, n[0].gpus), (64, 257000, 0));
        assert_eq!(n[0].state, "down*");
        assert_eq!(n[0].partition, "gpu");
        assert_eq!((n[1].gpus, n[1].partition.as_str()), (4, "batch"));
        for bad in [
            "n1|idle|x|1|(null)|p",
            "n1|idle|1|1|(null)",
            "|idle|1|1|(null)|p",
            "n1|idle|1|1|gpu:x:y|p",
        ] {
            let e = parse_sinfo(bad).unwrap_err();
            assert_eq!(e.line, bad);
        }
    }
}
