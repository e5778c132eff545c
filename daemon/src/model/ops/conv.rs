//! 2D convolution as im2col + matrix multiply, forward and backward.
//!
//! candle 0.11 computes the input gradient of a convolution with a direct
//! `conv_transpose2d` (no matrix multiply) and the weight gradient as a convolution
//! with a very large kernel; on a small CPU both dominate a training step. Here, per
//! image `n` (with `col_n` the C·KH·KW x OH·OW patch matrix of `x_n`):
//!
//! - forward: `y_n = W · col_n` (for a 1x1 stride-1 convolution `col_n` is `x_n`);
//! - input gradient: `dx_n = col2im(Wᵀ · dy_n)`;
//! - weight gradient: `dW = Σ_n dy_n · col_nᵀ`, each thread summing a fixed range of
//!   images into its own buffer and the buffers added in order, so the result does
//!   not depend on scheduling (resumed runs stay bit-exact).
//!
//! Small maps are taken several images at a time (their patch matrices side by
//! side), so that each multiply has at least [`MIN_COLUMNS`] columns: a 3x3 map
//! alone gives 9, which only the multiply's narrow edge kernels handle. Large
//! batches run one image (or batch of images) per task with single-threaded
//! multiplies; fewer than the thread count (batch-1 inference) run in turn with a
//! multi-threaded multiply instead.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::buffer::{self, Kept};
use super::gemm::{matmul, MatMut, MatRef};
use super::winograd::{self, Plan};
use super::{f32_slice, flops};

/// Fewest columns (output pixels) worth a multiply of their own; smaller maps are
/// batched across images up to this many.
const MIN_COLUMNS: usize = 128;

/// A convolution with equal stride and zero padding on both axes, no bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dOp {
    /// Step between windows.
    pub stride: usize,
    /// Zeros added on every side.
    pub padding: usize,
}

/// Every size of one convolution call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: usize,
    pad: usize,
}

impl Geometry {
    /// The sizes of convolving an `x`-shaped input with a `k`-shaped kernel.
    pub(super) fn new(op: Conv2dOp, x: &Shape, k: &Shape) -> Result<Self> {
        let (n, c, h, w) = x.dims4()?;
        let (o, kc, kh, kw) = k.dims4()?;
        if kc != c {
            candle_core::bail!("conv: input has {c} channels, kernel expects {kc}")
        }
        if op.stride == 0 || h + 2 * op.padding < kh || w + 2 * op.padding < kw {
            candle_core::bail!("conv: a {kh}x{kw} kernel does not fit a padded {h}x{w} input")
        }
        Ok(Geometry {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            oh: (h + 2 * op.padding - kh) / op.stride + 1,
            ow: (w + 2 * op.padding - kw) / op.stride + 1,
            stride: op.stride,
            pad: op.padding,
        })
    }

    /// The (N, O, OH, OW) shape of the output.
    pub(super) fn out_shape(&self) -> Shape {
        Shape::from((self.n, self.o, self.oh, self.ow))
    }

    /// Output channels.
    pub(super) fn out_channels(&self) -> usize {
        self.o
    }

    /// FLOPs of the direct convolution (forward, or either gradient): two per
    /// multiply-add.
    pub(super) fn flops(&self) -> u64 {
        2 * (self.n * self.o * self.out_pixels() * self.ckk()) as u64
    }

