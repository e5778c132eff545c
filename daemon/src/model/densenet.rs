//! DenseNet (Huang et al. 2017, "Densely Connected Convolutional Networks",
//! arXiv:1608.06993), in the small "Koshian" CIFAR presets of the benchmark.
//!
//! Stem: a 1x1 convolution 3 -> 16 with bias (no BN, no ReLU). Dense layer: BN ->
//! ReLU -> 1x1 conv to a fixed bottleneck width -> BN -> ReLU -> 3x3 conv to k
//! channels, concatenated to its input. Transition: 1x1 conv to floor(c x
//! compression) channels (no BN, no ReLU) then 2x2 average pooling. Global average
//! pooling and a dense layer follow the last block directly.

use candle_core::{Module, ModuleT, Result as CResult, Tensor};
use serde::{Deserialize, Serialize};

use super::layers::{global_avg_pool, BatchNorm, BnConfig, Conv2d, ConvBnRelu, Dense};
use super::params::ParamBuilder;
use super::ModelError;

/// The knobs of a DenseNet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseNetConfig {
    /// Output channels of the 1x1 stem convolution.
    pub stem: usize,
    /// Channels each dense layer adds (k).
    pub growth_rate: usize,
    /// Dense layers per block; one block per resolution.
    pub blocks: Vec<usize>,
    /// Width of the 1x1 bottleneck inside each dense layer.
    pub bottleneck: usize,
    /// Fraction of channels a transition keeps (rounded down).
    pub compression: f64,
}

impl DenseNetConfig {
    fn koshian(growth_rate: usize, blocks: [usize; 4]) -> Self {
        DenseNetConfig {
            stem: 16,
            growth_rate,
            blocks: blocks.to_vec(),
            bottleneck: 128,
            compression: 0.5,
        }
    }

    /// Koshian-2: k 16, blocks 1,2,4,3; 255,046 parameters.
    pub fn koshian2() -> Self {
        Self::koshian(16, [1, 2, 4, 3])
    }

    /// Koshian-3: k 32, blocks 1,2,4,3; 505,200 parameters.
    pub fn koshian3() -> Self {
        Self::koshian(32, [1, 2, 4, 3])
    }

    /// Koshian-4: k 16, blocks 2,4,8,5; 599,536 parameters.
    pub fn koshian4() -> Self {
        Self::koshian(16, [2, 4, 8, 5])
    }

    /// Koshian-5: k 16, blocks 3,6,12,8; 1,104,186 parameters.
    pub fn koshian5() -> Self {
        Self::koshian(16, [3, 6, 12, 8])
    }

    /// Koshian-6: k 16, blocks 6,12,24,16; 3,316,848 parameters (the published table
    /// rounds to 3.31M; this structure matches the other four presets exactly).
    pub fn koshian6() -> Self {
        Self::koshian(16, [6, 12, 24, 16])
    }

    /// Checks the knobs and that an input of `size` pixels survives every transition.
    pub fn validate(&self, size: usize) -> Result<(), ModelError> {
        super::check_range("stem", self.stem, 1, 4096)?;
        super::check_range("growth_rate", self.growth_rate, 1, 1024)?;
        super::check_list("blocks", &self.blocks, 1, 8, 256)?;
        super::check_range("bottleneck", self.bottleneck, 1, 4096)?;
        if !(self.compression > 0.0 && self.compression <= 1.0) {
            return Err(ModelError::Invalid {
                knob: "compression",
                value: self.compression.to_string(),
                reason: "must be in (0, 1]".into(),
            });
        }
        let side = size >> (self.blocks.len() - 1);
        if side == 0 {
            return Err(ModelError::InputTooSmall {
                size,
                reason: format!("{} transitions halve it to nothing", self.blocks.len() - 1),
            });
        }
        let mut c = self.stem;
        for (i, &layers) in self.blocks.iter().enumerate() {
            c += layers * self.growth_rate;
            if i + 1 < self.blocks.len() {
                c = self.transition_channels(c);
                if c == 0 {
                    return Err(ModelError::Invalid {
                        knob: "compression",
                        value: self.compression.to_string(),
                        reason: format!("transition {} would keep no channels", i + 1),
                    });
                }
            }
        }
        Ok(())
    }

