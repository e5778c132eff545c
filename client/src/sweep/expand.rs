//! From a checked sweep to its trials: grid points (cartesian product over `base`),
//! each with `samples` random draws when `[random]` is present, the explicit
//! `[[trial]]`s, `--set` overrides, then the typed [`TrialSpec`] of each (defaults
//! from `vov-spec`, every key checked, errors naming the key path that set it) and
//! `repeats` seeds of it. Duplicates (the same resolved trial twice) are kept once.

use std::collections::{BTreeMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vov_proto::pb;
use vov_spec::{identity, KeyDef, Kind, TrialSpec, Value, KEYS};

use super::error::SweepError;
use super::file::{Config, Dist, RandomDef, Setting, SweepDef};

/// One trial of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Its id (hash of the canonical spec, seed and repeat index).
    pub id: String,
    /// The id shared by its repeats.
    pub config_id: String,
    /// Repeat index, from 0.
    pub repeat: u32,
    /// Short description: the model and the keys that vary across the sweep.
    pub label: String,
    /// The typed, checked, seeded spec.
    pub trial: TrialSpec,
    /// The spec as sent to a daemon.
    pub spec: pb::TrialSpec,
}

fn merge(into: &mut Config, from: &Config) {
    for (k, v) in from {
        into.insert(k, v.clone());
    }
}

fn grid_points(base: &Config, grid: &[(&'static KeyDef, Vec<Setting>)]) -> Vec<Config> {
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

/// The typed spec of one configuration; errors name the key path that set the
/// bad value.
fn typed(c: &Config) -> Result<TrialSpec, SweepError> {
    let Some(Setting {
        value: Value::Name(model),
        origin,
    }) = c.get("model")
    else {
        return Err(SweepError::key(
            "base.model",
            "required: every trial needs a model (a preset name)",
        ));
    };
    let model = model
        .parse()
        .map_err(|e: vov_spec::names::UnknownName| SweepError::key(origin, e.to_string()))?;
    let mut spec = TrialSpec::new(model);
    for (name, s) in c {
        let def =
            vov_spec::keys::find(name).ok_or_else(|| SweepError::key(&s.origin, "unknown key"))?;
        def.apply(&mut spec, &s.value)
            .map_err(|e| SweepError::key(&s.origin, e))?;
    }
    spec.validate().map_err(|e| {
        let origin = c
            .get(e.key.as_str())
            .map_or_else(|| format!("base.{}", e.key), |s| s.origin.clone());
        SweepError::key(origin, e.reason)
    })?;
    Ok(spec)
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

/// Each spec's label: the model and the keys whose values differ across specs.
fn labels(specs: &[TrialSpec]) -> Vec<String> {
    let mut seen: BTreeMap<&str, HashSet<String>> = BTreeMap::new();
    for s in specs {
        for k in KEYS {
            let v = (k.get)(s).map_or_else(String::new, |v| v.to_string());
            seen.entry(k.name).or_default().insert(v);
        }
    }
    // In name order, as labels have always been written.
    let mut varying: Vec<&KeyDef> = KEYS
        .iter()
        .filter(|k| k.name != "model" && seen[k.name].len() > 1)
        .collect();
    varying.sort_by_key(|k| k.name);
    specs
        .iter()
        .map(|s| {
            let rest: Vec<String> = varying
                .iter()
                .filter_map(|k| (k.get)(s).map(|v| format!("{}={v}", k.name)))
                .collect();
            if rest.is_empty() {
                s.model.to_string()
            } else {
                format!("{} {}", s.model, rest.join(" "))
            }
        })
        .collect()
}

/// How many trials `def` expands to at most (before duplicates are dropped), and
/// the product that makes the count, in words.
pub fn count(def: &SweepDef) -> (u128, String) {
    let mut factors: Vec<String> = def
        .grid
        .iter()
        .map(|(k, v)| format!("{} (grid.{})", v.len(), k.name))
        .collect();
    let mut points = def
        .grid
        .iter()
        .fold(1u128, |n, (_, v)| n.saturating_mul(v.len() as u128));
    if let Some(r) = &def.random {
        factors.push(format!("{} (random.samples)", r.samples));
        points = points.saturating_mul(u128::from(r.samples));
    }
    let mut product = if factors.is_empty() {
        String::from("1 point")
    } else {
        factors.join(" x ")
    };
    if !def.trials.is_empty() {
        product = format!("({product} + {} [[trial]])", def.trials.len());
        points = points.saturating_add(def.trials.len() as u128);
    }
    product.push_str(&format!(" x {} (repeats)", def.repeats));
    (points.saturating_mul(u128::from(def.repeats)), product)
}

/// Refuses a sweep bigger than its `max_trials`, before anything is expanded.
fn check_size(def: &SweepDef) -> Result<(), SweepError> {
    let (trials, product) = count(def);
    if trials > u128::from(def.max_trials) {
        return Err(SweepError::TooLarge {
            product,
            trials,
            max: def.max_trials,
        });
    }
    Ok(())
}

/// Expands a sweep into its trials; a sweep bigger than its `max_trials` is
/// refused before any trial is built.
pub fn expand(def: &SweepDef, overrides: &Config) -> Result<Vec<Trial>, SweepError> {
    check_size(def)?;
    let specs = configs(def, overrides)
        .iter()
        .map(typed)
        .collect::<Result<Vec<_>, _>>()?;
    let labels = labels(&specs);
    let mut seen = HashSet::new();
    let mut trials = Vec::new();
    for (spec, label) in specs.into_iter().zip(labels) {
        let config_id = identity::config_id(&spec);
        for repeat in 0..def.repeats {
            let mut trial = spec.clone();
            trial.seed = identity::seed(def.seed, &config_id, repeat);
            let id = identity::trial_id(&trial, repeat);
            if !seen.insert(id.clone()) {
                continue;
            }
            def.search
                .check_epochs(trial.epochs as u32, &format!("trial {label}"))?;
            trials.push(Trial {
                spec: pb::TrialSpec::from(&trial),
                trial,
                id,
                config_id: config_id.clone(),
                repeat,
                label: label.clone(),
            });
        }
    }
    Ok(trials)
}