    /// The Winograd plan of a 3x3 stride-1 "same" convolution on maps large enough.
    fn winograd(&self) -> Option<Plan> {
        let plan = Plan {
            n: self.n,
            c_in: self.c,
            c_out: self.o,
            h: self.h,
            w: self.w,
        };
        let same3 = self.kh == 3 && self.kw == 3 && self.stride == 1 && self.pad == 1;
        (same3 && plan.worth_it()).then_some(plan)
    }

    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }

    fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn out_pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// Images per multiply: enough for [`MIN_COLUMNS`] columns, at most the batch,
    /// and where that leaves only a few multiplies, as many as make their count a
    /// multiple of the threads, so that they run side by side (9 multiplies of 15
    /// 3x3 maps at batch 128 ran one after the other, with their patch matrices
    /// built on one thread; 8 of 16 share two threads evenly).
    fn batch(&self) -> usize {
        let n = self.n.max(1);
        let fewest = MIN_COLUMNS.div_ceil(self.out_pixels().max(1)).clamp(1, n);
        let threads = rayon::current_num_threads();
        let chunks = n.div_ceil(fewest);
        if threads == 1 || chunks >= 8 * threads {
            return fewest;
        }
        n.div_ceil((chunks / threads).max(1) * threads)
    }

    /// Whether a single image's input serves as its own patch matrix (1x1,
    /// stride 1, no batching).
    fn direct(&self) -> bool {
        self.pointwise() && self.batch() == 1
    }

    /// Scratch values for one batch's patch matrix (none when the input serves).
    fn patches_len(&self) -> usize {
        if self.direct() {
            0
        } else {
            self.ckk() * self.batch() * self.out_pixels()
        }
    }

    /// Scratch values for one batch's output-shaped matrix (none without batching).
    fn rows_len(&self) -> usize {
        if self.batch() > 1 {
            self.o * self.batch() * self.out_pixels()
        } else {
            0
        }
    }

    /// The input index read by output index `out` at kernel offset `k`, if inside.
    fn source(&self, out: usize, k: usize, size: usize) -> Option<usize> {
        (out * self.stride + k)
            .checked_sub(self.pad)
            .filter(|&i| i < size)
    }

    /// The output indices `lo..hi` (of `outs`) whose input index at kernel offset
    /// `k` falls inside `0..size`; their input indices are `out * stride + k - pad`.
    fn valid(&self, k: usize, size: usize, outs: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(k).div_ceil(self.stride);
        let hi = match (size + self.pad).checked_sub(k + 1) {
            Some(last) => (last / self.stride + 1).min(outs),
            None => 0,
        };
        (lo.min(hi), hi)
    }
}

/// Row (channel, ky, kx) of a patch matrix.
fn patch_row(row: usize, g: &Geometry) -> (usize, usize, usize) {
    (row / (g.kh * g.kw), row / g.kw % g.kh, row % g.kw)
}

