//! Convolution with its bias (and, for inference, the ReLU after it) in one kernel.
//!
//! A separate bias op costs a full pass over the output forward, and backward an
//! identity gradient that candle's backprop still accumulates into a fresh zeroed
//! tensor (two more passes and two allocations per layer). Here the bias is added
//! to each image's output while it is still in cache, and the bias gradient is the
//! per-channel sum of the output gradient, taken beside the convolution's own.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::channel::channel_sum;
use super::conv::{conv2d_reference, Conv2dOp, Epilogue, Geometry};
use super::f32_slice;

/// (x, kernel, bias) -> conv(x, kernel) + bias, then ReLU if `relu` (inference
/// only: no backward through the ReLU).
struct ConvBias {
    op: Conv2dOp,
    relu: bool,
}

impl CustomOp3 for ConvBias {
    fn name(&self) -> &'static str {
        if self.relu {
            "vov-conv2d-bias-relu"
        } else {
            "vov-conv2d-bias"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(self.op, l1.shape(), l2.shape())?;
        let bias = f32_slice(s3, l3)?;
        if bias.len() != g.out_channels() {
            candle_core::bail!(
                "conv: bias has {} values for {} channels",
                bias.len(),
                g.out_channels()
            )
        }
        let epilogue = Epilogue {
            bias,
            relu: self.relu,
        };
        let y = self
            .op
            .forward_then(f32_slice(s1, l1)?, f32_slice(s2, l2)?, &g, Some(epilogue));
        Ok((CpuStorage::F32(y), g.out_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        k: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        if self.relu {
            candle_core::bail!("conv2d_bias_relu has no backward (inference only)")
        }
        let grad = grad.contiguous()?;
        let (dx, dk) = self.op.backward(x, k, &grad)?;
        Ok((dx, Some(dk), Some(channel_sum(&grad)?)))
    }
}

/// `conv(xs, kernel) + bias` (bias per output channel), with gradients for all
/// three: one kernel on the CPU, candle's ops elsewhere.
pub fn conv2d_bias(xs: &Tensor, kernel: &Tensor, bias: &Tensor, op: Conv2dOp) -> Result<Tensor> {
    if super::kernels::custom(xs.device()) {
        xs.contiguous()?.apply_op3(
            &kernel.contiguous()?,
            &bias.contiguous()?,
            ConvBias { op, relu: false },
        )
    } else {
        conv2d_bias_reference(xs, kernel, bias, op)
    }
}

/// The same with candle's ops (any device).
pub fn conv2d_bias_reference(
    xs: &Tensor,
    kernel: &Tensor,
    bias: &Tensor,
    op: Conv2dOp,
) -> Result<Tensor> {
    conv2d_reference(xs, kernel, op)?.broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?)
}

/// Inference: `relu(conv(xs, kernel) + bias)` in one pass over the output on the
/// CPU (no gradient flows through it), candle's ops elsewhere.
pub fn conv2d_bias_relu(
    xs: &Tensor,
    kernel: &Tensor,
    bias: &Tensor,
    op: Conv2dOp,
) -> Result<Tensor> {
    if super::kernels::custom(xs.device()) {
        xs.detach().contiguous()?.apply_op3_no_bwd(
            &kernel.detach().contiguous()?,
            &bias.detach().contiguous()?,
            &ConvBias { op, relu: true },
        )
    } else {
        conv2d_bias_relu_reference(xs, kernel, bias, op)
    }
}

/// The same with candle's ops (any device).
pub fn conv2d_bias_relu_reference(
    xs: &Tensor,
    kernel: &Tensor,
    bias: &Tensor,
    op: Conv2dOp,
) -> Result<Tensor> {
    conv2d_bias_reference(xs, kernel, bias, op)?.relu()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{grad_diffs, rel_diff};
    use super::*;
    use candle_core::{Device, Var};

    /// Input shape, output channels, window, stride, padding.
    type Case = ((usize, usize, usize, usize), usize, usize, usize, usize);

    const SHAPES: [Case; 5] = [
        ((2, 3, 8, 8), 4, 3, 1, 1),
        ((1, 5, 7, 9), 6, 3, 1, 1),  // odd sizes, batch 1
        ((3, 16, 6, 6), 8, 1, 1, 0), // pointwise
        ((2, 3, 9, 7), 4, 3, 2, 1),  // stride 2, odd sizes
        ((4, 4, 8, 8), 3, 1, 2, 0),  // strided 1x1
    ];

    #[test]
    fn forward_and_all_gradients_match_candle() -> Result<()> {
        let dev = Device::Cpu;
        for (x, o, k, stride, padding) in SHAPES {
            let op = Conv2dOp { stride, padding };
            let xs = Var::randn(0f32, 1., x, &dev)?;
            let ks = Var::randn(0f32, 0.3, (o, x.1, k, k), &dev)?;
            let bias = Var::randn(0f32, 1., o, &dev)?;
            let ours = conv2d_bias(&xs, &ks, &bias, op)?;
            let theirs = conv2d_bias_reference(&xs, &ks, &bias, op)?;
            assert!(
                rel_diff(&ours, &theirs)? < 1e-5,
                "forward {x:?} k{k} {op:?}"
            );
            let w = Tensor::randn(0f32, 1., theirs.shape(), &dev)?;
            let vars = [("input", &xs), ("kernel", &ks), ("bias", &bias)];
            for (name, d) in grad_diffs(&ours, &theirs, &w, &vars)? {
                assert!(d < 1e-4, "{name} gradient {x:?} k{k} {op:?}: {d}");
            }
        }
        Ok(())
    }

    #[test]
    fn fused_bias_relu_matches_candle() -> Result<()> {
        let dev = Device::Cpu;
        for (x, o, k, stride, padding) in SHAPES {
            let op = Conv2dOp { stride, padding };
            let xs = Tensor::randn(0f32, 1., x, &dev)?;
            let ks = Tensor::randn(0f32, 0.3, (o, x.1, k, k), &dev)?;
            let bias = Tensor::randn(0f32, 1., o, &dev)?;
            let ours = conv2d_bias_relu(&xs, &ks, &bias, op)?;
            let theirs = conv2d_bias_relu_reference(&xs, &ks, &bias, op)?;
            assert!(rel_diff(&ours, &theirs)? < 1e-5, "{x:?} k{k} {op:?}");
        }
        Ok(())
    }

    #[test]
    fn rejects_a_bias_of_the_wrong_length() {
        let x = Tensor::zeros((1, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let k = Tensor::zeros((2, 3, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(5, candle_core::DType::F32, &Device::Cpu).unwrap();
        let op = Conv2dOp {
            stride: 1,
            padding: 1,
        };
        let err = conv2d_bias(&x, &k, &b, op).unwrap_err();
        assert!(err.to_string().contains("bias has 5 values"), "{err}");
    }
}
