//! Max pooling with "valid" padding and any window/stride, with a backward pass.
//!
//! candle 0.11's own `max_pool2d_with_stride` has no backward when the window and the
//! stride differ, and VoVNet pools with a 3x3 window at stride 2 (overlapping
//! windows). This custom op computes the forward on the CPU and routes each output
//! gradient to the first maximum of its window in row-major order, as TensorFlow's
//! `MaxPoolGrad` does. On other devices the forward falls back to candle's kernel.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Window and stride of a square max pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPool {
    /// Window side.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
}

impl MaxPool {
    /// The VoVNet pool: 3x3 window, stride 2.
    pub const VOVNET: MaxPool = MaxPool {
        kernel: 3,
        stride: 2,
    };

    /// Output side for an input side, or `None` when the window does not fit.
    pub fn out_size(&self, size: usize) -> Option<usize> {
        (size >= self.kernel).then(|| (size - self.kernel) / self.stride + 1)
    }

    /// Pools an NCHW tensor.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = xs.dims4()?;
        if self.out_size(h).is_none() || self.out_size(w).is_none() {
            candle_core::bail!(
                "max pool {0}x{0}: input of {h}x{w} is smaller than the window",
                self.kernel
            )
        }
        if super::kernels::custom(xs.device()) {
            xs.contiguous()?.apply_op1(*self)
        } else {
            self.forward_reference(xs)
        }
    }

    /// The same pooling composed from candle ops that have a backward on every
    /// device (candle's own `max_pool2d` has none when windows overlap): the
    /// maximum of the kernel x kernel strided views of the input.
    pub fn forward_reference(&self, xs: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = xs.dims4()?;
        let (Some(oh), Some(ow)) = (self.out_size(h), self.out_size(w)) else {
            candle_core::bail!("max pool window larger than the {h}x{w} input")
        };
        let strided = |t: &Tensor, dim: usize, offset: usize, len: usize| -> Result<Tensor> {
            let idx: Vec<u32> = (0..len)
                .map(|i| (offset + i * self.stride) as u32)
                .collect();
            t.index_select(&Tensor::new(idx, t.device())?, dim)
        };
        let mut out: Option<Tensor> = None;
        for dy in 0..self.kernel {
            let rows = strided(xs, 2, dy, oh)?;
            for dx in 0..self.kernel {
                let view = strided(&rows, 3, dx, ow)?;
                out = Some(match out {
                    None => view,
                    Some(m) => m.maximum(&view)?,
                });
            }
        }
        out.ok_or_else(|| candle_core::Error::Msg("max pool with an empty window".into()))
    }

    fn dims(&self, layout: &Layout) -> Result<Dims> {
        let (n, c, h, w) = layout.shape().dims4()?;
        let (oh, ow) = match (self.out_size(h), self.out_size(w)) {
            (Some(oh), Some(ow)) => (oh, ow),
            _ => candle_core::bail!("max pool window larger than the {h}x{w} input"),
        };
        Ok(Dims {
            planes: n * c,
            h,
            w,
            oh,
            ow,
        })
    }

    /// Index (within a plane) of the first maximum of the window at (`oy`, `ox`).
    fn argmax<T: Copy + PartialOrd>(&self, plane: &[T], d: &Dims, oy: usize, ox: usize) -> usize {
        let mut best = oy * self.stride * d.w + ox * self.stride;
        let mut top = plane[best];
        for ky in 0..self.kernel {
            let row = (oy * self.stride + ky) * d.w + ox * self.stride;
            for (i, &v) in plane[row..row + self.kernel].iter().enumerate() {
                // Not "less or equal" rather than "greater", so that a NaN wins; on
                // the running value, so the compiler can select without branching.
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                if !(v <= top) {
                    (best, top) = (row + i, v);
                }
            }
        }
        best
    }

    /// Window maxima, a row of windows at a time: the maximum down the window's
    /// rows for every column, then across each window's columns. Both passes are
    /// branch-free, so they vectorize (the window-by-window scan of [`Self::argmax`]
    /// took a sixth of a batch-32 VoVNet inference). Equal to the value at the
    /// backward pass's argmax for any input without NaN; a NaN in a window gives NaN.
    fn fwd<T: Copy + PartialOrd + Send + Sync + Default>(&self, src: &[T], d: &Dims) -> Vec<T> {
        let mut dst = vec![T::default(); d.planes * d.oh * d.ow];
        let span = (d.ow - 1) * self.stride + self.kernel;
        dst.par_chunks_mut(d.oh * d.ow)
            .zip(src.par_chunks(d.h * d.w))
            .for_each_init(
                || vec![T::default(); span],
                |down, (out, plane)| {
                    for (oy, out_row) in out.chunks_exact_mut(d.ow).enumerate() {
                        let top = oy * self.stride;
                        down.copy_from_slice(&plane[top * d.w..][..span]);
                        for ky in 1..self.kernel {
                            let row = &plane[(top + ky) * d.w..][..span];
                            down.iter_mut()
                                .zip(row)
                                .for_each(|(m, &v)| *m = larger(*m, v));
                        }
                        for (ox, o) in out_row.iter_mut().enumerate() {
                            let window = &down[ox * self.stride..][..self.kernel];
                            *o = window[1..].iter().fold(window[0], |m, &v| larger(m, v));
                        }
                    }
                },
            );
        dst
    }

    fn bwd_kernel<T>(&self, src: &[T], grad: &[T], d: &Dims) -> Vec<T>
    where
        T: Copy + PartialOrd + Send + Sync + Default + std::ops::AddAssign,
    {
        let mut dst = vec![T::default(); d.planes * d.h * d.w];
        dst.par_chunks_mut(d.h * d.w)
            .zip(src.par_chunks(d.h * d.w))
            .zip(grad.par_chunks(d.oh * d.ow))
            .for_each(|((out, plane), g)| {
                for oy in 0..d.oh {
                    for ox in 0..d.ow {
                        out[self.argmax(plane, d, oy, ox)] += g[oy * d.ow + ox];
                    }
                }
            });
        dst
    }
}

