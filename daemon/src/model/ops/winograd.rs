//! 3x3 stride-1 "same" convolutions by Winograd's minimal filtering F(2x2, 3x3)
//! (Lavin and Gray 2016, "Fast Algorithms for Convolutional Neural Networks").
//!
//! Each 2x2 output tile comes from the 4x4 input tile around it: with `U = G g Gᵀ`
//! the 4x4 transform of a 3x3 kernel and `V = Bᵀ d B` that of an input tile, the
//! tile is `Aᵀ (Σ_c U ⊙ V) A`. The sum over input channels is, for each of the 16
//! positions ξ of the transform, one matrix multiply `M_ξ = U_ξ · V_ξ` (output
//! channels x input channels times input channels x tiles): 16 multiplies per 4
//! outputs where im2col needs 36, so 2.25x fewer multiply-adds. The transforms only
//! add, subtract and halve, so results differ from im2col by rounding only.
//!
//! Backward is the same algebra transposed: the input gradient is this convolution
//! of the output gradient with the kernel rotated by 180° and its channels swapped;
//! the weight gradient is `Gᵀ (Σ_tiles (A dY Aᵀ) ⊙ V) G`, again 16 multiplies.
//!
//! Tiles are processed in blocks of whole tile rows (about [`BLOCK_BYTES`] of
//! transformed inputs and products each), every transform as a few long passes
//! over contiguous values. A batch with at least as many image groups as
//! threads runs one group per task with single-threaded multiplies; a smaller one
//! (batch-1 inference) runs its blocks in turn, each phase parallel inside.

use rayon::prelude::*;

use super::conv::Epilogue;
use super::gemm::{matmul, MatMut, MatRef};

/// Positions of a 4x4 transformed tile.
const XI: usize = 16;

/// Bytes of transformed inputs plus products one block may hold. Larger blocks
/// mean fewer, wider multiplies: on one Zen 4 core 2 MiB ran the 64->64 32x32
/// layer at batch 32 in 17 ms, 1 MiB in 19-20 ms, 512 KiB in 23 ms.
const BLOCK_BYTES: usize = 1 << 21;

/// Smallest side worth tiling: below it the transforms cost more than they save.
const MIN_SIDE: usize = 5;

/// Fewest input and output channels worth 16 separate multiplies.
const MIN_CHANNELS: usize = 16;

/// Fewest tiles in a call worth the transforms.
const MIN_TILES: usize = 64;

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
    /// Whether Winograd beats im2col here. Measured on one core: with 3 input
    /// channels the 16 thin multiplies lose to one im2col multiply (4.6 vs 1.6 ms
    /// for the first VoVNet layer at batch 32), and a single 7x7 image has too
    /// few tiles to pay for the transforms; 15x15 and larger, or 7x7 in a batch,
    /// with 64+ channels run 1.1-1.5x faster.
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
        self.h.div_ceil(2)
    }

    /// Tile columns that hold outputs.
    fn tiles_x(&self) -> usize {
        self.w.div_ceil(2)
    }

    /// Tiles per tile row: the output tiles and one spare, so that the window of
    /// every tile starts at the same offset in each parity plane of the input
    /// (see [`transform_inputs`]). The spare tile is computed and discarded.
    fn row_stride(&self) -> usize {
        self.tiles_x() + 1
    }

    fn tiles_per_image(&self) -> usize {
        self.tiles_y() * self.row_stride()
    }

    /// Tiles per block: as many as fit [`BLOCK_BYTES`], whole tile rows, at least
    /// one row.
    fn block_tiles(&self) -> usize {
        let fit = BLOCK_BYTES / (XI * 4 * (self.c_in + self.c_out));
        (fit / self.row_stride()).max(1) * self.row_stride()
    }

    /// Images per group: enough for one block, at most the batch.
    fn group_images(&self) -> usize {
        self.block_tiles()
            .div_ceil(self.tiles_per_image())
            .clamp(1, self.n.max(1))
    }
}

