//! 3x3 stride-1 "same" convolutions by Winograd's minimal filtering F(4x4, 3x3)
//! (Lavin and Gray 2016, "Fast Algorithms for Convolutional Neural Networks").
//!
//! Each 4x4 output tile comes from the 6x6 input tile around it: with `U = G g Gᵀ`
//! the 6x6 transform of a 3x3 kernel and `V = Bᵀ d B` that of an input tile, the
//! tile is `Aᵀ (Σ_c U ⊙ V) A`. The sum over input channels is, for each of the 36
//! positions ξ of the transform, one matrix multiply `M_ξ = U_ξ · V_ξ` (output
//! channels x input channels times input channels x tiles): 36 multiplies per 16
//! outputs where im2col needs 144, so 4x fewer multiply-adds (F(2x2, 3x3) saves
//! 2.25x). The transforms use small integer weights (and sixths and
//! twenty-fourths for the kernel), so results differ from im2col by rounding only,
//! a little more of it than the smaller tiles.
//!
//! Backward is the same algebra transposed: the input gradient is this convolution
//! of the output gradient with the kernel rotated by 180° and its channels swapped;
//! the weight gradient is `Gᵀ (Σ_tiles (A dY Aᵀ) ⊙ V) G`, again 36 multiplies.
//!
//! Images are taken in groups of as many as fit [`BLOCK_BYTES`] of transformed
//! inputs and products, and a group's tiles in blocks of whole tile rows of all its
//! images, numbered image-fastest: every transform is then a few long passes over
//! contiguous values, even for 7x7 maps (one image has only 6 tiles). A batch with
//! at least as many groups as threads runs one group per task with
//! single-threaded multiplies; a smaller one (batch-1 inference) runs its blocks in
//! turn, each phase parallel inside.

use std::array::from_fn;

use rayon::prelude::*;

use super::buffer::{self, Kept};
use super::conv::Epilogue;
use super::gemm::{matmul, MatMut, MatRef};

/// Side of an output tile.
const M: usize = 4;

/// Side of an input tile and of a transformed one: `M + 3 - 1`.
const ALPHA: usize = 6;

/// Positions of a transformed tile.
const XI: usize = ALPHA * ALPHA;

/// Bytes of transformed inputs plus products one block may hold. Larger blocks
/// mean fewer, wider multiplies, until they spill out of the core's cache: on one
/// Zen 4 core the 64->64 32x32 layer at batch 32 ran slower with 1 MiB blocks and
/// with 4 MiB ones, and 1.5x larger groups of images slowed every layer.
const BLOCK_BYTES: usize = 1 << 21;

/// Smallest side worth tiling: below it the transforms cost more than they save.
const MIN_SIDE: usize = 5;

/// Fewest input and output channels worth 36 separate multiplies.
const MIN_CHANNELS: usize = 16;

/// Values per task when the weight gradient's partial sums are added.
const SUM_PIECE: usize = 1 << 14;

/// Fewest tiles in a call worth the transforms (a 32x32 image has 72).
const MIN_TILES: usize = 32;

/// The sizes of one "same" 3x3 convolution from `c_in` to `c_out` channels.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    /// Images.
    pub(super) n: usize,
    /// Input channels.
    pub(super) c_in: usize,
    /// Output channels.
    pub(super) c_out: usize,
    /// Rows of input and output.
    pub(super) h: usize,
    /// Columns of input and output.
    pub(super) w: usize,
}

impl Plan {
    /// Whether Winograd beats im2col here. With 3 input channels the thin
    /// multiplies lose to one im2col multiply (the first VoVNet layer), and a
    /// single 7x7 or 15x15 image (6 or 20 tiles) has too few tiles to pay for the
    /// transforms of its kernels: vovnet-27-slim's batch-1 inference ran 4%
    /// faster with those on im2col.
    pub(super) fn worth_it(&self) -> bool {
        self.c_in.min(self.c_out) >= MIN_CHANNELS
            && self.h.min(self.w) >= MIN_SIDE
            && self.n * self.tiles_per_image() >= MIN_TILES
    }

    /// The same convolution run backward: from output to input channels.
    fn transposed(self) -> Plan {
        Plan {
            c_in: self.c_out,
            c_out: self.c_in,
            ..self
        }
    }

    fn hw(&self) -> usize {
        self.h * self.w
    }

    fn tiles_y(&self) -> usize {
        self.h.div_ceil(M)
    }

    /// Tile columns that hold outputs.
    fn tiles_x(&self) -> usize {
        self.w.div_ceil(M)
    }

    /// Tiles per tile row: the output tiles and one spare, so that the window of
    /// every tile starts at the same offset in each phase plane of the input
    /// (see [`transform_inputs`]). The spare tile is computed and discarded.
    fn row_stride(&self) -> usize {
        self.tiles_x() + 1
    }

