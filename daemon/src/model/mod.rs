//! The benchmark's models: VoVNet and DenseNet, their presets and their knobs.
//!
//! A [`ModelSpec`] names a preset and the fully resolved architecture (preset plus
//! any knob overrides), so it can be stored, hashed and rebuilt anywhere.
//! [`Model::build`] turns it into a network whose parameters live in a
//! [`ParamStore`].

pub mod densenet;
pub mod knobs;
pub mod layers;
pub mod ops;
pub mod params;
pub mod vovnet;

use candle_core::{Device, ModuleT, Tensor};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use densenet::{DenseNet, DenseNetConfig};
pub use layers::BnConfig;
pub use params::{ParamCount, ParamStore, ParamVersion};
pub use vov_spec::ModelKnobs;
use vov_spec::{Family, Preset};
pub use vovnet::{VovNet, VovNetConfig};

/// Why a model could not be specified or built.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A knob was given for the other family.
    #[error("model knob '{knob}' does not apply to {family} models")]
    KnobNotForFamily {
        /// The knob.
        knob: &'static str,
        /// The family of the chosen preset.
        family: Family,
    },
    /// A knob has a value outside its range.
    #[error("model knob '{knob}' = {value}: {reason}")]
    Invalid {
        /// The knob.
        knob: &'static str,
        /// Its value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input is too small for the architecture.
    #[error("a {size}x{size} input is too small for this model: {reason}")]
    InputTooSmall {
        /// Side of the input in pixels.
        size: usize,
        /// Where it breaks.
        reason: String,
    },
    /// The input is not square.
    #[error("models take square inputs, got {height}x{width}")]
    NotSquare {
        /// Input height.
        height: usize,
        /// Input width.
        width: usize,
    },
    /// A tensor operation failed while building.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// An architecture family with all its knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Architecture {
    /// A VoVNet.
    Vovnet(VovNetConfig),
    /// A DenseNet.
    Densenet(DenseNetConfig),
}

impl Architecture {
    /// The architecture of a preset.
    pub fn preset(preset: Preset) -> Self {
        match preset {
            Preset::DensenetKoshian2 => Architecture::Densenet(DenseNetConfig::koshian2()),
            Preset::DensenetKoshian3 => Architecture::Densenet(DenseNetConfig::koshian3()),
            Preset::DensenetKoshian4 => Architecture::Densenet(DenseNetConfig::koshian4()),
            Preset::DensenetKoshian5 => Architecture::Densenet(DenseNetConfig::koshian5()),
            Preset::DensenetKoshian6 => Architecture::Densenet(DenseNetConfig::koshian6()),
            Preset::Vovnet27Slim => Architecture::Vovnet(VovNetConfig::v27_slim()),
            Preset::Vovnet39 => Architecture::Vovnet(VovNetConfig::v39()),
            Preset::Vovnet57 => Architecture::Vovnet(VovNetConfig::v57()),
        }
    }

    /// The family.
    pub fn family(&self) -> Family {
        match self {
            Architecture::Vovnet(_) => Family::Vovnet,
            Architecture::Densenet(_) => Family::Densenet,
        }
    }

    /// Checks the knobs for an input of `size` x `size` pixels.
    pub fn validate(&self, size: usize) -> Result<(), ModelError> {
        match self {
            Architecture::Vovnet(c) => c.validate(size),
            Architecture::Densenet(c) => c.validate(size),
        }
    }
}

/// A model as a trial asks for it: a display name and the resolved architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The preset name, with the overridden knobs appended when there are any
    /// (`densenet-koshian-2(growth_rate=24)`).
    pub name: String,
    /// Every knob, resolved.
    pub arch: Architecture,
}

impl ModelSpec {
    /// A preset with `knobs` applied on top.
    pub fn resolve(preset: Preset, knobs: &ModelKnobs) -> Result<Self, ModelError> {
        let mut arch = Architecture::preset(preset);
        knobs::apply(knobs, &mut arch)?;
        let suffix = knobs::describe(knobs);
        let name = if suffix.is_empty() {
            preset.to_string()
        } else {
            format!("{preset}({suffix})")
        };
        Ok(ModelSpec { name, arch })
    }
}

/// Shape of one input image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShape {
    /// Channels (3 for CIFAR-10, 1 for Fashion-MNIST).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

enum Net {
    Vovnet(VovNet),
    Densenet(DenseNet),
}

/// A built network with its parameters.
pub struct Model {
    spec: ModelSpec,
    net: Net,
    store: ParamStore,
}