/// The 1D kernel transform `G g`: 3 taps to 4.
fn g_1d(a: f32, b: f32, c: f32) -> [f32; 4] {
    [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
}

/// The transpose of [`g_1d`]: 4 transformed-kernel gradients to 3 taps.
fn gt_1d(u: [f32; 4]) -> [f32; 3] {
    [
        u[0] + 0.5 * (u[1] + u[2]),
        0.5 * (u[1] - u[2]),
        0.5 * (u[1] + u[2]) + u[3],
    ]
}

/// `G g Gᵀ` of a row-major 3x3 kernel, row-major 4x4.
fn kernel_tile(g: &[f32]) -> [f32; XI] {
    let cols: [[f32; 4]; 3] = std::array::from_fn(|j| g_1d(g[j], g[3 + j], g[6 + j]));
    let mut out = [0f32; XI];
    for i in 0..4 {
        out[i * 4..i * 4 + 4].copy_from_slice(&g_1d(cols[0][i], cols[1][i], cols[2][i]));
    }
    out
}

/// `Gᵀ dU G` of a row-major 4x4 transformed-kernel gradient: the 3x3 kernel
/// gradient, row-major.
fn kernel_grad_tile(du: &[f32; XI]) -> [f32; 9] {
    let cols: [[f32; 3]; 4] =
        std::array::from_fn(|j| gt_1d([du[j], du[4 + j], du[8 + j], du[12 + j]]));
    let mut out = [0f32; 9];
    for i in 0..3 {
        out[i * 3..i * 3 + 3]
            .copy_from_slice(&gt_1d([cols[0][i], cols[1][i], cols[2][i], cols[3][i]]));
    }
    out
}

/// Transformed kernels, laid out `[ξ][out][in]`, of an (out, in, 3, 3) kernel.
fn transform_kernel(k: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let pairs = c_out * c_in;
    let mut u = vec![0f32; XI * pairs];
    for (oc, g) in k.chunks_exact(9).enumerate() {
        for (xi, v) in kernel_tile(g).into_iter().enumerate() {
            u[xi * pairs + oc] = v;
        }
    }
    u
}

/// The kernel of the input gradient: (in, out, 3, 3), each window rotated by 180°.
fn rotate_kernel(k: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let mut r = vec![0f32; k.len()];
    for o in 0..c_out {
        for c in 0..c_in {
            let src = &k[(o * c_in + c) * 9..][..9];
            let dst = &mut r[(c * c_out + o) * 9..][..9];
            dst.iter_mut()
                .zip(src.iter().rev())
                .for_each(|(d, &s)| *d = s);
        }
    }
    r
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
/// it likes (not cleared between calls).
fn for_chunks_with(
    data: &mut [f32],
    chunk: usize,
    parallel: bool,
    scratch: usize,
    f: impl Fn(&mut [f32], usize, &mut [f32]) + Sync,
) {
    if parallel {
        data.par_chunks_mut(chunk)
            .enumerate()
            .for_each_init(|| vec![0f32; scratch], |buf, (i, c)| f(buf, i, c));
    } else {
        let mut buf = vec![0f32; scratch];
        data.chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(&mut buf, i, c));
    }
}

/// A block of tiles within a group of images, and how to run its phases.
#[derive(Clone, Copy)]
struct Block {
    start: usize,
    len: usize,
    parallel: bool,
}

/// Whole tile rows `ty0..ty1` of image `n` of a group, starting at tile `j0` of
/// their block.
#[derive(Clone, Copy)]
struct Segment {
    n: usize,
    ty0: usize,
    ty1: usize,
    j0: usize,
}

impl Segment {
    fn rows(&self) -> usize {
        self.ty1 - self.ty0
    }
}

/// The per-image runs of tile rows that make up `blk` (blocks hold whole rows).
fn segments(p: &Plan, blk: Block) -> impl Iterator<Item = Segment> + '_ {
    let (stride, per) = (p.row_stride(), p.tiles_per_image());
    let end = blk.start + blk.len;
    let mut t = blk.start;
    std::iter::from_fn(move || {
        if t >= end {
            return None;
        }
        let (n, ty0) = (t / per, t % per / stride);
        let ty1 = p.tiles_y().min(ty0 + (end - t) / stride);
        let seg = Segment {
            n,
            ty0,
            ty1,
            j0: t - blk.start,
        };
        t += (ty1 - ty0) * stride;
        Some(seg)
    })
}

