//! The engine's only unsafe kernel code: a bounds-checked, safe wrapper over the `gemm`
//! crate's matrix multiply (the kernel candle itself uses), for the convolution
//! kernels. Every call checks that each strided view stays inside its slice and that
//! the shapes agree before handing raw pointers to `gemm`.
#![allow(unsafe_code)]

use gemm::Parallelism;

/// A read-only strided matrix view into a slice.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A mutable strided matrix view into a slice.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// Whether a `rows` x `cols` view with these strides fits in `len` elements.
fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

impl<'a> MatRef<'a> {
    /// A row-major `rows` x `cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// A `rows` x `cols` matrix whose rows start `row_stride` elements apart.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

impl<'a> MatMut<'a> {
    /// A row-major `rows` x `cols` matrix.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// A `rows` x `cols` matrix whose rows start `row_stride` elements apart.
    pub fn strided(data: &'a mut [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// A column-major `rows` x `cols` matrix (the row-major `cols` x `rows` one,
    /// transposed).
    pub fn col_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            row_stride: 1,
            col_stride: rows,
        }
    }
}

impl<'a> MatRef<'a> {
    /// Rows `first..first + rows` (no copy).
    fn rows(self, first: usize, rows: usize) -> Self {
        MatRef {
            data: &self.data[(first * self.row_stride).min(self.data.len())..],
            rows,
            ..self
        }
    }
}

/// Fewest rows of `c` per thread worth splitting a multiply by rows.
const MIN_SPLIT_ROWS: usize = 32;

/// `c = a · b` (or `c += a · b` with `accumulate`), on `threads` threads.
///
/// Several threads on a row-major `c` of enough rows each take a block of its
/// rows with a one-threaded multiply: one fork and join per call, where the
/// multiply's own parallel loop synchronises its threads at every block of
/// its panels, which costs more than it shares out on the narrow products of
/// batch-1 inference.
///
/// # Panics
/// When the shapes disagree or a view does not fit its slice: a bug in the caller.
pub fn matmul(c: MatMut<'_>, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
    let split = threads > 1
        && a.rows == c.rows
        && c.col_stride == 1
        && c.row_stride >= c.cols
        && c.rows >= threads * MIN_SPLIT_ROWS;
    if !split {
        return matmul_on(c, a, b, accumulate, threads);
    }
    let per = c.rows.div_ceil(threads);
    let stride = c.row_stride;
    let (rows, cols) = (c.rows, c.cols);
    let mut rest = c.data;
    rayon::scope(|scope| {
        for first in (0..rows).step_by(per) {
            let n = per.min(rows - first);
            let take = if first + n == rows {
                rest.len()
            } else {
                n * stride
            };
            let (block, tail) = std::mem::take(&mut rest).split_at_mut(take);
            rest = tail;
            let c = MatMut {
                data: block,
                rows: n,
                cols,
                row_stride: stride,
                col_stride: 1,
            };
            let a = a.rows(first, n);
            scope.spawn(move |_| matmul_on(c, a, b, accumulate, 1));
        }
    });
}

/// [`matmul`] with the multiply's own parallelism.
fn matmul_on(c: MatMut<'_>, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
    assert!(
        a.rows == c.rows && b.cols == c.cols && a.cols == b.rows,
        "matmul shapes: ({}x{}) · ({}x{}) -> ({}x{})",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    assert!(
        fits(a.data.len(), a.rows, a.cols, a.row_stride, a.col_stride),
        "lhs view out of bounds"
    );
    assert!(
        fits(b.data.len(), b.rows, b.cols, b.row_stride, b.col_stride),
        "rhs view out of bounds"
    );
    assert!(
        fits(c.data.len(), c.rows, c.cols, c.row_stride, c.col_stride),
        "dst view out of bounds"
    );
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            c.data.fill(0.0);
        }
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above guarantee that every element gemm reads or writes,
    // at offset (r * row_stride + k * col_stride) for r < rows and k < cols, lies
    // inside the corresponding slice; `c` is borrowed mutably and `a`, `b` shared,
    // so the output cannot alias the inputs; strides fit in isize because they
    // index into allocated slices.
    unsafe {
        gemm::gemm(
            c.rows,
            c.cols,
            a.cols,
            c.data.as_mut_ptr(),
            c.col_stride as isize,
            c.row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_with_transposes_and_accumulation() {
        let (m, k, n) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.5).collect();
        let want = naive(&a, &b, m, k, n);
        for threads in [1, 2] {
            let mut c = vec![0f32; m * n];
            matmul(
                MatMut::row_major(&mut c, m, n),
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                false,
                threads,
            );
            assert_eq!(c, want);
            matmul(
                MatMut::row_major(&mut c, m, n),
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                true,
                threads,
            );
            assert!(c.iter().zip(&want).all(|(x, y)| (x - 2.0 * y).abs() < 1e-4));
        }
        // (Aᵀ)ᵀ · B through a transposed view of a k x m buffer.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let mut c = vec![0f32; m * n];
        matmul(
            MatMut::row_major(&mut c, m, n),
            MatRef::row_major(&at, k, m).t(),
            MatRef::row_major(&b, k, n),
            false,
            1,
        );
        assert_eq!(c, want);
        // A column-major destination holds the transposed product.
        let mut ct = vec![0f32; m * n];
        matmul(
            MatMut::col_major(&mut ct, m, n),
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            false,
            2,
        );
        assert!((0..m * n).all(|i| ct[(i % n) * m + i / n] == want[i]));
    }

    /// Split by rows on several threads (uneven blocks, rows wider than the
    /// product, a transposed left side), the product is the same.
    #[test]
    fn a_row_split_multiply_matches_the_naive_product() {
        let (m, k, n) = (3 * MIN_SPLIT_ROWS + 5, 11, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.25).collect();
        let want = naive(&a, &b, m, k, n);
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for threads in [2, 3] {
            let stride = n + 2;
            let mut c = vec![-1f32; m * stride];
            pool.install(|| {
                matmul(
                    MatMut::strided(&mut c, m, n, stride),
                    MatRef::row_major(&at, k, m).t(),
                    MatRef::row_major(&b, k, n),
                    false,
                    threads,
                )
            });
            for r in 0..m {
                assert_eq!(&c[r * stride..][..n], &want[r * n..][..n], "row {r}");
                if r + 1 < m {
                    assert_eq!(&c[r * stride + n..][..2], &[-1.0, -1.0], "gap of row {r}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "matmul shapes")]
    fn rejects_mismatched_shapes() {
        let a = [0f32; 6];
        let mut c = [0f32; 4];
        matmul(
            MatMut::row_major(&mut c, 2, 2),
            MatRef::row_major(&a, 2, 3),
            MatRef::row_major(&a, 2, 3),
            false,
            1,
        );
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn rejects_views_past_the_slice() {
        let a = [0f32; 5];
        let mut c = [0f32; 4];
        matmul(
            MatMut::row_major(&mut c, 2, 2),
            MatRef::row_major(&a, 2, 3),
            MatRef::row_major(&a, 3, 2),
            false,
            1,
        );
    }
}