/// Writes the patch matrix of one image: row (ci, ky, kx), column (oy, ox), each
/// row at the start of `width` values of `col`.
fn im2col(x: &[f32], g: &Geometry, col: &mut [f32], width: usize) {
    let ohw = g.out_pixels();
    for row in 0..g.ckk() {
        let dst = &mut col[row * width..][..ohw];
        let (ci, ky, kx) = patch_row(row, g);
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        let (lo, hi) = g.valid(kx, g.w, g.ow);
        for (oy, out) in dst.chunks_exact_mut(g.ow).enumerate() {
            let Some(iy) = g.source(oy, ky, g.h) else {
                out.fill(0.0);
                continue;
            };
            let src = &plane[iy * g.w..(iy + 1) * g.w];
            out[..lo].fill(0.0);
            out[hi..].fill(0.0);
            if lo == hi {
                continue;
            }
            let first = lo * g.stride + kx - g.pad;
            if g.stride == 1 {
                out[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
            } else {
                for (v, ix) in out[lo..hi].iter_mut().zip((first..).step_by(g.stride)) {
                    *v = src[ix];
                }
            }
        }
    }
}

/// Adds a patch-matrix gradient (each row at the start of `width` values of
/// `col`) back onto one image's input gradient.
fn col2im(col: &[f32], g: &Geometry, dx: &mut [f32], width: usize) {
    dx.fill(0.0);
    let ohw = g.out_pixels();
    for row in 0..g.ckk() {
        let src = &col[row * width..][..ohw];
        let (ci, ky, kx) = patch_row(row, g);
        let plane = &mut dx[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        let (lo, hi) = g.valid(kx, g.w, g.ow);
        for (oy, vals) in src.chunks_exact(g.ow).enumerate() {
            let Some(iy) = g.source(oy, ky, g.h) else {
                continue;
            };
            if lo == hi {
                continue;
            }
            let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
            let first = lo * g.stride + kx - g.pad;
            if g.stride == 1 {
                let run = &mut dst[first..first + hi - lo];
                run.iter_mut()
                    .zip(&vals[lo..hi])
                    .for_each(|(d, &v)| *d += v);
            } else {
                for (&v, ix) in vals[lo..hi].iter().zip((first..).step_by(g.stride)) {
                    dst[ix] += v;
                }
            }
        }
    }
}

/// The patch matrix of the images `x`, `ckk` rows of `images · ohw` values with
/// image-major columns: `x` itself where it serves, else written into `col`.
fn patches<'a>(x: &'a [f32], g: &Geometry, col: &'a mut [f32]) -> &'a [f32] {
    if g.direct() {
        return x;
    }
    let width = x.len() / g.in_len() * g.out_pixels();
    for (j, x_n) in x.chunks_exact(g.in_len()).enumerate() {
        im2col(x_n, g, &mut col[j * g.out_pixels()..], width);
    }
    &col[..g.ckk() * width]
}

/// The output-shaped `images` (`[image][o][pixel]`) as one `o x (images · ohw)`
/// matrix: a single image as it is, several gathered into `rows`.
fn output_rows<'a>(images: &'a [f32], g: &Geometry, rows: &'a mut [f32]) -> &'a [f32] {
    if images.len() == g.o * g.out_pixels() {
        return images;
    }
    let rows = &mut rows[..images.len()];
    batch_rows(images, g.o, g.out_pixels(), rows);
    rows
}

/// Per-image `[channel][pixel]` planes of `images` (each `rows · pixels` values)
/// as one `rows x (images · pixels)` matrix in `out`, image-major columns.
fn batch_rows(images: &[f32], rows: usize, pixels: usize, out: &mut [f32]) {
    let width = images.len() / rows;
    for (j, image) in images.chunks_exact(rows * pixels).enumerate() {
        for (r, plane) in image.chunks_exact(pixels).enumerate() {
            out[r * width + j * pixels..][..pixels].copy_from_slice(plane);
        }
    }
}

/// The inverse of [`batch_rows`]: the matrix `m` back into per-image planes.
fn unbatch_rows(m: &[f32], rows: usize, pixels: usize, images: &mut [f32]) {
    let width = m.len() / rows;
    for (j, image) in images.chunks_exact_mut(rows * pixels).enumerate() {
        for (r, plane) in image.chunks_exact_mut(pixels).enumerate() {
            plane.copy_from_slice(&m[r * width + j * pixels..][..pixels]);
        }
    }
}

/// Whether `chunks` equal tasks keep `threads` threads busy to within an
/// eighth: a whole number of rounds, or enough rounds that the last one's
/// idle threads matter little.
fn shares_evenly(chunks: usize, threads: usize) -> bool {
    chunks >= threads && (chunks.is_multiple_of(threads) || chunks >= 8 * threads)
}

/// Runs `f(index, out_chunk, scratch)` for every `per`-value chunk of `out` (one
/// image's output, or one batch of images'), in parallel over chunks when they
/// share out evenly over the threads, else in turn, each on all threads; `f`
/// gets the thread count its multiply may use.
fn per_image(
    out: &mut [f32],
    per: usize,
    scratch: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32], usize) + Sync + Send,
) {
    let threads = rayon::current_num_threads();
    let chunks = out.len().div_ceil(per.max(1));
    if threads > 1 && shares_evenly(chunks, threads) {
        out.par_chunks_mut(per)
            .enumerate()
            .for_each(|(i, o)| buffer::with_scratch(Kept::Call, scratch, |buf| f(i, o, buf, 1)));
    } else {
        buffer::with_scratch(Kept::Call, scratch, |buf| {
            for (i, o) in out.chunks_mut(per).enumerate() {
                f(i, o, buf, threads);
            }
        });
    }
}

/// Work done on each image's output while it is still in cache: add a bias per
/// output channel, then ReLU if asked.
#[derive(Clone, Copy)]
pub(super) struct Epilogue<'a> {
    /// One value per output channel.
    pub(super) bias: &'a [f32],
    /// Clamp at zero after the bias.
    pub(super) relu: bool,
}

