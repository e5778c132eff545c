//! BatchNorm in training mode, optionally followed by ReLU, as one kernel with a
//! closed-form backward.
//!
//! Composed from candle ops, a training BatchNorm is about ten full-size passes
//! forward and twenty backward, most of them slow per-channel reductions. Here the
//! forward is one pass (`y = (x - mean) * inv_std * gamma + beta`, with the batch
//! statistics computed beforehand by [`super::channel::channel_stats`]) and the
//! backward is two: per-channel sums of `dy` and `dy * xhat`, then
//! `dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat))`, the exact
//! gradient including the statistics' dependence on `x`. With ReLU fused in,
//! the forward writes `max(y, 0)` in the same pass and both backward passes zero
//! `dy` where the output was 0, recomputing `y` from `x` as the forward did (no
//! pass of its own, where candle's ReLU costs one pass forward and four backward).
//! Like PyTorch, the gradient passes where the normalised value is above 0; candle
//! also passes it where the value is exactly 0, a set of measure zero.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::channel::lane_sum_pairs;
use super::{buffer, f32_slice, nchw};

/// Normalise with given batch statistics, then scale and shift (and ReLU if
/// `relu`): (x, gamma, beta) -> y.
pub struct BnTrain {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    relu: bool,
}

/// The per-channel map `y = x * scale + shift` of one call: the forward applies
/// it, the input gradient scales by it, and a fused ReLU's backward gate is
/// `x * scale + shift > 0`, computed bit for bit as the forward computed `y`.
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl Affine {
    /// Channel `ch`'s `(scale, shift)`.
    fn at(&self, ch: usize) -> (f32, f32) {
        (self.scale[ch], self.shift[ch])
    }
}

/// `dy` where a ReLU after this channel's affine map passed `x`, else 0.
fn through(x: f32, dy: f32, (scale, shift): (f32, f32)) -> f32 {
    if x * scale + shift > 0.0 {
        dy
    } else {
        0.0
    }
}

/// Per-channel `sum(dy)` and `sum(dy * xhat)`: (x, dy) -> (2, C).
struct GradSums<'a> {
    bn: &'a BnTrain,
    affine: &'a Affine,
    relu: bool,
}

/// Input gradient: (x, dy) -> dx.
struct GradInput<'a> {
    bn: &'a BnTrain,
    affine: &'a Affine,
    relu: bool,
    mean_dy: Vec<f32>,
    mean_dy_xhat: Vec<f32>,
}

impl BnTrain {
    /// The affine map of these statistics with scale `gamma` and shift `beta`.
    fn affine(&self, gamma: &[f32], beta: &[f32]) -> Affine {
        let scale: Vec<f32> = self.inv_std.iter().zip(gamma).map(|(s, g)| s * g).collect();
        let shift = beta
            .iter()
            .zip(&self.mean)
            .zip(&scale)
            .map(|((b, m), k)| b - m * k)
            .collect();
        Affine { scale, shift }
    }

    /// An op for batch statistics `mean` and biased `var` (C values each), with a
    /// ReLU after it if `relu`.
    pub fn new(mean: Vec<f32>, var: &[f32], eps: f64, relu: bool) -> Self {
        let inv_std = var
            .iter()
            .map(|&v| (1.0 / (f64::from(v) + eps).sqrt()) as f32)
            .collect();
        BnTrain {
            mean,
            inv_std,
            relu,
        }
    }
}

/// Applies `f(plane_index, channel, x_plane, out_plane)` to every plane, in parallel.
fn per_plane(
    x: &[f32],
    c: usize,
    hw: usize,
    f: impl Fn(usize, &[f32], &mut [f32]) + Sync,
) -> Vec<f32> {
    buffer::par_pieces(x.len(), hw, |plane, o| {
        f(plane % c, &x[plane * hw..][..hw], o)
    })
}

