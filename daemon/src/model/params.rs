//! The parameter store: every weight and statistic of a model, named, seeded and
//! classified the way Keras counts and initialises them.
//!
//! Names are dotted paths (`stage2.osa0.layer1.conv.kernel`) built with
//! [`ParamBuilder::pp`]. Each parameter's initial value comes from its own random
//! stream, derived from the model seed and its name, so building the same model with
//! the same seed always gives the same weights whatever the construction order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::runtime::seed;

/// What a parameter is; fixes its initial value, whether it trains and whether
/// weight decay applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    /// Conv or dense kernel: Glorot-uniform with the given fans; decayed.
    Kernel {
        /// Inputs feeding one output (in channels x window area).
        fan_in: usize,
        /// Outputs fed by one input (out channels x window area).
        fan_out: usize,
    },
    /// Conv or dense bias: zeros.
    Bias,
    /// BatchNorm scale: ones.
    Gamma,
    /// BatchNorm shift: zeros.
    Beta,
    /// BatchNorm moving mean: zeros; not trained.
    MovingMean,
    /// BatchNorm moving variance: ones; not trained.
    MovingVariance,
}

impl ParamKind {
    /// Whether the optimizer updates this parameter.
    pub fn trainable(self) -> bool {
        !matches!(self, ParamKind::MovingMean | ParamKind::MovingVariance)
    }

    /// Whether weight decay (L2 or decoupled) applies: kernels only, as Keras'
    /// `kernel_regularizer` does.
    pub fn decayed(self) -> bool {
        matches!(self, ParamKind::Kernel { .. })
    }
}

/// Parameter counts in both conventions of the published table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCount {
    /// Every number Keras' `count_params()` reports, BatchNorm moving statistics included.
    pub total: usize,
    /// Numbers the optimizer updates.
    pub trainable: usize,
}

struct Entry {
    var: Var,
    kind: ParamKind,
}

/// A counter that every change of a model's parameters advances, so that values
/// derived from them (BatchNorm folded into a convolution) know when to recompute.
#[derive(Debug, Clone, Default)]
pub struct ParamVersion(Arc<AtomicU64>);

impl ParamVersion {
    /// The current version.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Records that parameters changed.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// All parameters of one model, shared by its layers and by the trainer.
#[derive(Clone)]
pub struct ParamStore {
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
    device: Device,
    seed: u64,
    version: ParamVersion,
}

impl ParamStore {
    /// An empty store whose parameters will live on `device`, initialised from `seed`.
    pub fn new(device: Device, seed: u64) -> Self {
        ParamStore {
            entries: Arc::default(),
            device,
            seed,
            version: ParamVersion::default(),
        }
    }

    /// The version counter of these parameters: the optimizer and [`Self::load`]
    /// advance it, and so does training-mode BatchNorm (moving statistics).
    pub fn version(&self) -> &ParamVersion {
        &self.version
    }

    /// A builder at the root of the name space.
    pub fn root(&self) -> ParamBuilder {
        ParamBuilder {
            store: self.clone(),
            prefix: String::new(),
        }
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // Invariant: no code panics while holding this lock, so it is never poisoned.
        self.entries.lock().expect("parameter store lock poisoned")
    }

    fn create(&self, name: String, shape: &[usize], kind: ParamKind) -> Result<Var> {
        let mut entries = self.lock();
        if entries.contains_key(&name) {
            candle_core::bail!("parameter {name} defined twice")
        }
        let count: usize = shape.iter().product();
        let values: Vec<f32> = match kind {
            ParamKind::Kernel { fan_in, fan_out } => {
                let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
                let mut rng = seed::rng(self.seed, &[seed::tag(&name)]);
                (0..count)
                    .map(|_| rng.random_range(-limit..limit))
                    .collect()
            }
            ParamKind::Bias | ParamKind::Beta | ParamKind::MovingMean => vec![0.0; count],
            ParamKind::Gamma | ParamKind::MovingVariance => vec![1.0; count],
        };
        let var = Var::from_vec(values, shape, &self.device)?;
        entries.insert(
            name,
            Entry {
                var: var.clone(),
                kind,
            },
        );
        Ok(var)
    }

