//! The layers both families are built from, with Keras' defaults: convolution and
//! dense layers with a bias, BatchNorm with moving statistics, and Conv-BN-ReLU.

use std::sync::{Arc, Mutex};

use candle_core::{Module, ModuleT, Result, Tensor, Var, D};
use serde::{Deserialize, Serialize};

use super::ops::batchnorm::{bn_eval, bn_train, BnParams};
use super::ops::channel::channel_stats;
use super::ops::conv::Conv2dOp;
use super::ops::conv_bias::{conv2d_bias, conv2d_bias_relu};
use super::ops::kernels;
use super::params::{ParamBuilder, ParamKind, ParamVersion};

/// BatchNorm hyperparameters shared by every BN layer of a model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BnConfig {
    /// Keras momentum: `moving = momentum * moving + (1 - momentum) * batch`.
    pub momentum: f64,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl Default for BnConfig {
    /// Keras' defaults: momentum 0.99, epsilon 1e-3.
    fn default() -> Self {
        BnConfig {
            momentum: 0.99,
            eps: 1e-3,
        }
    }
}

/// A 2D convolution with bias, "same" padding for odd windows, stride 1.
#[derive(Debug, Clone)]
pub struct Conv2d {
    kernel: Tensor,
    bias: Tensor,
    padding: usize,
}

impl Conv2d {
    /// A `size` x `size` convolution from `c_in` to `c_out` channels; the kernel is
    /// stored as (out, in, h, w).
    pub fn new(c_in: usize, c_out: usize, size: usize, pb: &ParamBuilder) -> Result<Self> {
        let area = size * size;
        let kernel = pb.var(
            "kernel",
            &[c_out, c_in, size, size],
            ParamKind::Kernel {
                fan_in: c_in * area,
                fan_out: c_out * area,
            },
        )?;
        let bias = pb.var("bias", &[c_out], ParamKind::Bias)?;
        Ok(Conv2d {
            kernel: kernel.as_tensor().clone(),
            bias: bias.as_tensor().clone(),
            padding: size / 2,
        })
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let op = Conv2dOp {
            stride: 1,
            padding: self.padding,
        };
        conv2d_bias(xs, &self.kernel, &self.bias, op)
    }
}

/// A fully connected layer with bias; the kernel is stored as (in, out) like Keras.
#[derive(Debug, Clone)]
pub struct Dense {
    kernel: Tensor,
    bias: Tensor,
}

impl Dense {
    /// A dense layer from `d_in` to `d_out` features.
    pub fn new(d_in: usize, d_out: usize, pb: &ParamBuilder) -> Result<Self> {
        let kernel = pb.var(
            "kernel",
            &[d_in, d_out],
            ParamKind::Kernel {
                fan_in: d_in,
                fan_out: d_out,
            },
        )?;
        let bias = pb.var("bias", &[d_out], ParamKind::Bias)?;
        Ok(Dense {
            kernel: kernel.as_tensor().clone(),
            bias: bias.as_tensor().clone(),
        })
    }
}

impl Module for Dense {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs.matmul(&self.kernel)?.broadcast_add(&self.bias)
    }
}

/// BatchNorm over the channels of an NCHW tensor: batch statistics (biased variance)
/// in training, which also update the moving statistics; moving statistics in
/// evaluation.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    gamma: Tensor,
    beta: Tensor,
    moving_mean: Var,
    moving_var: Var,
    cfg: BnConfig,
    version: ParamVersion,
}

impl BatchNorm {
    /// A BatchNorm layer over `c` channels.
    pub fn new(c: usize, cfg: BnConfig, pb: &ParamBuilder) -> Result<Self> {
        Ok(BatchNorm {
            gamma: pb.var("gamma", &[c], ParamKind::Gamma)?.as_tensor().clone(),
            beta: pb.var("beta", &[c], ParamKind::Beta)?.as_tensor().clone(),
            moving_mean: pb.var("moving_mean", &[c], ParamKind::MovingMean)?,
            moving_var: pb.var("moving_variance", &[c], ParamKind::MovingVariance)?,
            cfg,
            version: pb.version().clone(),
        })
    }

    fn channel(t: &Tensor) -> Result<Tensor> {
        t.reshape((1, t.dim(0)?, 1, 1))
    }

    fn train_forward(&self, xs: &Tensor, relu: bool) -> Result<Tensor> {
        let (mean, var) = channel_stats(xs)?;
        let params = BnParams {
            gamma: &self.gamma,
            beta: &self.beta,
            eps: self.cfg.eps,
            relu,
        };
        let ys = bn_train(xs, &mean, &var, params)?;
        self.update_moving(&mean, &var)?;
        Ok(ys)
    }

