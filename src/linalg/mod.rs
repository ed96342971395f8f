//! Dense linear algebra: the only module that talks to faer.
//!
//! Everything else in natgrad sees plain column-major [`Matrix`] buffers and
//! slices, so a faer version bump or another backend (LAPACK, a GPU) stays
//! local to this file.
//!
//! Accuracy matters more than anywhere else here: AMStraMGRAM reads singular
//! values down to ~1e-15·σ₁. The SVD therefore calls faer's low-level
//! `svd` with `qr_ratio_threshold = ∞` (faer's default first runs a
//! rank-revealing QR on tall matrices that silently zeroes small columns,
//! see DESIGN.md §6) and never forms φᵀφ.

mod partial;

pub use partial::{PartialInfo, PartialSvdConfig, SvdMethod};

use std::sync::atomic::{AtomicUsize, Ordering};

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::svd::{self, ComputeSvdVectors, SvdParams};
use faer::{Accum, MatMut, MatRef, Par};

use crate::error::{Error, Result};

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Set the number of threads the dense kernels (products, SVD) may use.
///
/// They use them only where a second thread was measured to pay on this
/// 2-core machine (see [`PAR_MIN_PRODUCT_FLOPS`], [`PAR_MIN_SVD_FLOPS`]) and
/// never inside a task of [`crate::parallel::map_groups`]. Results depend on
/// the thread count in the last bits (a product split in two sums in
/// another order), not on the run: the same count gives the same result.
/// The library's default is 1; the command line's (`--threads`) is 2. `0`
/// is treated as 1.
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// The thread count set by [`set_threads`].
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// Products of fewer flops run on one thread. Measured here (median of 21,
/// 1 vs 2 threads): 0.5–16 MFlop products 0.4–0.9× (slower), 40 MFlop 1.1×,
/// 240 MFlop 1.3×, 0.5–2 GFlop 1.7–1.9×.
pub const PAR_MIN_PRODUCT_FLOPS: f64 = 1e8;

/// SVDs of fewer flops ([`svd_flops`]) run on one thread. Measured here
/// (1 vs 2 threads, median of 5, two noisy runs): the square SVD alone
/// n = 129–257 1.0–1.3×, n = 350–550 1.2–1.4×, n = 697–921 0.9–1.5×; the
/// whole tall decomposition of [`SystemSvd`] 0.7–1.0× for P ≤ 350, 0.7–1.3×
/// for P = 449–921; in two alternating profiles of AMStraMGRAM steps,
/// allen-cahn's decompositions (P = 921) 1.2× faster. The threshold, 1 GFlop,
/// is n ≈ 460.
pub const PAR_MIN_SVD_FLOPS: f64 = 1e9;

/// The parallelism of one dense kernel of `flops` operations: [`threads`]
/// when it has at least `min_flops` and the calling thread is not a task of
/// [`crate::parallel::map_groups`] (the other tasks hold the other cores).
fn par_for(flops: f64, min_flops: f64) -> Par {
    match threads() {
        1 => Par::Seq,
        _ if flops < min_flops || crate::parallel::in_task() => Par::Seq,
        n => Par::rayon(n),
    }
}

/// A dense, owned, column-major `f64` matrix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matrix {
    nrows: usize,
    ncols: usize,
    data: Vec<f64>,
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

    fn as_ref(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.data, self.nrows, self.ncols)
    }

    fn as_mut(&mut self) -> MatMut<'_, f64> {
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

    fn faer(&self) -> MatRef<'a, f64> {
        match self.layout {
            Layout::ColMajor => MatRef::from_column_major_slice(self.data, self.nrows, self.ncols),
            Layout::RowMajor => MatRef::from_row_major_slice(self.data, self.nrows, self.ncols),
        }
    }
}

/// `dst ← a·b` (or `dst ← dst + a·b` when `accumulate`), `dst` column-major `a.nrows × b.ncols`.
pub fn matmul_in_place(dst: &mut [f64], a: View<'_>, b: View<'_>, accumulate: bool) {
    assert_eq!(a.ncols, b.nrows, "matmul: inner dimensions");
    assert_eq!(dst.len(), a.nrows * b.ncols, "matmul: output size");
    let out = MatMut::from_column_major_slice_mut(dst, a.nrows, b.ncols);
    let acc = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    let flops = 2.0 * (a.nrows * a.ncols * b.ncols) as f64;
    let par = par_for(flops, PAR_MIN_PRODUCT_FLOPS);
    faer::linalg::matmul::matmul(out, acc, a.faer(), b.faer(), 1.0, par);
}

/// `y ← A x` (or `y ← Aᵀ x` when `transpose`).
pub fn gemv_in_place(y: &mut [f64], a: &Matrix, x: &[f64], transpose: bool) {
    let v = View::col_major(&a.data, a.nrows, a.ncols);
    let v = if transpose { v.t() } else { v };
    assert_eq!(x.len(), v.ncols, "gemv: vector length");
    matmul_in_place(y, v, View::col_major(x, x.len(), 1), false);
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

/// Scratch memory of the SVD, kept between calls so that a training loop does
/// not allocate (and page-fault) a fresh factorisation workspace every step.
#[derive(Default)]
pub struct SvdScratch {
    mem: Option<(usize, MemBuffer)>,
}

impl SvdScratch {
    fn buffer(&mut self, req: faer::dyn_stack::StackReq) -> &mut MemBuffer {
        let need = req.size_bytes();
        if self.mem.as_ref().is_none_or(|(have, _)| *have < need) {
            self.mem = Some((need, MemBuffer::new(req)));
        }
        &mut self.mem.as_mut().expect("just set").1
    }
}

impl std::fmt::Debug for SvdScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SvdScratch({} bytes)",
            self.mem.as_ref().map_or(0, |m| m.0)
        )
    }
}

/// A thin singular value decomposition `A = U Σ Vᵀ` of an `m × n` matrix.
///
/// `U` is `m × k`, `V` is `n × k`, `k = min(m, n)`; the singular values are
/// non-negative and sorted in decreasing order.
#[derive(Clone, Debug)]
pub struct Svd {
    /// Left singular vectors (columns), `m × k`.
    pub u: Matrix,
    /// Singular values σ₁ ≥ σ₂ ≥ … ≥ 0.
    pub s: Vec<f64>,
    /// Right singular vectors (columns), `n × k`.
    pub v: Matrix,
}