    /// Trainable parameters with their kinds, in name order.
    pub fn trainable(&self) -> Vec<(String, Var, ParamKind)> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.kind.trainable())
            .map(|(n, e)| (n.clone(), e.var.clone(), e.kind))
            .collect()
    }

    /// The kernels that weight decay applies to, in name order.
    pub fn decayed(&self) -> Vec<Var> {
        self.lock()
            .values()
            .filter(|e| e.kind.decayed())
            .map(|e| e.var.clone())
            .collect()
    }

    /// Parameter counts, Keras convention and trainable only.
    pub fn count(&self) -> ParamCount {
        let entries = self.lock();
        let size = |e: &Entry| e.var.elem_count();
        ParamCount {
            total: entries.values().map(size).sum(),
            trainable: entries
                .values()
                .filter(|e| e.kind.trainable())
                .map(size)
                .sum(),
        }
    }

    /// A snapshot of every parameter (moving statistics included), by name.
    pub fn tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        self.lock()
            .iter()
            .map(|(n, e)| Ok((n.clone(), e.var.as_tensor().copy()?)))
            .collect()
    }

    /// Overwrites every parameter with the value of the same name in `values`.
    /// Every parameter must be present, with its shape.
    pub fn load(&self, values: &BTreeMap<String, Tensor>) -> Result<()> {
        for (name, entry) in self.lock().iter() {
            let Some(v) = values.get(name) else {
                candle_core::bail!("checkpoint has no parameter {name}")
            };
            if v.dims() != entry.var.dims() {
                candle_core::bail!(
                    "checkpoint parameter {name} has shape {:?}, model has {:?}",
                    v.dims(),
                    entry.var.dims()
                )
            }
            entry
                .var
                .set(&v.to_device(&self.device)?.to_dtype(DType::F32)?)?;
        }
        self.version.bump();
        Ok(())
    }
}

/// Creates parameters under a name prefix; cheap to clone and scope.
#[derive(Clone)]
pub struct ParamBuilder {
    store: ParamStore,
    prefix: String,
}

impl ParamBuilder {
    /// A builder whose names are prefixed by `name.`.
    pub fn pp(&self, name: impl std::fmt::Display) -> ParamBuilder {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        ParamBuilder {
            store: self.store.clone(),
            prefix,
        }
    }

    /// Creates the parameter `name` under this prefix.
    pub fn var(&self, name: &str, shape: &[usize], kind: ParamKind) -> Result<Var> {
        let full = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        self.store.create(full, shape, kind)
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        self.store.device()
    }

    /// The version counter of the store.
    pub fn version(&self) -> &ParamVersion {
        self.store.version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_bounds_and_reproducibility() -> Result<()> {
        let make = |seed| -> Result<Vec<f32>> {
            let store = ParamStore::new(Device::Cpu, seed);
            let v = store.root().pp("a").var(
                "kernel",
                &[8, 4, 3, 3],
                ParamKind::Kernel {
                    fan_in: 36,
                    fan_out: 72,
                },
            )?;
            v.flatten_all()?.to_vec1::<f32>()
        };
        let a = make(1)?;
        let limit = (6.0f32 / 108.0).sqrt();
        assert!(a.iter().all(|x| x.abs() <= limit));
        assert!(a.iter().any(|x| x.abs() > limit * 0.9));
        assert_eq!(a, make(1)?);
        assert_ne!(a, make(2)?);
        Ok(())
    }

    #[test]
    fn counts_and_kinds() -> Result<()> {
        let store = ParamStore::new(Device::Cpu, 0);
        let b = store.root().pp("bn");
        for (name, kind) in [
            ("gamma", ParamKind::Gamma),
            ("beta", ParamKind::Beta),
            ("moving_mean", ParamKind::MovingMean),
            ("moving_variance", ParamKind::MovingVariance),
        ] {
            b.var(name, &[5], kind)?;
        }
        assert_eq!(
            store.count(),
            ParamCount {
                total: 20,
                trainable: 10
            }
        );
        assert!(store.decayed().is_empty());
        assert!(b.var("gamma", &[5], ParamKind::Gamma).is_err());
        Ok(())
    }

    #[test]
    fn load_round_trips_and_checks_shapes() -> Result<()> {
        let store = ParamStore::new(Device::Cpu, 0);
        store.root().var(
            "w",
            &[2, 2],
            ParamKind::Kernel {
                fan_in: 2,
                fan_out: 2,
            },
        )?;
        let mut snap = store.tensors()?;
        snap.insert("w".into(), Tensor::ones((2, 2), DType::F32, &Device::Cpu)?);
        store.load(&snap)?;
        assert_eq!(store.tensors()?["w"].sum_all()?.to_scalar::<f32>()?, 4.0);
        snap.insert("w".into(), Tensor::ones((3, 2), DType::F32, &Device::Cpu)?);
        assert!(store.load(&snap).is_err());
        assert!(store.load(&BTreeMap::new()).is_err());
        Ok(())
    }
}
