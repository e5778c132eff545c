//! VoVNet (Lee et al. 2019, "An Energy and GPU-Computation Efficient Backbone
//! Network for Real-Time Object Detection", arXiv:1904.09730), CIFAR variant.
//!
//! One-shot aggregation (OSA): a chain of 3x3 CBR units whose outputs are all
//! concatenated once, then mixed by a 1x1 CBR. As in the benchmark's notebook (and
//! unlike the official ImageNet code) the module input is not part of the
//! concatenation and there is no residual add. The stem keeps full resolution; each
//! stage starts with a 3x3 stride-2 "valid" max pool (32 -> 15 -> 7 -> 3 -> 1).

use candle_core::{Module, ModuleT, Result as CResult, Tensor};
use serde::{Deserialize, Serialize};

use super::layers::{global_avg_pool, BnConfig, ConvBnRelu, Dense};
use super::ops::maxpool::MaxPool;
use super::params::ParamBuilder;
use super::ModelError;

/// The knobs of a VoVNet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VovNetConfig {
    /// Output channels of the full-resolution 3x3 CBR stem units.
    pub stem: Vec<usize>,
    /// Channels of every 3x3 CBR inside an OSA module, per stage.
    pub stage_widths: Vec<usize>,
    /// Output channels of each stage's OSA modules (the 1x1 CBR).
    pub stage_outputs: Vec<usize>,
    /// OSA modules per stage.
    pub repetitions: Vec<usize>,
    /// 3x3 CBR units per OSA module.
    pub osa_layers: usize,
}

impl VovNetConfig {
    fn with_stages(widths: [usize; 4], outputs: [usize; 4], reps: [usize; 4]) -> Self {
        VovNetConfig {
            stem: vec![64, 64, 128],
            stage_widths: widths.to_vec(),
            stage_outputs: outputs.to_vec(),
            repetitions: reps.to_vec(),
            osa_layers: 5,
        }
    }

    /// VoVNet-27-slim: 2,683,690 parameters.
    pub fn v27_slim() -> Self {
        Self::with_stages([64, 80, 96, 112], [128, 256, 384, 512], [1, 1, 1, 1])
    }

    /// VoVNet-39: 18,634,282 parameters.
    pub fn v39() -> Self {
        Self::with_stages([128, 160, 192, 224], [256, 512, 768, 1024], [1, 1, 2, 2])
    }

    /// VoVNet-57: 30,462,858 parameters.
    pub fn v57() -> Self {
        Self::with_stages([128, 160, 192, 224], [256, 512, 768, 1024], [1, 1, 4, 3])
    }

    /// Checks the knobs against each other and against an input of `size` pixels.
    pub fn validate(&self, size: usize) -> Result<(), ModelError> {
        super::check_list("stem", &self.stem, 1, 8, 4096)?;
        let stages = self.stage_widths.len();
        super::check_list("stage_widths", &self.stage_widths, 1, 8, 4096)?;
        super::check_list("stage_outputs", &self.stage_outputs, stages, stages, 8192)?;
        super::check_list("repetitions", &self.repetitions, stages, stages, 64)?;
        super::check_range("osa_layers", self.osa_layers, 1, 64)?;
        let mut side = size;
        for stage in 0..stages {
            side = MaxPool::VOVNET
                .out_size(side)
                .ok_or_else(|| ModelError::InputTooSmall {
                    size,
                    reason: format!("VoVNet stage {} would pool a {side}x{side} map", stage + 2),
                })?;
        }
        Ok(())
    }
}

/// One-shot aggregation module.
#[derive(Debug, Clone)]
struct Osa {
    layers: Vec<ConvBnRelu>,
    concat: ConvBnRelu,
}

impl Osa {
    fn new(
        c_in: usize,
        width: usize,
        out: usize,
        n: usize,
        bn: BnConfig,
        pb: &ParamBuilder,
    ) -> CResult<Self> {
        let layers = (0..n)
            .map(|i| {
                ConvBnRelu::new(
                    if i == 0 { c_in } else { width },
                    width,
                    3,
                    bn,
                    &pb.pp(format!("layer{i}")),
                )
            })
            .collect::<CResult<Vec<_>>>()?;
        let concat = ConvBnRelu::new(width * n, out, 1, bn, &pb.pp("concat"))?;
        Ok(Osa { layers, concat })
    }
}

impl ModuleT for Osa {
    fn forward_t(&self, xs: &Tensor, train: bool) -> CResult<Tensor> {
        let mut outs = Vec::with_capacity(self.layers.len());
        let mut h = xs.clone();
        for layer in &self.layers {
            h = layer.forward_t(&h, train)?;
            outs.push(h.clone());
        }
        self.concat.forward_t(&Tensor::cat(&outs, 1)?, train)
    }
}

/// A VoVNet built from a [`VovNetConfig`].
#[derive(Debug, Clone)]
pub struct VovNet {
    stem: Vec<ConvBnRelu>,
    stages: Vec<Vec<Osa>>,
    head: Dense,
}

impl VovNet {
    /// Builds the network for `in_channels` inputs and `classes` outputs.
    pub fn new(
        cfg: &VovNetConfig,
        in_channels: usize,
        classes: usize,
        bn: BnConfig,
        pb: &ParamBuilder,
    ) -> CResult<Self> {
        let mut c = in_channels;
        let mut stem = Vec::new();
        for (i, &out) in cfg.stem.iter().enumerate() {
            stem.push(ConvBnRelu::new(c, out, 3, bn, &pb.pp(format!("stem{i}")))?);
            c = out;
        }
        let mut stages = Vec::new();
        for (s, ((&width, &out), &reps)) in cfg
            .stage_widths
            .iter()
            .zip(&cfg.stage_outputs)
            .zip(&cfg.repetitions)
            .enumerate()
        {
            let sp = pb.pp(format!("stage{}", s + 2));
            let mut modules = Vec::new();
            for r in 0..reps {
                modules.push(Osa::new(
                    c,
                    width,
                    out,
                    cfg.osa_layers,
                    bn,
                    &sp.pp(format!("osa{r}")),
                )?);
                c = out;
            }
            stages.push(modules);
        }
        let head = Dense::new(c, classes, &pb.pp("head"))?;
        Ok(VovNet { stem, stages, head })
    }
}

impl ModuleT for VovNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> CResult<Tensor> {
        let mut h = xs.clone();
        for unit in &self.stem {
            h = unit.forward_t(&h, train)?;
        }
        for stage in &self.stages {
            h = MaxPool::VOVNET.forward(&h)?;
            for osa in stage {
                h = osa.forward_t(&h, train)?;
            }
        }
        self.head.forward(&global_avg_pool(&h)?)
    }
}