impl Epilogue<'_> {
    fn apply(&self, y_n: &mut [f32], ohw: usize) {
        for (plane, &b) in y_n.chunks_exact_mut(ohw).zip(self.bias) {
            if self.relu {
                plane.iter_mut().for_each(|v| *v = (*v + b).max(0.0));
            } else {
                plane.iter_mut().for_each(|v| *v += b);
            }
        }
    }
}

impl Conv2dOp {
    fn forward(&self, x: &[f32], k: &[f32], g: &Geometry) -> Vec<f32> {
        self.forward_then(x, k, g, None)
    }

    /// The forward pass with `epilogue` applied to each image's output.
    pub(super) fn forward_then(
        &self,
        x: &[f32],
        k: &[f32],
        g: &Geometry,
        epilogue: Option<Epilogue<'_>>,
    ) -> Vec<f32> {
        flops::add(g.flops());
        if let Some(plan) = g.winograd() {
            return winograd::forward(x, k, &plan, epilogue);
        }
        let (ohw, ckk, batch) = (g.out_pixels(), g.ckk(), g.batch());
        let mut y = buffer::zeros(g.n * g.o * ohw);
        let weights = MatRef::row_major(k, g.o, ckk);
        per_image(
            &mut y,
            batch * g.o * ohw,
            g.patches_len() + g.rows_len(),
            |i, y_b, buf, threads| {
                let images = y_b.len() / (g.o * ohw);
                let width = images * ohw;
                let x_b = &x[i * batch * g.in_len()..][..images * g.in_len()];
                let (col, prod) = buf.split_at_mut(g.patches_len());
                let patches = patches(x_b, g, col);
                let out = if images == 1 {
                    &mut *y_b
                } else {
                    &mut prod[..g.o * width]
                };
                matmul(
                    MatMut::row_major(out, g.o, width),
                    weights,
                    MatRef::row_major(patches, ckk, width),
                    false,
                    threads,
                );
                if images > 1 {
                    unbatch_rows(&prod[..g.o * width], g.o, ohw, y_b);
                }
                if let Some(e) = epilogue {
                    y_b.chunks_exact_mut(g.o * ohw)
                        .for_each(|y_n| e.apply(y_n, ohw));
                }
            },
        );
        y
    }

    fn grad_input(&self, dy: &[f32], k: &[f32], g: &Geometry) -> Vec<f32> {
        flops::add(g.flops());
        if let Some(plan) = g.winograd() {
            return winograd::grad_input(dy, k, &plan);
        }
        let (ohw, ckk, batch) = (g.out_pixels(), g.ckk(), g.batch());
        let mut dx = buffer::zeros(g.n * g.in_len());
        let weights_t = MatRef::row_major(k, g.o, ckk).t();
        per_image(
            &mut dx,
            batch * g.in_len(),
            g.patches_len() + g.rows_len(),
            |i, dx_b, buf, threads| {
                let images = dx_b.len() / g.in_len();
                let width = images * ohw;
                let dy_b = &dy[i * batch * g.o * ohw..][..images * g.o * ohw];
                let (dcol, rows) = buf.split_at_mut(g.patches_len());
                let dy_rows = MatRef::row_major(output_rows(dy_b, g, rows), g.o, width);
                if g.direct() {
                    matmul(
                        MatMut::row_major(dx_b, ckk, ohw),
                        weights_t,
                        dy_rows,
                        false,
                        threads,
                    );
                    return;
                }
                let dcol = &mut dcol[..ckk * width];
                matmul(
                    MatMut::row_major(dcol, ckk, width),
                    weights_t,
                    dy_rows,
                    false,
                    threads,
                );
                for (j, dx_n) in dx_b.chunks_exact_mut(g.in_len()).enumerate() {
                    col2im(&dcol[j * ohw..], g, dx_n, width);
                }
            },
        );
        dx
    }