impl CustomOp3 for BnTrain {
    fn name(&self) -> &'static str {
        "vov-batchnorm-train"
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
        let x = f32_slice(s1, l1)?;
        let (gamma, beta) = (f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let (_, c, hw) = nchw(l1)?;
        if gamma.len() != c || beta.len() != c || self.mean.len() != c {
            candle_core::bail!("batchnorm parameters do not have {c} channels")
        }
        let affine = self.affine(gamma, beta);
        let y = per_plane(x, c, hw, |ch, xs, out| {
            let (scale, shift) = affine.at(ch);
            if self.relu {
                for (o, &v) in out.iter_mut().zip(xs) {
                    *o = (v * scale + shift).max(0.0);
                }
            } else {
                for (o, &v) in out.iter_mut().zip(xs) {
                    *o = v * scale + shift;
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let affine = self.affine(&gamma.to_vec1::<f32>()?, &beta.to_vec1::<f32>()?);
        let (affine, relu) = (&affine, self.relu);
        let sums = x.apply_op2_no_bwd(
            &grad,
            &GradSums {
                bn: self,
                affine,
                relu,
            },
        )?;
        let (n, _, h, w) = x.dims4()?;
        let count = (n * h * w) as f32;
        let rows = sums.to_vec2::<f32>()?;
        let op = GradInput {
            bn: self,
            affine,
            relu,
            mean_dy: rows[0].iter().map(|v| v / count).collect(),
            mean_dy_xhat: rows[1].iter().map(|v| v / count).collect(),
        };
        let dx = x.apply_op2_no_bwd(&grad, &op)?;
        Ok((Some(dx), Some(sums.get(1)?), Some(sums.get(0)?)))
    }
}

impl CustomOp2 for GradSums<'_> {
    fn name(&self) -> &'static str {
        "vov-batchnorm-grad-sums"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, dy) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let (n, c, hw) = nchw(l1)?;
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (m, s) = (self.bn.mean[ch], self.bn.inv_std[ch]);
                let (mut sum_dy, mut sum_dy_xhat) = (0f64, 0f64);
                for i in 0..n {
                    let start = (i * c + ch) * hw;
                    let (dy, x) = (&dy[start..][..hw], &x[start..][..hw]);
                    let sum = |g: f32, v: f32| (f64::from(g), f64::from(g * (v - m) * s));
                    let (a, b) = match self.relu.then(|| self.affine.at(ch)) {
                        Some(gate) => lane_sum_pairs(dy, x, |g, v| sum(through(v, g, gate), v)),
                        None => lane_sum_pairs(dy, x, sum),
                    };
                    (sum_dy, sum_dy_xhat) = (sum_dy + a, sum_dy_xhat + b);
                }
                (sum_dy as f32, sum_dy_xhat as f32)
            })
            .collect();
        let mut out: Vec<f32> = sums.iter().map(|s| s.0).collect();
        out.extend(sums.iter().map(|s| s.1));
        Ok((CpuStorage::F32(out), Shape::from((2, c))))
    }
}