fn svd_params() -> SvdParams {
    let mut p: SvdParams = faer::auto!(f64);
    p.qr_ratio_threshold = f64::INFINITY;
    p.recursion_threshold = 32;
    p
}

impl Svd {
    /// Thin SVD of `a`, accurate to a few ε·σ₁ in every singular value and vector.
    ///
    /// Errors with [`Error::LinearAlgebra`] if the iteration does not converge
    /// and with [`Error::NonFinite`] if `a` holds a NaN or infinity.
    pub fn compute(a: View<'_>) -> Result<Svd> {
        Self::compute_with(a, &mut SvdScratch::default())
    }

    /// [`Svd::compute`] reusing the factorisation's scratch memory across calls.
    pub fn compute_with(a: View<'_>, scratch: &mut SvdScratch) -> Result<Svd> {
        let mut out = Svd {
            u: Matrix::default(),
            s: vec![],
            v: Matrix::default(),
        };
        Self::compute_into(a, &mut out, scratch)?;
        Ok(out)
    }

    /// [`Svd::compute`] into an existing decomposition, reusing its buffers and the scratch.
    pub fn compute_into(a: View<'_>, out: &mut Svd, scratch: &mut SvdScratch) -> Result<()> {
        if a.data.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                quantity: "matrix entry given to the SVD",
                block: "-".into(),
                iteration: None,
            });
        }
        let (m, n) = (a.nrows, a.ncols);
        let k = m.min(n);
        let Svd { u, s, v } = out;
        u.resize(m, k);
        v.resize(n, k);
        s.clear();
        s.resize(k, 0.0);
        if k == 0 {
            return Ok(());
        }
        let params = svd_params();
        let par = par_for(svd_flops(m, n), PAR_MIN_SVD_FLOPS);
        let req = svd::svd_scratch::<f64>(
            m,
            n,
            ComputeSvdVectors::Thin,
            ComputeSvdVectors::Thin,
            par,
            params.into(),
        );
        let mem = scratch.buffer(req);
        let stack = MemStack::new(mem);
        {
            let sd = faer::diag::DiagMut::from_slice_mut(s);
            svd::svd(
                a.faer(),
                sd,
                Some(u.as_mut()),
                Some(v.as_mut()),
                par,
                stack,
                params.into(),
            )
            .map_err(|e| Error::LinearAlgebra(format!("SVD of a {m}×{n} matrix: {e:?}")))?;
        }
        if s.iter().any(|x| !x.is_finite()) {
            return Err(Error::LinearAlgebra(format!(
                "SVD of a {m}×{n} matrix returned non-finite singular values"
            )));
        }
        Ok(())
    }

    /// Number of singular values.
    pub fn len(&self) -> usize {
        self.s.len()
    }

    /// True when the decomposed matrix had a zero dimension.
    pub fn is_empty(&self) -> bool {
        self.s.is_empty()
    }

    /// The swapped decomposition: if `self` decomposes `A`, the result decomposes `Aᵀ`.
    pub fn transposed(self) -> Svd {
        Svd {
            u: self.v,
            s: self.s,
            v: self.u,
        }
    }

    /// The coefficients `c = Uᵀ r` of `r` in the left singular basis.
    pub fn project(&self, r: &[f64]) -> Vec<f64> {
        self.u.tr_mul_vec(r)
    }

    /// Truncated pseudo-inverse applied to `r`, from precomputed `c = Uᵀ r`:
    /// `x = Σ_{k < keep} V_k c_k / σ_k`.
    ///
    /// This is the minimum-norm least-squares solution of `A x ≈ r`
    /// restricted to the `keep` leading singular directions.
    pub fn truncated_solve(&self, c: &[f64], keep: usize) -> Vec<f64> {
        self.filtered_solve(c, keep, |s| 1.0 / s)
    }

    /// Filtered solve `x = Σ_{k < keep} V_k f(σ_k) c_k` (e.g. Tikhonov `σ/(σ²+λ)`).
    pub fn filtered_solve(&self, c: &[f64], keep: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
        filtered_combination(&self.v, &self.s, c, keep, f)
    }

    /// Number of singular values `σ_k ≥ tau`.
    pub fn rank_above(&self, tau: f64) -> usize {
        self.s.iter().take_while(|&&s| s >= tau).count()
    }

    /// The reconstruction-error curve of `r` in the left singular basis.
    ///
    /// Returns `m + 1` values, `m = len()`: entry `n` is
    /// `RCE_n = ‖r − Σ_{k≤n} U_k U_kᵀ r‖ / √S` (S = `r.len()`), so entry 0
    /// is the RMS of `r` itself. It is evaluated as
    /// `RCE_n² = (‖r − U c‖² + Σ_{k>n} c_k²) / S` with the tail sums
    /// accumulated from the end, never as differences of large numbers; the
    /// first term (the part of `r` outside the span of U) is computed
    /// explicitly.
    pub fn rce_curve(&self, r: &[f64], c: &[f64]) -> Vec<f64> {
        let m = self.s.len();
        let mut outside = r.to_vec();
        let uc = self.u.mul_vec(c);
        for (o, x) in outside.iter_mut().zip(&uc) {
            *o -= x;
        }
        rce_from_tail_sums(norm2(&outside).powi(2), &c[..m], r.len())
    }
}

