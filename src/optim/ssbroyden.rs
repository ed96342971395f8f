//! SSBroyden: self-scaled Broyden quasi-Newton with a strong-Wolfe line search.
//!
//! Reference: J. F. Urbán, P. Stefanou, J. A. Pons, *Unveiling the
//! optimization process of physics informed neural networks: How accurate
//! and competitive can PINNs be?*, J. Comput. Phys. 523 (2025) 113656,
//! formulas (13)–(23), as in the authors' SciPy code (`SSBroyden2`
//! branch). A dense `P × P` inverse-Hessian approximation H (initially I)
//! gives `p = −H g`; α comes from a strong-Wolfe line search
//! (c₁ = 1e-4, c₂ = 0.9, first trial `min(1, 2.02 (L_k − L_{k−1})/gᵀp)` as
//! SciPy's BFGS does); then with `s = αp`, `y = g_{k+1} − g_k`, `ρ = 1/yᵀs`,
//! `h = ρ yᵀHy`, `b = −αρ sᵀg_k`, `a = bh − 1`, the Broyden parameter θ and
//! scaling τ of the paper and `v = ρs − Hy/yᵀHy`, `φ = (1 − θ)/(1 + aθ)`:
//! `H ← (H − Hy yᵀH/yᵀHy + φ yᵀHy v vᵀ)/τ + ρ s sᵀ`
//! (θ = 0, τ = 1 is BFGS).
//!
//! Restarts as in the reference scripts: every `restart_every` iterations
//! (500) H is symmetrised and reset to I if it is no longer positive
//! definite; a non-descent direction or a step that does not decrease the
//! loss also resets H. The reference's Adam warm-up and RAD resampling
//! between restarts belong to its training pipeline, not to the update, and
//! are not part of this optimiser. Memory `O(P²)`; cost `O(P²)` per step
//! plus the line search's loss/gradient evaluations. No termination of its
//! own.

use serde::{Deserialize, Serialize};

use super::linesearch::{strong_wolfe, validate_wolfe};
use super::{Objective, Optimizer, OptimizerState, StepReport};
use crate::error::{Error, Result};
use crate::linalg::{Matrix, cholesky, dot, gemv_in_place, norm2};

/// Settings of [`SsBroyden`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SsBroydenConfig {
    /// Sufficient-decrease constant c₁.
    pub c1: f64,
    /// Curvature constant c₂.
    pub c2: f64,
    /// Maximum loss/gradient evaluations per line search.
    pub max_evals: usize,
    /// Iterations between restarts (symmetrise H, reset to I if not positive definite).
    pub restart_every: usize,
    /// Keep H when the collocation points are redrawn (default true, as
    /// Urbán et al.); false resets it to I, so that curvature learnt on the
    /// old points does not steer the first steps on the new ones.
    pub keep_h_on_redraw: bool,
}

impl Default for SsBroydenConfig {
    fn default() -> Self {
        SsBroydenConfig {
            c1: 1e-4,
            c2: 0.9,
            max_evals: 25,
            restart_every: 500,
            keep_h_on_redraw: true,
        }
    }
}

impl SsBroydenConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<()> {
        if self.restart_every == 0 {
            return Err(Error::config(
                "optimizer.restart_every",
                "must be at least 1",
            ));
        }
        validate_wolfe(self.c1, self.c2, self.max_evals)
    }
}

/// The Broyden parameter θ and the scaling τ of Urbán et al. (formulas 13–23).
fn broyden_parameters(h: f64, b: f64, n: usize) -> (f64, f64) {
    let a = b * h - 1.0;
    if !(a.abs() > 1e-300 && b > 0.0 && h > 0.0) {
        // a = 0: every θ gives the same σ; take BFGS (θ = 0) with τ from the same formulas.
        let rho_t = (1.0f64 / b).min(1.0);
        return (
            0.0,
            if rho_t.is_finite() && rho_t > 0.0 {
                rho_t
            } else {
                1.0
            },
        );
    }
    let rho_minus = (h * (1.0 - (a.abs() / (1.0 + a)).sqrt())).min(1.0);
    let theta_minus = (rho_minus - 1.0) / a;
    let theta_plus = 1.0 / rho_minus;
    let theta = theta_minus.max(theta_plus.min((1.0 - b) / b));
    let rho_t = (1.0 / b).min(1.0);
    let sigma = 1.0 + theta * a;
    let sigma_p = sigma.abs().powf(1.0 / (1.0 - n as f64));
    let tau = if theta <= 0.0 {
        (rho_t * sigma_p).min(sigma)
    } else {
        rho_t * sigma_p.min(1.0 / theta)
    };
    (theta, tau)
}