    /// BatchNorm then ReLU; one fused kernel on the CPU.
    pub fn forward_relu_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if train {
            self.train_forward(xs, true)
        } else if kernels::custom(xs.device()) {
            let params = BnParams {
                gamma: &self.gamma,
                beta: &self.beta,
                eps: self.cfg.eps,
                relu: true,
            };
            bn_eval(
                xs,
                self.moving_mean.as_tensor(),
                self.moving_var.as_tensor(),
                params,
            )
        } else {
            self.eval_forward(xs)?.relu()
        }
    }

    fn update_moving(&self, mean: &Tensor, var: &Tensor) -> Result<()> {
        let m = self.cfg.momentum;
        let blend = |moving: &Var, batch: &Tensor| -> Result<()> {
            let next = ((moving.as_tensor().detach() * m)? + (batch.detach() * (1.0 - m))?)?;
            moving.set(&next)
        };
        blend(&self.moving_mean, mean)?;
        blend(&self.moving_var, var)?;
        self.version.bump();
        Ok(())
    }

    /// Evaluation-mode BatchNorm as `x * scale + shift` per channel.
    fn affine(&self) -> Result<(Tensor, Tensor)> {
        let inv_std = (self.moving_var.as_tensor() + self.cfg.eps)?
            .sqrt()?
            .recip()?;
        let scale = (&self.gamma * &inv_std)?;
        let shift = (&self.beta - (self.moving_mean.as_tensor() * &scale)?)?;
        Ok((scale, shift))
    }

    fn eval_forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (scale, shift) = self.affine()?;
        xs.broadcast_mul(&Self::channel(&scale)?)?
            .broadcast_add(&Self::channel(&shift)?)
    }
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if train {
            self.train_forward(xs, false)
        } else {
            self.eval_forward(xs)
        }
    }
}

/// A convolution with evaluation-mode BatchNorm folded in, valid for one version of
/// the parameters.
#[derive(Debug)]
struct Folded {
    version: u64,
    kernel: Tensor,
    bias: Tensor,
    /// The centre taps of a 3x3 kernel, (out, in, 1, 1): all that reaches the
    /// output when the map is 1x1 and every other tap falls in the padding.
    centre: Option<Tensor>,
}

/// Conv (k x k, "same", bias) -> BatchNorm -> ReLU: VoVNet's CBR unit. In
/// evaluation BatchNorm is folded into the convolution's kernel and bias (computed
/// once per parameter version) and the bias and ReLU are applied in the same kernel,
/// which saves four passes over the activations.
#[derive(Debug, Clone)]
pub struct ConvBnRelu {
    conv: Conv2d,
    bn: BatchNorm,
    folded: Arc<Mutex<Option<Folded>>>,
}

impl ConvBnRelu {
    /// A CBR unit of a convolution and the BatchNorm after it.
    pub fn from_parts(conv: Conv2d, bn: BatchNorm) -> Self {
        ConvBnRelu {
            conv,
            bn,
            folded: Arc::default(),
        }
    }

    /// A CBR unit from `c_in` to `c_out` channels with a `size` x `size` window.
    pub fn new(
        c_in: usize,
        c_out: usize,
        size: usize,
        bn: BnConfig,
        pb: &ParamBuilder,
    ) -> Result<Self> {
        Ok(Self::from_parts(
            Conv2d::new(c_in, c_out, size, &pb.pp("conv"))?,
            BatchNorm::new(c_out, bn, &pb.pp("bn"))?,
        ))
    }

    /// The folded kernel and bias for the current parameters, the kernel cut
    /// to its centre taps when `centre`.
    fn folded(&self, centre: bool) -> Result<(Tensor, Tensor)> {
        let version = self.bn.version.get();
        // Invariant: nothing panics while holding this lock.
        let mut cache = self.folded.lock().expect("folded BatchNorm lock poisoned");
        if let Some(f) = cache.as_mut().filter(|f| f.version == version) {
            if !centre {
                return Ok((f.kernel.clone(), f.bias.clone()));
            }
            if f.centre.is_none() {
                let p = self.conv.padding;
                f.centre = Some(f.kernel.narrow(2, p, 1)?.narrow(3, p, 1)?.contiguous()?);
            }
            let centre = f.centre.clone().expect("centre taps just cut");
            return Ok((centre, f.bias.clone()));
        }
        let (scale, shift) = self.bn.affine()?;
        let out = scale.dim(0)?;
        let kernel = self
            .conv
            .kernel
            .detach()
            .broadcast_mul(&scale.detach().reshape((out, 1, 1, 1))?)?;
        let bias = ((self.conv.bias.detach() * scale.detach())? + shift.detach())?;
        *cache = Some(Folded {
            version,
            kernel,
            bias,
            centre: None,
        });
        drop(cache);
        self.folded(centre)
    }

    /// Evaluation: the folded convolution, its bias and ReLU in one kernel. On
    /// a 1x1 map a "same" kernel reaches the output only through its centre
    /// tap, so a 1x1 convolution with those weights gives the same result
    /// from a ninth of the weights (what bounds batch-1 latency in the deep
    /// stages of the large VoVNets).
    fn eval_forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = xs.dims4()?;
        let centre = h == 1 && w == 1 && self.conv.padding > 0;
        let (kernel, bias) = self.folded(centre)?;
        let op = Conv2dOp {
            stride: 1,
            padding: if centre { 0 } else { self.conv.padding },
        };
        conv2d_bias_relu(xs, &kernel, &bias, op)
    }
}

