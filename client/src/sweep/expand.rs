//! From a checked sweep to its trials: grid points (cartesian product over `base`),
//! each with `samples` random draws when `[random]` is present, the explicit
//! `[[trial]]`s, `--set` overrides, defaults, cross-key checks, then `repeats`
//! seeds of each. Duplicates (the same resolved trial twice) are kept once.

use std::collections::{BTreeMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vov_proto::pb;

use super::error::SweepError;
use super::file::{Config, Dist, RandomDef, Setting, SweepDef};
use super::identity;
use super::keys::{default, family, Kind, Value, KEYS};
use super::spec::trial_spec;

/// One trial of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Its id (hash of the resolved spec, seed and repeat index).
    pub id: String,
    /// The id shared by its repeats.
    pub config_id: String,
    /// Repeat index, from 0.
    pub repeat: u32,
    /// Short description: the model and the keys that vary across the sweep.
    pub label: String,
    /// The resolved configuration (defaults included).
    pub config: Config,
    /// The spec sent to a daemon.
    pub spec: pb::TrialSpec,
}

fn merge(into: &mut Config, from: &Config) {
    for (k, v) in from {
        into.insert(k, v.clone());
    }
}

fn grid_points(
    base: &Config,
    grid: &[(&'static super::keys::KeyDef, Vec<Setting>)],
) -> Vec<Config> {
    grid.iter()
        .fold(vec![base.clone()], |points, (def, values)| {
            points
                .iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut q = p.clone();
                        q.insert(def.name, v.clone());
                        q
                    })
                })
                .collect()
        })
}

fn draw(r: &RandomDef, sample: u32) -> Config {
    let mut rng = ChaCha8Rng::seed_from_u64(r.seed ^ (u64::from(sample) << 32 | 0x5eed));
    let mut out = Config::new();
    for (def, dist, origin) in &r.dists {
        let x = match dist {
            Dist::Uniform(a, b) => Value::Float(rng.random_range(*a..*b)),
            Dist::LogUniform(a, b) => Value::Float(rng.random_range(a.ln()..b.ln()).exp()),
            Dist::Choice(vs) => vs[rng.random_range(0..vs.len())].clone(),
        };
        let value = match (def.kind, x) {
            (Kind::Int { min, max }, Value::Float(f)) => {
                Value::Int((f.round() as i64).clamp(min, max))
            }
            (_, v) => v,
        };
        out.insert(
            def.name,
            Setting {
                value,
                origin: format!("{origin} (sample {sample})"),
            },
        );
    }
    out
}

fn with_defaults(mut c: Config) -> Config {
    for k in KEYS {
        if let (false, Some(v)) = (c.contains_key(k.name), default(k.name)) {
            c.insert(
                k.name,
                Setting {
                    value: v,
                    origin: "default".into(),
                },
            );
        }
    }
    c
}

/// Checks the keys of one resolved configuration against each other.
fn check(c: &Config) -> Result<(), SweepError> {
    let Some(Setting {
        value: Value::Name(model),
        ..
    }) = c.get("model")
    else {
        return Err(SweepError::key(
            "base.model",
            "required: every trial needs a model (a preset name)",
        ));
    };
    let fam = family(model);
    for k in KEYS.iter().filter(|k| k.family.is_some_and(|f| f != fam)) {
        if let Some(s) = c.get(k.name) {
            return Err(SweepError::key(
                &s.origin,
                format!(
                    "{} does not apply to {fam} models (model = {model})",
                    k.name
                ),
            ));
        }
    }
    let get = |k: &str| c.get(k).map(|s| s.value.clone());
    if get("optimizer") == Some(Value::Name("adamw".into()))
        && get("wd_mode") == Some(Value::Name("l2".into()))
        && matches!(get("weight_decay"), Some(Value::Float(w)) if w > 0.0)
    {
        let origin = c
            .get("wd_mode")
            .map_or("wd_mode".into(), |s| s.origin.clone());
        return Err(SweepError::key(
            origin,
            "l2: adamw decouples weight decay by definition; use decoupled or optimizer = adam",
        ));
    }
    Ok(())
}

/// Every configuration before repeats, with `overrides` applied last.
fn configs(def: &SweepDef, overrides: &Config) -> Vec<Config> {
    let mut out = Vec::new();
    for point in grid_points(&def.base, &def.grid) {
        match &def.random {
            Some(r) => out.extend((0..r.samples).map(|s| {
                let mut c = point.clone();
                merge(&mut c, &draw(r, s));
                c
            })),
            None => out.push(point),
        }
    }
    for t in &def.trials {
        let mut c = def.base.clone();
        merge(&mut c, t);
        out.push(c);
    }
    for c in &mut out {
        merge(c, overrides);
    }
    out
}

fn labels(configs: &[Config]) -> Vec<String> {
    let mut seen: BTreeMap<&str, HashSet<String>> = BTreeMap::new();
    for c in configs {
        for (k, s) in c {
            seen.entry(k).or_default().insert(s.value.to_string());
        }
    }
    let varying: Vec<&str> = seen
        .iter()
        .filter(|(k, v)| v.len() > 1 && **k != "model")
        .map(|(k, _)| *k)
        .collect();
    configs
        .iter()
        .map(|c| {
            let model = c
                .get("model")
                .map(|s| s.value.to_string())
                .unwrap_or_default();
            let rest: Vec<String> = varying
                .iter()
                .filter_map(|k| c.get(k).map(|s| format!("{k}={}", s.value)))
                .collect();
            if rest.is_empty() {
                model
            } else {
                format!("{model} {}", rest.join(" "))
            }
        })
        .collect()
}

/// Expands a sweep into its trials.
pub fn expand(def: &SweepDef, overrides: &Config) -> Result<Vec<Trial>, SweepError> {
    let resolved: Vec<Config> = configs(def, overrides)
        .into_iter()
        .map(with_defaults)
        .collect();
    for c in &resolved {
        check(c)?;
    }
    let labels = labels(&resolved);
    let mut seen = HashSet::new();
    let mut trials = Vec::new();
    for (config, label) in resolved.into_iter().zip(labels) {
        let config_id = identity::config_id(&config);
        for repeat in 0..def.repeats {
            let seed = identity::seed(def.seed, &config_id, repeat);
            let id = identity::trial_id(&config, seed, repeat);
            if !seen.insert(id.clone()) {
                continue;
            }
            trials.push(Trial {
                spec: trial_spec(&config, seed),
                id,
                config_id: config_id.clone(),
                repeat,
                label: label.clone(),
                config: config.clone(),
            });
        }
    }
    Ok(trials)
}
