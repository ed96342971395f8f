//! Nyström-preconditioned natural gradient: matrix-free PCG on the damped
//! Gauss–Newton system.
//!
//! References: G. Bioli, C. Marcati, G. Sangalli, *Accelerating natural
//! gradient descent for PINNs with randomized Nyström preconditioning*
//! (arXiv 2505.11638, 2025) for the method; Z. Frangella, J. A. Tropp,
//! M. Udell, *Randomized Nyström preconditioning*, SIAM J. Matrix Anal.
//! Appl. 44 (2023), Algorithms 2.1 and 5.1, for the preconditioner.
//!
//! Each step assembles `(r̃, φ̃)` and solves `(G + λI) d = φ̃ᵀ r̃`,
//! `G = φ̃ᵀ φ̃`, by preconditioned conjugate gradients in which `G` appears
//! only through products `G v = φ̃ᵀ(φ̃ v)` — the `P × P` matrix is never
//! formed. The preconditioner is a randomized rank-ℓ Nyström approximation
//! `G ≈ Û Λ̂ Ûᵀ` built from `Y = G Ω` (Ω a `P × ℓ` Gaussian test matrix with
//! orthonormalised columns, i.e. ℓ more products), stabilised by a shift
//! `ν = √P·ε·‖Y‖_F`:
//! `P⁻¹ = (λ̂_ℓ + λ) Û (Λ̂ + λI)⁻¹ Ûᵀ + (I − Û Ûᵀ)`.
//! Then `θ ← θ − η d` with η from the grid `{0.5^k, k = 0..30}`.
//!
//! The papers give no defaults for ℓ, λ or the CG tolerance; natgrad's were chosen by measurement on laplace2d and heat (see
//! [`NystromConfig`]). λ is relative: `λ = damping · λ̂₁` (λ̂₁ ≈ σ₁² the
//! largest Nyström eigenvalue), so one default fits every problem's scale.
//! The sketch is drawn from a ChaCha8 stream seeded by `seed`: the same
//! settings give the same run. No termination of its own.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::linesearch::{GridStep, StepGrid, grid_step};
use super::{Objective, Optimizer, OptimizerState, StepReport};
use crate::error::{Error, Result};
use crate::linalg::{
    Matrix, Par, Svd, View, cholesky, dot, gemv_in_place, matmul, matmul_tn, norm2,
    solve_lower_in_place,
};
use crate::residual::{System, Weighting};

/// Settings of [`Nystrom`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NystromConfig {
    /// Row weighting of the system (default block-mean: Gauss–Newton on the loss).
    pub weighting: Weighting,
    /// Sketch size ℓ, the rank of the preconditioner (capped at P).
    pub rank: usize,
    /// Relative damping: `λ = damping · λ̂₁`.
    pub damping: f64,
    /// CG stops when `‖(G + λI) d − b‖ ≤ cg_tol · ‖b‖`.
    pub cg_tol: f64,
    /// CG stops after this many iterations in any case.
    pub cg_max_iters: usize,
    /// Seed of the sketch's random stream.
    pub seed: u64,
    /// Line-search grid (default `0.5^k`, k = 0..30).
    pub line_search: StepGrid,
}

impl Default for NystromConfig {
    fn default() -> Self {
        NystromConfig {
            weighting: Weighting::BlockMean,
            rank: 64,
            damping: 1e-10,
            cg_tol: 1e-10,
            cg_max_iters: 200,
            seed: 0,
            line_search: StepGrid::default(),
        }
    }
}

impl NystromConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<()> {
        if self.rank == 0 {
            return Err(Error::config("optimizer.rank", "must be at least 1"));
        }
        if !(self.damping.is_finite() && self.damping > 0.0) {
            return Err(Error::config(
                "optimizer.damping",
                format!(
                    "must be finite and > 0 (CG needs a definite system), got {}",
                    self.damping
                ),
            ));
        }
        if !(self.cg_tol.is_finite() && self.cg_tol > 0.0 && self.cg_tol < 1.0) {
            return Err(Error::config(
                "optimizer.cg_tol",
                format!("must be in (0, 1), got {}", self.cg_tol),
            ));
        }
        if self.cg_max_iters == 0 {
            return Err(Error::config(
                "optimizer.cg_max_iters",
                "must be at least 1",
            ));
        }
        self.line_search.validate("optimizer.line_search")
    }
}

