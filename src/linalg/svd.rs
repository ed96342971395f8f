//! The accurate thin SVD (faer's, without its rank-revealing shortcut) and
//! what the natural-gradient methods read off it: truncated and filtered
//! solves and the reconstruction-error curve.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::svd::{self, ComputeSvdVectors, SvdParams};

use super::{Matrix, PAR_MIN_SVD_FLOPS, Par, View, matmul_in_place, norm2};
use crate::error::{Error, Result};

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
    pub fn compute(a: View<'_>, par: Par) -> Result<Svd> {
        Self::compute_with(a, &mut SvdScratch::default(), par)
    }

    /// [`Svd::compute`] reusing the factorisation's scratch memory across calls.
    pub fn compute_with(a: View<'_>, scratch: &mut SvdScratch, par: Par) -> Result<Svd> {
        let mut out = Svd {
            u: Matrix::default(),
            s: vec![],
            v: Matrix::default(),
        };
        Self::compute_into(a, &mut out, scratch, par)?;
        Ok(out)
    }

    /// [`Svd::compute`] into an existing decomposition, reusing its buffers and the scratch.
    pub fn compute_into(
        a: View<'_>,
        out: &mut Svd,
        scratch: &mut SvdScratch,
        par: Par,
    ) -> Result<()> {
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
        let par = par.kernel(svd_flops(m, n), PAR_MIN_SVD_FLOPS);
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
pub(super) fn filtered_combination(
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
        matmul_in_place(&mut x, vk, View::col_major(&w, keep, 1), false, Par::Seq);
    }
    x
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

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::linalg::lstsq_qr;
    use crate::linalg::testing::{graded, orthogonality, reconstruction};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Regression for faer's rank-revealing shortcut: a tall matrix with singular values
    /// logspace(0, −15) must reconstruct to ≤ 1e-14 relative, with every small
    /// singular value recovered (faer's default path zeroes them).
    #[test]
    fn tall_graded_svd_is_accurate() {
        let (m, n) = (1000, 200);
        let (a, sig) = graded(m, n, 7);
        let svd = Svd::compute(View::col_major(a.as_slice(), m, n), Par::Seq).unwrap();
        let rel = reconstruction(&a, &svd);
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
        let off = orthogonality(&svd.u);
        assert!(off < 1e-13, "UᵀU off by {off:e}");
    }

    #[test]
    fn truncated_solve_matches_qr_on_full_rank() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let a = Matrix::from_fn(40, 8, |_, _| rng.random_range(-1.0..1.0));
        let b: Vec<f64> = (0..40).map(|_| rng.random_range(-1.0..1.0)).collect();
        let svd = Svd::compute(View::col_major(a.as_slice(), 40, 8), Par::Seq).unwrap();
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
        let svd = Svd::compute(View::col_major(a.as_slice(), m, n), Par::Seq).unwrap();
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
            Svd::compute(View::col_major(a.as_slice(), 3, 2), Par::Seq),
            Err(Error::NonFinite { .. })
        ));
    }
}
