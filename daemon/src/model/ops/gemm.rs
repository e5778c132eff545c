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

/// `c = a · b` (or `c += a · b` with `accumulate`), on `threads` threads.
///
/// # Panics
/// When the shapes disagree or a view does not fit its slice: a bug in the caller.
pub fn matmul(c: MatMut<'_>, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
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