/// Householder QR `A = Q R` of a tall `m × n` matrix (`m ≥ n`), in place,
/// LAPACK `dgeqrf` style: unpivoted and **without any rank threshold** (every
/// column gets its reflector, however small), so it is backward stable down
/// to the smallest singular values. Blocked (compact WY, block 16, the fastest measured for P ≈ 100–1000) so the
/// trailing updates are matrix products.
///
/// On return the upper triangle of `a` holds R and the part below the
/// diagonal the reflector vectors (unit leading entry implied); `tau` holds
/// the reflector factors: `H_j = I − τ_j v_j v_jᵀ`, `Q = H_0 H_1 ⋯ H_{n−1}`.
pub fn householder_qr_in_place(a: &mut Matrix, tau: &mut Vec<f64>) {
    let (m, n) = (a.nrows, a.ncols);
    assert!(m >= n, "householder_qr_in_place needs a tall matrix");
    tau.clear();
    tau.resize(n, 0.0);
    const NB: usize = 16;
    let (mut v, mut t, mut w, mut w2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut k = 0;
    while k < n {
        let nb = NB.min(n - k);
        // Unblocked factorisation of the panel columns k..k+nb.
        for j in k..k + nb {
            let col = &mut a.data[j * m..(j + 1) * m];
            let (alpha, x) = col[j..].split_first_mut().expect("j < m");
            let xnorm = norm2(x);
            let tj = if xnorm == 0.0 {
                0.0
            } else {
                let beta = -alpha.signum() * alpha.hypot(xnorm);
                let tj = (beta - *alpha) / beta;
                let scale = 1.0 / (*alpha - beta);
                x.iter_mut().for_each(|e| *e *= scale);
                *alpha = beta;
                tj
            };
            tau[j] = tj;
            if tj != 0.0 {
                let (left, right) = a.data.split_at_mut((j + 1) * m);
                let vj = &left[j * m + j + 1..(j + 1) * m];
                for jj in j + 1..k + nb {
                    let c = &mut right[(jj - j - 1) * m..(jj - j) * m];
                    let dotv = c[j] + dot(vj, &c[j + 1..]);
                    let f = tj * dotv;
                    c[j] -= f;
                    for (ce, ve) in c[j + 1..].iter_mut().zip(vj) {
                        *ce -= f * ve;
                    }
                }
            }
        }
        let trail = n - (k + nb);
        if trail > 0 {
            let mk = m - k;
            block_reflector(a, &tau[k..k + nb], k, &mut v, &mut t);
            // Trailing update A₂ ← (I − V Tᵀ Vᵀ) A₂ = A₂ − V (Tᵀ (Vᵀ A₂)).
            let off = (k + nb) * m + k;
            let block = (off, m, mk, trail);
            apply_block_reflector(&mut a.data, block, &v, &t, nb, true, &mut w, &mut w2);
        }
        k += nb;
    }
}

/// The compact-WY form of the reflectors `k..k+nb` of a Householder QR
/// ([`householder_qr_in_place`]): `V` (`(m−k) × nb`, explicit unit
/// lower-trapezoidal) and upper-triangular `T` (`nb × nb`) with
/// `H_k ⋯ H_{k+nb−1} = I − V T Vᵀ` (LAPACK `dlarft`, forward, columnwise).
fn block_reflector(a: &Matrix, tau: &[f64], k: usize, v: &mut Vec<f64>, t: &mut Vec<f64>) {
    let m = a.nrows;
    let (mk, nb) = (m - k, tau.len());
    v.clear();
    v.resize(mk * nb, 0.0);
    for jj in 0..nb {
        let src = &a.data[(k + jj) * m + k..(k + jj + 1) * m];
        let dst = &mut v[jj * mk..(jj + 1) * mk];
        dst[jj] = 1.0;
        dst[jj + 1..].copy_from_slice(&src[jj + 1..]);
    }
    t.clear();
    t.resize(nb * nb, 0.0);
    let mut tmp = Vec::with_capacity(nb);
    for i in 0..nb {
        let ti = tau[i];
        t[i * nb + i] = ti;
        if i > 0 {
            // t[0..i, i] = −τ_i T[0..i, 0..i] (V[:, 0..i]ᵀ v_i)
            let vi = &v[i * mk..(i + 1) * mk];
            tmp.clear();
            tmp.extend((0..i).map(|p| -ti * dot(&v[p * mk + i..(p + 1) * mk], &vi[i..])));
            for r in 0..i {
                let mut acc = 0.0;
                for p in r..i {
                    acc += t[p * nb + r] * tmp[p];
                }
                t[i * nb + r] = acc;
            }
        }
    }
}

/// `C ← (I − V T Vᵀ) C = C − V (T (Vᵀ C))` (or with `Tᵀ` when
/// `transpose_t`), for the compact-WY reflector `V` (`rows × nb`), `T`
/// (`nb × nb`) of [`block_reflector`] and the block `C` of `data` given as
/// `(offset, column stride, rows, cols)`; `w`, `w2` are scratch.
#[allow(clippy::too_many_arguments)]
fn apply_block_reflector(
    data: &mut [f64],
    (off, ld, rows, cols): (usize, usize, usize, usize),
    v: &[f64],
    t: &[f64],
    nb: usize,
    transpose_t: bool,
    w: &mut Vec<f64>,
    w2: &mut Vec<f64>,
) {
    let par = par_for(2.0 * (nb * rows * cols) as f64, PAR_MIN_PRODUCT_FLOPS);
    let vv = MatRef::from_column_major_slice(v, rows, nb);
    w.clear();
    w.resize(nb * cols, 0.0);
    {
        let c = MatRef::from_column_major_slice_with_stride(&data[off..], rows, cols, ld);
        let ow = MatMut::from_column_major_slice_mut(w, nb, cols);
        faer::linalg::matmul::matmul(ow, Accum::Replace, vv.transpose(), c, 1.0, par);
    }
    w2.clear();
    w2.resize(nb * cols, 0.0);
    let tv = View::col_major(t, nb, nb);
    let tv = if transpose_t { tv.t() } else { tv };
    matmul_in_place(w2, tv, View::col_major(w, nb, cols), false);
    let c = MatMut::from_column_major_slice_with_stride_mut(&mut data[off..], rows, cols, ld);
    let ww = MatRef::from_column_major_slice(w2, nb, cols);
    faer::linalg::matmul::matmul(c, Accum::Add, vv, ww, -1.0, par);
}

/// The explicit thin factor `Q` (`m × n`, orthonormal columns) of a
/// [`householder_qr_in_place`] factorisation, into `out`: `Q = H_0 ⋯ H_{n−1}
/// [I_n; 0]`, applied block by block from the last (compact WY, matrix
/// products; LAPACK `dorgqr`).
pub fn householder_q_into(qr: &Matrix, tau: &[f64], out: &mut Matrix) {
    let (m, n) = (qr.nrows, qr.ncols);
    out.resize(m, n);
    out.data.fill(0.0);
    for j in 0..n {
        out.data[j * m + j] = 1.0;
    }
    const NB: usize = 16;
    let (mut v, mut t, mut w, mut w2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut k = n.saturating_sub(1) / NB * NB;
    loop {
        let nb = NB.min(n - k);
        let (mk, cols) = (m - k, n - k);
        block_reflector(qr, &tau[k..k + nb], k, &mut v, &mut t);
        // Q[k.., k..] ← (I − V T Vᵀ) Q[k.., k..]
        let block = (k * m + k, m, mk, cols);
        apply_block_reflector(&mut out.data, block, &v, &t, nb, false, &mut w, &mut w2);
        if k == 0 {
            break;
        }
        k -= NB;
    }
}

/// Apply `Qᵀ` of [`householder_qr_in_place`] to a vector.
pub fn apply_qt_in_place(qr: &Matrix, tau: &[f64], r: &mut [f64]) {
    let m = qr.nrows;
    for (j, &tj) in tau.iter().enumerate() {
        if tj == 0.0 {
            continue;
        }
        let vj = &qr.data[j * m + j + 1..(j + 1) * m];
        let f = tj * (r[j] + dot(vj, &r[j + 1..]));
        r[j] -= f;
        for (re, ve) in r[j + 1..].iter_mut().zip(vj) {
            *re -= f * ve;
        }
    }
}

/// The SVD of a least-squares system `φ x ≈ r` in the form the
/// natural-gradient methods need: `φ = U Σ Vᵀ` with the singular values,
/// the right singular vectors V, the coefficients `c = Uᵀ r` and the squared
/// norm of the part of r outside the span of U — but not U itself.
///
/// For tall φ (S > P) it runs a Householder QR `φ = Q R` (no rank threshold,
/// [`householder_qr_in_place`]), the SVD of the small `P × P` factor
/// `R = U_R Σ Vᵀ`, and gets `c = U_Rᵀ (Qᵀ r)_{1..P}`, `‖r − U c‖² =
/// ‖(Qᵀ r)_{P+1..S}‖²` — never forming the `S × P` matrix U. Otherwise it
/// takes the accurate SVD of φ directly.
#[derive(Clone, Debug)]
pub struct SystemSvd {
    /// Singular values σ₁ ≥ … ≥ σ_k ≥ 0, `k = min(S, P)`.
    pub s: Vec<f64>,
    /// Right singular vectors, `P × k`.
    pub v: Matrix,
    /// `c = Uᵀ r`.
    pub c: Vec<f64>,
    /// `‖r − U c‖²`, computed explicitly (not as a difference).
    pub outside2: f64,
    /// Number of rows S.
    pub rows: usize,
    /// Floating-point operations spent, by the routine's model: tall
    /// Householder QR `2SP² − 2P³/3`, `Qᵀr` `4SP`, then the SVD of the
    /// `P × P` factor; wide: the SVD of the `P × S` matrix; SVDs counted by
    /// [`svd_flops`].
    pub flops: f64,
}

/// Buffers of [`SystemSvd::compute_with`], reused across training iterations.
#[derive(Debug, Default)]
pub struct SystemSvdWorkspace {
    a: Matrix,
    tau: Vec<f64>,
    qtr: Vec<f64>,
    r_factor: Matrix,
    small: Option<Svd>,
    svd: SvdScratch,
    /// `U` of the last decomposition when it was wide (`S ≤ P`).
    u_wide: Matrix,
    /// Shape of the last decomposition: `Some(true)` tall, `Some(false)` wide.
    last_tall: Option<bool>,
}

impl SystemSvdWorkspace {
    /// Project another vector `r` (length S) on the left singular vectors of
    /// the **last** decomposition computed with this workspace: returns
    /// `(Uᵀ r, ‖r − U Uᵀ r‖²)`, the inputs of an RCE curve of `r` in that
    /// basis. Tall case: `Qᵀ r` through the stored Householder reflectors, so
    /// the small singular directions are as accurate as in the decomposition
    /// itself (forming `U = φ V Σ⁻¹` would lose them).
    pub fn reproject(&self, r: &[f64]) -> Result<(Vec<f64>, f64)> {
        let tall = self.last_tall.ok_or_else(|| {
            Error::LinearAlgebra("reproject called before any decomposition".into())
        })?;
        let rows = if tall {
            self.a.nrows
        } else {
            self.u_wide.nrows()
        };
        if r.len() != rows {
            return Err(Error::DimensionMismatch {
                context: "vector reprojected on the last SVD basis".into(),
                expected: rows,
                got: r.len(),
            });
        }
        if tall {
            let p = self.a.ncols;
            let mut qtr = r.to_vec();
            apply_qt_in_place(&self.a, &self.tau, &mut qtr);
            let u = &self
                .small
                .as_ref()
                .expect("tall decomposition keeps its U")
                .u;
            Ok(split_rotated(u, &qtr, p))
        } else {
            Ok(split_on_basis(&self.u_wide, r))
        }
    }

    /// Hand a decomposition back once used, so the next call reuses its buffers.
    pub fn recycle(&mut self, done: SystemSvd) {
        if let Some(small) = self.small.as_mut() {
            small.s = done.s;
            small.v = done.v;
        }
    }
}

/// A system `(φ, r)` a decomposition accepts: one residual per row of φ
/// (`jac_t` is `P × S`), every entry finite.
fn check_system(jac_t: &Matrix, r: &[f64]) -> Result<()> {
    if r.len() != jac_t.ncols {
        return Err(Error::DimensionMismatch {
            context: "residual vector vs Jacobian rows".into(),
            expected: jac_t.ncols,
            got: r.len(),
        });
    }
    if jac_t.data.iter().any(|v| !v.is_finite()) || r.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            quantity: "system given to the SVD",
            block: "-".into(),
            iteration: None,
        });
    }
    Ok(())
}

