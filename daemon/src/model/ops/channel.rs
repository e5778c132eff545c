//! Per-channel reductions of NCHW tensors: sums, and batch mean and (biased)
//! variance. candle reduces over non-trailing axes with two divisions per element
//! and one thread; these walk each channel's planes directly, one channel per task.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{f32_slice, nchw};

/// Per-channel sum over images and pixels: (N, C, H, W) -> (C).
pub struct ChannelSum;

/// Per-channel mean and biased variance: (N, C, H, W) -> (2, C), rows mean, var.
pub struct ChannelStats;

/// Independent f64 accumulators per sum: one chain of dependent adds would wait
/// out each add's latency; eight keep the adder busy and fill vector registers.
const LANES: usize = 8;

/// Sum of `f(v)` over `values`, in f64.
pub(crate) fn lane_sum(values: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0f64; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder().iter().map(|&v| f(v)).sum::<f64>();
    for chunk in chunks {
        acc.iter_mut().zip(chunk).for_each(|(a, &v)| *a += f(v));
    }
    acc.iter().sum::<f64>() + rest
}

/// Both sums of `f(a, b)` over pairs of `a` and `b` (the shorter sets the length),
/// in f64.
pub(crate) fn lane_sum_pairs(
    a: &[f32],
    b: &[f32],
    f: impl Fn(f32, f32) -> (f64, f64),
) -> (f64, f64) {
    let n = a.len().min(b.len());
    let (mut first, mut second) = ([0f64; LANES], [0f64; LANES]);
    let (a_chunks, b_chunks) = (a[..n].chunks_exact(LANES), b[..n].chunks_exact(LANES));
    let (mut rest_first, mut rest_second) = (0f64, 0f64);
    for (&u, &v) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        let (x, y) = f(u, v);
        (rest_first, rest_second) = (rest_first + x, rest_second + y);
    }
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for l in 0..LANES {
            let (x, y) = f(ca[l], cb[l]);
            first[l] += x;
            second[l] += y;
        }
    }
    (
        first.iter().sum::<f64>() + rest_first,
        second.iter().sum::<f64>() + rest_second,
    )
}

/// Sum of channel `c` over every image, in f64.
pub(crate) fn channel_fold(
    x: &[f32],
    (n, c, hw): (usize, usize, usize),
    ch: usize,
    f: impl Fn(f32) -> f64 + Copy,
) -> f64 {
    (0..n)
        .map(|i| lane_sum(&x[(i * c + ch) * hw..][..hw], f))
        .sum()
}

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "vov-channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l)?;
        let dims = nchw(l)?;
        let out: Vec<f32> = (0..dims.1)
            .into_par_iter()
            .map(|ch| channel_fold(x, dims, ch, f64::from) as f32)
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(dims.1)))
    }
}

impl CustomOp1 for ChannelStats {
    fn name(&self) -> &'static str {
        "vov-channel-stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l)?;
        let dims = nchw(l)?;
        let count = (dims.0 * dims.2) as f64;
        let stats: Vec<(f32, f32)> = (0..dims.1)
            .into_par_iter()
            .map(|ch| {
                let mean = channel_fold(x, dims, ch, f64::from) / count;
                let var = channel_fold(x, dims, ch, |v| (f64::from(v) - mean).powi(2)) / count;
                (mean as f32, var as f32)
            })
            .collect();
        let mut out: Vec<f32> = stats.iter().map(|s| s.0).collect();
        out.extend(stats.iter().map(|s| s.1));
        Ok((CpuStorage::F32(out), Shape::from((2, dims.1))))
    }
}

/// Per-channel sum; on the CPU by the kernel, elsewhere by candle.
pub fn channel_sum(xs: &Tensor) -> Result<Tensor> {
    if super::kernels::custom(xs.device()) {
        xs.contiguous()?.apply_op1_no_bwd(&ChannelSum)
    } else {
        let (n, c, h, w) = xs.dims4()?;
        xs.reshape((n, c, h * w))?.sum(2)?.sum(0)
    }
}

/// Per-channel batch mean and biased variance, as two (C) tensors; no gradient.
pub fn channel_stats(xs: &Tensor) -> Result<(Tensor, Tensor)> {
    if super::kernels::custom(xs.device()) {
        let s = xs.detach().contiguous()?.apply_op1_no_bwd(&ChannelStats)?;
        Ok((s.get(0)?, s.get(1)?))
    } else {
        let (n, c, h, w) = xs.dims4()?;
        let count = (n * h * w) as f64;
        let flat = xs.detach().reshape((n, c, h * w))?;
        let mean = (flat.sum(2)?.sum(0)? / count)?;
        let centered = flat.broadcast_sub(&mean.reshape((1, c, 1))?)?;
        let var = (centered.sqr()?.sum(2)?.sum(0)? / count)?;
        Ok((mean, var))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::rel_diff;
    use super::*;
    use candle_core::Device;

    #[test]
    fn sums_and_stats_match_candle() -> Result<()> {
        for dims in [(2, 3, 5, 7), (1, 1, 1, 1), (4, 16, 3, 3)] {
            let x = ((Tensor::randn(0f32, 1., dims, &Device::Cpu)? * 3.0)? + 1.0)?;
            let want_sum = x.sum_keepdim((0, 2, 3))?.flatten_all()?;
            assert!(rel_diff(&channel_sum(&x)?, &want_sum)? < 1e-5);
            let (mean, var) = channel_stats(&x)?;
            let want_mean = x.mean_keepdim((0, 2, 3))?;
            let want_var = x
                .broadcast_sub(&want_mean)?
                .sqr()?
                .mean_keepdim((0, 2, 3))?;
            assert!(rel_diff(&mean, &want_mean.flatten_all()?)? < 1e-5);
            assert!(rel_diff(&var, &want_var.flatten_all()?)? < 1e-5);
        }
        Ok(())
    }
}