/// `first[k] = row[2k]`, `second[k] = row[2k + 1]` as far as `row` goes.
fn deinterleave(row: &[f32], first: &mut [f32], second: &mut [f32]) {
    let pairs = row.len() / 2;
    for ((a, b), pair) in first[..pairs]
        .iter_mut()
        .zip(&mut second[..pairs])
        .zip(row.chunks_exact(2))
    {
        (*a, *b) = (pair[0], pair[1]);
    }
    if row.len() % 2 == 1 {
        first[pairs] = row[row.len() - 1];
    }
}

/// `out[i] = f(a[i], b[i])` over the shortest of the three.
fn zip2(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    out.iter_mut()
        .zip(a.iter().zip(b))
        .for_each(|(o, (&a, &b))| *o = f(a, b));
}

/// `out[i] = f(a[i], b[i], c[i])` over the shortest of the four.
fn zip3(out: &mut [f32], a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) {
    out.iter_mut()
        .zip(a.iter().zip(b).zip(c))
        .for_each(|(o, ((&a, &b), &c))| *o = f(a, b, c));
}

/// Splits `buf` into `N` consecutive pieces of `len` values.
fn pieces<const N: usize>(buf: &mut [f32], len: usize) -> [&mut [f32]; N] {
    let mut rest = &mut buf[..N * len];
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        head
    })
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
    std::array::from_fn(|_| &mut rows.next().expect("row inside the buffer")[at..][..width])
}

/// `Bᵀ d` value by value: `out[i][k] = (Bᵀ [d0[k], d1[k], d2[k], d3[k]])[i]`.
fn bt_pass(out: &mut [&mut [f32]], d: [&[f32]; 4]) {
    zip2(&mut *out[0], d[0], d[2], |a, c| a - c);
    zip2(&mut *out[1], d[1], d[2], |b, c| b + c);
    zip2(&mut *out[2], d[2], d[1], |c, b| c - b);
    zip2(&mut *out[3], d[1], d[3], |b, d| b - d);
}

/// `Aᵀ m` value by value: 4 rows to 2.
fn at_pass(out: &mut [&mut [f32]], m: [&[f32]; 4]) {
    zip3(&mut *out[0], m[0], m[1], m[2], |a, b, c| a + b + c);
    zip3(&mut *out[1], m[1], m[2], m[3], |b, c, d| b - c - d);
}

/// `A y` value by value (the transpose of [`at_pass`]): 2 rows to 4.
fn a_pass(out: &mut [&mut [f32]], y0: &[f32], y1: &[f32]) {
    zip2(&mut *out[0], y0, y1, |a, _| a);
    zip2(&mut *out[1], y0, y1, |a, b| a + b);
    zip2(&mut *out[2], y0, y1, |a, b| a - b);
    zip2(&mut *out[3], y0, y1, |_, b| -b);
}

/// The parity planes of padded rows `2·ty0 ..= 2·ty1 + 1` of an input plane
/// (padded row/column `i` is input row/column `i - 1`, zero outside):
/// `planes[ry * 2 + rx][a · stride + b]` holds padded (`2(ty0 + a) + ry`,
/// `2b + rx`). Window position (r, c) of tile (ty0 + a, b) is then plane
/// `(r % 2, c % 2)` at `(a + r / 2) · stride + b + c / 2`: one offset per position.
fn parity_planes(plane: &[f32], p: &Plan, seg: &Segment, planes: &mut [&mut [f32]; 4]) {
    let stride = p.row_stride();
    planes.iter_mut().for_each(|q| q.fill(0.0));
    for a in 0..=seg.rows() {
        for ry in 0..2 {
            let Some(iy) = (2 * (seg.ty0 + a) + ry).checked_sub(1).filter(|&r| r < p.h) else {
                continue;
            };
            let row = &plane[iy * p.w..][..p.w];
            let (even, odd) = planes[ry * 2..].split_at_mut(1);
            // Padded column 2b + 1 is input column 2b; padded column 2b is 2b - 1.
            deinterleave(
                row,
                &mut odd[0][a * stride..],
                &mut even[0][a * stride + 1..],
            );
        }
    }
}