    fn transition_channels(&self, c: usize) -> usize {
        (c as f64 * self.compression).floor() as usize
    }
}

/// BN -> ReLU -> conv 1x1 -> BN -> ReLU -> conv 3x3, concatenated to the input.
/// The middle conv 1x1 -> BN -> ReLU is a CBR unit, so evaluation folds its
/// BatchNorm into the convolution.
#[derive(Debug, Clone)]
struct DenseLayer {
    bn1: BatchNorm,
    bottleneck: ConvBnRelu,
    conv2: Conv2d,
}

impl DenseLayer {
    fn new(c_in: usize, cfg: &DenseNetConfig, bn: BnConfig, pb: &ParamBuilder) -> CResult<Self> {
        let bn1 = BatchNorm::new(c_in, bn, &pb.pp("bn1"))?;
        let conv1 = Conv2d::new(c_in, cfg.bottleneck, 1, &pb.pp("conv1"))?;
        let bn2 = BatchNorm::new(cfg.bottleneck, bn, &pb.pp("bn2"))?;
        Ok(DenseLayer {
            bn1,
            bottleneck: ConvBnRelu::from_parts(conv1, bn2),
            conv2: Conv2d::new(cfg.bottleneck, cfg.growth_rate, 3, &pb.pp("conv2"))?,
        })
    }
}

impl ModuleT for DenseLayer {
    fn forward_t(&self, xs: &Tensor, train: bool) -> CResult<Tensor> {
        let h = self.bn1.forward_relu_t(xs, train)?;
        let h = self.bottleneck.forward_t(&h, train)?;
        let h = self.conv2.forward(&h)?;
        Tensor::cat(&[xs, &h], 1)
    }
}

/// A DenseNet built from a [`DenseNetConfig`].
#[derive(Debug, Clone)]
pub struct DenseNet {
    stem: Conv2d,
    blocks: Vec<Vec<DenseLayer>>,
    transitions: Vec<Conv2d>,
    head: Dense,
}

impl DenseNet {
    /// Builds the network for `in_channels` inputs and `classes` outputs.
    pub fn new(
        cfg: &DenseNetConfig,
        in_channels: usize,
        classes: usize,
        bn: BnConfig,
        pb: &ParamBuilder,
    ) -> CResult<Self> {
        let stem = Conv2d::new(in_channels, cfg.stem, 1, &pb.pp("stem"))?;
        let mut c = cfg.stem;
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (b, &layers) in cfg.blocks.iter().enumerate() {
            let bp = pb.pp(format!("block{}", b + 1));
            let mut block = Vec::new();
            for l in 0..layers {
                block.push(DenseLayer::new(c, cfg, bn, &bp.pp(format!("layer{l}")))?);
                c += cfg.growth_rate;
            }
            blocks.push(block);
            if b + 1 < cfg.blocks.len() {
                let out = cfg.transition_channels(c);
                transitions.push(Conv2d::new(
                    c,
                    out,
                    1,
                    &pb.pp(format!("transition{}", b + 1)),
                )?);
                c = out;
            }
        }
        let head = Dense::new(c, classes, &pb.pp("head"))?;
        Ok(DenseNet {
            stem,
            blocks,
            transitions,
            head,
        })
    }
}

impl ModuleT for DenseNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> CResult<Tensor> {
        let mut h = self.stem.forward(xs)?;
        for (b, block) in self.blocks.iter().enumerate() {
            for layer in block {
                h = layer.forward_t(&h, train)?;
            }
            if let Some(t) = self.transitions.get(b) {
                h = t.forward(&h)?.avg_pool2d(2)?;
            }
        }
        self.head.forward(&global_avg_pool(&h)?)
    }
}
