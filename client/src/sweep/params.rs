//! The sweep-level keys (`seed`, `repeats`, `max_attempts`, `retry_failed`,
//! `max_trials`): written at the top of a sweep file or given with `--set`. Each
//! one's range, default and meaning is defined here, once.

use super::error::SweepError;
use super::file::SweepDef;

/// The trials a sweep may expand to unless its file raises `max_trials`.
pub const DEFAULT_MAX_TRIALS: i64 = 100_000;

/// A sweep-level value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// An integer key's value.
    Int(i64),
    /// A boolean key's value.
    Bool(bool),
}

/// One sweep-level key.
#[derive(Debug)]
pub struct SweepParam {
    /// Its name in the file and with `--set`.
    pub name: &'static str,
    /// What it does.
    pub help: &'static str,
    /// Its range (`None`: a boolean).
    pub range: Option<(i64, i64)>,
    /// Its value when not given.
    pub default: Scalar,
    set: fn(&mut SweepDef, Scalar),
}

fn int(v: Scalar) -> i64 {
    match v {
        Scalar::Int(i) => i,
        Scalar::Bool(b) => i64::from(b),
    }
}

/// `seed`: seed of the trial seeds and random draws.
pub const SEED: SweepParam = SweepParam {
    name: "seed",
    help: "seed of the trial seeds and random draws",
    range: Some((0, i64::MAX)),
    default: Scalar::Int(0),
    set: |d, v| d.seed = int(v) as u64,
};

/// `repeats`: seeds per configuration.
pub const REPEATS: SweepParam = SweepParam {
    name: "repeats",
    help: "seeds per configuration",
    range: Some((1, 1000)),
    default: Scalar::Int(1),
    set: |d, v| d.repeats = int(v) as u32,
};

/// `max_attempts`: most placements of one trial (host losses and retries count).
pub const MAX_ATTEMPTS: SweepParam = SweepParam {
    name: "max_attempts",
    help: "most placements of one trial (host losses and retries count)",
    range: Some((1, 100)),
    default: Scalar::Int(3),
    set: |d, v| d.max_attempts = int(v) as u32,
};

/// `retry_failed`: place crashed, out-of-memory, killed and disk-full trials again.
pub const RETRY_FAILED: SweepParam = SweepParam {
    name: "retry_failed",
    help: "place crashed, out-of-memory, killed and disk-full trials again",
    range: None,
    default: Scalar::Bool(false),
    set: |d, v| d.retry_failed = v == Scalar::Bool(true),
};

/// `max_trials`: most trials the sweep may expand to, checked before expanding.
pub const MAX_TRIALS: SweepParam = SweepParam {
    name: "max_trials",
    help: "most trials the sweep may expand to, checked before expanding",
    range: Some((1, 100_000_000)),
    default: Scalar::Int(DEFAULT_MAX_TRIALS),
    set: |d, v| d.max_trials = int(v) as u64,
};

/// Every sweep-level key.
pub const PARAMS: &[SweepParam] = &[SEED, REPEATS, MAX_ATTEMPTS, RETRY_FAILED, MAX_TRIALS];

/// The key named `name`.
pub fn find(name: &str) -> Option<&'static SweepParam> {
    PARAMS.iter().find(|p| p.name == name)
}

/// The names of the sweep-level keys.
pub fn names() -> impl Iterator<Item = &'static str> {
    PARAMS.iter().map(|p| p.name)
}

impl SweepParam {
    /// Checks `v` (set at `path`) and stores it in `def`.
    pub fn apply(&self, def: &mut SweepDef, path: &str, v: &toml::Value) -> Result<(), SweepError> {
        let value = match (self.range, v) {
            (None, toml::Value::Boolean(b)) => Scalar::Bool(*b),
            (None, _) => {
                return Err(SweepError::key(
                    path,
                    format!("expected true or false, got {v}"),
                ))
            }
            (Some((min, max)), toml::Value::Integer(i)) if (min..=max).contains(i) => {
                Scalar::Int(*i)
            }
            (Some((min, max)), toml::Value::Integer(i)) => {
                return Err(SweepError::key(
                    path,
                    format!("{i} is out of range: must be between {min} and {max}"),
                ))
            }
            (Some(_), _) => {
                return Err(SweepError::key(
                    path,
                    format!("expected an integer, got {v}"),
                ))
            }
        };
        (self.set)(def, value);
        Ok(())
    }

    /// The default of an integer key (0 for a boolean one).
    pub const fn default_int(&self) -> i64 {
        match self.default {
            Scalar::Int(i) => i,
            Scalar::Bool(b) => b as i64,
        }
    }

    /// The default of a boolean key.
    pub const fn default_bool(&self) -> bool {
        matches!(self.default, Scalar::Bool(true))
    }

    /// Stores the default in `def`.
    pub fn apply_default(&self, def: &mut SweepDef) {
        (self.set)(def, self.default);
    }
}

/// The README's table of sweep-level keys.
pub fn markdown() -> String {
    let mut out = String::from("| key | default | range | meaning |\n|---|---|---|---|\n");
    for p in PARAMS {
        let (default, range) = match (p.default, p.range) {
            (Scalar::Bool(b), _) => (b.to_string(), "true or false".to_string()),
            (Scalar::Int(i), Some((lo, hi))) => (i.to_string(), format!("{lo}-{hi}")),
            (Scalar::Int(i), None) => (i.to_string(), String::new()),
        };
        out.push_str(&format!(
            "| `{}` | `{default}` | {range} | {} |\n",
            p.name, p.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_in_range() {
        for p in PARAMS {
            match (p.range, p.default) {
                (Some((lo, hi)), Scalar::Int(d)) => assert!((lo..=hi).contains(&d), "{}", p.name),
                (None, Scalar::Bool(_)) => {}
                _ => panic!("{}: default of the wrong kind", p.name),
            }
        }
    }
}