/// Everything [`Model::build`] needs besides the spec.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Input image shape.
    pub input: InputShape,
    /// Number of output classes.
    pub classes: usize,
    /// BatchNorm settings.
    pub bn: BnConfig,
    /// Device for the parameters.
    pub device: Device,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl Model {
    /// Builds `spec` with Keras' initialisation.
    pub fn build(spec: &ModelSpec, opts: &BuildOptions) -> Result<Self, ModelError> {
        let InputShape {
            channels,
            height,
            width,
        } = opts.input;
        if height != width {
            return Err(ModelError::NotSquare { height, width });
        }
        spec.arch.validate(height)?;
        let store = ParamStore::new(opts.device.clone(), opts.seed);
        let root = store.root();
        let net = match &spec.arch {
            Architecture::Vovnet(c) => {
                Net::Vovnet(VovNet::new(c, channels, opts.classes, opts.bn, &root)?)
            }
            Architecture::Densenet(c) => {
                Net::Densenet(DenseNet::new(c, channels, opts.classes, opts.bn, &root)?)
            }
        };
        Ok(Model {
            spec: spec.clone(),
            net,
            store,
        })
    }

    /// Logits (N, classes) for an NCHW batch; `train` selects batch statistics (and
    /// updates the moving ones) in BatchNorm.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        match &self.net {
            Net::Vovnet(n) => n.forward_t(xs, train),
            Net::Densenet(n) => n.forward_t(xs, train),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &ParamStore {
        &self.store
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
}

/// Parameter counts of a preset on a 3-channel 32x32 input with 10 classes.
pub fn preset_count(preset: Preset) -> Result<ParamCount, ModelError> {
    let spec = ModelSpec::resolve(preset, &ModelKnobs::default())?;
    let model = Model::build(
        &spec,
        &BuildOptions {
            input: InputShape {
                channels: 3,
                height: 32,
                width: 32,
            },
            classes: 10,
            bn: BnConfig::default(),
            device: Device::Cpu,
            seed: 0,
        },
    )?;
    Ok(model.params().count())
}

fn check_range(knob: &'static str, v: usize, lo: usize, hi: usize) -> Result<(), ModelError> {
    if v < lo || v > hi {
        return Err(ModelError::Invalid {
            knob,
            value: v.to_string(),
            reason: format!("must be between {lo} and {hi}"),
        });
    }
    Ok(())
}

fn check_list(
    knob: &'static str,
    v: &[usize],
    min_len: usize,
    max_len: usize,
    max: usize,
) -> Result<(), ModelError> {
    let value = || format!("{v:?}");
    if v.len() < min_len || v.len() > max_len {
        let reason = if min_len == max_len {
            format!("needs exactly {min_len} entries (one per stage)")
        } else {
            format!("needs {min_len} to {max_len} entries")
        };
        return Err(ModelError::Invalid {
            knob,
            value: value(),
            reason,
        });
    }
    if let Some(bad) = v.iter().find(|&&x| x == 0 || x > max) {
        return Err(ModelError::Invalid {
            knob,
            value: value(),
            reason: format!("entry {bad} is outside 1..={max}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published counts (models.md), checked with Keras' `count_params()`.
    const EXPECTED: &[(Preset, usize, usize)] = &[
        (Preset::DensenetKoshian2, 255_046, 251_614),
        (Preset::DensenetKoshian3, 505_200, 501_004),
        (Preset::DensenetKoshian4, 599_536, 591_412),
        (Preset::DensenetKoshian5, 1_104_186, 1_089_114),
        (Preset::DensenetKoshian6, 3_316_848, 3_271_120),
        (Preset::Vovnet27Slim, 2_683_690, 2_677_098),
        (Preset::Vovnet39, 18_634_282, 18_613_866),
        (Preset::Vovnet57, 30_462_858, 30_431_242),
    ];

    #[test]
    fn preset_counts_match_models_md() {
        for &(name, total, trainable) in EXPECTED {
            let c = preset_count(name).unwrap();
            assert_eq!((c.total, c.trainable), (total, trainable), "{name}");
        }
    }

    #[test]
    fn vovnet_27_slim_parts_match_models_md() {
        let spec = ModelSpec::resolve(Preset::Vovnet27Slim, &ModelKnobs::default()).unwrap();
        let model = Model::build(&spec, &small_opts(3, 32)).unwrap();
        let t = model.params().tensors().unwrap();
        let part = |p: &str| -> usize {
            t.iter()
                .filter(|(n, _)| n.starts_with(p))
                .map(|(_, v)| v.elem_count())
                .sum()
        };
        assert_eq!(part("stem"), 113_600);
        assert_eq!(part("stage2"), 264_384);
        assert_eq!(part("stage3"), 428_240);
        assert_eq!(part("stage4"), 741_600);
        assert_eq!(part("stage5"), 1_130_736);
        assert_eq!(part("head"), 5_130);
    }

    fn small_opts(channels: usize, size: usize) -> BuildOptions {
        BuildOptions {
            input: InputShape {
                channels,
                height: size,
                width: size,
            },
            classes: 10,
            bn: BnConfig::default(),
            device: Device::Cpu,
            seed: 1,
        }
    }

    #[test]
    fn forward_shapes_for_both_families_and_channels() {
        let knobs = ModelKnobs {
            stem: Some(vec![8]),
            stage_widths: Some(vec![4, 4, 4, 4]),
            stage_outputs: Some(vec![8, 8, 8, 8]),
            osa_layers: Some(2),
            ..Default::default()
        };
        let vov = ModelSpec::resolve(Preset::Vovnet27Slim, &knobs).unwrap();
        let dense = ModelSpec::resolve(
            Preset::DensenetKoshian2,
            &ModelKnobs {
                bottleneck: Some(8),
                ..Default::default()
            },
        )
        .unwrap();
        for spec in [vov, dense] {
            for channels in [1, 3] {
                let model = Model::build(&spec, &small_opts(channels, 32)).unwrap();
                let x = Tensor::zeros((2, channels, 32, 32), candle_core::DType::F32, &Device::Cpu)
                    .unwrap();
                assert_eq!(model.forward_t(&x, true).unwrap().dims(), &[2, 10]);
                assert_eq!(model.forward_t(&x, false).unwrap().dims(), &[2, 10]);
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let spec = ModelSpec::resolve(Preset::Vovnet27Slim, &ModelKnobs::default()).unwrap();
        let err = Model::build(&spec, &small_opts(1, 28)).err().unwrap();
        assert!(err.to_string().contains("too small"), "{err}");
        let err = Model::build(&spec, &small_opts(1, 2)).err().unwrap();
        assert!(matches!(err, ModelError::InputTooSmall { .. }));
    }
}
