//! The keys a trial can set, their types, ranges and defaults. One table drives
//! parsing, validation, `--set`, the help text and the conversion to a spec.
//!
//! Ranges mirror the daemon's bounds so that a mistake is caught before anything is
//! sent; model and data set names are the contract's (the daemon still has the
//! last word and rejects anything it cannot run).

use std::fmt;

/// The model presets every vovd offers.
pub const PRESETS: &[&str] = &[
    "densenet-koshian-2",
    "densenet-koshian-3",
    "densenet-koshian-4",
    "densenet-koshian-5",
    "densenet-koshian-6",
    "vovnet-27-slim",
    "vovnet-39",
    "vovnet-57",
];

/// The data set names.
pub const DATASETS: &[&str] = &["cifar10", "fashion-mnist", "synthetic"];
/// Optimizer names.
pub const OPTIMIZERS: &[&str] = &["adam", "adamw", "sgd"];
/// Weight decay modes.
pub const WD_MODES: &[&str] = &["l2", "decoupled"];
/// Augmentation policies.
pub const AUGMENTATIONS: &[&str] = &["none", "flip", "shift", "crop", "standard", "standard-crop"];
/// Timings a trial can take.
pub const MEASURES: &[&str] = &["batch1", "batch32"];
/// Device requirements.
pub const DEVICES: &[&str] = &["any", "cpu", "gpu"];

/// The type and range of a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// One of the listed names.
    Name(&'static [&'static str]),
    /// An integer in `min..=max`.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A number in `[min, max]`, open at the ends marked so.
    Float {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Whether `min` itself is excluded.
        min_open: bool,
        /// Whether `max` itself is excluded.
        max_open: bool,
    },
    /// true or false.
    Bool,
    /// A list of integers in `1..=max`.
    IntList {
        /// Largest entry.
        max: i64,
    },
    /// A list of the listed names.
    NameList(&'static [&'static str]),
}

/// A typed value of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A name.
    Name(String),
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// Integers.
    IntList(Vec<i64>),
    /// Names.
    NameList(Vec<String>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Name(s) => write!(f, "{s}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::IntList(v) => write!(
                f,
                "[{}]",
                v.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
            ),
            Value::NameList(v) => write!(f, "[{}]", v.join(",")),
        }
    }
}

/// One settable key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyDef {
    /// Its name.
    pub name: &'static str,
    /// Its type and range.
    pub kind: Kind,
    /// The family it applies to (`vovnet`, `densenet`), for model knobs.
    pub family: Option<&'static str>,
    /// What it means.
    pub help: &'static str,
}

const fn float(min: f64, max: f64, min_open: bool, max_open: bool) -> Kind {
    Kind::Float {
        min,
        max,
        min_open,
        max_open,
    }
}

const fn key(name: &'static str, kind: Kind, help: &'static str) -> KeyDef {
    KeyDef {
        name,
        kind,
        family: None,
        help,
    }
}

const fn knob(name: &'static str, kind: Kind, family: &'static str, help: &'static str) -> KeyDef {
    KeyDef {
        name,
        kind,
        family: Some(family),
        help,
    }
}

