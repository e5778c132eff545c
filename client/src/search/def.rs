//! The `[search]` table of a sweep file, checked into a [`SearchDef`].

use serde::{Deserialize, Serialize};

use crate::sweep::SweepError;
use vov_proto::pb;

/// The sweep file's table name.
pub const SECTION: &str = "search";

/// The kinds of search, as the file spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchKind {
    /// Every configuration runs its full epochs.
    #[default]
    Grid,
    /// Asynchronous successive halving (Li et al., MLSys 2020).
    Asha,
    /// Median stopping on the other trials' values at the same epoch.
    Median,
}

impl SearchKind {
    const ALL: [SearchKind; 3] = [SearchKind::Grid, SearchKind::Asha, SearchKind::Median];

    /// Its name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchKind::Grid => "grid",
            SearchKind::Asha => "asha",
            SearchKind::Median => "median",
        }
    }

    /// Whether it stops or pauses trials before their full epochs.
    pub fn is_adaptive(self) -> bool {
        self != SearchKind::Grid
    }
}

/// The value a search ranks trials by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Validation accuracy (higher is better by default).
    #[default]
    ValAcc,
    /// Validation loss (lower is better by default).
    ValLoss,
}

impl Metric {
    const ALL: [Metric; 2] = [Metric::ValAcc, Metric::ValLoss];

    /// Its name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ValAcc => "val_acc",
            Metric::ValLoss => "val_loss",
        }
    }

    /// Its value in an epoch's metrics.
    pub fn of(self, m: &pb::EpochMetrics) -> f64 {
        match self {
            Metric::ValAcc => m.val_acc,
            Metric::ValLoss => m.val_loss,
        }
    }

    /// The direction that is better when the file gives no `mode`.
    pub fn default_mode(self) -> Mode {
        match self {
            Metric::ValAcc => Mode::Max,
            Metric::ValLoss => Mode::Min,
        }
    }
}

/// Which direction of the metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Higher is better.
    Max,
    /// Lower is better.
    Min,
}

impl Mode {
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Mode::Max => a > b,
            Mode::Min => a < b,
        }
    }

    /// The better of two values.
    pub fn best(self, a: f64, b: f64) -> f64 {
        if self.better(b, a) {
            b
        } else {
            a
        }
    }
}

/// A checked `[search]` table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchDef {
    /// The kind.
    pub kind: SearchKind,
    /// The value trials are ranked by.
    pub metric: Metric,
    /// Which direction is better.
    pub mode: Mode,
    /// ASHA: epochs of the first rung (r).
    pub min_epochs: u32,
    /// ASHA: the reduction factor (eta): a rung keeps its best 1/eta.
    pub reduction_factor: u32,
    /// Median: epochs a trial runs before the rule may stop it.
    pub grace_epochs: u32,
    /// Median: trials that must have reached an epoch before its median counts.
    pub min_trials: u32,
}

impl Default for SearchDef {
    fn default() -> Self {
        SearchDef {
            kind: SearchKind::Grid,
            metric: Metric::ValAcc,
            mode: Mode::Max,
            min_epochs: 1,
            reduction_factor: 3,
            grace_epochs: 1,
            min_trials: 3,
        }
    }
}

/// The keys of `[search]`: name, the kind it belongs to (`None`: every kind)
/// and meaning (the README's table is made from these, with the defaults of
/// [`SearchDef::default`]).
const KEYS: &[(&str, Option<SearchKind>, &str)] = &[
    ("kind", None, "grid (every trial to its full epochs), asha or median"),
    ("metric", None, "what trials are ranked by: val_acc or val_loss"),
    ("mode", None, "max or min: which direction of the metric is better"),
    ("min_epochs", Some(SearchKind::Asha), "epochs of the first rung (r), at most a trial's epochs"),
    ("reduction_factor", Some(SearchKind::Asha), "eta, at least 2: rungs at r, r*eta, r*eta^2, ... below a trial's epochs, then its epochs; each rung promotes its best 1/eta"),
    ("grace_epochs", Some(SearchKind::Median), "epochs a trial runs before the median rule may stop it"),
    ("min_trials", Some(SearchKind::Median), "other trials that must have reached an epoch before its median counts"),
];