impl CustomOp2 for GradInput<'_> {
    fn name(&self) -> &'static str {
        "vov-batchnorm-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, dy) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let (_, c, hw) = nchw(l1)?;
        let dx = buffer::par_pieces(x.len(), hw, |plane, out| {
            let (xs, gs) = (&x[plane * hw..][..hw], &dy[plane * hw..][..hw]);
            let ch = plane % c;
            let (m, s) = (self.bn.mean[ch], self.bn.inv_std[ch]);
            let (a, b, k) = (
                self.mean_dy[ch],
                self.mean_dy_xhat[ch],
                self.affine.scale[ch],
            );
            let dx = |g: f32, v: f32| k * (g - a - (v - m) * s * b);
            let values = out.iter_mut().zip(xs).zip(gs);
            match self.relu.then(|| self.affine.at(ch)) {
                Some(gate) => values.for_each(|((o, &v), &g)| *o = dx(through(v, g, gate), v)),
                None => values.for_each(|((o, &v), &g)| *o = dx(g, v)),
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// The affine parameters and epsilon of one BatchNorm call, and whether a ReLU
/// follows it.
#[derive(Debug, Clone, Copy)]
pub struct BnParams<'a> {
    /// Scale, C values.
    pub gamma: &'a Tensor,
    /// Shift, C values.
    pub beta: &'a Tensor,
    /// Added to the variance.
    pub eps: f64,
    /// Apply ReLU to the result (fused on the CPU).
    pub relu: bool,
}

/// Training-mode BatchNorm (and ReLU if asked) of `xs` with batch statistics `mean`
/// and `var` (C each, from [`super::channel::channel_stats`]).
pub fn bn_train(xs: &Tensor, mean: &Tensor, var: &Tensor, p: BnParams<'_>) -> Result<Tensor> {
    if super::kernels::custom(xs.device()) {
        let op = BnTrain::new(mean.to_vec1()?, &var.to_vec1::<f32>()?, p.eps, p.relu);
        xs.contiguous()?.apply_op3(p.gamma, p.beta, op)
    } else {
        bn_train_reference(xs, p)
    }
}

/// Evaluation-mode BatchNorm (and ReLU if asked) of `xs` with the moving
/// statistics `mean` and `var`: on the CPU the training kernel's one-pass
/// forward with no gradient recorded (evaluation never back-propagates), where
/// candle's composed ops take three passes and a per-call affine.
pub fn bn_eval(xs: &Tensor, mean: &Tensor, var: &Tensor, p: BnParams<'_>) -> Result<Tensor> {
    let op = BnTrain::new(mean.to_vec1()?, &var.to_vec1::<f32>()?, p.eps, p.relu);
    xs.contiguous()?.apply_op3_no_bwd(p.gamma, p.beta, &op)
}

/// The same composed from candle ops (any device; statistics recomputed with
/// gradient tracking).
pub fn bn_train_reference(xs: &Tensor, p: BnParams<'_>) -> Result<Tensor> {
    let ys = bn_affine_reference(xs, p.gamma, p.beta, p.eps)?;
    if p.relu {
        ys.relu()
    } else {
        Ok(ys)
    }
}

fn bn_affine_reference(xs: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    let count = (n * h * w) as f64;
    let per_channel = |t: &Tensor| -> Result<Tensor> {
        (t.reshape((n, c, h * w))?.sum(2)?.sum_keepdim(0)? / count)?.reshape((1, c, 1, 1))
    };
    let mean = per_channel(xs)?;
    let centered = xs.broadcast_sub(&mean)?;
    let var = per_channel(&centered.sqr()?)?;
    let inv_std = (var + eps)?.sqrt()?.recip()?;
    let scale = inv_std.broadcast_mul(&gamma.reshape((1, c, 1, 1))?)?;
    centered
        .broadcast_mul(&scale)?
        .broadcast_add(&beta.reshape((1, c, 1, 1))?)
}

#[cfg(test)]
mod tests {
    use super::super::channel::channel_stats;
    use super::super::testing::{grad_diffs, rel_diff};
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn forward_and_all_gradients_match_candle() -> Result<()> {
        for relu in [false, true] {
            for dims in [(4, 3, 5, 7), (2, 8, 1, 1), (3, 5, 15, 15), (1, 2, 3, 3)] {
                let dev = Device::Cpu;
                let x = Var::from_tensor(&((Tensor::randn(0f32, 1., dims, &dev)? * 2.0)? + 0.5)?)?;
                let gamma = Var::from_tensor(&(Tensor::randn(0f32, 1., dims.1, &dev)? + 1.0)?)?;
                let beta = Var::randn(0f32, 1., dims.1, &dev)?;
                let w = Tensor::randn(0f32, 1., dims, &dev)?;
                let (mean, var) = channel_stats(&x)?;
                let p = BnParams {
                    gamma: &gamma,
                    beta: &beta,
                    eps: 1e-3,
                    relu,
                };
                let ours = bn_train(&x, &mean, &var, p)?;
                let theirs = bn_train_reference(&x, p)?;
                assert!(
                    rel_diff(&ours, &theirs)? < 1e-5,
                    "forward {dims:?} relu {relu}"
                );
                if relu {
                    let negative = ours.lt(0f32)?.to_dtype(candle_core::DType::U32)?;
                    assert_eq!(negative.sum_all()?.to_scalar::<u32>()?, 0);
                }
                let vars = [("x", &x), ("gamma", &gamma), ("beta", &beta)];
                for (name, d) in grad_diffs(&ours, &theirs, &w, &vars)? {
                    assert!(d < 1e-4, "grad {name} {dims:?} relu {relu}: {d}");
                }
            }
        }
        Ok(())
    }
}