impl SystemSvd {
    /// Decompose `φ` given as its transpose `jac_t` (`P × S`, column i = row i of φ), with right-hand side `r`.
    pub fn compute(jac_t: &Matrix, r: &[f64]) -> Result<Self> {
        Self::compute_with(jac_t, r, &mut SystemSvdWorkspace::default())
    }

    /// [`SystemSvd::compute`] with caller-owned buffers (no `S × P` allocation per call).
    pub fn compute_with(jac_t: &Matrix, r: &[f64], ws: &mut SystemSvdWorkspace) -> Result<Self> {
        let (p, s) = (jac_t.nrows, jac_t.ncols);
        check_system(jac_t, r)?;
        if s > p {
            jac_t.transpose_into(&mut ws.a);
            householder_qr_in_place(&mut ws.a, &mut ws.tau);
            ws.qtr.clear();
            ws.qtr.extend_from_slice(r);
            apply_qt_in_place(&ws.a, &ws.tau, &mut ws.qtr);
            ws.r_factor.resize(p, p);
            for j in 0..p {
                let src = &ws.a.col(j)[..=j];
                let dst = ws.r_factor.col_mut(j);
                dst[..=j].copy_from_slice(src);
                dst[j + 1..].fill(0.0);
            }
            let mut svd = ws.small.take().unwrap_or_else(|| Svd {
                u: Matrix::default(),
                s: vec![],
                v: Matrix::default(),
            });
            Svd::compute_into(
                View::col_major(ws.r_factor.as_slice(), p, p),
                &mut svd,
                &mut ws.svd,
            )?;
            let (c, outside2) = split_rotated(&svd.u, &ws.qtr, p);
            let (sv, v) = (std::mem::take(&mut svd.s), std::mem::take(&mut svd.v));
            ws.small = Some(svd);
            ws.last_tall = Some(true);
            let (sf, pf) = (s as f64, p as f64);
            Ok(SystemSvd {
                s: sv,
                v,
                c,
                outside2,
                rows: s,
                flops: 2.0 * sf * pf * pf - 2.0 * pf.powi(3) / 3.0
                    + 4.0 * sf * pf
                    + svd_flops(p, p),
            })
        } else {
            let svd = Svd::compute_with(View::col_major(jac_t.as_slice(), p, s), &mut ws.svd)?
                .transposed();
            let (c, outside2) = split_on_basis(&svd.u, r);
            ws.u_wide = svd.u;
            ws.last_tall = Some(false);
            Ok(SystemSvd {
                outside2,
                s: svd.s,
                v: svd.v,
                c,
                rows: s,
                flops: svd_flops(p, s),
            })
        }
    }