/// A rank-ℓ Nyström approximation `Û Λ̂ Ûᵀ` of G, used as preconditioner.
#[derive(Clone, Debug)]
pub struct NystromPreconditioner {
    /// Orthonormal columns Û (`P × ℓ`).
    pub u: Matrix,
    /// Eigenvalues λ̂₁ ≥ … ≥ λ̂_ℓ ≥ 0.
    pub lambda: Vec<f64>,
}

impl NystromPreconditioner {
    /// Build from `Y = G Ω` and the orthonormal test matrix Ω (Frangella et al., Alg. 2.1).
    pub fn from_sketch(omega: &Matrix, y: &Matrix, par: Par) -> Result<Self> {
        let (p, l) = (y.nrows(), y.ncols());
        let nu = (p as f64).sqrt() * f64::EPSILON * norm2(y.as_slice());
        let mut shift = nu.max(f64::MIN_POSITIVE);
        // A few retries with a larger shift if rounding makes ΩᵀY_ν indefinite.
        for _ in 0..8 {
            let y_nu = Matrix::from_fn(p, l, |i, j| y.at(i, j) + shift * omega.at(i, j));
            let mut core = Matrix::zeros(l, l);
            matmul_tn(&mut core, omega, &y_nu, par);
            let sym = Matrix::from_fn(l, l, |i, j| 0.5 * (core.at(i, j) + core.at(j, i)));
            let Ok(c) = cholesky(&sym) else {
                shift *= 10.0;
                continue;
            };
            // B = Y_ν C⁻ᵀ: each row b of B solves C bᵀ = (row of Y_ν)ᵀ.
            let mut b = Matrix::zeros(p, l);
            let mut row = vec![0.0; l];
            for i in 0..p {
                row.iter_mut()
                    .enumerate()
                    .for_each(|(j, v)| *v = y_nu.at(i, j));
                solve_lower_in_place(&c, &mut row);
                for (j, v) in row.iter().enumerate() {
                    *b.at_mut(i, j) = *v;
                }
            }
            let svd = Svd::compute(View::col_major(b.as_slice(), p, l), par)?;
            let lambda = svd.s.iter().map(|s| (s * s - shift).max(0.0)).collect();
            return Ok(NystromPreconditioner { u: svd.u, lambda });
        }
        Err(Error::LinearAlgebra(
            "Nyström sketch: ΩᵀY stays indefinite after 8 shift increases".into(),
        ))
    }

    /// `out ← P⁻¹ x` for damping λ.
    pub fn apply_in_place(
        &self,
        x: &[f64],
        lambda_damp: f64,
        out: &mut [f64],
        coef: &mut Vec<f64>,
    ) {
        let l = self.lambda.len();
        coef.clear();
        coef.resize(l, 0.0);
        gemv_in_place(coef, &self.u, x, true);
        let last = self.lambda.last().copied().unwrap_or(0.0);
        out.copy_from_slice(x);
        for (j, c) in coef.iter().enumerate() {
            let scale = (last + lambda_damp) / (self.lambda[j] + lambda_damp) - 1.0;
            let f = c * scale;
            out.iter_mut()
                .zip(self.u.col(j))
                .for_each(|(o, u)| *o += f * u);
        }
    }
}

/// A Nyström-NG direction and how it was obtained.
#[derive(Clone, Debug)]
pub struct NystromDirection {
    /// The CG solution `d ≈ (G + λI)⁻¹ φ̃ᵀ r̃`.
    pub d: Vec<f64>,
    /// The absolute damping λ used.
    pub lambda: f64,
    /// CG iterations taken.
    pub cg_iters: usize,
    /// Final relative residual `‖(G + λI) d − b‖/‖b‖`.
    pub cg_residual: f64,
    /// Seconds assembling `(r̃, φ̃)`, sketching, and in CG.
    pub times: [f64; 3],
}

/// What [`Nystrom`] saves in a checkpoint ([`super::OptimizerState::Nystrom`]):
/// the position in the sketches' random stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NystromState {
    word_pos: u128,
}

/// The Nyström natural-gradient optimiser (see the module documentation).
#[derive(Debug)]
pub struct Nystrom {
    config: NystromConfig,
    sys: System,
    rng: ChaCha8Rng,
    par: Par,
}