    fn tiles_per_image(&self) -> usize {
        self.tiles_y() * self.row_stride()
    }

    /// Tiles that fit [`BLOCK_BYTES`] of transformed inputs and products.
    fn fit_tiles(&self) -> usize {
        BLOCK_BYTES / (XI * 4 * (self.c_in + self.c_out))
    }

    /// Images per group: as many whole images as fit a block, at least one, at
    /// most the batch.
    fn group_images(&self) -> usize {
        (self.fit_tiles() / self.tiles_per_image()).clamp(1, self.n.max(1))
    }

    /// Tile rows per block: all of them for a group of several images, else as
    /// many as fit (at least one).
    fn block_rows(&self) -> usize {
        (self.fit_tiles() / (self.row_stride() * self.group_images())).clamp(1, self.tiles_y())
    }
}

/// `G g` value by value: `out[i][k] = (G [g0[k], g1[k], g2[k]])[i]`, 3 taps to 6.
fn g_pass(out: &mut [&mut [f32]], g: [&[f32]; 3]) {
    let ([o0, o1, o2, o3, o4, o5], g) = cut::<ALPHA, 3>(out, g);
    for k in 0..o0.len() {
        let [a, b, c] = g.map(|s| s[k]);
        let (q, r) = (a * (1.0 / 24.0) + c * (1.0 / 6.0), b * (1.0 / 12.0));
        o0[k] = a * 0.25;
        o1[k] = (a + c + b) * (-1.0 / 6.0);
        o2[k] = (a + c - b) * (-1.0 / 6.0);
        o3[k] = q + r;
        o4[k] = q - r;
        o5[k] = c;
    }
}

/// `Gᵀ u` value by value (the transpose of [`g_pass`]): 6 transformed-kernel
/// gradients to 3 taps.
fn gt_pass(out: &mut [&mut [f32]], u: [&[f32]; ALPHA]) {
    let ([o0, o1, o2], u) = cut::<3, ALPHA>(out, u);
    for k in 0..o0.len() {
        let [u0, u1, u2, u3, u4, u5] = u.map(|s| s[k]);
        let (s1, d1) = ((u1 + u2) * (1.0 / 6.0), (u2 - u1) * (1.0 / 6.0));
        let (s2, d2) = (u3 + u4, (u3 - u4) * (1.0 / 12.0));
        o0[k] = u0 * 0.25 - s1 + s2 * (1.0 / 24.0);
        o1[k] = d1 + d2;
        o2[k] = s2 * (1.0 / 6.0) - s1 + u5;
    }
}

/// Transformed kernels `G g Gᵀ`, laid out `[ξ][out][in]`, of an (out, in, 3, 3)
/// kernel, computed for all kernels at once: tap by tap, then column by column.
/// With `rotated`, those of the input gradient's kernel instead: (in, out, 3, 3),
/// each window rotated by 180°.
fn transform_kernel(k: &[f32], c_out: usize, c_in: usize, rotated: bool) -> Vec<f32> {
    let pairs = c_out * c_in;
    // taps[t][oc]: tap t (row-major in the 3x3 window) of kernel oc.
    let mut taps = vec![0f32; 9 * pairs];
    for (oc, g) in k.chunks_exact(9).enumerate() {
        // Kernel (o, c) of the rotated set sits at (c, o), its tap t at 8 - t.
        let dst = if rotated {
            (oc % c_in) * c_out + oc / c_in
        } else {
            oc
        };
        for (t, &v) in g.iter().enumerate() {
            let t = if rotated { 8 - t } else { t };
            taps[t * pairs + dst] = v;
        }
    }
    let tap = |t: usize| &taps[t * pairs..][..pairs];
    // cols[j][i]: (G g)[i] of window column j.
    let mut cols = vec![0f32; 3 * ALPHA * pairs];
    for (j, out) in cols.chunks_exact_mut(ALPHA * pairs).enumerate() {
        g_pass(
            &mut pieces::<ALPHA>(out, pairs),
            [tap(j), tap(3 + j), tap(6 + j)],
        );
    }
    let mut u = vec![0f32; XI * pairs];
    for i in 0..ALPHA {
        let g = from_fn(|j| &cols[(j * ALPHA + i) * pairs..][..pairs]);
        g_pass(
            &mut rows_mut::<ALPHA>(&mut u, pairs, i * ALPHA, 0, pairs),
            g,
        );
    }
    u
}

