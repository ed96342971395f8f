//! The dense matrix type, borrowed views, and the products and norms on them.

use faer::{Accum, MatMut, MatRef};

use super::{PAR_MIN_PRODUCT_FLOPS, Par};
use crate::error::{Error, Result};

/// A dense, owned, column-major `f64` matrix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matrix {
    pub(super) nrows: usize,
    pub(super) ncols: usize,
    pub(super) data: Vec<f64>,
}

impl Matrix {
    /// An `nrows × ncols` matrix of zeros.
    pub fn zeros(nrows: usize, ncols: usize) -> Self {
        Matrix {
            nrows,
            ncols,
            data: vec![0.0; nrows * ncols],
        }
    }

    /// Wrap a column-major buffer; errors if its length is not `nrows·ncols`.
    pub fn from_col_major(nrows: usize, ncols: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != nrows * ncols {
            return Err(Error::DimensionMismatch {
                context: format!("Matrix::from_col_major({nrows}×{ncols})"),
                expected: nrows * ncols,
                got: data.len(),
            });
        }
        Ok(Matrix { nrows, ncols, data })
    }

    /// Build from a function of (row, column).
    pub fn from_fn(nrows: usize, ncols: usize, mut f: impl FnMut(usize, usize) -> f64) -> Self {
        let mut m = Matrix::zeros(nrows, ncols);
        for j in 0..ncols {
            for i in 0..nrows {
                m.data[j * nrows + i] = f(i, j);
            }
        }
        m
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Entry (i, j).
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[j * self.nrows + i]
    }

    /// Mutable entry (i, j).
    pub fn at_mut(&mut self, i: usize, j: usize) -> &mut f64 {
        &mut self.data[j * self.nrows + i]
    }

    /// Column `j` as a contiguous slice.
    pub fn col(&self, j: usize) -> &[f64] {
        &self.data[j * self.nrows..(j + 1) * self.nrows]
    }

    /// Column `j` as a mutable contiguous slice.
    pub fn col_mut(&mut self, j: usize) -> &mut [f64] {
        &mut self.data[j * self.nrows..(j + 1) * self.nrows]
    }

    /// The column-major buffer.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The column-major buffer, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        &mut self.data
    }

    /// Resize to `nrows × ncols`, reusing the allocation; contents are unspecified.
    pub fn resize(&mut self, nrows: usize, ncols: usize) {
        self.nrows = nrows;
        self.ncols = ncols;
        self.data.resize(nrows * ncols, 0.0);
    }

    /// Keep the first `n` columns (no-op if there are not more).
    pub fn truncate_cols(&mut self, n: usize) {
        if n < self.ncols {
            self.ncols = n;
            self.data.truncate(self.nrows * n);
        }
    }

    /// The transpose, as a new matrix.
    pub fn transpose(&self) -> Matrix {
        let mut t = Matrix::zeros(0, 0);
        self.transpose_into(&mut t);
        t
    }

    /// Write the transpose into `out`, reusing its allocation (blocked for cache reuse).
    pub fn transpose_into(&self, out: &mut Matrix) {
        out.resize(self.ncols, self.nrows);
        const B: usize = 16;
        let (m, n) = (self.nrows, self.ncols);
        for ib in (0..m).step_by(B) {
            let ie = (ib + B).min(m);
            for (j, src) in self.data.chunks_exact(m).enumerate() {
                for (i, v) in src[ib..ie].iter().enumerate() {
                    out.data[(ib + i) * n + j] = *v;
                }
            }
        }
    }

    /// `self · x` for a vector `x` of length `ncols`.
    pub fn mul_vec(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; self.nrows];
        gemv_in_place(&mut y, self, x, false);
        y
    }

    /// `selfᵀ · y` for a vector `y` of length `nrows`.
    pub fn tr_mul_vec(&self, y: &[f64]) -> Vec<f64> {
        let mut x = vec![0.0; self.ncols];
        gemv_in_place(&mut x, self, y, true);
        x
    }

    pub(super) fn as_ref(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.data, self.nrows, self.ncols)
    }

    pub(super) fn as_mut(&mut self) -> MatMut<'_, f64> {
        MatMut::from_column_major_slice_mut(&mut self.data, self.nrows, self.ncols)
    }
}

/// How a borrowed matrix buffer is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Entry (i, j) at `j·nrows + i`.
    ColMajor,
    /// Entry (i, j) at `i·ncols + j`.
    RowMajor,
}

/// A borrowed matrix: a slice with its shape and layout.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The entries.
    pub data: &'a [f64],
    /// Number of rows.
    pub nrows: usize,
    /// Number of columns.
    pub ncols: usize,
    /// Storage order of `data`.
    pub layout: Layout,
}

impl<'a> View<'a> {
    /// A column-major view.
    pub fn col_major(data: &'a [f64], nrows: usize, ncols: usize) -> Self {
        View {
            data,
            nrows,
            ncols,
            layout: Layout::ColMajor,
        }
    }

