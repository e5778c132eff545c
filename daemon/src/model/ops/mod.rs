//! Custom CPU kernels where candle's composed ops are slow or lack a backward.
//!
//! Each op has a CPU forward and a backward; on other devices the layers fall back
//! to candle's own ops (`*_reference` functions, also used by the tests to check the
//! kernels, and selectable on the CPU through [`kernels::with_reference`]). Per-channel work over NCHW tensors is parallel over channels or over
//! (image, channel) planes with rayon, so no two threads ever write the same value.

pub mod adam;
pub mod batchnorm;
mod buffer;
pub mod channel;
pub mod conv;
pub mod conv_bias;
pub mod flops;
pub mod gemm;
pub mod kernels;
pub mod maxpool;
mod winograd;

use candle_core::{CpuStorage, Layout, Result};

/// The contiguous f32 slice behind a CPU tensor.
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        (CpuStorage::F32(_), None) => candle_core::bail!("kernel expects a contiguous tensor"),
        _ => candle_core::bail!("kernel supports f32 tensors only"),
    }
}

/// The contiguous f32 slice behind a CPU storage that an in-place op writes.
pub(crate) fn f32_slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        (CpuStorage::F32(_), None) => candle_core::bail!("kernel expects a contiguous tensor"),
        _ => candle_core::bail!("kernel supports f32 tensors only"),
    }
}

/// (images, channels, pixels per plane) of an NCHW layout.
pub(crate) fn nchw(l: &Layout) -> Result<(usize, usize, usize)> {
    let (n, c, h, w) = l.shape().dims4()?;
    Ok((n, c, h * w))
}

#[cfg(test)]
pub(crate) mod testing {
    use candle_core::{Result, Tensor, Var};

    /// For `Σ w ⊙ ours` and `Σ w ⊙ theirs`: the [`rel_diff`] of the gradients of
    /// each named variable.
    pub(crate) fn grad_diffs<'a>(
        ours: &Tensor,
        theirs: &Tensor,
        w: &Tensor,
        vars: &[(&'a str, &Var)],
    ) -> Result<Vec<(&'a str, f32)>> {
        let g1 = (ours * w)?.sum_all()?.backward()?;
        let g2 = (theirs * w)?.sum_all()?.backward()?;
        vars.iter()
            .map(|&(name, v)| Ok((name, rel_diff(g1.get(v).unwrap(), g2.get(v).unwrap())?)))
            .collect()
    }

    /// Largest absolute difference between two tensors, relative to the largest
    /// magnitude of `b` (at least 1).
    pub(crate) fn rel_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        let scale = b.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
        Ok(diff / scale)
    }
}