/// The (out, in, 3, 3) kernel gradient `Gᵀ dU G` of transformed-kernel
/// gradients `du` laid out `[ξ][out][in]`: the transpose of [`transform_kernel`].
fn kernel_grads(du: &[f32], pairs: usize) -> Vec<f32> {
    // cols[j][t]: (Gᵀ dU)[t] of transformed column j.
    let mut cols = vec![0f32; ALPHA * 3 * pairs];
    for (j, out) in cols.chunks_exact_mut(3 * pairs).enumerate() {
        let u = from_fn(|i| &du[(i * ALPHA + j) * pairs..][..pairs]);
        gt_pass(&mut pieces::<3>(out, pairs), u);
    }
    // taps[t][s][oc]: window tap (t, s) of kernel oc.
    let mut taps = vec![0f32; 9 * pairs];
    for (t, out) in taps.chunks_exact_mut(3 * pairs).enumerate() {
        let u = from_fn(|j| &cols[(j * 3 + t) * pairs..][..pairs]);
        gt_pass(&mut pieces::<3>(out, pairs), u);
    }
    let mut dk = vec![0f32; 9 * pairs];
    for (oc, g) in dk.chunks_exact_mut(9).enumerate() {
        for (t, v) in g.iter_mut().enumerate() {
            *v = taps[t * pairs + oc];
        }
    }
    dk
}

/// Runs `f(index, chunk)` over `chunk`-sized pieces of `data`, in parallel if asked.
fn for_chunks(
    data: &mut [f32],
    chunk: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [f32]) + Sync,
) {
    for_chunks_with(data, chunk, parallel, 0, |_, i, c| f(i, c));
}

/// [`for_chunks`] with a buffer of `scratch` values per task, for `f` to use as
/// it likes (not cleared between calls), over pieces of any `data`.
fn for_chunks_with<T: Send>(
    data: &mut [T],
    chunk: usize,
    parallel: bool,
    scratch: usize,
    f: impl Fn(&mut [f32], usize, &mut [T]) + Sync,
) {
    if parallel {
        data.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| {
            buffer::with_scratch(Kept::Pass, scratch, |buf| f(buf, i, c));
        });
    } else {
        buffer::with_scratch(Kept::Pass, scratch, |buf| {
            for (i, c) in data.chunks_mut(chunk).enumerate() {
                f(buf, i, c);
            }
        });
    }
}

/// Tile rows `ty0..ty1` of every image of a group, and how to run its phases.
/// Tiles are numbered `(a · stride + b) · images + g` for tile (ty0 + a, b) of
/// image g, so that each transform runs over all the group's images in one pass.
#[derive(Clone, Copy)]
struct Block {
    ty0: usize,
    ty1: usize,
    images: usize,
    parallel: bool,
}

impl Block {
    fn rows(&self) -> usize {
        self.ty1 - self.ty0
    }

    /// Tiles in the block.
    fn len(&self, p: &Plan) -> usize {
        self.rows() * p.row_stride() * self.images
    }
}

/// `out[j][k · step] = row[M·k + j]` as far as `row` goes.
fn deinterleave(row: &[f32], out: [&mut [f32]; M], step: usize) {
    if step == 1 {
        // Whole groups of M at a time, which the compiler keeps in registers.
        let chunks = row.chunks_exact(M);
        let (full, rest) = (chunks.len(), chunks.remainder());
        let [o0, o1, o2, o3] = out.map(|o| &mut o[..full + 1]);
        let outs = o0
            .iter_mut()
            .zip(o1.iter_mut())
            .zip(o2.iter_mut().zip(o3.iter_mut()));
        for (c, ((a, b), (d, e))) in chunks.zip(outs) {
            (*a, *b, *d, *e) = (c[0], c[1], c[2], c[3]);
        }
        for (o, &v) in [o0, o1, o2, o3].into_iter().zip(rest) {
            o[full] = v;
        }
        return;
    }
    for (j, o) in out.into_iter().enumerate() {
        let values = row.iter().skip(j).step_by(M);
        o.iter_mut()
            .step_by(step)
            .zip(values)
            .for_each(|(d, &v)| *d = v);
    }
}

/// `row[M·k + j] = f(parts[j][k · step])` over the whole of `row`.
fn interleave(row: &mut [f32], parts: [&[f32]; M], step: usize, f: impl Fn(f32) -> f32) {
    if step == 1 {
        for (k, chunk) in row.chunks_mut(M).enumerate() {
            for (v, part) in chunk.iter_mut().zip(parts) {
                *v = f(part[k]);
            }
        }
        return;
    }
    for (j, part) in parts.into_iter().enumerate() {
        let values = part.iter().step_by(step);
        row.iter_mut()
            .skip(j)
            .step_by(M)
            .zip(values)
            .for_each(|(d, &v)| *d = f(v));
    }
}

/// Splits `buf` into `N` consecutive pieces of `len` values.
fn pieces<const N: usize>(buf: &mut [f32], len: usize) -> [&mut [f32]; N] {
    let mut rest = &mut buf[..N * len];
    from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        head
    })
}

