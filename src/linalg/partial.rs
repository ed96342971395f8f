//! A partial SVD of the least-squares system that computes only the leading
//! singular triplets the optimiser can use: randomized subspace iteration
//! with an adaptive rank (Halko, Martinsson & Tropp, SIAM Review 2011,
//! Algorithms 4.4 and 5.1), orthonormalised by Householder QR without any
//! rank threshold.
//!
//! For `φ` (`S × P`) and a start rank `k`:
//!
//! 1. `Ω` (`P × k`) Gaussian, from a fixed seed (the decomposition is a
//!    deterministic function of `φ`, `r` and `k`);
//! 2. `q` subspace iterations: `Q = orth(φ Ω)`, `Ω = orth(φᵀ Q)`, then
//!    `Q = orth(φ Ω)`;
//! 3. Rayleigh–Ritz: `W = φᵀ Q` (`P × k`) = `U_W Σ V_Wᵀ` by an accurate SVD
//!    (Householder QR of W, SVD of its `k × k` factor), so
//!    `φ ≈ (Q V_W) Σ U_Wᵀ`: `U = Q V_W`, `V = U_W`;
//! 4. only the **reliable** triplets are returned: those with
//!    `σ_j ≥ ρ σ_k` (default ρ = 100; with one subspace iteration the angle
//!    of direction j to the computed subspace is then ≲ (1/ρ)³ and its Ritz
//!    value is accurate to far below ε·σ₁), or all with `σ_j ≥ ε‖φ‖_F` once
//!    `σ_k` itself is below that rounding level of φ's own entries;
//! 5. the optimiser's test `enough(σ, RCE)` decides whether the returned
//!    components reach the level its cutoff uses; if not, the rank doubles,
//!    starting from the Ritz vectors and fresh random columns.
//!
//! The RCE curve stays exact: `c = Uᵀ r` and the remainder `r − U c` is
//! formed explicitly. When the rank would pass `max_fraction · min(S, P)`
//! the full decomposition is computed instead (it is then the cheaper one).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::system::{check_system, split_on_basis};
use super::{
    Matrix, Par, Svd, SystemSvd, SystemSvdWorkspace, View, householder_q_into,
    householder_qr_in_place, matmul_in_place, norm2, rce_from_tail_sums,
};
use crate::error::{Error, Result};

/// Which decomposition the SVD-based optimisers use (ANaGRAM defaults to
/// `partial`, AMStraMGRAM to `full`: see their configurations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SvdMethod {
    /// The accurate full thin SVD ([`SystemSvd::compute_with`]).
    #[default]
    Full,
    /// The adaptive partial SVD of this module.
    Partial,
}

impl SvdMethod {
    /// Parse `full` or `partial`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "full" => Ok(SvdMethod::Full),
            "partial" => Ok(SvdMethod::Partial),
            _ => Err(Error::UnknownName {
                kind: "svd method",
                name: name.into(),
                known: "full, partial".into(),
            }),
        }
    }
}

/// Settings of the partial SVD.
#[derive(Clone, Debug, PartialEq)]
pub struct PartialSvdConfig {
    /// Subspace iterations `q` (default 1).
    pub power_iterations: usize,
    /// Reliability ratio ρ: triplets with `σ_j ≥ ρ σ_k` are returned (default 100).
    pub reliability: f64,
    /// Smallest start rank (default 32).
    pub initial_rank: usize,
    /// Above `max_fraction · min(S, P)` columns the full SVD is used (default 0.5).
    pub max_fraction: f64,
    /// Below this `min(S, P)` the full SVD is used directly (default 200,
    /// where the full one is the faster, docs/notes.md).
    pub min_size: usize,
}

impl Default for PartialSvdConfig {
    fn default() -> Self {
        PartialSvdConfig {
            power_iterations: 1,
            reliability: 100.0,
            initial_rank: 32,
            max_fraction: 0.5,
            min_size: 200,
        }
    }
}

/// What a partial decomposition did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartialInfo {
    /// The rank the next call should start from: the columns this one
    /// needed (the shortest returned prefix passing the optimiser's test plus
    /// the reliability margin; after a full SVD, read off its spectrum).
    pub final_rank: usize,
    /// Triplets returned.
    pub returned: usize,
    /// Whether the full SVD was computed instead.
    pub full: bool,
}

/// Seed of the Gaussian test matrices (fixed: the decomposition depends on φ alone).
const SKETCH_SEED: u64 = 0x5eed_5eed;