    /// Number of σ_k ≥ τ.
    pub fn rank_above(&self, tau: f64) -> usize {
        self.s.iter().take_while(|&&x| x >= tau).count()
    }

    /// `x = Σ_{k < keep} V_k f(σ_k) c_k` (hard truncation: `f(σ) = 1/σ`; Tikhonov: `σ/(σ²+λ)`).
    pub fn filtered_solve(&self, keep: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
        filtered_combination(&self.v, &self.s, &self.c, keep, f)
    }

    /// The truncated pseudo-inverse solution `Σ_{k < keep} V_k c_k / σ_k`.
    pub fn truncated_solve(&self, keep: usize) -> Vec<f64> {
        self.filtered_solve(keep, |s| 1.0 / s)
    }

    /// `RCE_n = ‖r − Σ_{k≤n} U_k c_k‖/√S` for `n = 0..k` (k + 1 values), from
    /// tail sums accumulated from the end plus the explicit outside part.
    pub fn rce_curve(&self) -> Vec<f64> {
        rce_from_tail_sums(self.outside2, &self.c, self.rows)
    }
}

/// Flop model of a thin SVD with both vector sets of an `m × n` matrix
/// (`m ≥ n`), LAPACK `dgesdd`-like: Householder bidiagonalisation
/// `4mn² − 4n³/3`, accumulating its thin `U_B` `4mn² − 4n³/3` and `V_B`
/// `4n³/3`, applying the bidiagonal divide-and-conquer's vectors `2mn² + 2n³`
/// (the bidiagonal solve itself, lower order, not counted): `10mn² + 2n³/3`.
pub fn svd_flops(m: usize, n: usize) -> f64 {
    let (m, n) = (m.max(n) as f64, m.min(n) as f64);
    10.0 * m * n * n + 2.0 * n.powi(3) / 3.0
}

/// `x = Σ_{k < keep} V_k f(σ_k) c_k`, skipping zero singular values.
fn filtered_combination(
    v: &Matrix,
    s: &[f64],
    c: &[f64],
    keep: usize,
    f: impl Fn(f64) -> f64,
) -> Vec<f64> {
    let keep = keep.min(s.len());
    let w: Vec<f64> = (0..keep)
        .map(|k| if s[k] > 0.0 { f(s[k]) * c[k] } else { 0.0 })
        .collect();
    let mut x = vec![0.0; v.nrows()];
    if keep > 0 {
        let vk = View::col_major(&v.data[..v.nrows * keep], v.nrows, keep);
        matmul_in_place(&mut x, vk, View::col_major(&w, keep, 1), false);
    }
    x
}

/// `(c, ‖r − U c‖²)` with `c = Uᵀ r`, for orthonormal columns `U` (the remainder formed explicitly).
fn split_on_basis(u: &Matrix, r: &[f64]) -> (Vec<f64>, f64) {
    let c = u.tr_mul_vec(r);
    let mut res = r.to_vec();
    for (o, x) in res.iter_mut().zip(u.mul_vec(&c)) {
        *o -= x;
    }
    (c, norm2(&res).powi(2))
}

/// The same split from `qtr = Qᵀ r` of a tall QR `φ = Q R` with `R = U_R Σ Vᵀ`
/// (`p` columns): `c = U_Rᵀ qtr[..p]`, outside² = `‖qtr[p..]‖²`.
fn split_rotated(u_r: &Matrix, qtr: &[f64], p: usize) -> (Vec<f64>, f64) {
    (u_r.tr_mul_vec(&qtr[..p]), norm2(&qtr[p..]).powi(2))
}

/// `RCE_n = √((outside² + Σ_{k>n} c_k²)/rows)` for `n = 0..=c.len()`, the
/// tail sums accumulated from the end (never differences of large numbers).
pub fn rce_from_tail_sums(outside2: f64, c: &[f64], rows: usize) -> Vec<f64> {
    let m = c.len();
    let mut rce = vec![0.0; m + 1];
    let mut tail = 0.0;
    let sn = rows.max(1) as f64;
    for n in (0..=m).rev() {
        rce[n] = ((outside2 + tail) / sn).sqrt();
        if n > 0 {
            tail += c[n - 1] * c[n - 1];
        }
    }
    rce
}