/// The first `N` of `parts`, each from value `at` on.
fn from_each<'a, const N: usize>(parts: &'a mut [&mut [f32]], at: usize) -> [&'a mut [f32]; N] {
    let mut it = parts.iter_mut();
    from_fn(|_| &mut it.next().expect("enough parts")[at..])
}

/// Rows `first..first + N` of `buf` (rows of `len` values), each cut to
/// `at..at + width`.
fn rows_mut<const N: usize>(
    buf: &mut [f32],
    len: usize,
    first: usize,
    at: usize,
    width: usize,
) -> [&mut [f32]; N] {
    let mut rows = buf.chunks_exact_mut(len).skip(first);
    from_fn(|_| &mut rows.next().expect("row inside the buffer")[at..][..width])
}

/// `N` output rows, each cut to the shortest of them, and `K` input rows cut to
/// the same length (each must be at least as long).
fn cut<'a, 'b, const N: usize, const K: usize>(
    out: &'a mut [&mut [f32]],
    inputs: [&'b [f32]; K],
) -> ([&'a mut [f32]; N], [&'b [f32]; K]) {
    let n = out.iter().map(|o| o.len()).min().unwrap_or(0);
    let mut it = out.iter_mut();
    let out = from_fn(|_| &mut it.next().expect("enough output rows")[..n]);
    (out, inputs.map(|s| &s[..n]))
}

/// `Bᵀ d` value by value: `out[i][k] = (Bᵀ [d0[k], .., d5[k]])[i]`.
fn bt_pass(out: &mut [&mut [f32]], d: [&[f32]; ALPHA]) {
    let ([o0, o1, o2, o3, o4, o5], d) = cut::<ALPHA, ALPHA>(out, d);
    for k in 0..o0.len() {
        let [d0, d1, d2, d3, d4, d5] = d.map(|s| s[k]);
        let (t1, t2) = (d4 - 4.0 * d2, d3 - 4.0 * d1);
        let (t3, t4) = (d4 - d2, 2.0 * (d3 - d1));
        o0[k] = 4.0 * d0 - 5.0 * d2 + d4;
        o1[k] = t1 + t2;
        o2[k] = t1 - t2;
        o3[k] = t3 + t4;
        o4[k] = t3 - t4;
        o5[k] = 4.0 * d1 - 5.0 * d3 + d5;
    }
}

/// `Aᵀ m` value by value: 6 rows to 4.
fn at_pass(out: &mut [&mut [f32]], m: [&[f32]; ALPHA]) {
    let ([o0, o1, o2, o3], m) = cut::<M, ALPHA>(out, m);
    for k in 0..o0.len() {
        let [m0, m1, m2, m3, m4, m5] = m.map(|s| s[k]);
        let (s1, d1) = (m1 + m2, m1 - m2);
        let (s2, d2) = (m3 + m4, m3 - m4);
        o0[k] = m0 + s1 + s2;
        o1[k] = d1 + 2.0 * d2;
        o2[k] = s1 + 4.0 * s2;
        o3[k] = d1 + 8.0 * d2 + m5;
    }
}

/// `A y` value by value (the transpose of [`at_pass`]): 4 rows to 6.
fn a_pass(out: &mut [&mut [f32]], y: [&[f32]; M]) {
    let ([o0, o1, o2, o3, o4, o5], y) = cut::<ALPHA, M>(out, y);
    for k in 0..o0.len() {
        let [y0, y1, y2, y3] = y.map(|s| s[k]);
        let (e1, d1) = (y0 + y2, y1 + y3);
        let (e2, d2) = (y0 + 4.0 * y2, 2.0 * y1 + 8.0 * y3);
        o0[k] = y0;
        o1[k] = e1 + d1;
        o2[k] = e1 - d1;
        o3[k] = e2 + d2;
        o4[k] = e2 - d2;
        o5[k] = y3;
    }
}

/// The phase planes of padded rows `M·ty0 .. M·ty1 + 2` of channel `c` of every
/// image of the group's input `x` (padded row/column `i` is input row/column
/// `i - 1`, zero outside): `planes[ry * M + rx][(a · stride + b) · images + g]`
/// holds padded (`M(ty0 + a) + ry`, `M·b + rx`) of image g. Window position (r, c)
/// of tile (ty0 + a, b) is then plane `(r % M, c % M)` at
/// `((a + r / M) · stride + b + c / M) · images + g`: one offset per position.
fn phase_planes(x: &[f32], c: usize, p: &Plan, blk: Block, planes: &mut [&mut [f32]; M * M]) {
    let (stride, step) = (p.row_stride(), blk.images);
    planes.iter_mut().for_each(|q| q.fill(0.0));
    let first = M * blk.ty0;
    for g in 0..blk.images {
        let plane = &x[(g * p.c_in + c) * p.hw()..][..p.hw()];
        for padded in first..M * blk.ty1 + ALPHA - M {
            let Some(iy) = padded.checked_sub(1).filter(|&r| r < p.h) else {
                continue;
            };
            let (a, ry) = ((padded - first) / M, padded % M);
            let at = a * stride * step + g;
            let [q0, q1, q2, q3]: &mut [_; M] = (&mut planes[ry * M..][..M])
                .try_into()
                .expect("M phase planes");
            // Padded column M·b + rx is input column M·b + rx - 1: input columns
            // 0, 1, 2 open phases 1, 2, 3 at b = 0, and column 3 opens phase 0 at b = 1.
            deinterleave(
                &plane[iy * p.w..][..p.w],
                [
                    &mut q1[at..],
                    &mut q2[at..],
                    &mut q3[at..],
                    &mut q0[at + step..],
                ],
                step,
            );
        }
    }
}

/// Writes `V = Bᵀ d B` of every tile of `blk` and every channel of the group's
/// input `x` into `v`, laid out `[channel][ξ][tile]`. Each transform is a few
/// passes over all the block's tiles, so it runs in vector registers.
fn transform_inputs(x: &[f32], p: &Plan, blk: Block, v: &mut [f32]) {
    let (stride, step, len) = (p.row_stride(), blk.images, blk.len(p));
    // One tile row more than the block (the windows' overhang), one tile more for
    // the shifted reads.
    let plane_len = len + (stride + 1) * step;
    let planes_len = M * M * plane_len;
    let scratch = planes_len + M * ALPHA * (len + step);
    for_chunks_with(
        &mut v[..p.c_in * XI * len],
        XI * len,
        blk.parallel,
        scratch,
        |buf, c, v_c| {
            let (planes_buf, cols_buf) = buf.split_at_mut(planes_len);
            let mut planes = pieces::<{ M * M }>(planes_buf, plane_len);
            phase_planes(x, c, p, blk, &mut planes);
            // cols[cx * ALPHA + i]: row i of Bᵀ d for the columns of phase cx.
            let mut cols = pieces::<{ M * ALPHA }>(cols_buf, len + step);
            for (cx, out) in cols.chunks_exact_mut(ALPHA).enumerate() {
                bt_pass(
                    out,
                    from_fn(|r| &planes[r % M * M + cx][r / M * stride * step..]),
                );
            }
            for i in 0..ALPHA {
                let d = from_fn(|c| &cols[c % M * ALPHA + i][c / M * step..]);
                bt_pass(&mut rows_mut::<ALPHA>(v_c, len, i * ALPHA, 0, len), d);
            }
        },
    );
}

/// The `[channel][ξ][tile]` matrix of position `xi` as channels x tiles.
fn position(v: &[f32], rows: usize, xi: usize, len: usize) -> MatRef<'_> {
    MatRef::strided(&v[xi * len..], rows, len, XI * len)
}