/// Every key a trial can set.
pub const KEYS: &[KeyDef] = &[
    key("model", Kind::Name(PRESETS), "model preset (required)"),
    key("dataset", Kind::Name(DATASETS), "data set [cifar10]"),
    key(
        "epochs",
        Kind::Int {
            min: 1,
            max: 10_000,
        },
        "epochs [100]",
    ),
    key(
        "batch_size",
        Kind::Int {
            min: 1,
            max: 65_536,
        },
        "minibatch size [128]",
    ),
    key("optimizer", Kind::Name(OPTIMIZERS), "optimizer [adam]"),
    key("lr", float(0.0, 10.0, true, false), "learning rate [0.001]"),
    key(
        "momentum",
        float(0.0, 1.0, false, true),
        "SGD momentum [0.9]",
    ),
    key("nesterov", Kind::Bool, "Nesterov momentum for SGD [false]"),
    key(
        "weight_decay",
        float(0.0, 1.0, false, false),
        "weight decay strength [0]",
    ),
    key(
        "wd_mode",
        Kind::Name(WD_MODES),
        "l2 (added to the loss) or decoupled [l2; decoupled for adamw]",
    ),
    key(
        "augmentation",
        Kind::Name(AUGMENTATIONS),
        "augmentation policy [standard]",
    ),
    key(
        "bn_momentum",
        float(0.0, 1.0, false, true),
        "BatchNorm momentum, Keras convention [0.99]",
    ),
    key(
        "train_limit",
        Kind::Int {
            min: 1,
            max: 10_000_000,
        },
        "first N training images [all]",
    ),
    key(
        "val_limit",
        Kind::Int {
            min: 1,
            max: 10_000_000,
        },
        "first N validation images [all]",
    ),
    key(
        "measure",
        Kind::NameList(MEASURES),
        "timings to take [[\"batch1\", \"batch32\"]]",
    ),
    key(
        "device",
        Kind::Name(DEVICES),
        "where it may run: any, cpu or gpu [any]",
    ),
    knob(
        "stem",
        Kind::IntList { max: 4096 },
        "vovnet",
        "VoVNet stem output channels",
    ),
    knob(
        "stage_widths",
        Kind::IntList { max: 4096 },
        "vovnet",
        "VoVNet CBR width per stage",
    ),
    knob(
        "stage_outputs",
        Kind::IntList { max: 8192 },
        "vovnet",
        "VoVNet OSA output channels per stage",
    ),
    knob(
        "repetitions",
        Kind::IntList { max: 64 },
        "vovnet",
        "VoVNet OSA modules per stage",
    ),
    knob(
        "osa_layers",
        Kind::Int { min: 1, max: 64 },
        "vovnet",
        "VoVNet CBR units per OSA module",
    ),
    knob(
        "growth_rate",
        Kind::Int { min: 1, max: 1024 },
        "densenet",
        "DenseNet growth rate k",
    ),
    knob(
        "blocks",
        Kind::IntList { max: 256 },
        "densenet",
        "DenseNet layers per block",
    ),
    knob(
        "bottleneck",
        Kind::Int { min: 1, max: 4096 },
        "densenet",
        "DenseNet bottleneck width",
    ),
    knob(
        "compression",
        float(0.0, 1.0, true, false),
        "densenet",
        "DenseNet transition compression",
    ),
    knob(
        "stem_channels",
        Kind::Int { min: 1, max: 4096 },
        "densenet",
        "DenseNet stem channels",
    ),
];

/// The definition of `name`, if it is a key.
pub fn find(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|k| k.name == name)
}

/// The value a key takes when nothing sets it (the published protocol), if any.
pub fn default(name: &str) -> Option<Value> {
    Some(match name {
        "dataset" => Value::Name("cifar10".into()),
        "epochs" => Value::Int(100),
        "batch_size" => Value::Int(128),
        "optimizer" => Value::Name("adam".into()),
        "lr" => Value::Float(1e-3),
        "momentum" => Value::Float(0.9),
        "nesterov" => Value::Bool(false),
        "weight_decay" => Value::Float(0.0),
        "augmentation" => Value::Name("standard".into()),
        "bn_momentum" => Value::Float(0.99),
        "measure" => Value::NameList(MEASURES.iter().map(|s| s.to_string()).collect()),
        "device" => Value::Name("any".into()),
        _ => return None,
    })
}

/// The family of a preset name.
pub fn family(model: &str) -> &'static str {
    if model.starts_with("vovnet") {
        "vovnet"
    } else {
        "densenet"
    }
}

/// Checks a float against its range; `None` when it fits, else the reason.
pub fn float_error(x: f64, kind: Kind) -> Option<String> {
    let Kind::Float {
        min,
        max,
        min_open,
        max_open,
    } = kind
    else {
        return None;
    };
    let low_ok = if min_open { x > min } else { x >= min };
    let high_ok = if max_open { x < max } else { x <= max };
    (!(x.is_finite() && low_ok && high_ok)).then(|| {
        format!(
            "must be in {}{min}, {max}{}",
            if min_open { "(" } else { "[" },
            if max_open { ")" } else { "]" }
        )
    })
}