/// Least-squares solution of `A x ≈ b` by Householder QR, for **well-conditioned,
/// full-column-rank** tall matrices only (faer's QR drops columns it deems
/// negligible). Used as an independent reference in tests.
pub fn lstsq_qr(a: &Matrix, b: &[f64]) -> Result<Vec<f64>> {
    use faer::prelude::SolveLstsq;
    if a.nrows < a.ncols {
        return Err(Error::DimensionMismatch {
            context: "lstsq_qr needs a tall matrix (rows ≥ columns)".into(),
            expected: a.ncols,
            got: a.nrows,
        });
    }
    let qr = a.as_ref().qr();
    let rhs = faer::Mat::from_fn(b.len(), 1, |i, _| b[i]);
    let x = qr.solve_lstsq(rhs);
    Ok((0..a.ncols).map(|i| x[(i, 0)]).collect())
}

/// Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a
/// symmetric matrix (only the lower triangle is read).
pub fn symmetric_eigen(a: &Matrix) -> Result<(Vec<f64>, Matrix)> {
    if a.nrows != a.ncols {
        return Err(Error::DimensionMismatch {
            context: "symmetric_eigen needs a square matrix".into(),
            expected: a.nrows,
            got: a.ncols,
        });
    }
    let evd = a
        .as_ref()
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::LinearAlgebra(format!("symmetric eigendecomposition: {e:?}")))?;
    let n = a.nrows;
    let values = (0..n).map(|i| evd.S()[i]).collect();
    let u = evd.U();
    Ok((values, Matrix::from_fn(n, n, |i, j| u[(i, j)])))
}

/// `A = V Λ V⁻¹` for a real matrix whose eigenvalues are all real.
#[derive(Clone, Debug)]
pub struct RealEigen {
    /// Eigenvalues Λ (in the order of the columns of `vectors`).
    pub values: Vec<f64>,
    /// Eigenvectors V (columns, each of unit 2-norm).
    pub vectors: Matrix,
    /// V⁻¹.
    pub inverse: Matrix,
}

impl RealEigen {
    /// Eigendecomposition of `a`; an error if an eigenvalue has an imaginary
    /// part above `1e-8·max|λ|` (the matrix is then not of the assumed kind).
    pub fn compute(a: &Matrix) -> Result<Self> {
        use faer::linalg::solvers::DenseSolveCore;
        let n = a.nrows;
        if n != a.ncols {
            return Err(Error::DimensionMismatch {
                context: "RealEigen needs a square matrix".into(),
                expected: n,
                got: a.ncols,
            });
        }
        let evd = a
            .as_ref()
            .eigen()
            .map_err(|e| Error::LinearAlgebra(format!("eigendecomposition: {e:?}")))?;
        let (s, u) = (evd.S(), evd.U());
        let scale = (0..n).map(|i| s[i].re.hypot(s[i].im)).fold(0.0, f64::max);
        let mut values = Vec::with_capacity(n);
        let mut vectors = Matrix::zeros(n, n);
        for j in 0..n {
            if s[j].im.abs() > 1e-8 * scale {
                return Err(Error::LinearAlgebra(format!(
                    "eigenvalue {j} = {} + {}i is not real",
                    s[j].re, s[j].im
                )));
            }
            values.push(s[j].re);
            // A real eigenvector up to a complex phase: rotate the largest
            // entry onto the positive real axis, then keep the real part.
            let big = (0..n)
                .max_by(|&a, &b| {
                    let m = |i: usize| u[(i, j)].re.hypot(u[(i, j)].im);
                    m(a).total_cmp(&m(b))
                })
                .unwrap_or(0);
            let (pr, pi) = (u[(big, j)].re, u[(big, j)].im);
            let m = pr.hypot(pi);
            let col = vectors.col_mut(j);
            for (i, v) in col.iter_mut().enumerate() {
                *v = (u[(i, j)].re * pr + u[(i, j)].im * pi) / m;
            }
            let nrm = norm2(col);
            col.iter_mut().for_each(|v| *v /= nrm);
        }
        let inv = vectors.as_ref().partial_piv_lu().inverse();
        let inverse = Matrix::from_fn(n, n, |i, j| inv[(i, j)]);
        Ok(RealEigen {
            values,
            vectors,
            inverse,
        })
    }
}

/// The Gram matrix `G = A Aᵀ` of `a` (`n × m` → `n × n`), by one matrix product.
///
/// Used by E-NGD with `a = φ̃ᵀ` (so `G = φ̃ᵀ φ̃`); squaring the matrix squares
/// its condition number, which is exactly why ANaGRAM avoids it.
pub fn gram(a: &Matrix) -> Matrix {
    let mut g = Matrix::zeros(a.nrows, a.nrows);
    let v = View::col_major(&a.data, a.nrows, a.ncols);
    matmul_in_place(&mut g.data, v, v.t(), false);
    g
}

/// The lower Cholesky factor `L` of a symmetric positive-definite matrix
/// (`A = L Lᵀ`); [`Error::LinearAlgebra`] if `a` is not numerically
/// positive definite.
pub fn cholesky(a: &Matrix) -> Result<Matrix> {
    if a.nrows != a.ncols {
        return Err(Error::DimensionMismatch {
            context: "cholesky needs a square matrix".into(),
            expected: a.nrows,
            got: a.ncols,
        });
    }
    if a.data.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            quantity: "matrix given to the Cholesky factorisation",
            block: "-".into(),
            iteration: None,
        });
    }
    let llt = a
        .as_ref()
        .llt(faer::Side::Lower)
        .map_err(|e| Error::LinearAlgebra(format!("Cholesky factorisation: {e:?}")))?;
    let l = llt.L();
    Ok(Matrix::from_fn(a.nrows, a.nrows, |i, j| {
        if i >= j { l[(i, j)] } else { 0.0 }
    }))
}

/// Solve `L x = b` in place for a lower-triangular `l` (forward substitution).
pub fn solve_lower_in_place(l: &Matrix, b: &mut [f64]) {
    let n = l.nrows;
    assert_eq!(b.len(), n, "solve_lower: vector length");
    for j in 0..n {
        b[j] /= l.at(j, j);
        let bj = b[j];
        let col = l.col(j);
        for i in j + 1..n {
            b[i] -= col[i] * bj;
        }
    }
}

/// Solve `Lᵀ x = b` in place for a lower-triangular `l` (back substitution).
pub fn solve_lower_transposed_in_place(l: &Matrix, b: &mut [f64]) {
    let n = l.nrows;
    assert_eq!(b.len(), n, "solve_lower_transposed: vector length");
    for j in (0..n).rev() {
        let col = l.col(j);
        let s: f64 = (j + 1..n).map(|i| col[i] * b[i]).sum();
        b[j] = (b[j] - s) / col[j];
    }
}