/// One block of the forward pass: transforms, 36 multiplies into `m`
/// (`[ξ][out][tile]`), and the output transform into the group's output `y`.
fn forward_block(
    x: &[f32],
    u: &[f32],
    p: &Plan,
    blk: Block,
    epilogue: Option<Epilogue<'_>>,
    y: &mut [f32],
    s: &mut Scratch<'_>,
) {
    transform_inputs(x, p, blk, s.v);
    let (pairs, len) = (p.c_out * p.c_in, blk.len(p));
    let v = &s.v;
    for_chunks(
        &mut s.m[..XI * p.c_out * len],
        p.c_out * len,
        blk.parallel,
        |xi, m_xi| {
            matmul(
                MatMut::row_major(m_xi, p.c_out, len),
                MatRef::row_major(&u[xi * pairs..][..pairs], p.c_out, p.c_in),
                position(v, p.c_in, xi, len),
                false,
                1,
            );
        },
    );
    transform_outputs(s.m, p, blk, epilogue, y);
}

/// Runs `f(scratch, o, planes)` for every output channel `o` of a group's output
/// `y` (`[image][channel][pixel]`), `planes` that channel's plane of each image,
/// in parallel if asked, with a buffer of `scratch` values per task.
fn for_channels(
    y: &mut [f32],
    p: &Plan,
    parallel: bool,
    scratch: usize,
    f: impl Fn(&mut [f32], usize, &mut [&mut [f32]]) + Sync,
) {
    let mut planes: Vec<(usize, &mut [f32])> = y.chunks_exact_mut(p.hw()).enumerate().collect();
    // Image-major to channel-major (stable: images stay in order within a channel).
    planes.sort_by_key(|&(i, _)| i % p.c_out);
    let mut planes: Vec<&mut [f32]> = planes.into_iter().map(|(_, plane)| plane).collect();
    let images = planes.len() / p.c_out;
    for_chunks_with(&mut planes, images, parallel, scratch, f);
}

