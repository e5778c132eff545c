//! Adding a per-channel bias to an NCHW tensor, with a backward that sums the
//! gradient per channel directly (candle's broadcast backward reduces over axes 0, 2
//! and 3 element by element).

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::channel::channel_sum;
use super::{f32_slice, nchw};

/// `y[n, c, h, w] = x[n, c, h, w] + b[c]`.
pub struct BiasAdd;

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "vov-bias-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1)?;
        let b = f32_slice(s2, l2)?;
        let (_, c, hw) = nchw(l1)?;
        if b.len() != c {
            candle_core::bail!("bias has {} values for {c} channels", b.len())
        }
        let mut y = x.to_vec();
        y.par_chunks_mut(hw).enumerate().for_each(|(plane, out)| {
            let bias = b[plane % c];
            out.iter_mut().for_each(|v| *v += bias);
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.clone()), Some(channel_sum(grad)?)))
    }
}

/// Adds `bias` (C) to the channels of `xs` (N, C, H, W).
pub fn bias_add(xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if super::kernels::custom(xs.device()) {
        xs.contiguous()?.apply_op2(bias, BiasAdd)
    } else {
        bias_add_reference(xs, bias)
    }
}

/// The same with candle's ops (any device).
pub fn bias_add_reference(xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
    xs.broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?)
}

#[cfg(test)]
mod tests {
    use super::super::testing::rel_diff;
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn forward_and_gradients_match_candle() -> Result<()> {
        for dims in [(2, 3, 5, 7), (3, 8, 1, 1), (1, 2, 4, 4)] {
            let x = Var::randn(0f32, 1., dims, &Device::Cpu)?;
            let b = Var::randn(0f32, 1., dims.1, &Device::Cpu)?;
            let w = Tensor::randn(0f32, 1., dims, &Device::Cpu)?;
            let ours = bias_add(&x, &b)?;
            let theirs = bias_add_reference(&x, &b)?;
            assert!(rel_diff(&ours, &theirs)? < 1e-6);
            let g1 = (ours * &w)?.sum_all()?.backward()?;
            let g2 = (theirs * &w)?.sum_all()?.backward()?;
            for v in [&x, &b] {
                assert!(rel_diff(g1.get(v).unwrap(), g2.get(v).unwrap())? < 1e-5);
            }
        }
        Ok(())
    }
}