/// The larger of `a` and `b`, or whichever is NaN.
#[inline]
#[allow(clippy::eq_op)] // `v != v` is the NaN test for any `PartialOrd` type
fn larger<T: Copy + PartialOrd>(a: T, b: T) -> T {
    if b > a || b != b {
        b
    } else {
        a
    }
}

/// Sizes of one pooling call.
struct Dims {
    planes: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

fn contiguous<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<T>()?[a..b]),
        None => candle_core::bail!("max pool expects a contiguous input"),
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "vov-max-pool"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = self.dims(l)?;
        let (n, c, _, _) = l.shape().dims4()?;
        let shape = Shape::from((n, c, d.oh, d.ow));
        let out = match s {
            CpuStorage::F32(_) => CpuStorage::F32(self.fwd(contiguous::<f32>(s, l)?, &d)),
            CpuStorage::F64(_) => CpuStorage::F64(self.fwd(contiguous::<f64>(s, l)?, &d)),
            _ => candle_core::bail!("max pool supports f32 and f64 only"),
        };
        Ok((out, shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = arg.apply_op2_no_bwd(&grad_res.contiguous()?, &MaxPoolGrad(*self))?;
        Ok(Some(grad))
    }
}

/// Gradient of [`MaxPool`] with respect to its input: (input, output grad) -> input grad.
struct MaxPoolGrad(MaxPool);