impl Nystrom {
    /// An optimiser with the given settings, on one thread.
    pub fn new(config: NystromConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Nystrom {
            config,
            sys: System::default(),
            rng,
            par: Par::Seq,
        }
    }

    /// An optimiser with the given settings whose sketch products use `par` threads.
    pub fn with_par(config: NystromConfig, par: Par) -> Self {
        Nystrom {
            par,
            ..Nystrom::new(config)
        }
    }

    /// `G v + λ v` with `G = φ̃ᵀφ̃` through two matrix–vector products.
    fn apply_system(jac_t: &Matrix, lambda: f64, v: &[f64], tmp: &mut [f64], out: &mut [f64]) {
        gemv_in_place(tmp, jac_t, v, true);
        gemv_in_place(out, jac_t, tmp, false);
        out.iter_mut().zip(v).for_each(|(o, x)| *o += lambda * x);
    }

    /// The direction at θ.
    pub fn direction(&mut self, obj: &dyn Objective, theta: &[f64]) -> Result<NystromDirection> {
        let t0 = Instant::now();
        obj.system_into(theta, self.config.weighting, &mut self.sys)?;
        let t1 = Instant::now();
        let jac_t = &self.sys.jac_t;
        let (p, s) = (jac_t.nrows(), jac_t.ncols());
        let l = self.config.rank.min(p);
        let gauss = Matrix::from_fn(p, l, |_, _| self.rng.sample(rand_distr::StandardNormal));
        let par = self.par;
        let omega = Svd::compute(View::col_major(gauss.as_slice(), p, l), par)?.u;
        let mut z = Matrix::zeros(s, l);
        matmul_tn(&mut z, jac_t, &omega, par);
        let mut y = Matrix::zeros(p, l);
        matmul(&mut y, jac_t, &z, par);
        let pre = NystromPreconditioner::from_sketch(&omega, &y, par)?;
        let lambda = self.config.damping * pre.lambda.first().copied().unwrap_or(0.0);
        let lambda = lambda.max(f64::MIN_POSITIVE);
        let t2 = Instant::now();

        let b = jac_t.mul_vec(&self.sys.r);
        let bnorm = norm2(&b);
        let mut d = vec![0.0; p];
        let mut res = b.clone();
        let mut zv = vec![0.0; p];
        let mut coef = Vec::new();
        pre.apply_in_place(&res, lambda, &mut zv, &mut coef);
        let mut dir = zv.clone();
        let mut rz = dot(&res, &zv);
        let mut ad = vec![0.0; p];
        let mut tmp = vec![0.0; s];
        let mut iters = 0;
        let mut rel = if bnorm > 0.0 { 1.0 } else { 0.0 };
        while rel > self.config.cg_tol && iters < self.config.cg_max_iters {
            Self::apply_system(jac_t, lambda, &dir, &mut tmp, &mut ad);
            let curv = dot(&dir, &ad);
            if curv.is_nan() || curv <= 0.0 {
                break;
            }
            let alpha = rz / curv;
            d.iter_mut().zip(&dir).for_each(|(x, v)| *x += alpha * v);
            res.iter_mut().zip(&ad).for_each(|(x, v)| *x -= alpha * v);
            iters += 1;
            rel = norm2(&res) / bnorm;
            pre.apply_in_place(&res, lambda, &mut zv, &mut coef);
            let rz_new = dot(&res, &zv);
            let beta = rz_new / rz;
            rz = rz_new;
            dir.iter_mut()
                .zip(&zv)
                .for_each(|(x, z)| *x = z + beta * *x);
        }
        if d.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                quantity: "Nyström-PCG direction",
                block: "-".into(),
                iteration: None,
            });
        }
        Ok(NystromDirection {
            d,
            lambda,
            cg_iters: iters,
            cg_residual: rel,
            times: [
                (t1 - t0).as_secs_f64(),
                (t2 - t1).as_secs_f64(),
                t2.elapsed().as_secs_f64(),
            ],
        })
    }
}