impl ModuleT for ConvBnRelu {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if train {
            self.bn.forward_relu_t(&self.conv.forward(xs)?, true)
        } else {
            self.eval_forward(xs)
        }
    }
}

/// Global average pooling of an NCHW tensor to (N, C).
pub fn global_avg_pool(xs: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    xs.reshape((n, c, h * w))?.mean(D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::super::params::ParamStore;
    use super::*;
    use candle_core::{DType, Device};

    fn bn(c: usize, momentum: f64) -> Result<(ParamStore, BatchNorm)> {
        let store = ParamStore::new(Device::Cpu, 0);
        let cfg = BnConfig {
            momentum,
            eps: 1e-3,
        };
        let layer = BatchNorm::new(c, cfg, &store.root())?;
        Ok((store, layer))
    }

    /// Expected values worked by hand from Keras' definitions: one channel holding
    /// 1, 2, 3, 4 has batch mean 2.5 and biased variance 1.25.
    #[test]
    fn batchnorm_train_matches_keras() -> Result<()> {
        let (store, layer) = bn(1, 0.99)?;
        let x = Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu)?.reshape((1, 1, 2, 2))?;
        let y = layer.forward_t(&x, true)?.flatten_all()?.to_vec1::<f32>()?;
        let s = (1.25f32 + 1e-3).sqrt();
        for (got, want) in y.iter().zip([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
        let t = store.tensors()?;
        let mm = t["moving_mean"].to_vec1::<f32>()?[0];
        let mv = t["moving_variance"].to_vec1::<f32>()?[0];
        assert!((mm - 0.025).abs() < 1e-6, "moving mean {mm}");
        assert!((mv - (0.99 + 0.0125)).abs() < 1e-6, "moving variance {mv}");
        Ok(())
    }

    #[test]
    fn batchnorm_eval_uses_moving_statistics() -> Result<()> {
        let (_, layer) = bn(2, 0.99)?;
        let x = Tensor::ones((1, 2, 1, 1), DType::F32, &Device::Cpu)?;
        let y = layer
            .forward_t(&x, false)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let want = 1.0 / (1.0f32 + 1e-3).sqrt();
        assert!(y.iter().all(|v| (v - want).abs() < 1e-6));
        Ok(())
    }

    /// Evaluation through the folded convolution equals conv -> BatchNorm -> ReLU
    /// on the same parameters, and follows every parameter change.
    #[test]
    fn folded_batchnorm_matches_and_follows_updates() -> Result<()> {
        let store = ParamStore::new(Device::Cpu, 3);
        let cfg = BnConfig {
            momentum: 0.5,
            eps: 1e-3,
        };
        let cbr = ConvBnRelu::new(4, 6, 3, cfg, &store.root())?;
        let unfolded = |x: &Tensor| -> Result<Tensor> {
            cbr.bn.forward_t(&cbr.conv.forward(x)?, false)?.relu()
        };
        let x = (Tensor::randn(0f32, 1., (2, 4, 7, 7), &Device::Cpu)? * 2.0)?;
        let dot = Tensor::randn(0f32, 1., (3, 4, 1, 1), &Device::Cpu)?;
        for round in 0..3 {
            // A training pass moves the moving statistics; a "step" moves gamma/beta.
            cbr.forward_t(&(&x + round as f64)?, true)?;
            let mut values = store.tensors()?;
            for name in ["bn.gamma", "bn.beta", "conv.bias"] {
                let t = &values[name];
                let shifted = (t + Tensor::randn(0f32, 0.3, t.dims(), &Device::Cpu)?)?;
                values.insert(name.to_string(), shifted);
            }
            store.load(&values)?;
            // A 1x1 map takes the centre taps only; the cut follows updates too.
            for x in [&x, &dot] {
                let a = cbr.forward_t(x, false)?;
                let b = unfolded(x)?;
                let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(
                    diff < 1e-4,
                    "round {round}, {:?}: folded differs by {diff}",
                    x.dims()
                );
            }
        }
        Ok(())
    }

    #[test]
    fn conv_and_dense_shapes() -> Result<()> {
        let store = ParamStore::new(Device::Cpu, 0);
        let conv = Conv2d::new(3, 5, 3, &store.root().pp("c"))?;
        let x = Tensor::zeros((2, 3, 8, 8), DType::F32, &Device::Cpu)?;
        assert_eq!(conv.forward(&x)?.dims(), &[2, 5, 8, 8]);
        let dense = Dense::new(5, 10, &store.root().pp("d"))?;
        let pooled = global_avg_pool(&conv.forward(&x)?)?;
        assert_eq!(dense.forward(&pooled)?.dims(), &[2, 10]);
        assert_eq!(store.count().total, 3 * 5 * 9 + 5 + 5 * 10 + 10);
        Ok(())
    }
}
