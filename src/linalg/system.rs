//! The SVD of a least-squares system `φ x ≈ r` as the natural-gradient
//! optimisers need it, on the CPU or (tall systems, `cuda` feature) on a
//! CUDA device.

#[cfg(feature = "cuda")]
use super::DeviceChoice;
use super::svd::filtered_combination;
use super::{
    Compute, Matrix, Par, Svd, SvdScratch, View, apply_qt_in_place, householder_qr_in_place, norm2,
    rce_from_tail_sums, svd_flops,
};
use crate::error::{Error, Result};

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
    /// Whether it ran on the CUDA device.
    pub on_device: bool,
}

/// Which basis [`SystemSvdWorkspace::reproject`] projects on: the last
/// decomposition's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Basis {
    /// Tall, on the CPU: Householder reflectors in `a`/`tau`, `U_R` in `small`.
    Reflectors,
    /// `U` stored explicitly in `u_explicit` (wide systems, partial SVDs).
    Explicit,
    /// Tall, on the CUDA device: reflectors there, `U_R` in `small`.
    #[cfg(feature = "cuda")]
    Device,
}

/// Buffers of [`SystemSvd::compute_with`], reused across training
/// iterations, and where the decompositions run: [`Par`] threads on the
/// CPU, and with the `cuda` feature the CUDA device for tall systems of at
/// least `min_flops` ([`system_flops`]).
#[derive(Debug, Default)]
pub struct SystemSvdWorkspace {
    par: Par,
    a: Matrix,
    tau: Vec<f64>,
    qtr: Vec<f64>,
    r_factor: Matrix,
    small: Option<Svd>,
    pub(super) svd: SvdScratch,
    /// `U` of the last decomposition when it was stored explicitly.
    u_explicit: Matrix,
    last: Option<Basis>,
    #[cfg(feature = "cuda")]
    gpu: Option<(super::cuda::GpuSystem, f64)>,
}

impl SystemSvdWorkspace {
    /// A workspace for a run's [`Compute`] settings: its threads, and the
    /// CUDA device when the setting resolves to one ([`Compute::resolve`]:
    /// an error for `cuda` without a usable device).
    pub fn new(compute: &Compute) -> Result<Self> {
        let choice = compute.resolve()?;
        #[cfg(not(feature = "cuda"))]
        let _ = choice;
        Ok(SystemSvdWorkspace {
            par: compute.par(),
            #[cfg(feature = "cuda")]
            gpu: match choice {
                DeviceChoice::Cuda { min_flops, .. } => {
                    Some((super::cuda::GpuSystem::new()?, min_flops))
                }
                DeviceChoice::Cpu { .. } => None,
            },
            ..Default::default()
        })
    }

    /// The parallelism of the CPU kernels.
    pub fn par(&self) -> Par {
        self.par
    }

    /// Whether a system of `s` rows and `p` parameters is decomposed on the
    /// CUDA device (always false without the `cuda` feature).
    pub fn on_device(&self, s: usize, p: usize) -> bool {
        #[cfg(feature = "cuda")]
        if let Some((_, min_flops)) = &self.gpu {
            return s > p && system_flops(s, p) >= *min_flops;
        }
        let _ = (s, p);
        false
    }

    /// Project another vector `r` (length S) on the left singular vectors of
    /// the **last** decomposition computed with this workspace: returns
    /// `(Uᵀ r, ‖r − U Uᵀ r‖²)`, the inputs of an RCE curve of `r` in that
    /// basis. Tall case: `Qᵀ r` through the stored Householder reflectors, so
    /// the small singular directions are as accurate as in the decomposition
    /// itself (forming `U = φ V Σ⁻¹` would lose them).
    pub fn reproject(&mut self, r: &[f64]) -> Result<(Vec<f64>, f64)> {
        let basis = self.last.ok_or_else(|| {
            Error::LinearAlgebra("reproject called before any decomposition".into())
        })?;
        let rows = match basis {
            Basis::Explicit => self.u_explicit.nrows(),
            _ => self.a.nrows,
        };
        if r.len() != rows {
            return Err(Error::DimensionMismatch {
                context: "vector reprojected on the last SVD basis".into(),
                expected: rows,
                got: r.len(),
            });
        }
        match basis {
            Basis::Explicit => Ok(split_on_basis(&self.u_explicit, r)),
            Basis::Reflectors => {
                let mut qtr = r.to_vec();
                apply_qt_in_place(&self.a, &self.tau, &mut qtr);
                Ok(split_rotated(self.small_u(), &qtr, self.a.ncols))
            }
            #[cfg(feature = "cuda")]
            Basis::Device => {
                let (gpu, _) = self
                    .gpu
                    .as_mut()
                    .expect("device basis from a device workspace");
                let qtr = gpu.apply_qt(r)?;
                Ok(split_rotated(self.small_u(), &qtr, self.a.ncols))
            }
        }
    }