/// `dst ← a · b` for column-major [`Matrix`] operands (`dst` is resized).
pub fn matmul(dst: &mut Matrix, a: &Matrix, b: &Matrix) {
    dst.resize(a.nrows, b.ncols);
    matmul_in_place(
        &mut dst.data,
        View::col_major(&a.data, a.nrows, a.ncols),
        View::col_major(&b.data, b.nrows, b.ncols),
        false,
    );
}

/// `dst ← aᵀ · b` for column-major [`Matrix`] operands (`dst` is resized).
pub fn matmul_tn(dst: &mut Matrix, a: &Matrix, b: &Matrix) {
    dst.resize(a.ncols, b.ncols);
    matmul_in_place(
        &mut dst.data,
        View::col_major(&a.data, a.nrows, a.ncols).t(),
        View::col_major(&b.data, b.nrows, b.ncols),
        false,
    );
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_orthonormal(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Matrix {
        // Modified Gram–Schmidt, twice, on Gaussian columns.
        let mut q = Matrix::from_fn(n, k, |_, _| {
            rng.sample::<f64, _>(rand_distr::StandardNormal)
        });
        for _pass in 0..2 {
            for j in 0..k {
                for i in 0..j {
                    let d = dot(q.col(i), q.col(j));
                    let qi = q.col(i).to_vec();
                    for (x, y) in q.col_mut(j).iter_mut().zip(&qi) {
                        *x -= d * y;
                    }
                }
                let nrm = norm2(q.col(j));
                q.col_mut(j).iter_mut().for_each(|x| *x /= nrm);
            }
        }
        q
    }

    /// DESIGN.md §6 regression: a tall matrix with singular values
    /// logspace(0, −15) must reconstruct to ≤ 1e-14 relative, with every small
    /// singular value recovered (faer's default path zeroes them).
    #[test]
    fn tall_graded_svd_is_accurate() {
        let (m, n) = (1000, 200);
        let (a, sig) = graded(m, n, 7);
        let svd = Svd::compute(View::col_major(a.as_slice(), m, n)).unwrap();
        // Reconstruction.
        let mut usv = svd.u.clone();
        for j in 0..n {
            let s = svd.s[j];
            usv.col_mut(j).iter_mut().for_each(|x| *x *= s);
        }
        let mut rec = Matrix::zeros(m, n);
        matmul_in_place(
            rec.as_mut_slice(),
            View::col_major(usv.as_slice(), m, n),
            View::col_major(svd.v.as_slice(), n, n).t(),
            false,
        );
        let diff: Vec<f64> = rec
            .as_slice()
            .iter()
            .zip(a.as_slice())
            .map(|(x, y)| x - y)
            .collect();
        let rel = norm2(&diff) / norm2(a.as_slice());
        assert!(rel <= 1e-14, "reconstruction error {rel:e}");
        // Singular values agree to a few ε·σ₁, none spuriously zero.
        for k in 0..n {
            assert!(svd.s[k] > 0.0, "singular value {k} is zero");
            assert!(
                (svd.s[k] - sig[k]).abs() <= 50.0 * f64::EPSILON,
                "σ_{k}: {} vs {}",
                svd.s[k],
                sig[k]
            );
        }
        // Orthonormality of U.
        let mut utu = Matrix::zeros(n, n);
        matmul_in_place(
            utu.as_mut_slice(),
            View::col_major(svd.u.as_slice(), m, n).t(),
            View::col_major(svd.u.as_slice(), m, n),
            false,
        );
        for i in 0..n {
            for j in 0..n {
                let e = utu.at(i, j) - if i == j { 1.0 } else { 0.0 };
                assert!(e.abs() < 1e-13, "UᵀU({i},{j}) off by {e:e}");
            }
        }
    }

    #[test]
    fn truncated_solve_matches_qr_on_full_rank() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let a = Matrix::from_fn(40, 8, |_, _| rng.random_range(-1.0..1.0));
        let b: Vec<f64> = (0..40).map(|_| rng.random_range(-1.0..1.0)).collect();
        let svd = Svd::compute(View::col_major(a.as_slice(), 40, 8)).unwrap();
        let c = svd.project(&b);
        let x = svd.truncated_solve(&c, 8);
        let x_ref = lstsq_qr(&a, &b).unwrap();
        for (p, q) in x.iter().zip(&x_ref) {
            assert!((p - q).abs() < 1e-12, "{p} vs {q}");
        }
    }

    #[test]
    fn rce_curve_matches_direct_residuals() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (m, n) = (30, 6);
        let a = Matrix::from_fn(m, n, |_, _| rng.random_range(-1.0..1.0));
        let r: Vec<f64> = (0..m).map(|_| rng.random_range(-1.0..1.0)).collect();
        let svd = Svd::compute(View::col_major(a.as_slice(), m, n)).unwrap();
        let c = svd.project(&r);
        let rce = svd.rce_curve(&r, &c);
        assert_eq!(rce.len(), n + 1);
        for k in 0..=n {
            let mut res = r.clone();
            for j in 0..k {
                for i in 0..m {
                    res[i] -= svd.u.at(i, j) * c[j];
                }
            }
            let direct = norm2(&res) / (m as f64).sqrt();
            assert!(
                (rce[k] - direct).abs() < 1e-14,
                "RCE_{k}: {} vs {direct}",
                rce[k]
            );
        }
        assert!((rce[0] - norm2(&r) / (m as f64).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn svd_rejects_nan() {
        let a = Matrix::from_fn(3, 2, |i, j| if i == 1 && j == 0 { f64::NAN } else { 1.0 });
        assert!(matches!(
            Svd::compute(View::col_major(a.as_slice(), 3, 2)),
            Err(Error::NonFinite { .. })
        ));
    }

    /// `U diag(σ) Vᵀ` (`m × n`) with random orthonormal factors.
    pub(super) fn with_spectrum(m: usize, n: usize, sig: &[f64], seed: u64) -> Matrix {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let k = m.min(n);
        let u0 = random_orthonormal(&mut rng, m, k);
        let v0 = random_orthonormal(&mut rng, n, k);
        let mut us = u0.clone();
        for (j, &sj) in sig.iter().enumerate() {
            us.col_mut(j).iter_mut().for_each(|x| *x *= sj);
        }
        let mut a = Matrix::zeros(m, n);
        matmul_in_place(
            a.as_mut_slice(),
            View::col_major(us.as_slice(), m, k),
            View::col_major(v0.as_slice(), n, k).t(),
            false,
        );
        a
    }

    fn graded(m: usize, n: usize, seed: u64) -> (Matrix, Vec<f64>) {
        let k = m.min(n);
        let sig: Vec<f64> = (0..k)
            .map(|i| 10f64.powf(-15.0 * i as f64 / (k - 1) as f64))
            .collect();
        (with_spectrum(m, n, &sig, seed), sig)
    }

    /// The QR-based system SVD on tall graded matrices: singular values to a
    /// few ε·σ₁ (none lost), `c`, the outside norm, the RCE curve and the
    /// truncated solves all agree with the direct accurate SVD.
    #[test]
    fn system_svd_matches_direct_svd() {
        for (m, n) in [(1000, 200), (900, 129), (120, 200)] {
            let (phi, sig) = graded(m, n, 17);
            let mut rng = ChaCha8Rng::seed_from_u64(18);
            let r: Vec<f64> = (0..m).map(|_| rng.random_range(-1.0..1.0)).collect();
            let jac_t = phi.transpose();
            let sys = SystemSvd::compute(&jac_t, &r).unwrap();
            let direct = Svd::compute(View::col_major(phi.as_slice(), m, n)).unwrap();
            for k in 0..sig.len() {
                assert!(sys.s[k] > 0.0, "{m}×{n}: σ_{k} lost");
                assert!(
                    (sys.s[k] - sig[k]).abs() <= 50.0 * f64::EPSILON,
                    "{m}×{n} σ_{k}: {} vs {}",
                    sys.s[k],
                    sig[k]
                );
            }
            let c_direct = direct.project(&r);
            let rce_direct = direct.rce_curve(&r, &c_direct);
            let rce = sys.rce_curve();
            // Both SVDs are backward stable (errors ~ε‖φ‖), so singular
            // subspaces — hence c_k and RCE_k — agree to ~ε‖r‖/gap_k, where
            // gap_k separates σ_k from its neighbours.
            let rn = norm2(&r);
            let k_all = sig.len();
            for k in 0..k_all {
                let gap = (sig[k] - sig.get(k + 1).copied().unwrap_or(0.0)).min(if k > 0 {
                    sig[k - 1] - sig[k]
                } else {
                    f64::INFINITY
                });
                let tol = 1e-14 * rn / gap;
                // Singular vectors are defined up to sign.
                assert!(
                    (sys.c[k].abs() - c_direct[k].abs()).abs() <= tol,
                    "{m}×{n} c_{k}: {} vs {}",
                    sys.c[k],
                    c_direct[k]
                );
                let gap_n = sig[k] - sig.get(k + 1).copied().unwrap_or(0.0);
                let n = k + 1;
                assert!(
                    (rce[n] - rce_direct[n]).abs() <= 1e-14 * rn / gap_n,
                    "{m}×{n} RCE_{n}: {} vs {}",
                    rce[n],
                    rce_direct[n]
                );
            }
            assert!((rce[0] - rce_direct[0]).abs() <= 1e-14 * rn);
            for keep in [10, sig.len() / 2] {
                let x = sys.truncated_solve(keep);
                let y = direct.truncated_solve(&c_direct, keep);
                let d: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
                // Truncated solves move by ~ε/σ_keep relative under backward-stable perturbations.
                let tol = 1e-14 / sig[keep - 1];
                assert!(
                    norm2(&d) <= tol * norm2(&y),
                    "{m}×{n} keep {keep}: {:e}",
                    norm2(&d) / norm2(&y)
                );
            }
        }
    }

    /// Reprojecting a vector on the last decomposition's basis gives exactly
    /// what a decomposition with that vector as right-hand side gives (same
    /// φ, so the same reflectors and U): tall and wide cases, bit for bit up
    /// to the order of operations.
    #[test]
    fn reproject_matches_a_fresh_decomposition() {
        for (m, n) in [(900, 129), (120, 200)] {
            let (phi, _) = graded(m, n, 23);
            let jac_t = phi.transpose();
            let mut rng = ChaCha8Rng::seed_from_u64(24);
            let r1: Vec<f64> = (0..m).map(|_| rng.random_range(-1.0..1.0)).collect();
            let r2: Vec<f64> = (0..m).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut ws = SystemSvdWorkspace::default();
            assert!(ws.reproject(&r2).is_err(), "no basis yet");
            let first = SystemSvd::compute_with(&jac_t, &r1, &mut ws).unwrap();
            let (c, outside2) = ws.reproject(&r2).unwrap();
            let fresh = SystemSvd::compute(&jac_t, &r2).unwrap();
            let rn2 = norm2(&r2).powi(2);
            for k in 0..c.len() {
                assert!(
                    (c[k] - fresh.c[k]).abs() <= 1e-13 * rn2.sqrt(),
                    "{m}×{n} c_{k}: {} vs {}",
                    c[k],
                    fresh.c[k]
                );
            }
            assert!((outside2 - fresh.outside2).abs() <= 1e-13 * rn2);
            // Reconstruction: ‖c‖² + outside² = ‖r‖² (U orthonormal).
            let total = norm2(&c).powi(2) + outside2;
            assert!((total - rn2).abs() <= 1e-12 * rn2, "{total} vs {rn2}");
            assert!(matches!(
                ws.reproject(&r2[..m - 1]),
                Err(Error::DimensionMismatch { .. })
            ));
            drop(first);
        }
    }

    /// Householder QR without a rank threshold: Qᵀ applied to A's columns gives R
    /// (upper triangular, zero below) to rounding, even for columns that are
    /// nearly dependent.
    #[test]
    fn householder_qr_reproduces_r() {
        let (a, _) = graded(300, 70, 19);
        let mut qr = a.clone();
        let mut tau = Vec::new();
        householder_qr_in_place(&mut qr, &mut tau);
        for j in 0..70 {
            let mut col = a.col(j).to_vec();
            apply_qt_in_place(&qr, &tau, &mut col);
            for i in 0..300 {
                let expect = if i <= j { qr.at(i, j) } else { 0.0 };
                assert!(
                    (col[i] - expect).abs() < 1e-14,
                    "({i},{j}): {} vs {expect}",
                    col[i]
                );
            }
        }
    }
}
