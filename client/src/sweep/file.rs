//! Reading a sweep file: TOML into a checked [`SweepDef`], every value typed and
//! ranged, every error naming its key path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::SweepError;
use super::params;
use super::value::{is_list, key_def, typed};
use vov_spec::{KeyDef, Value};

/// A value and where it was set (`base.epochs`, `grid.lr[2]`, `--set epochs`).
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The value.
    pub value: Value,
    /// Its key path in the file (or `--set`, or `default`).
    pub origin: String,
}

/// Key values of one configuration.
pub type Config = BTreeMap<&'static str, Setting>;

/// A distribution to sample a key from.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    /// Uniform in `[lo, hi)`.
    Uniform(f64, f64),
    /// Log-uniform in `[lo, hi)`, both above 0.
    LogUniform(f64, f64),
    /// One of the values, uniformly.
    Choice(Vec<Value>),
}

/// The `[random]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomDef {
    /// Samples per grid point.
    pub samples: u32,
    /// Seed of the draws.
    pub seed: u64,
    /// Keys and their distributions, in file order.
    pub dists: Vec<(&'static KeyDef, Dist, String)>,
}

/// The `[hosts]` table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostsDef {
    /// `host:port` or `http(s)://` URLs.
    pub addresses: Vec<String>,
    /// Bearer token file.
    pub token_file: Option<PathBuf>,
    /// CA bundle for TLS.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate, when hosts require one.
    pub tls_cert: Option<PathBuf>,
    /// Client key.
    pub tls_key: Option<PathBuf>,
}

/// A checked sweep file.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepDef {
    /// Sweep name (its id on the hosts and in the store).
    pub name: String,
    /// Seed of the trial seeds and random draws.
    pub seed: u64,
    /// Seeds per configuration.
    pub repeats: u32,
    /// Most placements of one trial (host losses count).
    pub max_attempts: u32,
    /// Whether crashed or out-of-memory trials are retried.
    pub retry_failed: bool,
    /// Most trials the sweep may expand to.
    pub max_trials: u64,
    /// Defaults for every trial.
    pub base: Config,
    /// Grid keys and their values, in file order.
    pub grid: Vec<(&'static KeyDef, Vec<Setting>)>,
    /// Explicit extra trials (on top of `base`).
    pub trials: Vec<Config>,
    /// Random search.
    pub random: Option<RandomDef>,
    /// Hosts named by the file.
    pub hosts: Option<HostsDef>,
    /// The file's `[slurm]` table, checked when the Slurm backend resolves it
    /// (`backend::slurm::config`).
    pub slurm: Option<toml::Table>,
    /// How trials are started, continued and stopped (`[search]`).
    pub search: crate::search::SearchDef,
    /// Where the best kept weights are measured once the trials end
    /// (`[[evaluate]]`).
    pub evaluate: Vec<super::evaluate::EvaluateDef>,
}

/// The top-level tables (beside `name` and the sweep-level keys of [`params`]).
const SECTIONS: &[&str] = &[
    "base",
    "grid",
    "trial",
    "random",
    "hosts",
    "slurm",
    crate::search::SECTION,
    super::evaluate::SECTION,
];

fn check_top(doc: &toml::Table) -> Result<(), SweepError> {
    let known = |k: &str| k == "name" || params::find(k).is_some() || SECTIONS.contains(&k);
    match doc.keys().find(|k| !known(k)) {
        None => Ok(()),
        Some(k) => {
            let all: Vec<&str> = std::iter::once("name")
                .chain(params::names())
                .chain(SECTIONS.iter().copied())
                .collect();
            Err(SweepError::key(
                k.as_str(),
                format!("unknown top-level key (known: {})", all.join(", ")),
            ))
        }
    }
}

fn table<'a>(path: &str, v: &'a toml::Value) -> Result<&'a toml::Table, SweepError> {
    v.as_table()
        .ok_or_else(|| SweepError::key(path, format!("expected a table, got {v}")))
}

fn uint(path: &str, v: &toml::Value, min: i64, max: i64) -> Result<i64, SweepError> {
    match v.as_integer() {
        Some(i) if (min..=max).contains(&i) => Ok(i),
        Some(i) => Err(SweepError::key(
            path,
            format!("{i} is out of range: must be between {min} and {max}"),
        )),
        None => Err(SweepError::key(
            path,
            format!("expected an integer, got {v}"),
        )),
    }
}