    fn grad_weight(&self, x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
        flops::add(g.flops());
        if let Some(plan) = g.winograd() {
            return winograd::grad_weight(x, dy, &plan);
        }
        let (ohw, ckk, batch) = (g.out_pixels(), g.ckk(), g.batch());
        let threads = rayon::current_num_threads();
        let chunks = threads.min(g.n).max(1);
        let inner_threads = if chunks == 1 { threads } else { 1 };
        let partials: Vec<Vec<f32>> = (0..chunks)
            .into_par_iter()
            .map(|chunk| {
                let mut dw = vec![0f32; g.o * ckk];
                let (start, end) = (chunk * g.n / chunks, (chunk + 1) * g.n / chunks);
                buffer::with_scratch(Kept::Call, g.patches_len() + g.rows_len(), |buf| {
                    let (col, rows) = buf.split_at_mut(g.patches_len());
                    for i in (start..end).step_by(batch) {
                        let images = batch.min(end - i);
                        let width = images * ohw;
                        let x_b = &x[i * g.in_len()..][..images * g.in_len()];
                        let patches = patches(x_b, g, col);
                        let dy_b = &dy[i * g.o * ohw..][..images * g.o * ohw];
                        let dy_rows = output_rows(dy_b, g, rows);
                        // dW is built column-major: the multiply then reads `dy_rows`, not
                        // the 9x larger patch matrix, across rows (packing it is a gather).
                        matmul(
                            MatMut::col_major(&mut dw, g.o, ckk),
                            MatRef::row_major(dy_rows, g.o, width),
                            MatRef::row_major(patches, ckk, width).t(),
                            true,
                            inner_threads,
                        );
                    }
                });
                dw
            })
            .collect();
        // Added in order (deterministic), transposed back to row-major on the way,
        // one output channel's row per task.
        buffer::par_pieces(g.o * ckk, ckk, |o, row| {
            for p in &partials {
                for (r, v) in row.iter_mut().enumerate() {
                    *v += p[r * g.o + o];
                }
            }
        })
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "vov-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(*self, l1.shape(), l2.shape())?;
        let y = self.forward(f32_slice(s1, l1)?, f32_slice(s2, l2)?, &g);
        Ok((CpuStorage::F32(y), g.out_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        k: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dk) = self.backward(x, k, &grad.contiguous()?)?;
        Ok((dx, Some(dk)))
    }
}

impl Conv2dOp {
    /// The input and kernel gradients for the contiguous output gradient `grad`;
    /// no input gradient when nothing upstream of `x` needs one (the network's
    /// input images), which candle's backprop would compute and then drop.
    pub(super) fn backward(
        &self,
        x: &Tensor,
        k: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Tensor)> {
        let dx = if x.track_op() {
            Some(grad.apply_op2_no_bwd(k, &GradInput(*self, x.shape().clone()))?)
        } else {
            None
        };
        let dk = x.apply_op2_no_bwd(grad, &GradWeight(*self, k.shape().clone()))?;
        Ok((dx, dk))
    }
}

/// (dy, kernel) -> dx, for an input of the recorded shape.
struct GradInput(Conv2dOp, Shape);

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "vov-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(self.0, &self.1, l2.shape())?;
        if l1.shape().dims() != [g.n, g.o, g.oh, g.ow] {
            candle_core::bail!("conv grad: gradient shape {:?} does not match", l1.shape())
        }
        let dx = self
            .0
            .grad_input(f32_slice(s1, l1)?, f32_slice(s2, l2)?, &g);
        Ok((CpuStorage::F32(dx), self.1.clone()))
    }
}

/// (x, dy) -> dkernel, for a kernel of the recorded shape.
struct GradWeight(Conv2dOp, Shape);

impl CustomOp2 for GradWeight {
    fn name(&self) -> &'static str {
        "vov-conv2d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(self.0, l1.shape(), &self.1)?;
        if l2.shape().dims() != [g.n, g.o, g.oh, g.ow] {
            candle_core::bail!("conv grad: gradient shape {:?} does not match", l2.shape())
        }
        let dk = self
            .0
            .grad_weight(f32_slice(s1, l1)?, f32_slice(s2, l2)?, &g);
        Ok((CpuStorage::F32(dk), self.1.clone()))
    }
}

/// Convolves `xs` (N, C, H, W) with `kernel` (O, C, KH, KW): the kernel above on the
/// CPU, candle's own elsewhere.
pub fn conv2d(xs: &Tensor, kernel: &Tensor, op: Conv2dOp) -> Result<Tensor> {
    if super::kernels::custom(xs.device()) {
        xs.contiguous()?.apply_op2(&kernel.contiguous()?, op)
    } else {
        conv2d_reference(xs, kernel, op)
    }
}