impl Optimizer for Nystrom {
    fn name(&self) -> &'static str {
        "nystrom"
    }

    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], _loss: f64) -> Result<StepReport> {
        let dir = self.direction(obj, theta)?;
        let GridStep {
            eta,
            loss,
            seconds: ls_s,
            ..
        } = grid_step(obj, theta, &dir.d, &self.config.line_search)?;
        let [ta, ts, tc] = dir.times;
        Ok(StepReport {
            loss,
            rank: None,
            step_size: Some(eta),
            extra: vec![
                dir.cg_iters as f64,
                dir.cg_residual,
                dir.lambda,
                ta,
                ts,
                tc,
                ls_s,
            ],
            spectrum: None,
            phases: None,
        })
    }

    /// The position in the sketch's random stream.
    fn state(&self) -> OptimizerState {
        OptimizerState::Nystrom(NystromState {
            word_pos: self.rng.get_word_pos(),
        })
    }

    fn restore(&mut self, state: OptimizerState) -> Result<()> {
        let s = match state {
            OptimizerState::Nystrom(s) => s,
            other => return Err(other.mismatch("nystrom")),
        };
        self.rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        self.rng.set_word_pos(s.word_pos);
        Ok(())
    }

    fn extra_columns(&self) -> &'static [&'static str] {
        &[
            "cg_iters",
            "cg_residual",
            "damping_abs",
            "t_assemble",
            "t_sketch",
            "t_cg",
            "t_linesearch",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::Linear;
    use crate::optim::{Engd, EngdConfig};

    /// With a low-rank preconditioner and a tight tolerance, PCG's direction
    /// matches the direct damped solve `(AᵀA + λI)⁻¹ Aᵀ r` (E-NGD, same λ).
    #[test]
    fn pcg_matches_direct_solve() {
        let (obj, theta0) = Linear::random(31, 80, 24);
        let mut opt = Nystrom::new(NystromConfig {
            rank: 6,
            damping: 1e-6,
            cg_tol: 1e-14,
            ..Default::default()
        });
        let dir = opt.direction(&obj, &theta0).unwrap();
        assert!(dir.cg_residual <= 1e-14, "{}", dir.cg_residual);
        let direct = Engd::new(EngdConfig {
            damping: dir.lambda,
            rcond: Some(0.0),
            ..Default::default()
        })
        .direction(&obj, &theta0)
        .unwrap()
        .d;
        let scale = norm2(&direct);
        for (a, b) in dir.d.iter().zip(&direct) {
            assert!((a - b).abs() < 1e-10 * scale, "{a} vs {b}");
        }
    }

    /// ℓ = P: the Nyström approximation is exact, the preconditioned system
    /// is a multiple of the identity and CG converges in one or two iterations;
    /// the approximation reconstructs G.
    #[test]
    fn full_rank_sketch_is_exact() {
        let (obj, theta0) = Linear::random(32, 50, 10);
        let mut opt = Nystrom::new(NystromConfig {
            rank: 10,
            damping: 1e-8,
            cg_tol: 1e-12,
            ..Default::default()
        });
        let dir = opt.direction(&obj, &theta0).unwrap();
        assert!(dir.cg_iters <= 2, "{} CG iterations", dir.cg_iters);
        let g = crate::linalg::gram(&obj.a.transpose(), Par::Seq);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let gauss = Matrix::from_fn(10, 10, |_, _| rng.sample(rand_distr::StandardNormal));
        let omega = Svd::compute(View::col_major(gauss.as_slice(), 10, 10), Par::Seq)
            .unwrap()
            .u;
        let mut y = Matrix::zeros(10, 10);
        matmul(&mut y, &g, &omega, Par::Seq);
        let pre = NystromPreconditioner::from_sketch(&omega, &y, Par::Seq).unwrap();
        let gmax = pre.lambda[0];
        for i in 0..10 {
            for j in 0..10 {
                let approx: f64 = (0..10)
                    .map(|k| pre.u.at(i, k) * pre.lambda[k] * pre.u.at(j, k))
                    .sum();
                assert!((approx - g.at(i, j)).abs() < 1e-12 * gmax);
            }
        }
    }

    #[test]
    fn config_errors_name_fields() {
        for (c, field) in [
            (
                NystromConfig {
                    rank: 0,
                    ..Default::default()
                },
                "optimizer.rank",
            ),
            (
                NystromConfig {
                    damping: 0.0,
                    ..Default::default()
                },
                "optimizer.damping",
            ),
            (
                NystromConfig {
                    cg_tol: 2.0,
                    ..Default::default()
                },
                "optimizer.cg_tol",
            ),
        ] {
            assert!(c.validate().unwrap_err().to_string().contains(field));
        }
    }
}
