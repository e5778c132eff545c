//! Adam's update in place on the CPU.
//!
//! Composed from candle ops, one Adam step is about ten full passes over every
//! parameter tensor, each allocating its result, several of them on one thread
//! (candle's scalar multiplies): for vovnet-39's 18.6M parameters that is about
//! 2 GB of memory traffic a step. Here it is three passes on all threads, each
//! writing into an existing tensor: the first moment, the second, then the
//! weights. Every value is computed with the same f32 operations in the same
//! order as [`adam_composed`], the update on other devices, so both give the
//! same weights.

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor};
use rayon::prelude::*;

use super::{f32_slice, f32_slice_mut};

/// Values per parallel task.
const PIECE: usize = 1 << 14;

/// The scalars of one Adam step.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the square root of the second moment.
    pub epsilon: f64,
    /// The step size with the bias correction folded in.
    pub alpha: f64,
    /// Decoupled weight decay, `lr * weight_decay`, applied to the weights first;
    /// none for parameters that are not decayed.
    pub decay: Option<f64>,
}

/// `moment = moment * beta + g * (1 - beta)` (of `g * g` when `square`), in place
/// on the moment: (moment, g).
struct Moment {
    beta: f32,
    rest: f32,
    square: bool,
}

/// `w = w - (m * alpha) / (sqrt(v) + epsilon)`, after `w = w - w * decay`, in
/// place on the weights: (w, m, v).
struct Apply {
    alpha: f32,
    epsilon: f32,
    decay: Option<f32>,
}

/// Fails unless every slice has `len` values.
fn same_len(len: usize, others: &[&[f32]]) -> Result<()> {
    if others.iter().any(|o| o.len() != len) {
        candle_core::bail!("adam: parameter, gradient and moments differ in size")
    }
    Ok(())
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "vov-adam-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let g = f32_slice(s2, l2)?;
        let moment = f32_slice_mut(s1, l1)?;
        same_len(moment.len(), &[g])?;
        let (beta, rest) = (self.beta, self.rest);
        moment
            .par_chunks_mut(PIECE)
            .zip(g.par_chunks(PIECE))
            .for_each(|(ms, gs)| {
                if self.square {
                    ms.iter_mut()
                        .zip(gs)
                        .for_each(|(m, &g)| *m = *m * beta + g * g * rest);
                } else {
                    ms.iter_mut()
                        .zip(gs)
                        .for_each(|(m, &g)| *m = *m * beta + g * rest);
                }
            });
        Ok(())
    }
}

impl InplaceOp3 for Apply {
    fn name(&self) -> &'static str {
        "vov-adam-apply"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let (m, v) = (f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let w = f32_slice_mut(s1, l1)?;
        same_len(w.len(), &[m, v])?;
        let (alpha, epsilon) = (self.alpha, self.epsilon);
        w.par_chunks_mut(PIECE)
            .zip(m.par_chunks(PIECE).zip(v.par_chunks(PIECE)))
            .for_each(|(ws, (ms, vs))| {
                for ((w, &m), &v) in ws.iter_mut().zip(ms).zip(vs) {
                    let decayed = match self.decay {
                        Some(d) => *w - *w * d,
                        None => *w,
                    };
                    *w = decayed - (m * alpha) / (v.sqrt() + epsilon);
                }
            });
        Ok(())
    }
}

/// One Adam step on CPU tensors, in place: the moments `m` and `v` take the
/// gradient `g`, then the weights `w` take the step. All four must have the same
/// number of values; `g` may have any layout.
pub fn adam_in_place(w: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, s: AdamStep) -> Result<()> {
    let g = g.contiguous()?;
    let moment = |beta: f64, square: bool| Moment {
        beta: beta as f32,
        rest: (1.0 - beta) as f32,
        square,
    };
    m.inplace_op2(&g, &moment(s.beta1, false))?;
    v.inplace_op2(&g, &moment(s.beta2, true))?;
    let apply = Apply {
        alpha: s.alpha as f32,
        epsilon: s.epsilon as f32,
        decay: s.decay.map(|d| d as f32),
    };
    w.inplace_op3(m, v, &apply)
}

/// The same step composed from candle ops, on any device: the weights, first
/// moment and second moment after it.
pub fn adam_composed(
    w: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    s: AdamStep,
) -> Result<[Tensor; 3]> {
    let w = match s.decay {
        Some(d) => (w - (w * d)?)?,
        None => w.clone(),
    };
    let m = ((m * s.beta1)? + (g * (1.0 - s.beta1))?)?;
    let v = ((v * s.beta2)? + (g.sqr()? * (1.0 - s.beta2))?)?;
    let upd = ((&m * s.alpha)? / (v.sqrt()? + s.epsilon)?)?;
    Ok([(w - upd)?, m, v])
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn equals_the_composed_update_bit_for_bit() -> Result<()> {
        let dev = Device::Cpu;
        for (len, decay) in [
            (7, None),
            (3 * PIECE + 5, Some(1e-4)),
            (100_003, Some(3e-3)),
        ] {
            let w = Tensor::randn(0f32, 1., len, &dev)?;
            let g = Tensor::randn(0f32, 0.1, len, &dev)?;
            let m = Tensor::randn(0f32, 0.01, len, &dev)?;
            let v = Tensor::randn(0f32, 0.01, len, &dev)?.abs()?;
            let step = AdamStep {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-7,
                alpha: 1.3e-3,
                decay,
            };
            let want = adam_composed(&w, &g, &m, &v, step)?;
            let (w2, m2, v2) = (w.copy()?, m.copy()?, v.copy()?);
            adam_in_place(&w2, &g, &m2, &v2, step)?;
            for (got, want) in [w2, m2, v2].iter().zip(&want) {
                let got = got.to_vec1::<f32>()?;
                let want = want.to_vec1::<f32>()?;
                assert!(got.iter().zip(&want).all(|(a, b)| a == b), "len {len}");
            }
        }
        Ok(())
    }

    #[test]
    fn takes_a_transposed_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::zeros((3, 4), candle_core::DType::F32, &dev)?;
        let g = Tensor::arange(0f32, 12., &dev)?.reshape((4, 3))?.t()?;
        let (m, v) = (w.zeros_like()?, w.zeros_like()?);
        let step = AdamStep {
            beta1: 0.5,
            beta2: 0.5,
            epsilon: 1e-7,
            alpha: 1.0,
            decay: None,
        };
        adam_in_place(&w, &g, &m, &v, step)?;
        assert_eq!(
            m.to_vec2::<f32>()?,
            (g.contiguous()? * 0.5)?.to_vec2::<f32>()?
        );
        Ok(())
    }
}