/// Writes `Aᵀ M A` (then `epilogue`) of every tile of `blk` from the products `m`
/// (`[ξ][out][tile]`) into the group's output `y`, a channel at a time.
fn transform_outputs(
    m: &[f32],
    p: &Plan,
    blk: Block,
    epilogue: Option<Epilogue<'_>>,
    y: &mut [f32],
) {
    let (stride, step, len) = (p.row_stride(), blk.images, blk.len(p));
    let cols_len = M * ALPHA * len;
    for_channels(
        y,
        p,
        blk.parallel,
        cols_len + M * M * len,
        |buf, o, planes| {
            let bias = epilogue.map_or(0.0, |e| e.bias[o]);
            let relu = epilogue.is_some_and(|e| e.relu);
            let finish = |v: f32| {
                if relu {
                    (v + bias).max(0.0)
                } else {
                    v + bias
                }
            };
            let (cols_buf, quad_buf) = buf.split_at_mut(cols_len);
            let ms = |xi: usize| &m[(xi * p.c_out + o) * len..][..len];
            // cols[c * M + r]: row r of Aᵀ M, column c; quad[a * M + b]: output (a, b)
            // of each tile.
            let mut cols = pieces::<{ M * ALPHA }>(cols_buf, len);
            for (c, out) in cols.chunks_exact_mut(M).enumerate() {
                at_pass(out, from_fn(|i| ms(i * ALPHA + c)));
            }
            let mut quad = pieces::<{ M * M }>(quad_buf, len);
            for (a, out) in quad.chunks_exact_mut(M).enumerate() {
                at_pass(out, from_fn(|c| &*cols[c * M + a]));
            }
            for (g, out) in planes.iter_mut().enumerate() {
                for q in 0..blk.rows() {
                    for a in 0..M {
                        let oy = M * (blk.ty0 + q) + a;
                        if oy >= p.h {
                            break;
                        }
                        let at = q * stride * step + g;
                        let parts: [&[f32]; M] = from_fn(|b| &quad[a * M + b][at..]);
                        interleave(&mut out[oy * p.w..][..p.w], parts, step, finish);
                    }
                }
            }
        },
    );
}

/// Per-task buffers of one block, cut from the thread's kept scratch: each
/// block writes all it reads of them.
struct Scratch<'a> {
    v: &'a mut [f32],
    m: &'a mut [f32],
}

impl Scratch<'_> {
    /// Runs `f` with the buffers for `p`'s blocks.
    fn with<R>(p: &Plan, f: impl FnOnce(&mut Scratch<'_>) -> R) -> R {
        let len = p.block_rows() * p.row_stride() * p.group_images();
        let v_len = p.c_in * XI * len;
        buffer::with_scratch(Kept::Call, v_len + XI * p.c_out * len, |buf| {
            let (v, m) = buf.split_at_mut(v_len);
            f(&mut Scratch { v, m })
        })
    }
}

