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
pub mod evaluate;
pub mod expand;
pub mod file;
pub mod params;
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
    if key == "name" {
        let name = raw.as_str().unwrap_or_default().to_string();
        file::check_name(&path, &name)?;
        def.name = name;
        return Ok(());
    }
    match params::find(key) {
        Some(p) => p.apply(def, &path, &raw)?,
        None => {
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
