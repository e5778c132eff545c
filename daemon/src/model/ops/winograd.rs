//! 3x3 stride-1 "same" convolutions by Winograd's minimal filtering F(2x2, 3x3)
//! (Lavin and Gray 2016, "Fast Algorithms for Convolutional Neural Networks").
//!
//! Each 2x2 output tile comes from the 4x4 input tile around it: with `U = G g Gᵀ`
//! the 4x4 transform of a 3x3 kernel and `V = Bᵀ d B` that of an input tile, the
//! tile is `Aᵀ (Σ_c U ⊙ V) A`. The sum over input channels is, for each of the 16
//! positions ξ of the transform, one matrix multiply `M_ξ = U_ξ · V_ξ` (output
//! channels x input channels times input channels x tiles): 16 multiplies per 4
//! outputs where im2col needs 36, so 2.25x fewer multiply-adds. The transforms only
//! add and halve (exact in binary), so results differ from im2col by rounding only.
//!
//! Backward is the same algebra transposed: the input gradient is this convolution
//! of the output gradient with the kernel rotated by 180° and its channels swapped;
//! the weight gradient is `Gᵀ (Σ_tiles (A dY Aᵀ) ⊙ V) G`, again 16 multiplies.
//!
//! Tiles are processed in blocks small enough that the transformed inputs and
//! products stay in a core's cache. A batch with at least as many image groups as
//! threads runs one group per task with single-threaded multiplies; a smaller one
//! (batch-1 inference) runs its blocks in turn, each phase parallel inside.

use rayon::prelude::*;

use super::gemm::{matmul, MatMut, MatRef};

/// Positions of a 4x4 transformed tile.
const XI: usize = 16;

/// Bytes of transformed inputs plus products one block may hold.
const BLOCK_BYTES: usize = 1 << 20;