/// Runs `f(group, group's output, scratch, parallel)` over groups of images: one
/// group per task when there are enough, else in turn with parallel phases.
fn per_group(
    out: &mut [f32],
    per_image: usize,
    p: &Plan,
    f: impl Fn(usize, &mut [f32], &mut Scratch<'_>, bool) + Sync,
) {
    let threads = rayon::current_num_threads();
    let chunk = p.group_images() * per_image;
    let groups = p.n.div_ceil(p.group_images());
    if groups >= threads && threads > 1 {
        // At most four tasks a thread: each allocates (and zeroes) its own scratch.
        out.par_chunks_mut(chunk)
            .with_min_len(groups.div_ceil(4 * threads))
            .enumerate()
            .for_each(|(gi, o)| Scratch::with(p, |s| f(gi, o, s, false)));
    } else {
        Scratch::with(p, |s| {
            for (gi, o) in out.chunks_mut(chunk).enumerate() {
                f(gi, o, s, threads > 1);
            }
        });
    }
}

/// The blocks covering `images` images of a group.
fn blocks(p: &Plan, images: usize, parallel: bool) -> impl Iterator<Item = Block> {
    let (rows, step) = (p.tiles_y(), p.block_rows());
    (0..rows).step_by(step).map(move |ty0| Block {
        ty0,
        ty1: rows.min(ty0 + step),
        images,
        parallel,
    })
}

/// Convolves `x` (N, in, H, W) with the (out, in, 3, 3) kernel `k`, padding 1.
fn convolve(x: &[f32], u: &[f32], p: &Plan, epilogue: Option<Epilogue<'_>>) -> Vec<f32> {
    let mut y = buffer::zeros(p.n * p.c_out * p.hw());
    let group_in = p.group_images() * p.c_in * p.hw();
    per_group(&mut y, p.c_out * p.hw(), p, |gi, y_g, s, parallel| {
        let x_g = &x[gi * group_in..];
        let images = y_g.len() / (p.c_out * p.hw());
        for blk in blocks(p, images, parallel) {
            forward_block(x_g, u, p, blk, epilogue, y_g, s);
        }
    });
    y
}

/// The forward pass: `x` (N, in, H, W) convolved with the (out, in, 3, 3) kernel
/// `k` at padding 1, then `epilogue`.
pub(super) fn forward(x: &[f32], k: &[f32], p: &Plan, epilogue: Option<Epilogue<'_>>) -> Vec<f32> {
    convolve(x, &transform_kernel(k, p.c_out, p.c_in, false), p, epilogue)
}

/// The input gradient for the output gradient `dy` (N, out, H, W).
pub(super) fn grad_input(dy: &[f32], k: &[f32], p: &Plan) -> Vec<f32> {
    let u = transform_kernel(k, p.c_out, p.c_in, true);
    convolve(dy, &u, &p.transposed(), None)
}

/// Writes `A dY Aᵀ` of every tile of `blk` and every channel of the group's output
/// gradient `dy` into `dm`, laid out `[channel][ξ][tile]` (zero for spare tiles).
fn transform_grads(dy: &[f32], p: &Plan, blk: Block, dm: &mut [f32]) {
    let (stride, step, len) = (p.row_stride(), blk.images, blk.len(p));
    let phases_len = M * M * len;
    for_chunks_with(
        &mut dm[..p.c_out * XI * len],
        XI * len,
        blk.parallel,
        phases_len + M * ALPHA * len,
        |buf, o, dm_o| {
            let (phases_buf, cols_buf) = buf.split_at_mut(phases_len);
            // phases[a * M + b][(q · stride + tx) · images + g]: dY (a, b) of tile
            // (ty0 + q, tx) of image g.
            let mut phases = pieces::<{ M * M }>(phases_buf, len);
            phases.iter_mut().for_each(|d| d.fill(0.0));
            for g in 0..step {
                let plane = &dy[(g * p.c_out + o) * p.hw()..][..p.hw()];
                for q in 0..blk.rows() {
                    for a in 0..M {
                        let oy = M * (blk.ty0 + q) + a;
                        if oy >= p.h {
                            break;
                        }
                        let dst = from_each::<M>(&mut phases[a * M..], q * stride * step + g);
                        deinterleave(&plane[oy * p.w..][..p.w], dst, step);
                    }
                }
            }
            // cols[b * ALPHA + i]: row i of A dY, column b.
            let mut cols = pieces::<{ M * ALPHA }>(cols_buf, len);
            for (b, out) in cols.chunks_exact_mut(ALPHA).enumerate() {
                a_pass(out, from_fn(|a| &*phases[a * M + b]));
            }
            for i in 0..ALPHA {
                let mut out = rows_mut::<ALPHA>(dm_o, len, i * ALPHA, 0, len);
                a_pass(&mut out, from_fn(|b| &*cols[b * ALPHA + i]));
            }
        },
    );
}

/// One block of the weight gradient: `dU_ξ += dM_ξ · V_ξᵀ` into `du` (`[ξ][out][in]`).
fn grad_weight_block(
    x: &[f32],
    dy: &[f32],
    p: &Plan,
    blk: Block,
    du: &mut [f32],
    s: &mut Scratch<'_>,
) {
    transform_inputs(x, p, blk, s.v);
    transform_grads(dy, p, blk, s.m);
    let (v, dm, len) = (&s.v, &s.m, blk.len(p));
    let pairs = p.c_out * p.c_in;
    for_chunks(du, pairs, blk.parallel, |xi, du_xi| {
        matmul(
            MatMut::row_major(du_xi, p.c_out, p.c_in),
            position(dm, p.c_out, xi, len),
            position(v, p.c_in, xi, len).t(),
            true,
            1,
        );
    });
}

/// The (out, in, 3, 3) kernel gradient for input `x` and output gradient `dy`.
/// Each task sums a fixed range of image groups into its own buffer and the buffers
/// are added in order, so the result does not depend on scheduling.
pub(super) fn grad_weight(x: &[f32], dy: &[f32], p: &Plan) -> Vec<f32> {
    let threads = rayon::current_num_threads();
    let groups = p.n.div_ceil(p.group_images());
    let pairs = p.c_out * p.c_in;
    let (group_in, group_out) = (
        p.group_images() * p.c_in * p.hw(),
        p.group_images() * p.c_out * p.hw(),
    );
    let run = |range: std::ops::Range<usize>, parallel: bool| {
        let mut du = vec![0f32; XI * pairs];
        Scratch::with(p, |s| {
            for gi in range {
                let images = p.group_images().min(p.n - gi * p.group_images());
                for blk in blocks(p, images, parallel) {
                    grad_weight_block(
                        &x[gi * group_in..],
                        &dy[gi * group_out..],
                        p,
                        blk,
                        &mut du,
                        s,
                    );
                }
            }
        });
        du
    };
    let partials: Vec<Vec<f32>> = if groups >= threads && threads > 1 {
        (0..threads)
            .into_par_iter()
            .map(|t| run(t * groups / threads..(t + 1) * groups / threads, false))
            .collect()
    } else {
        vec![run(0..groups, threads > 1)]
    };
    // Added in order (deterministic), a piece per task.
    let du = buffer::par_pieces(XI * pairs, SUM_PIECE, |i, piece| {
        for part in &partials {
            let part = &part[i * SUM_PIECE..][..piece.len()];
            piece.iter_mut().zip(part).for_each(|(d, v)| *d += v);
        }
    });
    kernel_grads(&du, pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct "same" 3x3 correlation.
    fn direct(x: &[f32], k: &[f32], p: &Plan) -> Vec<f32> {
        let mut y = vec![0f32; p.n * p.c_out * p.hw()];
        for n in 0..p.n {
            for o in 0..p.c_out {
                for oy in 0..p.h {
                    for ox in 0..p.w {
                        let mut acc = 0f32;
                        for c in 0..p.c_in {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = (oy + ky, ox + kx);
                                    if iy >= 1 && ix >= 1 && iy - 1 < p.h && ix - 1 < p.w {
                                        acc += x[((n * p.c_in + c) * p.h + iy - 1) * p.w + ix - 1]
                                            * k[((o * p.c_in + c) * 3 + ky) * 3 + kx];
                                    }
                                }
                            }
                        }
                        y[((n * p.c_out + o) * p.h + oy) * p.w + ox] = acc;
                    }
                }
            }
        }
        y
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104729) % 1013) as f32 / 1013.0) - 0.5)
            .collect()
    }

    #[test]
    fn tiles_match_direct_correlation_at_every_edge() {
        buffer::poison_kept(1 << 22);
        // Every remainder of the sides modulo the tile size, and one whole tile.
        for (n, c_in, c_out, h, w) in [
            (1, 1, 1, 5, 5),
            (2, 3, 4, 7, 6),
            (3, 2, 5, 6, 9),
            (1, 2, 3, 8, 11),
            (1, 1, 2, 4, 4),
        ] {
            let p = Plan {
                n,
                c_in,
                c_out,
                h,
                w,
            };
            let x = values(n * c_in * h * w, 1);
            let k = values(c_out * c_in * 9, 2);
            let bias = values(c_out, 5);
            let epilogue = Epilogue {
                bias: &bias,
                relu: true,
            };
            let got = forward(&x, &k, &p, Some(epilogue));
            let mut want = direct(&x, &k, &p);
            for (plane, &b) in want.chunks_exact_mut(h * w).zip(bias.iter().cycle()) {
                plane.iter_mut().for_each(|v| *v = (*v + b).max(0.0));
            }
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < 1e-5, "{n}x{c_in}x{h}x{w} -> {c_out}: {err}");
        }
    }

    #[test]
    fn groups_and_blocks_follow_the_budget() {
        // The splits conv's Winograd tests rely on: 2 MiB holds 113 tiles of 64+64
        // channels, so 20x20 images (30 tiles) go 3 to a group and a 48x48 image
        // (12 tile rows of 13) is cut into blocks of 8 rows.
        let plan = |n, c, side| Plan {
            n,
            c_in: c,
            c_out: c,
            h: side,
            w: side,
        };
        assert_eq!(plan(5, 64, 20).group_images(), 3);
        let tall = plan(1, 64, 48);
        assert_eq!(
            (tall.group_images(), tall.block_rows(), tall.tiles_y()),
            (1, 8, 12)
        );
    }

    #[test]
    fn kernel_gradient_transform_is_the_transpose() {
        // <G g Gᵀ, dU> == <g, Gᵀ dU G> for any g, dU, here for 3 kernels at once.
        let (c_out, c_in) = (3, 1);
        let g = values(9 * c_out * c_in, 3);
        let du = values(XI * c_out * c_in, 4);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f32>();
        let lhs = dot(&transform_kernel(&g, c_out, c_in, false), &du);
        let rhs = dot(&kernel_grads(&du, c_out * c_in), &g);
        assert!((lhs - rhs).abs() < 1e-5, "{lhs} vs {rhs}");
    }
}