/// Writes `V = Bᵀ d B` of every tile of `blk` and every channel of the group's
/// input `x` into `v`, laid out `[channel][ξ][tile]`. Each transform is a few
/// passes over whole segments of contiguous values, so it runs in vector registers.
fn transform_inputs(x: &[f32], p: &Plan, blk: Block, v: &mut [f32]) {
    let (stride, len) = (p.row_stride(), blk.len);
    let plane_len = (len / stride + 1) * stride + 1;
    let (planes_len, scratch) = (4 * plane_len, 4 * plane_len + 8 * (len + 1));
    for_chunks_with(
        &mut v[..p.c_in * XI * len],
        XI * len,
        blk.parallel,
        scratch,
        |buf, c, v_c| {
            let (planes_buf, cols_buf) = buf.split_at_mut(planes_len);
            for seg in segments(p, blk) {
                let l = seg.rows() * stride;
                let mut planes = pieces::<4>(planes_buf, (seg.rows() + 1) * stride + 1);
                parity_planes(
                    &x[(seg.n * p.c_in + c) * p.hw()..][..p.hw()],
                    p,
                    &seg,
                    &mut planes,
                );
                // cols[rx * 4 + i]: row i of Bᵀ d for the columns of parity rx.
                let mut cols = pieces::<8>(cols_buf, l + 1);
                for (rx, out) in cols.chunks_exact_mut(4).enumerate() {
                    let (top, bottom) = (&planes[rx], &planes[2 + rx]);
                    let (d0, d1) = (&top[..l + 1], &bottom[..l + 1]);
                    let (d2, d3) = (&top[stride..][..l + 1], &bottom[stride..][..l + 1]);
                    bt_pass(out, [d0, d1, d2, d3]);
                }
                for i in 0..4 {
                    let (e, o) = (&cols[i], &cols[4 + i]);
                    let mut out = rows_mut::<4>(v_c, len, i * 4, seg.j0, l);
                    bt_pass(&mut out, [&e[..l], &o[..l], &e[1..], &o[1..]]);
                }
            }
        },
    );
}

/// The `[channel][ξ][tile]` matrix of position `xi` as channels x tiles.
fn position(v: &[f32], rows: usize, xi: usize, len: usize) -> MatRef<'_> {
    MatRef::strided(&v[xi * len..], rows, len, XI * len)
}

/// One block of the forward pass: transforms, 16 multiplies into `m`
/// (`[ξ][out][tile]`), and the output transform into the group's output `y`.
fn forward_block(
    x: &[f32],
    u: &[f32],
    p: &Plan,
    blk: Block,
    epilogue: Option<Epilogue<'_>>,
    y: &mut [f32],
    s: &mut Scratch,
) {
    transform_inputs(x, p, blk, &mut s.v);
    let (pairs, len) = (p.c_out * p.c_in, blk.len);
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
    transform_outputs(&s.m, p, blk, epilogue, y);
}