/// What [`SsBroyden`] saves in a checkpoint ([`super::OptimizerState::Ssbroyden`]):
/// `H` (its order and column-major entries), the previous loss and the
/// iteration count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SsBroydenState {
    h: Option<(usize, Vec<f64>)>,
    prev_loss: Option<f64>,
    iters: usize,
}

/// The SSBroyden optimiser (see the module documentation).
#[derive(Clone, Debug)]
pub struct SsBroyden {
    config: SsBroydenConfig,
    /// Inverse-Hessian approximation (P × P), `None` until the first step.
    h: Option<Matrix>,
    /// `(θ, L, ∇L)` of the last accepted point.
    cache: Option<(Vec<f64>, f64, Vec<f64>)>,
    /// The loss before the last step (for the first trial step length).
    prev_loss: Option<f64>,
    iters: usize,
}

impl SsBroyden {
    /// An optimiser with the given settings and `H = I`.
    pub fn new(config: SsBroydenConfig) -> Self {
        SsBroyden {
            config,
            h: None,
            cache: None,
            prev_loss: None,
            iters: 0,
        }
    }

    fn identity(p: usize) -> Matrix {
        Matrix::from_fn(p, p, |i, j| if i == j { 1.0 } else { 0.0 })
    }

    /// Symmetrise H; reset it to I if it is not positive definite or not finite.
    fn restart(h: &mut Matrix) -> bool {
        let p = h.nrows();
        let sym = Matrix::from_fn(p, p, |i, j| 0.5 * (h.at(i, j) + h.at(j, i)));
        if cholesky(&sym).is_ok() {
            *h = sym;
            false
        } else {
            *h = Self::identity(p);
            true
        }
    }
}

