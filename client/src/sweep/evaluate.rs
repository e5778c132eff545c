//! The `[[evaluate]]` tables of a sweep file: once the sweep's trials have
//! ended, each configuration's best kept weights are measured on these hosts
//! (as `vovctl evaluate` does), so one file trains on the GPUs and times the
//! winners on the hardware they ship on.

use vov_spec::measures::{self, Measures};

use super::error::SweepError;

/// The section name.
pub const SECTION: &str = "evaluate";

/// The keys of one table.
const KEYS: [&str; 3] = ["hosts", "measure", "threads"];

/// One `[[evaluate]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluateDef {
    /// Hosts to evaluate on (`host:port` or URLs; the sweep's credentials).
    pub hosts: Vec<String>,
    /// What to measure.
    pub measure: Measures,
    /// Compute threads on each host (`None`: a slot's).
    pub threads: Option<u32>,
}

fn strings(path: &str, v: &toml::Value) -> Result<Vec<String>, SweepError> {
    let items = v.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
        SweepError::key(
            path,
            format!("expected a non-empty list of strings, got {v}"),
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_str().map(str::to_string).ok_or_else(|| {
                SweepError::key(
                    format!("{path}[{i}]"),
                    format!("expected a string, got {x}"),
                )
            })
        })
        .collect()
}

fn one(path: &str, v: &toml::Value) -> Result<EvaluateDef, SweepError> {
    let t = v
        .as_table()
        .ok_or_else(|| SweepError::key(path, format!("expected a table, got {v}")))?;
    if let Some(k) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(SweepError::key(
            format!("{path}.{k}"),
            format!("unknown key (known: {})", KEYS.join(", ")),
        ));
    }
    let hosts_path = format!("{path}.hosts");
    let hosts = t
        .get("hosts")
        .ok_or_else(|| SweepError::key(&hosts_path, "required: the hosts to evaluate on"))?;
    let hosts = strings(&hosts_path, hosts)?;
    let measure_path = format!("{path}.measure");
    let measure = match t.get("measure") {
        None => Measures::parse(measures::ALL),
        Some(v) => Measures::parse(&strings(&measure_path, v)?.join(",")),
    }
    .map_err(|e| SweepError::key(&measure_path, e))?;
    let threads = match t.get("threads") {
        None => None,
        Some(v) => match v.as_integer() {
            Some(n @ 1..=1024) => Some(n as u32),
            _ => {
                return Err(SweepError::key(
                    format!("{path}.threads"),
                    format!("expected an integer between 1 and 1024, got {v}"),
                ))
            }
        },
    };
    Ok(EvaluateDef {
        hosts,
        measure,
        threads,
    })
}

/// Reads the `evaluate` value of a sweep file: an array of tables.
pub fn parse(v: &toml::Value) -> Result<Vec<EvaluateDef>, SweepError> {
    let items = v.as_array().ok_or_else(|| {
        SweepError::key(SECTION, "expected [[evaluate]] tables (an array of tables)")
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| one(&format!("{SECTION}[{i}]"), x))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<EvaluateDef>, SweepError> {
        let doc: toml::Table = text.parse().unwrap();
        parse(&doc[SECTION])
    }

    #[test]
    fn tables_read_with_defaults_and_errors_name_the_key() {
        let defs = read(
            "[[evaluate]]\nhosts = [\"cpu:7070\"]\nmeasure = [\"batch1\"]\nthreads = 2\n\
             [[evaluate]]\nhosts = [\"gpu:7070\"]\n",
        )
        .unwrap();
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].threads, Some(2));
        assert!(defs[0].measure.timings.batch1 && !defs[0].measure.accuracy);
        assert_eq!(defs[1].measure, Measures::parse(measures::ALL).unwrap());
        let e = read("[[evaluate]]\nmeasure = [\"batch1\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("evaluate[0].hosts: required"), "{e}");
        let e = read("[[evaluate]]\nhosts = [\"a:1\"]\nmeasure = [\"speed\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("evaluate[0].measure") && e.contains("'speed'"),
            "{e}"
        );
        let e = read("[[evaluate]]\nhosts = [\"a:1\"]\nhost = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("evaluate[0].host:") && e.contains("known: hosts"),
            "{e}"
        );
        let e = read("evaluate = 3\n").unwrap_err().to_string();
        assert!(e.contains("[[evaluate]]"), "{e}");
    }
}