fn string(path: &str, v: &toml::Value) -> Result<String, SweepError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| SweepError::key(path, format!("expected a string, got {v}")))
}

/// Checks a sweep name: 1-64 characters of `[A-Za-z0-9._-]`.
pub fn check_name(path: &str, name: &str) -> Result<(), SweepError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SweepError::key(
            path,
            format!("\"{name}\" must be 1-64 characters of A-Z a-z 0-9 . _ -"),
        ))
    }
}

/// Reads the settings of one table (`base`, `trial[i]`) into a configuration.
pub fn config(prefix: &str, t: &toml::Table) -> Result<Config, SweepError> {
    let mut out = Config::new();
    for (k, v) in t {
        let path = format!("{prefix}.{k}");
        let def = key_def(&path, k)?;
        out.insert(
            def.name,
            Setting {
                value: typed(&path, def, v)?,
                origin: path,
            },
        );
    }
    Ok(out)
}

fn grid(t: &toml::Table) -> Result<Vec<(&'static KeyDef, Vec<Setting>)>, SweepError> {
    let mut out = Vec::new();
    for (k, v) in t {
        let path = format!("grid.{k}");
        let def = key_def(&path, k)?;
        if !def.identity {
            return Err(SweepError::key(
                path,
                "cannot be a grid axis: it is not part of a trial's identity (set it in [base])",
            ));
        }
        let toml::Value::Array(items) = v else {
            let want = if is_list(def) {
                "a list of lists"
            } else {
                "a list of values"
            };
            return Err(SweepError::key(
                path,
                format!("a grid key takes {want}, got {v}"),
            ));
        };
        if items.is_empty() {
            return Err(SweepError::key(path, "empty grid: give at least one value"));
        }
        let values = items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let p = format!("{path}[{i}]");
                Ok(Setting {
                    value: typed(&p, def, x)?,
                    origin: p,
                })
            })
            .collect::<Result<Vec<_>, SweepError>>()?;
        out.push((def, values));
    }
    Ok(out)
}

fn bounds(path: &str, def: &KeyDef, v: &toml::Value) -> Result<(f64, f64), SweepError> {
    let pair = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| SweepError::key(path, format!("expected [low, high], got {v}")))?;
    let num = |i: usize| -> Result<f64, SweepError> {
        let p = format!("{path}[{i}]");
        match typed(&p, def, &pair[i])? {
            Value::Float(x) => Ok(x),
            Value::Int(x) => Ok(x as f64),
            _ => Err(SweepError::key(p, "expected a number")),
        }
    };
    let (lo, hi) = (num(0)?, num(1)?);
    if lo >= hi {
        return Err(SweepError::key(
            path,
            format!("low bound {lo} must be below high bound {hi}"),
        ));
    }
    Ok((lo, hi))
}

fn dist(path: &str, def: &'static KeyDef, v: &toml::Value) -> Result<Dist, SweepError> {
    let t = table(path, v)?;
    if t.len() != 1 {
        return Err(SweepError::key(
            path,
            "give exactly one of uniform = [lo, hi], loguniform = [lo, hi], choice = [...]",
        ));
    }
    let (kind, arg) = t
        .iter()
        .next()
        .ok_or_else(|| SweepError::key(path, "empty table"))?;
    let p = format!("{path}.{kind}");
    let numeric = def.kind.is_numeric();
    match kind.as_str() {
        "uniform" | "loguniform" if !numeric => Err(SweepError::key(
            p,
            format!("{} is not numeric; use choice", def.name),
        )),
        "uniform" => bounds(&p, def, arg).map(|(a, b)| Dist::Uniform(a, b)),
        "loguniform" => {
            let raw = arg.as_array().into_iter().flatten();
            if let Some(bad) = raw
                .filter_map(|x| x.as_float().or(x.as_integer().map(|i| i as f64)))
                .find(|x| *x <= 0.0)
            {
                return Err(SweepError::key(
                    p,
                    format!("bounds must be above 0 on a log scale, got {bad}"),
                ));
            }
            bounds(&p, def, arg).map(|(a, b)| Dist::LogUniform(a, b))
        }
        "choice" => {
            let items = arg
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| SweepError::key(&p, "expected a non-empty list"))?;
            items
                .iter()
                .enumerate()
                .map(|(i, x)| typed(&format!("{p}[{i}]"), def, x))
                .collect::<Result<_, _>>()
                .map(Dist::Choice)
        }
        other => Err(SweepError::key(
            p,
            format!("unknown distribution \"{other}\" (known: uniform, loguniform, choice)"),
        )),
    }
}