impl Optimizer for SsBroyden {
    fn name(&self) -> &'static str {
        "ssbroyden"
    }

    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], _loss: f64) -> Result<StepReport> {
        let p = theta.len();
        let (loss0, g0) = match self.cache.take() {
            Some((th, l, g)) if th.as_slice() == &*theta => (l, g),
            _ => obj.loss_gradient(theta)?,
        };
        let mut h = match self.h.take() {
            Some(h) if h.nrows() == p => h,
            _ => Self::identity(p),
        };
        let mut reset = 0.0;
        if self.iters > 0
            && self.iters.is_multiple_of(self.config.restart_every)
            && Self::restart(&mut h)
        {
            reset = 1.0;
        }
        self.iters += 1;
        let mut dir = vec![0.0; p];
        gemv_in_place(&mut dir, &h, &g0, false);
        dir.iter_mut().for_each(|v| *v = -*v);
        let mut slope = dot(&dir, &g0);
        if slope.is_nan() || slope >= 0.0 || dir.iter().any(|v| !v.is_finite()) {
            h = Self::identity(p);
            reset = 1.0;
            dir = g0.iter().map(|v| -v).collect();
            slope = -dot(&g0, &g0);
        }
        // SciPy's first trial: previous loss L + ‖g‖/2 on the first call.
        let old = self.prev_loss.unwrap_or(loss0 + 0.5 * norm2(&g0));
        let a0 = 1.01 * 2.0 * (loss0 - old) / slope;
        let alpha0 = if a0.is_finite() && a0 > 0.0 {
            a0.min(1.0)
        } else {
            1.0
        };
        let c = &self.config;
        let wp = strong_wolfe(
            obj,
            theta,
            loss0,
            &g0,
            &dir,
            alpha0,
            c.c1,
            c.c2,
            c.max_evals,
        )?;
        if wp.loss.is_nan() || wp.loss >= loss0 {
            // No decrease: keep θ, start again from steepest descent.
            self.h = Some(Self::identity(p));
            self.cache = Some((theta.to_vec(), loss0, g0));
            return Ok(StepReport {
                loss: loss0,
                rank: None,
                step_size: Some(0.0),
                extra: vec![f64::NAN, f64::NAN, 1.0, 0.0],
                spectrum: None,
                phases: None,
            });
        }
        let s: Vec<f64> = dir.iter().map(|d| wp.alpha * d).collect();
        let y: Vec<f64> = wp.grad.iter().zip(&g0).map(|(a, b)| a - b).collect();
        let ys = dot(&y, &s);
        let (mut theta_b, mut tau) = (f64::NAN, f64::NAN);
        if ys > 0.0 {
            let rho = 1.0 / ys;
            let mut hy = vec![0.0; p];
            gemv_in_place(&mut hy, &h, &y, false);
            let yhy = dot(&y, &hy);
            let hh = rho * yhy;
            let b = -wp.alpha * rho * dot(&s, &g0);
            let (th, ta) = broyden_parameters(hh, b, p);
            let a = b * hh - 1.0;
            let phi = (1.0 - th) / (1.0 + a * th);
            let v: Vec<f64> = s
                .iter()
                .zip(&hy)
                .map(|(si, hyi)| rho * si - hyi / yhy)
                .collect();
            if th.is_finite() && ta.is_finite() && ta > 0.0 && phi.is_finite() && yhy > 0.0 {
                for j in 0..p {
                    let col = h.col_mut(j);
                    for i in 0..p {
                        let upd = col[i] - hy[i] * hy[j] / yhy + phi * yhy * v[i] * v[j];
                        col[i] = upd / ta + rho * s[i] * s[j];
                    }
                }
                theta_b = th;
                tau = ta;
            }
        }
        if h.as_slice().iter().any(|v| !v.is_finite()) {
            h = Self::identity(p);
            reset = 1.0;
        }
        theta.copy_from_slice(&wp.theta);
        self.prev_loss = Some(loss0);
        self.h = Some(h);
        self.cache = Some((wp.theta, wp.loss, wp.grad));
        Ok(StepReport {
            loss: wp.loss,
            rank: None,
            step_size: Some(wp.alpha),
            extra: vec![theta_b, tau, reset, if wp.wolfe { 1.0 } else { 0.0 }],
            spectrum: None,
            phases: None,
        })
    }

    /// Drops the cached loss and gradient and the previous loss; keeps `H`
    /// (Urbán et al. pass it to the next quasi-Newton run after each redraw)
    /// unless `keep_h_on_redraw` is false.
    fn objective_changed(&mut self) {
        self.cache = None;
        self.prev_loss = None;
        if !self.config.keep_h_on_redraw {
            self.h = None;
        }
    }

    fn extra_columns(&self) -> &'static [&'static str] {
        &["broyden_theta", "broyden_tau", "reset", "wolfe"]
    }

    /// H (column-major), the previous loss and the iteration count (the
    /// cached gradient is recomputed: same θ, same value).
    fn state(&self) -> OptimizerState {
        OptimizerState::Ssbroyden(SsBroydenState {
            h: self.h.as_ref().map(|h| (h.nrows(), h.as_slice().to_vec())),
            prev_loss: self.prev_loss,
            iters: self.iters,
        })
    }

    fn restore(&mut self, state: OptimizerState) -> Result<()> {
        let saved = match state {
            OptimizerState::Ssbroyden(s) => s,
            other => return Err(other.mismatch("ssbroyden")),
        };
        self.h = match saved.h {
            Some((n, data)) => Some(Matrix::from_col_major(n, n, data)?),
            None => None,
        };
        self.prev_loss = saved.prev_loss;
        self.iters = saved.iters;
        self.cache = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{ExtendedRosenbrock, Linear, Rosenbrock};
    use crate::optim::{Lbfgs, LbfgsConfig};

    fn run(opt: &mut dyn Optimizer, obj: &dyn Objective, theta: &mut [f64], iters: usize) -> f64 {
        let mut loss = obj.loss(theta).unwrap();
        for _ in 0..iters {
            loss = opt.step(obj, theta, loss).unwrap().loss;
        }
        loss
    }

    #[test]
    fn converges_on_rosenbrock() {
        let mut theta = vec![-1.2, 1.0];
        let loss = run(
            &mut SsBroyden::new(SsBroydenConfig::default()),
            &Rosenbrock,
            &mut theta,
            100,
        );
        assert!(loss < 1e-20, "loss {loss:e}");
        assert!((theta[0] - 1.0).abs() < 1e-9 && (theta[1] - 1.0).abs() < 1e-9);
    }

    /// 20-dimensional Rosenbrock: SSBroyden and L-BFGS both reach the minimum.
    #[test]
    fn converges_on_extended_rosenbrock_like_lbfgs() {
        let obj = ExtendedRosenbrock(20);
        let start: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
            .collect();
        let mut t1 = start.clone();
        let l1 = run(
            &mut SsBroyden::new(SsBroydenConfig::default()),
            &obj,
            &mut t1,
            300,
        );
        let mut t2 = start;
        let l2 = run(&mut Lbfgs::new(LbfgsConfig::default()), &obj, &mut t2, 300);
        assert!(l1 < 1e-18, "SSBroyden {l1:e}");
        assert!(l2 < 1e-18, "L-BFGS {l2:e}");
    }

    /// On a consistent quadratic (`b = Aθ*`) the update keeps H symmetric
    /// positive definite and the iterates reach θ*.
    #[test]
    fn quadratic_converges_and_keeps_h_definite() {
        let (mut obj, mut theta) = Linear::random(41, 30, 8);
        let target: Vec<f64> = (0..8).map(|i| (i as f64 * 0.7).sin()).collect();
        obj.b = obj.a.mul_vec(&target);
        let mut opt = SsBroyden::new(SsBroydenConfig::default());
        let loss = run(&mut opt, &obj, &mut theta, 60);
        assert!(loss < 1e-24, "loss {loss:e}");
        for (t, e) in theta.iter().zip(&target) {
            assert!((t - e).abs() < 1e-10, "{t} vs {e}");
        }
        let h = opt.h.clone().unwrap();
        let sym = Matrix::from_fn(8, 8, |i, j| 0.5 * (h.at(i, j) + h.at(j, i)));
        assert!(cholesky(&sym).is_ok());
    }

    /// A redraw of the points keeps H by default and resets it to I with
    /// `keep_h_on_redraw = false` (the next step is then a gradient step).
    #[test]
    fn redraw_keeps_or_resets_h() {
        for keep in [true, false] {
            let (obj, mut theta) = Linear::random(41, 30, 8);
            let mut opt = SsBroyden::new(SsBroydenConfig {
                keep_h_on_redraw: keep,
                ..Default::default()
            });
            run(&mut opt, &obj, &mut theta, 5);
            let before = opt.h.clone().unwrap();
            opt.objective_changed();
            match &opt.h {
                Some(h) => assert!(keep && h.as_slice() == before.as_slice()),
                None => assert!(!keep),
            }
            assert!(opt.cache.is_none() && opt.prev_loss.is_none());
        }
    }

    /// θ = 0 and τ = 1 reduce the update to BFGS; check the formulas' limits:
    /// b = h = 1 (a = 0) gives θ = 0.
    #[test]
    fn broyden_parameters_limits() {
        let (th, tau) = broyden_parameters(1.0, 1.0, 10);
        assert_eq!(th, 0.0);
        assert_eq!(tau, 1.0);
        let (th, tau) = broyden_parameters(2.0, 3.0, 10);
        assert!(th.is_finite() && tau.is_finite() && tau > 0.0, "{th} {tau}");
    }

    #[test]
    fn config_errors_name_fields() {
        let c = SsBroydenConfig {
            restart_every: 0,
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("optimizer.restart_every")
        );
    }
}