/// Writes `Aᵀ M A` (then `epilogue`) of every tile of `blk` from the products `m`
/// (`[ξ][out][tile]`) into the group's output `y`, a tile row at a time.
fn transform_outputs(
    m: &[f32],
    p: &Plan,
    blk: Block,
    epilogue: Option<Epilogue<'_>>,
    y: &mut [f32],
) {
    let (stride, len) = (p.row_stride(), blk.len);
    for_chunks_with(
        y,
        p.hw(),
        blk.parallel,
        12 * len,
        |buf, plane_index, out| {
            let (n, o) = (plane_index / p.c_out, plane_index % p.c_out);
            let bias = epilogue.map_or(0.0, |e| e.bias[o]);
            let relu = epilogue.is_some_and(|e| e.relu);
            let finish = |v: f32| {
                if relu {
                    (v + bias).max(0.0)
                } else {
                    v + bias
                }
            };
            let (rows_buf, quad_buf) = buf.split_at_mut(8 * len);
            for seg in segments(p, blk).filter(|s| s.n == n) {
                let l = seg.rows() * stride;
                let ms = |xi: usize| &m[(xi * p.c_out + o) * len + seg.j0..][..l];
                // rows[r * 4 + c]: row r of Aᵀ M, column c; quad[a * 2 + b]: output
                // (a, b) of each tile.
                let [r00, r01, r02, r03, r10, r11, r12, r13] = pieces::<8>(rows_buf, l);
                let mut rows = [[r00, r01, r02, r03], [r10, r11, r12, r13]];
                for c in 0..4 {
                    let [top, bottom] = &mut rows;
                    at_pass(
                        &mut [&mut *top[c], &mut *bottom[c]],
                        [ms(c), ms(4 + c), ms(8 + c), ms(12 + c)],
                    );
                }
                let mut quad = pieces::<4>(quad_buf, l);
                for (out, r) in quad.chunks_exact_mut(2).zip(&rows) {
                    at_pass(out, [&*r[0], &*r[1], &*r[2], &*r[3]]);
                }
                for q in 0..seg.rows() {
                    for a in 0..2 {
                        let oy = 2 * (seg.ty0 + q) + a;
                        if oy >= p.h {
                            continue;
                        }
                        let (left, right) =
                            (&quad[a * 2][q * stride..], &quad[a * 2 + 1][q * stride..]);
                        let row = &mut out[oy * p.w..][..p.w];
                        let mut pairs = row.chunks_exact_mut(2);
                        for (pair, (&l, &r)) in (&mut pairs).zip(left.iter().zip(right)) {
                            (pair[0], pair[1]) = (finish(l), finish(r));
                        }
                        if let [last] = pairs.into_remainder() {
                            *last = finish(left[p.w / 2]);
                        }
                    }
                }
            }
        },
    );
}

/// Per-task buffers of one block.
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
}

impl Scratch {
    fn new(p: &Plan) -> Self {
        let len = p.block_tiles().min(p.group_images() * p.tiles_per_image());
        Scratch {
            v: vec![0f32; p.c_in * XI * len],
            m: vec![0f32; XI * p.c_out * len],
        }
    }
}

/// Runs `f(group, group's output, scratch, parallel)` over groups of images: one
/// group per task when there are enough, else in turn with parallel phases.
fn per_group(
    out: &mut [f32],
    per_image: usize,
    p: &Plan,
    f: impl Fn(usize, &mut [f32], &mut Scratch, bool) + Sync,
) {
    let threads = rayon::current_num_threads();
    let chunk = p.group_images() * per_image;
    let groups = p.n.div_ceil(p.group_images());
    if groups >= threads && threads > 1 {
        // At most four tasks a thread: each allocates (and zeroes) its own scratch.
        out.par_chunks_mut(chunk)
            .with_min_len(groups.div_ceil(4 * threads))
            .enumerate()
            .for_each_init(|| Scratch::new(p), |s, (gi, o)| f(gi, o, s, false));
    } else {
        let mut s = Scratch::new(p);
        for (gi, o) in out.chunks_mut(chunk).enumerate() {
            f(gi, o, &mut s, threads > 1);
        }
    }
}

/// The blocks covering `images` images of a group.
fn blocks(p: &Plan, images: usize, parallel: bool) -> impl Iterator<Item = Block> {
    let (total, step) = (images * p.tiles_per_image(), p.block_tiles());
    (0..total).step_by(step).map(move |start| Block {
        start,
        len: step.min(total - start),
        parallel,
    })
}

/// Convolves `x` (N, in, H, W) with the (out, in, 3, 3) kernel `k`, padding 1.
fn convolve(x: &[f32], u: &[f32], p: &Plan, epilogue: Option<Epilogue<'_>>) -> Vec<f32> {
    let mut y = vec![0f32; p.n * p.c_out * p.hw()];
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
    convolve(x, &transform_kernel(k, p.c_out, p.c_in), p, epilogue)
}

/// The input gradient for the output gradient `dy` (N, out, H, W).
pub(super) fn grad_input(dy: &[f32], k: &[f32], p: &Plan) -> Vec<f32> {
    let rotated = rotate_kernel(k, p.c_out, p.c_in);
    convolve(
        dy,
        &transform_kernel(&rotated, p.c_in, p.c_out),
        &p.transposed(),
        None,
    )
}