/// The same with candle's `conv2d` (any device).
pub fn conv2d_reference(xs: &Tensor, kernel: &Tensor, op: Conv2dOp) -> Result<Tensor> {
    xs.conv2d(kernel, op.padding, op.stride, 1, 1)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{grad_diffs, rel_diff};
    use super::*;
    use candle_core::{Device, Var};

    /// Forward and both gradients against candle's conv2d on random inputs.
    fn check(x: (usize, usize, usize, usize), o: usize, k: usize, op: Conv2dOp) -> Result<()> {
        let dev = Device::Cpu;
        let xs = Var::randn(0f32, 1., x, &dev)?;
        let ks = Var::randn(0f32, 0.3, (o, x.1, k, k), &dev)?;
        let ours = conv2d(&xs, &ks, op)?;
        let theirs = conv2d_reference(&xs, &ks, op)?;
        assert_eq!(ours.dims(), theirs.dims(), "{x:?} k{k} {op:?}");
        assert!(
            rel_diff(&ours, &theirs)? < 1e-5,
            "forward {x:?} k{k} {op:?}"
        );
        let w = Tensor::randn(0f32, 1., theirs.shape(), &dev)?;
        for (name, d) in grad_diffs(&ours, &theirs, &w, &[("input", &xs), ("kernel", &ks)])? {
            assert!(d < 1e-4, "{name} gradient {x:?} k{k} {op:?}: {d}");
        }
        Ok(())
    }

    #[test]
    fn matches_candle_on_every_shape_kind() -> Result<()> {
        super::super::buffer::poison_kept(1 << 22);
        let same = Conv2dOp {
            stride: 1,
            padding: 1,
        };
        let valid = Conv2dOp {
            stride: 1,
            padding: 0,
        };
        let strided = Conv2dOp {
            stride: 2,
            padding: 1,
        };
        check((2, 3, 8, 8), 4, 3, same)?;
        check((3, 5, 7, 9), 6, 3, same)?; // odd sizes
        check((4, 16, 6, 6), 8, 1, valid)?; // pointwise
        check((2, 3, 9, 7), 4, 3, strided)?; // stride 2, odd sizes
        check(
            (2, 4, 8, 8),
            3,
            1,
            Conv2dOp {
                stride: 2,
                padding: 0,
            },
        )?; // strided 1x1
        check((1, 8, 5, 5), 4, 3, valid)?; // batch 1: multiply-parallel path
        check((5, 2, 4, 4), 3, 3, same)?; // more images than threads
        check((19, 3, 3, 3), 4, 3, same)?; // 3x3 maps: batches of 15 images and a rest
        check((9, 5, 1, 1), 3, 3, same)?; // 1x1 maps, all 9 images in one multiply
        check((3, 6, 2, 3), 4, 1, valid) // pointwise on a small map, batched
    }

    #[test]
    fn winograd_path_matches_candle() -> Result<()> {
        super::super::buffer::poison_kept(1 << 22);
        let same = Conv2dOp {
            stride: 1,
            padding: 1,
        };
        for (x, o) in [
            ((4, 16, 9, 7), 17),   // odd sizes, all images in one block
            ((1, 64, 48, 48), 64), // one image in two blocks of tile rows
            ((5, 64, 20, 20), 64), // groups of 3 images and a shorter last one
            ((6, 17, 8, 8), 20),   // more images than threads
        ] {
            let g = Geometry::new(same, &Shape::from(x), &Shape::from((o, x.1, 3, 3)))?;
            assert!(g.winograd().is_some(), "{x:?} -> {o} should take Winograd");
            check(x, o, 3, same)?;
        }
        Ok(())
    }

    #[test]
    fn rejects_mismatched_channels() {
        let x = Tensor::zeros((1, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let k = Tensor::zeros((2, 4, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = conv2d(
            &x,
            &k,
            Conv2dOp {
                stride: 1,
                padding: 1,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("kernel expects 4"), "{err}");
    }
}
