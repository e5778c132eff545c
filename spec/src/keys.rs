//! The key registry: every key a trial can set, once, with its type and bounds,
//! its help text and unit, the family it applies to, and how it reads and writes a
//! [`TrialSpec`]. Its default is what [`TrialSpec::new`] holds.
//!
//! Sweep files and `--set` (vovctl), `vovd train`'s flags, request validation and
//! the README's key table are all built from [`KEYS`].

use std::str::FromStr;

use crate::names::{
    Augmentation, DatasetName, DeviceRequirement, Family, KeepWeights, Optimizer, Preset, Timing,
    WdMode,
};
use crate::trial::{Measure, TrialSpec};
use crate::value::{Kind, Value};

/// Largest `train_limit` / `val_limit`.
pub const MAX_LIMIT: i64 = 10_000_000;

/// Reads a key's value from a spec; `None` when unset (no value, not the default).
pub type Getter = fn(&TrialSpec) -> Option<Value>;
/// Writes a checked value of the key's kind into a spec.
pub type Setter = fn(&mut TrialSpec, &Value) -> Result<(), String>;

/// One settable key.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    /// Its name in sweep files and specs (`batch_size`); flags use dashes.
    pub name: &'static str,
    /// Its type and range.
    pub kind: Kind,
    /// What it means.
    pub help: &'static str,
    /// Its unit, if it has one.
    pub unit: &'static str,
    /// The family it applies to (model knobs), else any model.
    pub family: Option<Family>,
    /// Whether every trial must give it.
    pub required: bool,
    /// Whether it is for the host rather than the training (where a trial may run,
    /// what the host keeps of it): not a `vovd train` flag.
    pub placement: bool,
    /// The key set version it joined: keys of version 1 are always in a trial's
    /// canonical form (as ids were first defined); later keys only when they
    /// differ from their default, so adding a key keeps every existing id.
    pub since: u32,
    /// Whether it is part of a trial's identity (its canonical form, config id and
    /// trial id); a key that only asks the host for something (which weights to
    /// keep) is not, so setting it keeps every id.
    pub identity: bool,
    /// Reads it.
    pub get: Getter,
    /// Writes it.
    pub set: Setter,
}

/// Keys are equal when they are the same key (names are unique).
impl PartialEq for KeyDef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl KeyDef {
    /// The value a trial has when nothing sets it (`None`: unset, or required).
    pub fn default_value(&self) -> Option<Value> {
        if self.required {
            return None;
        }
        (self.get)(&TrialSpec::default())
    }

    /// The flag spelling, `--batch-size` without the dashes.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }

    /// Checks `v` against the kind and writes it.
    pub fn apply(&self, spec: &mut TrialSpec, v: &Value) -> Result<(), String> {
        if let Some(reason) = self.kind.check(v) {
            return Err(reason);
        }
        (self.set)(spec, v)
    }
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!("{other}: expected an integer")),
    }
}

fn count(v: &Value) -> Result<usize, String> {
    usize::try_from(int(v)?).map_err(|_| format!("{v}: must not be negative"))
}

fn float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(x) => Ok(*x),
        Value::Int(i) => Ok(*i as f64),
        other => Err(format!("{other}: expected a number")),
    }
}

fn flag(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(format!("{other}: expected true or false")),
    }
}

fn name<T: FromStr>(v: &Value) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    match v {
        Value::Name(s) => s.parse().map_err(|e: T::Err| e.to_string()),
        other => Err(format!("{other}: expected a name")),
    }
}

fn counts(v: &Value) -> Result<Vec<usize>, String> {
    match v {
        Value::IntList(items) => items
            .iter()
            .map(|i| usize::try_from(*i).map_err(|_| format!("{i}: must not be negative")))
            .collect(),
        other => Err(format!("{other}: expected a list of integers")),
    }
}

fn timings(v: &Value) -> Result<Measure, String> {
    match v {
        Value::NameList(items) => {
            let ts = items
                .iter()
                .map(|s| s.parse::<Timing>().map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Measure::from_timings(&ts))
        }
        other => Err(format!("{other}: expected a list of timings")),
    }
}

fn n(x: usize) -> Value {
    Value::Int(x as i64)
}

fn list(v: &[usize]) -> Value {
    Value::IntList(v.iter().map(|&x| x as i64).collect())
}

fn nm(s: &str) -> Value {
    Value::Name(s.to_string())
}

const fn key(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    get: Getter,
    set: Setter,
) -> KeyDef {
    KeyDef {
        name,
        kind,
        help,
        unit: "",
        family: None,
        required: false,
        placement: false,
        since: 1,
        identity: true,
        get,
        set,
    }
}

const fn knob(
    name: &'static str,
    kind: Kind,
    family: Family,
    help: &'static str,
    get: Getter,
    set: Setter,
) -> KeyDef {
    KeyDef {
        family: Some(family),
        ..key(name, kind, help, get, set)
    }
}