/// The `[search]` keys as a Markdown table, for the README.
pub fn keys_markdown() -> String {
    let mut out = String::from("| key | kind | default | meaning |\n|---|---|---|---|\n");
    let d = SearchDef::default();
    for (name, kind, meaning) in KEYS {
        let default = match *name {
            "kind" => d.kind.as_str().to_string(),
            "metric" => d.metric.as_str().to_string(),
            "mode" => "max for val_acc, min for val_loss".to_string(),
            "min_epochs" => d.min_epochs.to_string(),
            "reduction_factor" => d.reduction_factor.to_string(),
            "grace_epochs" => d.grace_epochs.to_string(),
            _ => d.min_trials.to_string(),
        };
        let kind = kind.map_or("all", SearchKind::as_str);
        out += &format!("| `{name}` | {kind} | `{default}` | {meaning} |\n");
    }
    out
}

fn path(key: &str) -> String {
    format!("{SECTION}.{key}")
}

fn word<'a>(key: &str, v: &'a toml::Value) -> Result<&'a str, SweepError> {
    v.as_str()
        .ok_or_else(|| SweepError::key(path(key), format!("expected a string, got {v}")))
}

fn one_of<T: Copy>(
    key: &str,
    v: &toml::Value,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, SweepError> {
    let w = word(key, v)?;
    all.iter().copied().find(|x| name(*x) == w).ok_or_else(|| {
        let known: Vec<&str> = all.iter().map(|x| name(*x)).collect();
        SweepError::key(
            path(key),
            format!("unknown value \"{w}\" (known: {})", known.join(", ")),
        )
    })
}

fn count(key: &str, v: &toml::Value, min: i64) -> Result<u32, SweepError> {
    match v.as_integer() {
        Some(i) if (min..=100_000).contains(&i) => Ok(i as u32),
        Some(i) => Err(SweepError::key(
            path(key),
            format!("{i} is out of range: must be between {min} and 100000"),
        )),
        None => Err(SweepError::key(
            path(key),
            format!("expected an integer, got {v}"),
        )),
    }
}

/// Reads the `[search]` table (the default, a grid, when the file has none).
pub fn parse(t: Option<&toml::Table>) -> Result<SearchDef, SweepError> {
    let mut def = SearchDef::default();
    let Some(t) = t else {
        return Ok(def);
    };
    let get = |k: &str| t.get(k);
    if let Some(v) = get("kind") {
        def.kind = one_of("kind", v, &SearchKind::ALL, SearchKind::as_str)?;
    }
    for k in t.keys() {
        match KEYS.iter().find(|(name, ..)| name == k) {
            None => {
                let known: Vec<&str> = KEYS.iter().map(|(n, ..)| *n).collect();
                return Err(SweepError::key(
                    path(k),
                    format!("unknown key (known: {})", known.join(", ")),
                ));
            }
            Some((_, Some(kind), ..)) if *kind != def.kind => {
                return Err(SweepError::key(
                    path(k),
                    format!(
                        "applies to kind = \"{}\" only (this search is \"{}\")",
                        kind.as_str(),
                        def.kind.as_str()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(v) = get("metric") {
        def.metric = one_of("metric", v, &Metric::ALL, Metric::as_str)?;
    }
    def.mode = match get("mode") {
        Some(v) => one_of("mode", v, &[Mode::Max, Mode::Min], |m| match m {
            Mode::Max => "max",
            Mode::Min => "min",
        })?,
        None => def.metric.default_mode(),
    };
    if let Some(v) = get("min_epochs") {
        def.min_epochs = count("min_epochs", v, 1)?;
    }
    if let Some(v) = get("reduction_factor") {
        def.reduction_factor = count("reduction_factor", v, 2)?;
    }
    if let Some(v) = get("grace_epochs") {
        def.grace_epochs = count("grace_epochs", v, 0)?;
    }
    if let Some(v) = get("min_trials") {
        def.min_trials = count("min_trials", v, 1)?;
    }
    Ok(def)
}

impl SearchDef {
    /// Checks the search against a trial's epochs (`origin`: where they were set):
    /// ASHA's first rung must fit in them.
    pub fn check_epochs(&self, epochs: u32, origin: &str) -> Result<(), SweepError> {
        if self.kind == SearchKind::Asha && self.min_epochs > epochs {
            return Err(SweepError::key(
                path("min_epochs"),
                format!(
                    "{} is above the {epochs} epochs of a trial ({origin}): the first rung must fit",
                    self.min_epochs
                ),
            ));
        }
        Ok(())
    }
}