    /// `U_R` of the last tall decomposition.
    fn small_u(&self) -> &Matrix {
        &self
            .small
            .as_ref()
            .expect("a tall decomposition keeps its U")
            .u
    }

    /// Keep `u` (orthonormal columns, S rows) as the basis [`Self::reproject`]
    /// projects on.
    pub(super) fn set_explicit_basis(&mut self, u: Matrix) {
        self.u_explicit = u;
        self.last = Some(Basis::Explicit);
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
pub(super) fn check_system(jac_t: &Matrix, r: &[f64]) -> Result<()> {
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
    /// Decompose `φ` given as its transpose `jac_t` (`P × S`, column i = row
    /// i of φ), with right-hand side `r`, on one CPU thread.
    pub fn compute(jac_t: &Matrix, r: &[f64]) -> Result<Self> {
        Self::compute_with(jac_t, r, &mut SystemSvdWorkspace::default())
    }

    /// [`SystemSvd::compute`] with caller-owned buffers (no `S × P`
    /// allocation per call) and the workspace's threads and device.
    pub fn compute_with(jac_t: &Matrix, r: &[f64], ws: &mut SystemSvdWorkspace) -> Result<Self> {
        let (p, s) = (jac_t.nrows, jac_t.ncols);
        check_system(jac_t, r)?;
        if s <= p {
            let svd =
                Svd::compute_with(View::col_major(jac_t.as_slice(), p, s), &mut ws.svd, ws.par)?
                    .transposed();
            let (c, outside2) = split_on_basis(&svd.u, r);
            ws.set_explicit_basis(svd.u);
            return Ok(SystemSvd {
                outside2,
                s: svd.s,
                v: svd.v,
                c,
                rows: s,
                flops: svd_flops(p, s),
                on_device: false,
            });
        }
        let mut svd = ws.small.take().unwrap_or_else(|| Svd {
            u: Matrix::default(),
            s: vec![],
            v: Matrix::default(),
        });
        let on_device = ws.on_device(s, p);
        if on_device {
            #[cfg(feature = "cuda")]
            {
                let (gpu, _) = ws.gpu.as_mut().expect("on_device implies a device");
                gpu.decompose(jac_t, r, &mut ws.qtr, &mut svd)?;
                // Shapes only, for `reproject`'s check (the reflectors stay on the device).
                ws.a.resize(s, p);
                ws.last = Some(Basis::Device);
            }
        } else {
            jac_t.transpose_into(&mut ws.a);
            householder_qr_in_place(&mut ws.a, &mut ws.tau, ws.par);
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
            Svd::compute_into(
                View::col_major(ws.r_factor.as_slice(), p, p),
                &mut svd,
                &mut ws.svd,
                ws.par,
            )?;
            ws.last = Some(Basis::Reflectors);
        }
        let (c, outside2) = split_rotated(&svd.u, &ws.qtr, p);
        let (sv, v) = (std::mem::take(&mut svd.s), std::mem::take(&mut svd.v));
        ws.small = Some(svd);
        Ok(SystemSvd {
            s: sv,
            v,
            c,
            outside2,
            rows: s,
            flops: system_flops(s, p),
            on_device,
        })
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
/// `(c, ‖r − U c‖²)` with `c = Uᵀ r`, for orthonormal columns `U` (the remainder formed explicitly).
pub(super) fn split_on_basis(u: &Matrix, r: &[f64]) -> (Vec<f64>, f64) {
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

/// Flops of the tall decomposition of an `s × p` system (`s > p`), by the
/// routine's model: Householder QR `2SP² − 2P³/3`, `Qᵀr` `4SP`, and the SVD
/// of the `P × P` factor ([`svd_flops`]). The CUDA path does other work for
/// the small SVD (a symmetric eigenproblem of order 2P and two QRs of order
/// P) but is counted the same, so that rates compare.
pub fn system_flops(s: usize, p: usize) -> f64 {
    let (sf, pf) = (s as f64, p as f64);
    2.0 * sf * pf * pf - 2.0 * pf.powi(3) / 3.0 + 4.0 * sf * pf + svd_flops(p, p)
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::linalg::testing::graded;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

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
            let direct = Svd::compute(View::col_major(phi.as_slice(), m, n), Par::Seq).unwrap();
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
}