const fn unit(mut k: KeyDef, unit: &'static str) -> KeyDef {
    k.unit = unit;
    k
}

const fn int_kind(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// Every key a trial can set, in the order help texts list them.
pub const KEYS: &[KeyDef] = &[
    KeyDef {
        required: true,
        ..key("model", Kind::Name { what: Preset::WHAT, names: Preset::NAMES }, "model preset", |s| Some(nm(s.model.as_str())), |s, v| {
            s.model = name(v)?;
            Ok(())
        })
    },
    key("dataset", Kind::Name { what: DatasetName::WHAT, names: DatasetName::NAMES }, "data set", |s| Some(nm(s.dataset.as_str())), |s, v| {
        s.dataset = name(v)?;
        Ok(())
    }),
    unit(key("epochs", int_kind(1, 10_000), "epochs to train", |s| Some(n(s.epochs)), |s, v| {
        s.epochs = count(v)?;
        Ok(())
    }), "epochs"),
    unit(key("batch_size", int_kind(1, 65_536), "minibatch size (validation passes too)", |s| Some(n(s.batch_size)), |s, v| {
        s.batch_size = count(v)?;
        Ok(())
    }), "images"),
    key("optimizer", Kind::Name { what: Optimizer::WHAT, names: Optimizer::NAMES }, "optimizer, with Keras' update rules", |s| Some(nm(s.optimizer.as_str())), |s, v| {
        s.optimizer = name(v)?;
        Ok(())
    }),
    key("lr", Kind::float(0.0, 10.0, true, false), "learning rate", |s| Some(Value::Float(s.lr)), |s, v| {
        s.lr = float(v)?;
        Ok(())
    }),
    key("momentum", Kind::float(0.0, 1.0, false, true), "SGD momentum", |s| Some(Value::Float(s.momentum)), |s, v| {
        s.momentum = float(v)?;
        Ok(())
    }),
    key("nesterov", Kind::Bool, "Nesterov momentum for SGD", |s| Some(Value::Bool(s.nesterov)), |s, v| {
        s.nesterov = flag(v)?;
        Ok(())
    }),
    key("weight_decay", Kind::float(0.0, 1.0, false, false), "weight decay strength (0: none)", |s| Some(Value::Float(s.weight_decay)), |s, v| {
        s.weight_decay = float(v)?;
        Ok(())
    }),
    key(
        "wd_mode",
        Kind::Name { what: WdMode::WHAT, names: WdMode::NAMES },
        "l2 (added to the loss on kernels, like Keras' kernel_regularizer) or decoupled; unset: decoupled for adamw, else l2",
        |s| s.wd_mode.map(|m| nm(m.as_str())),
        |s, v| {
            s.wd_mode = Some(name(v)?);
            Ok(())
        },
    ),
    key(
        "augmentation",
        Kind::Name { what: Augmentation::WHAT, names: Augmentation::NAMES },
        "flip; shift (Keras, 4 px, nearest fill); crop (pad 4, random crop); standard (shift + flip, published); standard-crop",
        |s| Some(nm(s.augmentation.as_str())),
        |s, v| {
            s.augmentation = name(v)?;
            Ok(())
        },
    ),
    key(
        "bn_momentum",
        Kind::float(0.0, 1.0, false, true),
        "BatchNorm momentum, Keras convention; runs of a few hundred steps need about 1 - 10/steps",
        |s| Some(Value::Float(s.bn_momentum)),
        |s, v| {
            s.bn_momentum = float(v)?;
            Ok(())
        },
    ),
    unit(key("train_limit", int_kind(1, MAX_LIMIT), "first N training images only; unset: all", |s| s.train_limit.map(n), |s, v| {
        s.train_limit = Some(count(v)?);
        Ok(())
    }), "images"),
    unit(key("val_limit", int_kind(1, MAX_LIMIT), "first N validation images only; unset: all", |s| s.val_limit.map(n), |s, v| {
        s.val_limit = Some(count(v)?);
        Ok(())
    }), "images"),
    key(
        "measure",
        Kind::NameList { what: Timing::WHAT, names: Timing::NAMES },
        "inference timings over the validation set",
        |s| Some(Value::NameList(s.measure.timings().iter().map(|t| t.as_str().to_string()).collect())),
        |s, v| {
            s.measure = timings(v)?;
            Ok(())
        },
    ),
    KeyDef {
        placement: true,
        ..key("device", Kind::Name { what: DeviceRequirement::WHAT, names: DeviceRequirement::NAMES }, "where it may run", |s| Some(nm(s.device.as_str())), |s, v| {
            s.device = name(v)?;
            Ok(())
        })
    },
    KeyDef {
        placement: true,
        identity: false,
        since: 2,
        ..key("keep_weights", Kind::Name { what: KeepWeights::WHAT, names: KeepWeights::NAMES }, "trained weights the host keeps when the trial ends: final (last epoch) or best (epoch of MaxValAcc); not part of the trial id, not a grid axis", |s| Some(nm(s.keep_weights.as_str())), |s, v| {
            s.keep_weights = name(v)?;
            Ok(())
        })
    },
    knob("stem", Kind::IntList { max: 4096 }, Family::Vovnet, "VoVNet: stem output channels", |s| s.knobs.stem.as_deref().map(list), |s, v| {
        s.knobs.stem = Some(counts(v)?);
        Ok(())
    }),
    knob("stage_widths", Kind::IntList { max: 4096 }, Family::Vovnet, "VoVNet: CBR width per stage", |s| s.knobs.stage_widths.as_deref().map(list), |s, v| {
        s.knobs.stage_widths = Some(counts(v)?);
        Ok(())
    }),
    knob("stage_outputs", Kind::IntList { max: 8192 }, Family::Vovnet, "VoVNet: OSA output channels per stage", |s| s.knobs.stage_outputs.as_deref().map(list), |s, v| {
        s.knobs.stage_outputs = Some(counts(v)?);
        Ok(())
    }),
    knob("repetitions", Kind::IntList { max: 64 }, Family::Vovnet, "VoVNet: OSA modules per stage", |s| s.knobs.repetitions.as_deref().map(list), |s, v| {
        s.knobs.repetitions = Some(counts(v)?);
        Ok(())
    }),
    knob("osa_layers", int_kind(1, 64), Family::Vovnet, "VoVNet: CBR units per OSA module", |s| s.knobs.osa_layers.map(n), |s, v| {
        s.knobs.osa_layers = Some(count(v)?);
        Ok(())
    }),
    knob("growth_rate", int_kind(1, 1024), Family::Densenet, "DenseNet: growth rate k", |s| s.knobs.growth_rate.map(n), |s, v| {
        s.knobs.growth_rate = Some(count(v)?);
        Ok(())
    }),
    knob("blocks", Kind::IntList { max: 256 }, Family::Densenet, "DenseNet: dense layers per block", |s| s.knobs.blocks.as_deref().map(list), |s, v| {
        s.knobs.blocks = Some(counts(v)?);
        Ok(())
    }),
    knob("bottleneck", int_kind(1, 4096), Family::Densenet, "DenseNet: bottleneck width", |s| s.knobs.bottleneck.map(n), |s, v| {
        s.knobs.bottleneck = Some(count(v)?);
        Ok(())
    }),
    knob("compression", Kind::float(0.0, 1.0, true, false), Family::Densenet, "DenseNet: transition compression", |s| s.knobs.compression.map(Value::Float), |s, v| {
        s.knobs.compression = Some(float(v)?);
        Ok(())
    }),
    knob("stem_channels", int_kind(1, 4096), Family::Densenet, "DenseNet: stem output channels", |s| s.knobs.stem_channels.map(n), |s, v| {
        s.knobs.stem_channels = Some(count(v)?);
        Ok(())
    }),
];

/// The definition of `name`, if it is a key.
pub fn find(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|k| k.name == name)
}