fn random(t: &toml::Table, sweep_seed: u64) -> Result<RandomDef, SweepError> {
    let samples = t
        .get("samples")
        .ok_or_else(|| SweepError::key("random.samples", "required"))?;
    let samples = uint("random.samples", samples, 1, 100_000)? as u32;
    let seed = t
        .get("seed")
        .map(|v| uint("random.seed", v, 0, i64::MAX))
        .transpose()?
        .map_or(sweep_seed, |s| s as u64);
    let mut dists = Vec::new();
    for (k, v) in t.iter().filter(|(k, _)| *k != "samples" && *k != "seed") {
        let path = format!("random.{k}");
        let def = key_def(&path, k)?;
        dists.push((def, dist(&path, def, v)?, path));
    }
    if dists.is_empty() {
        return Err(SweepError::key("random", "no keys to sample"));
    }
    Ok(RandomDef {
        samples,
        seed,
        dists,
    })
}

fn hosts(t: &toml::Table) -> Result<HostsDef, SweepError> {
    let mut h = HostsDef::default();
    for (k, v) in t {
        let path = format!("hosts.{k}");
        let file = || string(&path, v).map(|s| Some(PathBuf::from(s)));
        match k.as_str() {
            "addresses" => {
                let list = v.as_array().ok_or_else(|| {
                    SweepError::key(&path, format!("expected a list of addresses, got {v}"))
                })?;
                h.addresses = list
                    .iter()
                    .enumerate()
                    .map(|(i, a)| string(&format!("{path}[{i}]"), a))
                    .collect::<Result<_, _>>()?;
            }
            "token_file" => h.token_file = file()?,
            "tls_ca" => h.tls_ca = file()?,
            "tls_cert" => h.tls_cert = file()?,
            "tls_key" => h.tls_key = file()?,
            _ => {
                return Err(SweepError::key(
                    path,
                    "unknown key (known: addresses, token_file, tls_ca, tls_cert, tls_key)",
                ))
            }
        }
    }
    Ok(h)
}

/// Parses a sweep from TOML text.
pub fn parse(text: &str, file: &str) -> Result<SweepDef, SweepError> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SweepError::Syntax {
            path: file.to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
    check_top(&doc)?;
    let name = string(
        "name",
        doc.get("name")
            .ok_or_else(|| SweepError::key("name", "required"))?,
    )?;
    check_name("name", &name)?;
    let empty = toml::Value::Table(toml::Table::new());
    let mut def = SweepDef {
        name,
        seed: 0,
        repeats: 0,
        max_attempts: 0,
        retry_failed: false,
        max_trials: 0,
        base: config("base", table("base", doc.get("base").unwrap_or(&empty))?)?,
        grid: grid(table("grid", doc.get("grid").unwrap_or(&empty))?)?,
        trials: match doc.get("trial") {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let path = format!("trial[{i}]");
                    config(&path, table(&path, t)?)
                })
                .collect::<Result<_, _>>()?,
            Some(v) => {
                return Err(SweepError::key(
                    "trial",
                    format!("expected [[trial]] tables, got {v}"),
                ))
            }
        },
        random: None,
        hosts: doc
            .get("hosts")
            .map(|v| hosts(table("hosts", v)?))
            .transpose()?,
        slurm: doc
            .get("slurm")
            .map(|v| table("slurm", v).cloned())
            .transpose()?,
        search: crate::search::parse(
            doc.get(crate::search::SECTION)
                .map(|v| table(crate::search::SECTION, v))
                .transpose()?,
        )?,
        evaluate: doc
            .get(super::evaluate::SECTION)
            .map(super::evaluate::parse)
            .transpose()?
            .unwrap_or_default(),
    };
    for p in params::PARAMS {
        match doc.get(p.name) {
            Some(v) => p.apply(&mut def, p.name, v)?,
            None => p.apply_default(&mut def),
        }
    }
    def.random = doc
        .get("random")
        .map(|v| random(table("random", v)?, def.seed))
        .transpose()?;
    Ok(def)
}

/// Reads and parses a sweep file.
pub fn read(path: &Path) -> Result<SweepDef, SweepError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SweepError::Read {
        path: display.clone(),
        message: e.to_string(),
    })?;
    parse(&text, &display)
}