/// `Q` (orthonormal, same shape) of a tall `m × k` matrix by Householder QR.
fn orthonormalise(y: &mut Matrix, tau: &mut Vec<f64>, q: &mut Matrix, par: Par) {
    householder_qr_in_place(y, tau, par);
    householder_q_into(y, tau, q, par);
}

/// `k` Gaussian columns of length `n`, appended to `out` (column-major).
fn gaussian_columns(rng: &mut ChaCha8Rng, n: usize, k: usize, out: &mut Vec<f64>) {
    out.extend((0..n * k).map(|_| -> f64 { StandardNormal.sample(rng) }));
}

impl SystemSvd {
    /// The leading singular triplets of `φ` (given as `jac_t`, `P × S`) with
    /// `c = Uᵀr` and the explicit remainder, as in the module documentation.
    /// `start_rank` is the first subspace size (e.g. the previous call's
    /// [`PartialInfo::final_rank`]); `enough(σ, rce)` is the optimiser's
    /// test on the returned values. Afterwards the workspace holds `U`, so
    /// [`SystemSvdWorkspace::reproject`] works as after a full decomposition.
    pub fn compute_partial(
        jac_t: &Matrix,
        r: &[f64],
        ws: &mut SystemSvdWorkspace,
        start_rank: usize,
        config: &PartialSvdConfig,
        enough: &dyn Fn(&[f64], &[f64]) -> bool,
    ) -> Result<(SystemSvd, PartialInfo)> {
        let (p, s) = (jac_t.nrows(), jac_t.ncols());
        check_system(jac_t, r)?;
        let min_dim = s.min(p);
        let limit = (config.max_fraction * min_dim as f64) as usize;
        let full = |ws: &mut SystemSvdWorkspace| -> Result<(SystemSvd, PartialInfo)> {
            let svd = SystemSvd::compute_with(jac_t, r, ws)?;
            let n = svd.s.len();
            // The rank a partial decomposition would have needed here: the
            // shortest prefix passing the test, extended until σ has fallen
            // by the reliability ratio (so the next call may go partial again).
            let rce = svd.rce_curve();
            let next = (1..=n)
                .find(|&m| enough(&svd.s[..m], &rce[..=m]))
                .and_then(|m| {
                    let floor = svd.s[m - 1] / config.reliability;
                    svd.s.iter().position(|&x| x < floor).map(|j| j + 1)
                })
                .unwrap_or(n);
            Ok((
                svd,
                PartialInfo {
                    final_rank: next,
                    returned: n,
                    full: true,
                },
            ))
        };
        let mut k = start_rank.max(config.initial_rank).max(1);
        if k > limit || min_dim < config.min_size {
            return full(ws);
        }
        // Rounding level of φ's entries: singular values below it are not determined by them.
        let noise = f64::EPSILON * norm2(jac_t.as_slice());
        let phi = View::col_major(jac_t.as_slice(), p, s).t(); // S × P
        let phi_t = View::col_major(jac_t.as_slice(), p, s); // P × S
        let (sf, pf) = (s as f64, p as f64);
        let mut flops = 0.0;
        let par = ws.par();
        let mut rng = ChaCha8Rng::seed_from_u64(SKETCH_SEED);
        let mut omega = Vec::with_capacity(p * k);
        gaussian_columns(&mut rng, p, k, &mut omega);
        let mut tau = Vec::new();
        let (mut y, mut q, mut w, mut vb) = (
            Matrix::default(),
            Matrix::default(),
            Matrix::default(),
            Matrix::default(),
        );
        loop {
            let kf = k as f64;
            vb.resize(p, k);
            vb.data.copy_from_slice(&omega);
            for it in 0..=config.power_iterations {
                // Q = orth(φ Ω)
                y.resize(s, k);
                matmul_in_place(
                    &mut y.data,
                    phi,
                    View::col_major(&vb.data, p, k),
                    false,
                    par,
                );
                orthonormalise(&mut y, &mut tau, &mut q, par);
                // W = φᵀ Q
                w.resize(p, k);
                matmul_in_place(
                    &mut w.data,
                    phi_t,
                    View::col_major(&q.data, s, k),
                    false,
                    par,
                );
                flops += 4.0 * sf * pf * kf + 4.0 * sf * kf * kf - 4.0 * kf.powi(3) / 3.0;
                if it < config.power_iterations {
                    // W is recomputed next round: factor it in place.
                    orthonormalise(&mut w, &mut tau, &mut vb, par);
                    flops += 4.0 * pf * kf * kf - 4.0 * kf.powi(3) / 3.0;
                }
            }
            // W = φᵀ Q = U_W Σ V_Wᵀ: Householder QR of W (in place), accurate SVD of R.
            let wq = &mut w;
            householder_qr_in_place(wq, &mut tau, par);
            let mut rf = Matrix::zeros(k, k);
            for j in 0..k {
                rf.col_mut(j)[..=j].copy_from_slice(&wq.col(j)[..=j]);
            }
            let small = Svd::compute_with(View::col_major(rf.as_slice(), k, k), &mut ws.svd, par)?;
            let mut qw = Matrix::default();
            householder_q_into(wq, &tau, &mut qw, par);
            // V = Q_W U_R (P × k), U = Q V_R (S × k).
            let mut v = Matrix::zeros(p, k);
            matmul_in_place(
                &mut v.data,
                View::col_major(&qw.data, p, k),
                View::col_major(&small.u.data, k, k),
                false,
                par,
            );
            let mut u = Matrix::zeros(s, k);
            matmul_in_place(
                &mut u.data,
                View::col_major(&q.data, s, k),
                View::col_major(&small.v.data, k, k),
                false,
                par,
            );
            flops += 4.0 * pf * kf * kf
                + super::svd_flops(k, k)
                + 2.0 * pf * kf * kf
                + 2.0 * sf * kf * kf;
            let sigma = small.s;
            let last = sigma[k - 1];
            let returned = if last <= noise {
                sigma.iter().take_while(|&&x| x >= noise).count()
            } else {
                sigma
                    .iter()
                    .take_while(|&&x| x >= config.reliability * last)
                    .count()
            };
            u.truncate_cols(returned);
            let (c, outside2) = split_on_basis(&u, r);
            flops += 4.0 * sf * returned as f64;
            let rce = rce_from_tail_sums(outside2, &c, s);
            let done = last <= noise || enough(&sigma[..returned], &rce);
            if done || 2 * k > limit {
                if !done {
                    // The attempts' work counts too.
                    let (mut svd, info) = full(ws)?;
                    svd.flops += flops;
                    return Ok((svd, info));
                }
                // The next call starts from what this one needed: the
                // shortest prefix passing the test, plus the columns that
                // made the returned ones reliable.
                let needed = (1..=returned)
                    .find(|&n| enough(&sigma[..n], &rce[..=n]))
                    .unwrap_or(returned);
                let next_rank = (needed + (k - returned)).min(k);
                let mut vr = v;
                vr.truncate_cols(returned);
                ws.set_explicit_basis(u);
                return Ok((
                    SystemSvd {
                        s: sigma[..returned].to_vec(),
                        v: vr,
                        c,
                        outside2,
                        rows: s,
                        flops,
                        on_device: false,
                    },
                    PartialInfo {
                        final_rank: next_rank,
                        returned,
                        full: false,
                    },
                ));
            }
            // Grow: the Ritz vectors, then fresh random columns.
            let grown = 2 * k;
            omega.clear();
            omega.extend_from_slice(&v.data);
            gaussian_columns(&mut rng, p, grown - k, &mut omega);
            k = grown;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::testing::with_spectrum;
    use rand::Rng;

    /// `A = U diag(σ) Vᵀ` (`m × n`) with `σ_i = 10^(−i/decade)`, as `jac_t = Aᵀ`.
    fn spectrum_matrix(m: usize, n: usize, decade: f64, seed: u64) -> (Matrix, Vec<f64>) {
        let sig: Vec<f64> = (0..m.min(n))
            .map(|i| 10f64.powf(-(i as f64) / decade))
            .collect();
        (with_spectrum(m, n, &sig, seed).transpose(), sig)
    }

    #[test]
    fn explicit_q_is_orthonormal_and_reconstructs() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (m, n) = (300, 45);
        let a = Matrix::from_fn(m, n, |_, _| rng.sample::<f64, _>(StandardNormal));
        let mut qr = a.clone();
        let mut tau = Vec::new();
        householder_qr_in_place(&mut qr, &mut tau, Par::Seq);
        let mut q = Matrix::default();
        householder_q_into(&qr, &tau, &mut q, Par::Seq);
        let mut qtq = vec![0.0; n * n];
        matmul_in_place(
            &mut qtq,
            View::col_major(q.as_slice(), m, n).t(),
            View::col_major(q.as_slice(), m, n),
            false,
            Par::Seq,
        );
        for i in 0..n {
            for j in 0..n {
                let e = qtq[j * n + i] - if i == j { 1.0 } else { 0.0 };
                assert!(e.abs() < 1e-14, "QᵀQ[{i},{j}] off by {e:e}");
            }
        }
        let r = Matrix::from_fn(n, n, |i, j| if i <= j { qr.at(i, j) } else { 0.0 });
        let mut rec = vec![0.0; m * n];
        matmul_in_place(
            &mut rec,
            View::col_major(q.as_slice(), m, n),
            View::col_major(r.as_slice(), n, n),
            false,
            Par::Seq,
        );
        let diff: Vec<f64> = rec.iter().zip(a.as_slice()).map(|(x, y)| x - y).collect();
        assert!(norm2(&diff) / norm2(a.as_slice()) < 1e-14);
    }

    /// Singular values to ≤ 10 ε·σ₁ down to the cutoff, the same RCE curve
    /// and the same truncated direction as the full accurate SVD.
    #[test]
    fn partial_matches_the_full_svd_above_the_cutoff() {
        let (s, p) = (800, 300);
        let (jt, sig) = spectrum_matrix(s, p, 10.0, 5);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let r: Vec<f64> = (0..s)
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect();
        let full = SystemSvd::compute(&jt, &r).unwrap();
        for tau in [3e-5, 3e-9] {
            let enough = |sv: &[f64], _: &[f64]| sv.last().is_some_and(|&x| x < tau);
            let mut ws = SystemSvdWorkspace::default();
            let (part, info) = SystemSvd::compute_partial(
                &jt,
                &r,
                &mut ws,
                0,
                &PartialSvdConfig::default(),
                &enough,
            )
            .unwrap();
            assert!(!info.full, "τ = {tau}: fell back to the full SVD");
            assert!(part.s.len() < p / 2 && *part.s.last().unwrap() < tau);
            for (j, (a, b)) in part.s.iter().zip(&sig).enumerate() {
                assert!(
                    (a - b).abs() <= 10.0 * f64::EPSILON,
                    "τ = {tau}: σ_{j} {a:e} vs {b:e}"
                );
            }
            let keep = part.rank_above(tau);
            assert_eq!(keep, full.rank_above(tau));
            let (dp, df) = (part.truncated_solve(keep), full.truncated_solve(keep));
            let diff: Vec<f64> = dp.iter().zip(&df).map(|(x, y)| x - y).collect();
            let rel = norm2(&diff) / norm2(&df);
            assert!(rel <= 1e-6, "τ = {tau}: direction differs by {rel:e}");
            let (rp, rf) = (part.rce_curve(), full.rce_curve());
            // RCE_n depends on span(u_1..u_n), whose rounding-level error
            // grows like ε σ₁/(σ_n − σ_{n+1}) in either decomposition: the
            // curves agree to 9.6e-9·RCE_0 here (worst n, near σ ≈ 1e-10).
            for n in 0..rp.len() {
                assert!(
                    (rp[n] - rf[n]).abs() <= 1e-7 * rf[0],
                    "τ = {tau}: RCE_{n} {:e} vs {:e} of {}",
                    rp[n],
                    rf[n],
                    rp.len()
                );
            }
            // The basis left in the workspace reprojects r to the same split.
            let (c, outside2) = ws.reproject(&r).unwrap();
            assert_eq!(c.len(), part.c.len());
            assert!((outside2 - part.outside2).abs() <= 1e-12 * norm2(&r).powi(2));
        }
    }

    /// A slowly decaying spectrum needs most components: the full SVD is used.
    #[test]
    fn flat_spectra_fall_back_to_the_full_svd() {
        let (jt, _) = spectrum_matrix(400, 120, 1000.0, 2);
        let r = vec![1.0; 400];
        let mut ws = SystemSvdWorkspace::default();
        let enough = |sv: &[f64], _: &[f64]| sv.last().is_some_and(|&x| x < 1e-12);
        let (svd, info) =
            SystemSvd::compute_partial(&jt, &r, &mut ws, 0, &PartialSvdConfig::default(), &enough)
                .unwrap();
        assert!(info.full);
        assert_eq!(svd.s.len(), 120);
    }
}