/// Every key name, for "unknown key (known: ...)" messages.
pub fn names() -> Vec<&'static str> {
    KEYS.iter().map(|k| k.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_reads_back_what_it_writes() {
        let mut s = TrialSpec::new(Preset::Vovnet39);
        for k in KEYS {
            let v = match k.kind {
                Kind::Name { names, .. } => Value::Name(names[names.len() - 1].to_string()),
                Kind::Int { max, .. } => Value::Int(max),
                Kind::Float {
                    max, max_open, min, ..
                } => Value::Float(if max_open { (min + max) / 2.0 } else { max }),
                Kind::Bool => Value::Bool(true),
                Kind::IntList { max } => Value::IntList(vec![1, max]),
                Kind::NameList { names, .. } => Value::NameList(vec![names[0].to_string()]),
            };
            k.apply(&mut s, &v)
                .unwrap_or_else(|e| panic!("{}: {e}", k.name));
            assert_eq!((k.get)(&s), Some(v), "{}", k.name);
        }
    }

    #[test]
    fn defaults_come_from_the_spec() {
        assert_eq!(
            find("epochs").unwrap().default_value(),
            Some(Value::Int(100))
        );
        assert_eq!(
            find("augmentation").unwrap().default_value(),
            Some(Value::Name("standard".into()))
        );
        assert_eq!(find("model").unwrap().default_value(), None);
        assert_eq!(find("wd_mode").unwrap().default_value(), None);
        assert_eq!(find("batch_size").unwrap().flag(), "batch-size");
        let mut s = TrialSpec::default();
        let err = find("epochs")
            .unwrap()
            .apply(&mut s, &Value::Int(0))
            .unwrap_err();
        assert_eq!(err, "0 is out of range: must be between 1 and 10000");
    }
}
