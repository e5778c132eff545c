//! Sweep files: TOML in, checked trials out.
//!
//! ```toml
//! name = "regularisation"        # the sweep's id
//! seed = 0                       # trial seeds and random draws derive from it
//! repeats = 2                    # seeds per configuration
//!
//! [base]                         # every trial starts from these (see `keys`)
//! model = "vovnet-39"
//! epochs = 100
//!
//! [grid]                         # cartesian product
//! weight_decay = [0.0, 1e-4]
//! augmentation = ["none", "standard"]
//!
//! [random]                       # `samples` draws per grid point
//! samples = 4
//! lr = { loguniform = [1e-4, 1e-2] }
//!
//! [[trial]]                      # explicit extra trials
//! model = "vovnet-57"
//!
//! [hosts]
//! addresses = ["gpu1:7070", "https://gpu2:7070"]
//! token_file = "~/.config/vov/token"
//! ```

pub mod error;
pub mod expand;
pub mod file;
pub mod value;

use std::path::Path;

pub use error::SweepError;
pub use expand::Trial;
pub use file::{Config, HostsDef, Setting, SweepDef};

/// A sweep with its trials.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The checked file (after `--set`).
    pub def: SweepDef,
    /// Its trials, in expansion order.
    pub trials: Vec<Trial>,
}

fn apply_set(def: &mut SweepDef, overrides: &mut Config, set: &str) -> Result<(), SweepError> {
    let (key, text) = set
        .split_once('=')
        .ok_or_else(|| SweepError::key("--set", format!("\"{set}\" is not key=value")))?;
    let (key, raw) = (key.trim(), value::parse_cli_value(text.trim()));
    let path = format!("--set {key}");
    let int = |min: i64, max: i64| match raw.as_integer() {
        Some(i) if (min..=max).contains(&i) => Ok(i),
        _ => Err(SweepError::key(
            &path,
            format!("{raw} must be an integer between {min} and {max}"),
        )),
    };
    match key {
        "name" => {
            let name = raw.as_str().unwrap_or_default().to_string();
            file::check_name(&path, &name)?;
            def.name = name;
        }
        "seed" => def.seed = int(0, i64::MAX)? as u64,
        "repeats" => def.repeats = int(1, 1000)? as u32,
        "max_attempts" => def.max_attempts = int(1, 100)? as u32,
        "retry_failed" => {
            def.retry_failed = raw
                .as_bool()
                .ok_or_else(|| SweepError::key(&path, "expected true or false"))?
        }
        _ => {
            let kd = value::key_def(&path, key)?;
            overrides.insert(
                kd.name,
                Setting {
                    value: value::typed(&path, kd, &raw)?,
                    origin: path,
                },
            );
        }
    }
    Ok(())
}

/// Reads a sweep file, applies `--set key=value` overrides and expands it.
pub fn load(path: &Path, sets: &[String]) -> Result<Sweep, SweepError> {
    let mut def = file::read(path)?;
    let mut overrides = Config::new();
    for s in sets {
        apply_set(&mut def, &mut overrides, s)?;
    }
    let trials = expand::expand(&def, &overrides)?;
    Ok(Sweep { def, trials })
}

/// Parses and expands sweep text (tests and tools).
pub fn from_text(text: &str, sets: &[String]) -> Result<Sweep, SweepError> {
    let mut def = file::parse(text, "<text>")?;
    let mut overrides = Config::new();
    for s in sets {
        apply_set(&mut def, &mut overrides, s)?;
    }
    let trials = expand::expand(&def, &overrides)?;
    Ok(Sweep { def, trials })
}

#[cfg(test)]
mod tests;