    /// A row-major view.
    pub fn row_major(data: &'a [f64], nrows: usize, ncols: usize) -> Self {
        View {
            data,
            nrows,
            ncols,
            layout: Layout::RowMajor,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> View<'a> {
        View {
            data: self.data,
            nrows: self.ncols,
            ncols: self.nrows,
            layout: match self.layout {
                Layout::ColMajor => Layout::RowMajor,
                Layout::RowMajor => Layout::ColMajor,
            },
        }
    }

    pub(super) fn faer(&self) -> MatRef<'a, f64> {
        match self.layout {
            Layout::ColMajor => MatRef::from_column_major_slice(self.data, self.nrows, self.ncols),
            Layout::RowMajor => MatRef::from_row_major_slice(self.data, self.nrows, self.ncols),
        }
    }
}

/// `dst ← a·b` (or `dst ← dst + a·b` when `accumulate`), `dst` column-major
/// `a.nrows × b.ncols`, on up to `par` threads (above
/// [`PAR_MIN_PRODUCT_FLOPS`]).
pub fn matmul_in_place(dst: &mut [f64], a: View<'_>, b: View<'_>, accumulate: bool, par: Par) {
    assert_eq!(a.ncols, b.nrows, "matmul: inner dimensions");
    assert_eq!(dst.len(), a.nrows * b.ncols, "matmul: output size");
    let out = MatMut::from_column_major_slice_mut(dst, a.nrows, b.ncols);
    let acc = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    let flops = 2.0 * (a.nrows * a.ncols * b.ncols) as f64;
    let par = par.kernel(flops, PAR_MIN_PRODUCT_FLOPS);
    faer::linalg::matmul::matmul(out, acc, a.faer(), b.faer(), 1.0, par);
}

/// `y ← A x` (or `y ← Aᵀ x` when `transpose`), on one thread (a
/// matrix–vector product is bound by memory, not arithmetic).
pub fn gemv_in_place(y: &mut [f64], a: &Matrix, x: &[f64], transpose: bool) {
    let v = View::col_major(&a.data, a.nrows, a.ncols);
    let v = if transpose { v.t() } else { v };
    assert_eq!(x.len(), v.ncols, "gemv: vector length");
    matmul_in_place(y, v, View::col_major(x, x.len(), 1), false, Par::Seq);
}

/// Euclidean norm. Sums squares directly (four interleaved partial sums, so
/// it vectorises) and falls back to a scaled sum only when that would
/// overflow or underflow.
pub fn norm2(x: &[f64]) -> f64 {
    let ss = sum_sq(x);
    if ss.is_finite() && ss > 1e-280 {
        return ss.sqrt();
    }
    let scale = x.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return if x.iter().any(|v| v.is_nan()) {
            f64::NAN
        } else {
            scale
        };
    }
    let inv = 1.0 / scale;
    scale * x.iter().map(|v| (v * inv) * (v * inv)).sum::<f64>().sqrt()
}

fn sum_sq(x: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let chunks = x.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            acc[k] += c[k] * c[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for v in tail {
        s += v * v;
    }
    s
}

/// Dot product (four interleaved partial sums, so it vectorises; the order
/// of summation is fixed, so results are reproducible).
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ta.iter().zip(tb) {
        s += x * y;
    }
    s
}
/// The Gram matrix `G = A Aᵀ` of `a` (`n × m` → `n × n`), by one matrix product.
///
/// Used by E-NGD with `a = φ̃ᵀ` (so `G = φ̃ᵀ φ̃`); squaring the matrix squares
/// its condition number, which is exactly why ANaGRAM avoids it.
pub fn gram(a: &Matrix, par: Par) -> Matrix {
    let mut g = Matrix::zeros(a.nrows, a.nrows);
    let v = View::col_major(&a.data, a.nrows, a.ncols);
    matmul_in_place(&mut g.data, v, v.t(), false, par);
    g
}
/// `dst ← a · b` for column-major [`Matrix`] operands (`dst` is resized).
pub fn matmul(dst: &mut Matrix, a: &Matrix, b: &Matrix, par: Par) {
    dst.resize(a.nrows, b.ncols);
    matmul_in_place(
        &mut dst.data,
        View::col_major(&a.data, a.nrows, a.ncols),
        View::col_major(&b.data, b.nrows, b.ncols),
        false,
        par,
    );
}

/// `dst ← aᵀ · b` for column-major [`Matrix`] operands (`dst` is resized).
pub fn matmul_tn(dst: &mut Matrix, a: &Matrix, b: &Matrix, par: Par) {
    dst.resize(a.ncols, b.ncols);
    matmul_in_place(
        &mut dst.data,
        View::col_major(&a.data, a.nrows, a.ncols).t(),
        View::col_major(&b.data, b.nrows, b.ncols),
        false,
        par,
    );
}