/// Smallest side worth tiling: below it the transforms cost more than they save.
const MIN_SIDE: usize = 5;

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
    /// Whether maps of this size are worth Winograd's transforms.
    pub(super) fn worth_it(&self) -> bool {
        self.h >= MIN_SIDE && self.w >= MIN_SIDE
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

    fn tiles_x(&self) -> usize {
        self.w.div_ceil(2)
    }

    fn tiles_per_image(&self) -> usize {
        self.tiles_y() * self.tiles_x()
    }

    /// (image, tile row, tile column) of tile `t`, counted from the first image of
    /// a group.
    fn locate(&self, t: usize) -> (usize, usize, usize) {
        let per = self.tiles_per_image();
        let (n, r) = (t / per, t % per);
        (n, r / self.tiles_x(), r % self.tiles_x())
    }

    /// Tiles per block: as many as fit [`BLOCK_BYTES`], whole tile rows, at least
    /// one row.
    fn block_tiles(&self) -> usize {
        let fit = BLOCK_BYTES / (XI * 4 * (self.c_in + self.c_out));
        (fit / self.tiles_x()).max(1) * self.tiles_x()
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

/// The 1D input transform `Bᵀ d`.
fn bt_1d(d: [f32; 4]) -> [f32; 4] {
    [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]
}

#[cfg(test)]
/// The 1D output transform `Aᵀ m`: 4 values to 2.
fn at_1d(m: [f32; 4]) -> [f32; 2] {
    [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]
}

#[cfg(test)]
/// The transpose of [`at_1d`]: an output gradient pair to 4 values.
fn a_1d(y0: f32, y1: f32) -> [f32; 4] {
    [y0, y0 + y1, y0 - y1, -y1]
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

#[cfg(test)]
/// `Bᵀ d B` of a row-major 4x4 tile.
fn input_tile(d: &[f32; XI]) -> [f32; XI] {
    let cols: [[f32; 4]; 4] = std::array::from_fn(|j| bt_1d([d[j], d[4 + j], d[8 + j], d[12 + j]]));
    let mut out = [0f32; XI];
    for i in 0..4 {
        out[i * 4..i * 4 + 4]
            .copy_from_slice(&bt_1d([cols[0][i], cols[1][i], cols[2][i], cols[3][i]]));
    }
    out
}

#[cfg(test)]
/// `Aᵀ m A` of a row-major 4x4 product: the 2x2 output tile, row-major.
fn output_tile(m: &[f32; XI]) -> [f32; 4] {
    let cols: [[f32; 2]; 4] = std::array::from_fn(|j| at_1d([m[j], m[4 + j], m[8 + j], m[12 + j]]));
    let top = at_1d([cols[0][0], cols[1][0], cols[2][0], cols[3][0]]);
    let bottom = at_1d([cols[0][1], cols[1][1], cols[2][1], cols[3][1]]);
    [top[0], top[1], bottom[0], bottom[1]]
}

#[cfg(test)]
/// `A dY Aᵀ` of a row-major 2x2 output gradient, row-major 4x4.
fn grad_output_tile(dy: [f32; 4]) -> [f32; XI] {
    let cols = [a_1d(dy[0], dy[2]), a_1d(dy[1], dy[3])];
    let mut out = [0f32; XI];
    for i in 0..4 {
        out[i * 4..i * 4 + 4].copy_from_slice(&a_1d(cols[0][i], cols[1][i]));
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
    if parallel {
        data.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        data.chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
}

/// A block of tiles within a group of images, and how to run its phases.
#[derive(Clone, Copy)]
struct Block {
    start: usize,
    len: usize,
    parallel: bool,
}

/// A run of consecutive tiles of one tile row: image, tile row, first and end
/// tile column, and the index of the first within its block.
#[derive(Clone, Copy)]
struct Segment {
    n: usize,
    ty: usize,
    tx0: usize,
    tx1: usize,
    j0: usize,
}

impl Segment {
    fn len(&self) -> usize {
        self.tx1 - self.tx0
    }
}

/// The tile-row runs that make up `blk`.
fn segments(p: &Plan, blk: Block) -> impl Iterator<Item = Segment> + '_ {
    let tw = p.tiles_x();
    let end = blk.start + blk.len;
    let mut t = blk.start;
    std::iter::from_fn(move || {
        if t >= end {
            return None;
        }
        let (n, ty, tx0) = p.locate(t);
        let tx1 = tw.min(tx0 + end - t);
        let seg = Segment {
            n,
            ty,
            tx0,
            tx1,
            j0: t - blk.start,
        };
        t += tx1 - tx0;
        Some(seg)
    })
}

/// Splits padded row `y` (input row `y - 1`, zero outside) of a plane into its even
/// and odd padded columns: `even[k]` holds input column `2k - 1`, `odd[k]` column
/// `2k`, zero outside.
fn split_row(plane: &[f32], p: &Plan, y: usize, even: &mut [f32], odd: &mut [f32]) {
    even.fill(0.0);
    odd.fill(0.0);
    let Some(row) = y.checked_sub(1).filter(|&iy| iy < p.h) else {
        return;
    };
    deinterleave(&plane[row * p.w..][..p.w], odd, &mut even[1..]);
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

/// Writes `V = Bᵀ d B` of every tile of `blk` and every channel of the group's
/// input `x` into `v`, laid out `[channel][ξ][tile]`. Works a tile row at a time
/// on whole rows, so the arithmetic runs across tiles in vector registers.
fn transform_inputs(x: &[f32], p: &Plan, blk: Block, v: &mut [f32]) {
    let (k, len) = (p.tiles_x() + 1, blk.len);
    for_chunks(
        &mut v[..p.c_in * XI * len],
        XI * len,
        blk.parallel,
        |c, v_c| {
            // rows[r] / rows[4 + r]: even / odd columns of padded row r of the window;
            // cols[i] / cols[4 + i]: the same after the vertical transform.
            let mut rows = vec![0f32; 8 * k];
            let mut cols = vec![0f32; 8 * k];
            for seg in segments(p, blk) {
                let plane = &x[(seg.n * p.c_in + c) * p.hw()..][..p.hw()];
                let (even, odd) = rows.split_at_mut(4 * k);
                for (r, (e, o)) in even
                    .chunks_exact_mut(k)
                    .zip(odd.chunks_exact_mut(k))
                    .enumerate()
                {
                    split_row(plane, p, 2 * seg.ty + r, e, o);
                }
                for (src, dst) in rows.chunks_exact(4 * k).zip(cols.chunks_exact_mut(4 * k)) {
                    let (r0, r1, r2, r3) =
                        (&src[..k], &src[k..2 * k], &src[2 * k..3 * k], &src[3 * k..]);
                    let (d0, rest) = dst.split_at_mut(k);
                    let (d1, rest) = rest.split_at_mut(k);
                    let (d2, d3) = rest.split_at_mut(k);
                    for i in 0..k {
                        let b = bt_1d([r0[i], r1[i], r2[i], r3[i]]);
                        (d0[i], d1[i], d2[i], d3[i]) = (b[0], b[1], b[2], b[3]);
                    }
                }
                for i in 0..4 {
                    let te = &cols[i * k..][seg.tx0..seg.tx1 + 1];
                    let to = &cols[(4 + i) * k..][seg.tx0..seg.tx1 + 1];
                    let out = |jj: usize| (i * 4 + jj) * len + seg.j0;
                    let n = seg.len();
                    let (lo, hi) = (&te[..n], &te[1..]);
                    let (olo, ohi) = (&to[..n], &to[1..]);
                    for (d, (a, c)) in v_c[out(0)..][..n].iter_mut().zip(lo.iter().zip(hi)) {
                        *d = a - c;
                    }
                    for (d, (b, c)) in v_c[out(1)..][..n].iter_mut().zip(olo.iter().zip(hi)) {
                        *d = b + c;
                    }
                    for (d, (b, c)) in v_c[out(2)..][..n].iter_mut().zip(olo.iter().zip(hi)) {
                        *d = c - b;
                    }
                    for (d, (b, dd)) in v_c[out(3)..][..n].iter_mut().zip(olo.iter().zip(ohi)) {
                        *d = b - dd;
                    }
                }
            }
        },
    );
}

/// The `[channel][ξ][tile]` matrix of position `xi` as channels x tiles.
fn position(v: &[f32], rows: usize, xi: usize, len: usize) -> MatRef<'_> {
    MatRef::strided(&v[xi * len..], rows, len, XI * len)
}

/// What the output transform does besides writing: add a bias per channel, clamp.
#[derive(Clone, Copy)]
pub(super) struct Finish<'a> {
    /// One value per output channel, if any.
    pub(super) bias: Option<&'a [f32]>,
    /// ReLU after the bias.
    pub(super) relu: bool,
}

/// One block of the forward pass: transforms, 16 multiplies into `m`
/// (`[ξ][out][tile]`), and the output transform into the group's output `y`.
fn forward_block(
    x: &[f32],
    u: &[f32],
    p: &Plan,
    blk: Block,
    fin: Finish<'_>,
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
    transform_outputs(&s.m, p, blk, fin, y);
}

/// Writes `Aᵀ M A` (then `fin`) of every tile of `blk` from the products `m`
/// (`[ξ][out][tile]`) into the group's output `y`, a tile row at a time.
fn transform_outputs(m: &[f32], p: &Plan, blk: Block, fin: Finish<'_>, y: &mut [f32]) {
    let (tw, len) = (p.tiles_x(), blk.len);
    for_chunks(y, p.hw(), blk.parallel, |plane_index, out| {
        let (n, o) = (plane_index / p.c_out, plane_index % p.c_out);
        let bias = fin.bias.map_or(0.0, |b| b[o]);
        // pr[r * 4 + c]: row r of Aᵀ M at column c; quad[r * 2 + c]: output (r, c)
        // of each tile; rows[r]: output row r, the tiles' columns interleaved.
        let mut pr = vec![0f32; 8 * tw];
        let mut quad = vec![0f32; 4 * tw];
        let mut rows = vec![0f32; 4 * tw];
        for seg in segments(p, blk).filter(|s| s.n == n) {
            let count = seg.len();
            let ms = |xi: usize| &m[(xi * p.c_out + o) * len + seg.j0..][..count];
            for c in 0..4 {
                let (top, bottom) = pr.split_at_mut(4 * tw);
                let (m0, m1, m2, m3) = (ms(c), ms(4 + c), ms(8 + c), ms(12 + c));
                zip3(&mut top[c * tw..][..count], m0, m1, m2, |a, b, c| a + b + c);
                zip3(&mut bottom[c * tw..][..count], m1, m2, m3, |b, c, d| {
                    b - c - d
                });
            }
            for r in 0..2 {
                let row = |c: usize| &pr[(r * 4 + c) * tw..][..count];
                let (q0, q1) = quad[r * 2 * tw..][..2 * tw].split_at_mut(tw);
                zip3(&mut q0[..count], row(0), row(1), row(2), |a, b, c| {
                    a + b + c
                });
                zip3(&mut q1[..count], row(1), row(2), row(3), |b, c, d| {
                    b - c - d
                });
                let (left, right) = quad[r * 2 * tw..][..2 * tw].split_at(tw);
                let dst = &mut rows[r * 2 * tw..][..2 * count];
                for (pair, (&a, &b)) in dst.chunks_exact_mut(2).zip(left.iter().zip(right)) {
                    (pair[0], pair[1]) = (a, b);
                }
            }
            let x0 = 2 * seg.tx0;
            let width = (p.w - x0).min(2 * count);
            for r in 0..2 {
                let oy = 2 * seg.ty + r;
                if oy >= p.h {
                    continue;
                }
                let row = &rows[r * 2 * tw..][..width];
                let dst = &mut out[oy * p.w + x0..][..width];
                if fin.relu {
                    zip2(dst, row, row, |v, _| (v + bias).max(0.0));
                } else {
                    zip2(dst, row, row, |v, _| v + bias);
                }
            }
        }
    });
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
        out.par_chunks_mut(chunk)
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
fn convolve(x: &[f32], u: &[f32], p: &Plan, fin: Finish<'_>) -> Vec<f32> {
    let mut y = vec![0f32; p.n * p.c_out * p.hw()];
    let group_in = p.group_images() * p.c_in * p.hw();
    per_group(&mut y, p.c_out * p.hw(), p, |gi, y_g, s, parallel| {
        let x_g = &x[gi * group_in..];
        let images = y_g.len() / (p.c_out * p.hw());
        for blk in blocks(p, images, parallel) {
            forward_block(x_g, u, p, blk, fin, y_g, s);
        }
    });
    y
}

/// The forward pass: `x` (N, in, H, W) convolved with the (out, in, 3, 3) kernel
/// `k` at padding 1, then `fin`.
pub(super) fn forward(x: &[f32], k: &[f32], p: &Plan, fin: Finish<'_>) -> Vec<f32> {
    convolve(x, &transform_kernel(k, p.c_out, p.c_in), p, fin)
}

/// The input gradient for the output gradient `dy` (N, out, H, W).
pub(super) fn grad_input(dy: &[f32], k: &[f32], p: &Plan) -> Vec<f32> {
    let rotated = rotate_kernel(k, p.c_out, p.c_in);
    let none = Finish {
        bias: None,
        relu: false,
    };
    convolve(
        dy,
        &transform_kernel(&rotated, p.c_in, p.c_out),
        &p.transposed(),
        none,
    )
}

/// Splits output row `oy` of a plane (zero past the edges) into its even and odd
/// columns from tile column `tx0` on.
fn split_grad_row(
    plane: &[f32],
    p: &Plan,
    oy: usize,
    tx0: usize,
    even: &mut [f32],
    odd: &mut [f32],
) {
    even.fill(0.0);
    odd.fill(0.0);
    if oy >= p.h {
        return;
    }
    let row = &plane[oy * p.w + 2 * tx0..(oy + 1) * p.w];
    let len = row.len().min(2 * even.len());
    deinterleave(&row[..len], even, odd);
}

/// Writes `A dY Aᵀ` of every tile of `blk` and every channel of the group's output
/// gradient `dy` into `dm`, laid out `[channel][ξ][tile]`, a tile row at a time.
fn transform_grads(dy: &[f32], p: &Plan, blk: Block, dm: &mut [f32]) {
    let (tw, len) = (p.tiles_x(), blk.len);
    for_chunks(
        &mut dm[..p.c_out * XI * len],
        XI * len,
        blk.parallel,
        |o, dm_o| {
            // Even and odd columns of the tile row's top and bottom output rows; then
            // cols[parity * 4 + i], row i of A applied down each column of that parity.
            let mut rows = vec![0f32; 4 * tw];
            let mut cols = vec![0f32; 8 * tw];
            for seg in segments(p, blk) {
                let plane = &dy[(seg.n * p.c_out + o) * p.hw()..][..p.hw()];
                let n = seg.len();
                let (top, bottom) = rows.split_at_mut(2 * tw);
                let (e0, o0) = top.split_at_mut(tw);
                let (e1, o1) = bottom.split_at_mut(tw);
                split_grad_row(plane, p, 2 * seg.ty, seg.tx0, &mut e0[..n], &mut o0[..n]);
                split_grad_row(
                    plane,
                    p,
                    2 * seg.ty + 1,
                    seg.tx0,
                    &mut e1[..n],
                    &mut o1[..n],
                );
                for (parity, (t, b)) in [(&*e0, &*e1), (&*o0, &*o1)].into_iter().enumerate() {
                    let (t, b) = (&t[..n], &b[..n]);
                    let col = &mut cols[parity * 4 * tw..][..4 * tw];
                    let (c0, rest) = col.split_at_mut(tw);
                    let (c1, rest) = rest.split_at_mut(tw);
                    let (c2, c3) = rest.split_at_mut(tw);
                    zip2(&mut c0[..n], t, b, |t, _| t);
                    zip2(&mut c1[..n], t, b, |t, b| t + b);
                    zip2(&mut c2[..n], t, b, |t, b| t - b);
                    zip2(&mut c3[..n], t, b, |_, b| -b);
                }
                for i in 0..4 {
                    let (ce, co) = (&cols[i * tw..][..n], &cols[(4 + i) * tw..][..n]);
                    let out = |jj: usize| (i * 4 + jj) * len + seg.j0;
                    zip2(&mut dm_o[out(0)..][..n], ce, co, |e, _| e);
                    zip2(&mut dm_o[out(1)..][..n], ce, co, |e, o| e + o);
                    zip2(&mut dm_o[out(2)..][..n], ce, co, |e, o| e - o);
                    zip2(&mut dm_o[out(3)..][..n], ce, co, |_, o| -o);
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
            let none = Finish {
                bias: None,
                relu: false,
            };
            let got = forward(&x, &k, &p, none);
            let want = direct(&x, &k, &p);
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