impl CustomOp2 for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "vov-max-pool-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.0.dims(l1)?;
        if l2.shape().elem_count() != d.planes * d.oh * d.ow {
            candle_core::bail!(
                "max pool grad: gradient shape {:?} does not match",
                l2.shape()
            )
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => CpuStorage::F32(self.0.bwd_kernel(
                contiguous::<f32>(s1, l1)?,
                contiguous::<f32>(s2, l2)?,
                &d,
            )),
            (CpuStorage::F64(_), CpuStorage::F64(_)) => CpuStorage::F64(self.0.bwd_kernel(
                contiguous::<f64>(s1, l1)?,
                contiguous::<f64>(s2, l2)?,
                &d,
            )),
            _ => candle_core::bail!("max pool grad supports f32 and f64"),
        };
        Ok((out, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    #[test]
    fn forward_matches_candle() -> Result<()> {
        let x = Tensor::randn(0f32, 1., (2, 3, 9, 8), &Device::Cpu)?;
        let ours = MaxPool::VOVNET.forward(&x)?;
        let theirs = x.max_pool2d_with_stride(3, 2)?;
        assert_eq!(ours.dims(), &[2, 3, 4, 3]);
        let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(diff, 0.0);
        Ok(())
    }

    /// The composed fallback used off the CPU agrees with the kernel, forward and
    /// backward (random inputs have no ties).
    #[test]
    fn reference_matches_kernel_forward_and_backward() -> Result<()> {
        for (dims, pool) in [
            ((2, 3, 9, 8), MaxPool::VOVNET),
            ((1, 2, 32, 32), MaxPool::VOVNET),
            (
                (2, 1, 5, 7),
                MaxPool {
                    kernel: 2,
                    stride: 2,
                },
            ),
        ] {
            let x = Var::randn(0f32, 1., dims, &Device::Cpu)?;
            let ours = pool.forward(x.as_tensor())?;
            let reference = pool.forward_reference(x.as_tensor())?;
            assert_eq!(ours.dims(), reference.dims());
            let diff = (&ours - &reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(diff, 0.0);
            let weights = Tensor::randn(0f32, 1., ours.dims(), &Device::Cpu)?;
            let g1 = (ours * &weights)?.sum_all()?.backward()?;
            let g2 = (reference * &weights)?.sum_all()?.backward()?;
            let (a, b) = (g1.get(&x).unwrap(), g2.get(&x).unwrap());
            let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-6, "{dims:?}: gradient differs by {diff}");
        }
        Ok(())
    }

    #[test]
    fn output_sizes_follow_vovnet() {
        let p = MaxPool::VOVNET;
        assert_eq!(p.out_size(32), Some(15));
        assert_eq!(p.out_size(15), Some(7));
        assert_eq!(p.out_size(7), Some(3));
        assert_eq!(p.out_size(3), Some(1));
        assert_eq!(p.out_size(2), None);
    }

    #[test]
    fn rejects_small_input() {
        let x = Tensor::zeros((1, 1, 2, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(MaxPool::VOVNET.forward(&x).is_err());
    }

    /// Gradient against central finite differences of a weighted sum, in f64. The
    /// input is a random permutation so that no window has ties (where the max is
    /// not differentiable).
    #[test]
    fn gradient_matches_finite_differences() -> Result<()> {
        use rand::seq::SliceRandom;
        let (n, c, h, w) = (2, 2, 7, 9);
        let count = n * c * h * w;
        let mut vals: Vec<f64> = (0..count).map(|i| i as f64 * 0.01).collect();
        vals.shuffle(&mut crate::runtime::seed::rng(3, &[]));
        let dev = Device::Cpu;
        let x = Var::from_vec(vals.clone(), (n, c, h, w), &dev)?;
        let weights = Tensor::randn(0f64, 1., (n, c, 3, 4), &dev)?;
        let objective =
            |t: &Tensor| -> Result<Tensor> { (MaxPool::VOVNET.forward(t)? * &weights)?.sum_all() };
        let grads = objective(x.as_tensor())?.backward()?;
        let analytic = grads
            .get(&x)
            .expect("input gradient")
            .flatten_all()?
            .to_vec1::<f64>()?;
        let eps = 1e-4;
        for i in 0..count {
            let mut plus = vals.clone();
            plus[i] += eps;
            let mut minus = vals.clone();
            minus[i] -= eps;
            let fp = objective(&Tensor::from_vec(plus, (n, c, h, w), &dev)?)?.to_scalar::<f64>()?;
            let fm =
                objective(&Tensor::from_vec(minus, (n, c, h, w), &dev)?)?.to_scalar::<f64>()?;
            let numeric = (fp - fm) / (2.0 * eps);
            assert!(
                (numeric - analytic[i]).abs() < 1e-6,
                "element {i}: {numeric} vs {}",
                analytic[i]
            );
        }
        Ok(())
    }

    /// Worked by hand: in a 3x5 input the two 3x3 windows at stride 2 share column
    /// 2; a maximum there receives both output gradients.
    #[test]
    fn shared_maximum_collects_both_gradients() -> Result<()> {
        #[rustfmt::skip]
        let vals = [
            0f32, 1., 2., 1., 0.,
            0.,   1., 9., 1., 0.,
            0.,   1., 2., 1., 0.,
        ];
        let x = Var::from_slice(&vals, (1, 1, 3, 5), &Device::Cpu)?;
        let y = MaxPool::VOVNET.forward(x.as_tensor())?;
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![9.0, 9.0]);
        let g = Tensor::new(&[2f32, 3.], &Device::Cpu)?.reshape((1, 1, 1, 2))?;
        let grads = (y * g)?.sum_all()?.backward()?;
        let dx = grads.get(&x).unwrap().flatten_all()?.to_vec1::<f32>()?;
        let mut want = vec![0f32; 15];
        want[7] = 5.0;
        assert_eq!(dx, want);
        Ok(())
    }
}