/// Writes `A dY Aᵀ` of every tile of `blk` and every channel of the group's output
/// gradient `dy` into `dm`, laid out `[channel][ξ][tile]` (zero for spare tiles).
fn transform_grads(dy: &[f32], p: &Plan, blk: Block, dm: &mut [f32]) {
    let (stride, len) = (p.row_stride(), blk.len);
    for_chunks_with(
        &mut dm[..p.c_out * XI * len],
        XI * len,
        blk.parallel,
        12 * len,
        |buf, o, dm_o| {
            let (parity_buf, cols_buf) = buf.split_at_mut(4 * len);
            for seg in segments(p, blk) {
                let l = seg.rows() * stride;
                let plane = &dy[(seg.n * p.c_out + o) * p.hw()..][..p.hw()];
                // parity[a * 2 + b][q · stride + tx]: dY (a, b) of tile (ty0 + q, tx).
                let mut parity = pieces::<4>(parity_buf, l);
                parity.iter_mut().for_each(|d| d.fill(0.0));
                for q in 0..seg.rows() {
                    for a in 0..2 {
                        let oy = 2 * (seg.ty0 + q) + a;
                        if oy < p.h {
                            let (even, odd) = parity[a * 2..].split_at_mut(1);
                            let row = &plane[oy * p.w..][..p.w];
                            deinterleave(
                                row,
                                &mut even[0][q * stride..],
                                &mut odd[0][q * stride..],
                            );
                        }
                    }
                }
                // cols[b * 4 + i]: row i of A dY, column b.
                let mut cols = pieces::<8>(cols_buf, l);
                for (b, out) in cols.chunks_exact_mut(4).enumerate() {
                    a_pass(out, parity[b], parity[2 + b]);
                }
                for i in 0..4 {
                    let mut out = rows_mut::<4>(dm_o, len, i * 4, seg.j0, l);
                    a_pass(&mut out, cols[i], cols[4 + i]);
                }
            }
        },
    );
}

/// One block of the weight gradient: `dU_ξ += dM_ξ · V_ξᵀ` into `du` (`[ξ][out][in]`).
fn grad_weight_block(x: &[f32], dy: &[f32], p: &Plan, blk: Block, du: &mut [f32], s: &mut Scratch) {
    transform_inputs(x, p, blk, &mut s.v);
    transform_grads(dy, p, blk, &mut s.m);
    let (v, dm, len) = (&s.v, &s.m, blk.len);
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
        let mut s = Scratch::new(p);
        for gi in range {
            let images = p.group_images().min(p.n - gi * p.group_images());
            for blk in blocks(p, images, parallel) {
                grad_weight_block(
                    &x[gi * group_in..],
                    &dy[gi * group_out..],
                    p,
                    blk,
                    &mut du,
                    &mut s,
                );
            }
        }
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
    let mut du = vec![0f32; XI * pairs];
    for part in partials {
        du.iter_mut().zip(part).for_each(|(d, v)| *d += v);
    }
    let mut dk = vec![0f32; pairs * 9];
    for (oc, out) in dk.chunks_exact_mut(9).enumerate() {
        let tile: [f32; XI] = std::array::from_fn(|xi| du[xi * pairs + oc]);
        out.copy_from_slice(&kernel_grad_tile(&tile));
    }
    dk
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
        for (n, c_in, c_out, h, w) in [(1, 1, 1, 5, 5), (2, 3, 4, 7, 6), (3, 2, 5, 6, 9)] {
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
    fn kernel_gradient_transform_is_the_transpose() {
        // <G g Gᵀ, dU> == <g, Gᵀ dU G> for any g, dU.
        let g = values(9, 3);
        let du: [f32; XI] = std::array::from_fn(|i| values(XI, 4)[i]);
        let lhs: f32 = kernel_tile(&g).iter().zip(&du).map(|(a, b)| a * b).sum();
        let rhs: f32 = kernel_grad_tile(&du)
            .iter()
            .zip(&g)
            .map(|(a, b)| a * b)
            .sum();
        assert!((lhs - rhs).abs() < 1e-6, "{lhs} vs {rhs}");
    }
}
