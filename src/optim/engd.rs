//! E-NGD: energy natural gradient with the Gram matrix `G = φ̃ᵀφ̃`.
//!
//! Reference: J. Müller, M. Zeinhofer, *Achieving High Accuracy with PINNs
//! via Energy Natural Gradient Descent*, ICML 2023 (code `ngrad`). Each step
//! assembles the weighted system `(r̃, φ̃)`, forms the `P × P` Gram matrix
//! `G = φ̃ᵀ φ̃` (+ λI with damping λ) and solves `G d = φ̃ᵀ r̃` by the
//! pseudo-inverse (eigenvalues below `rcond·λ_max` dropped, as numpy's
//! `lstsq` does with its default `rcond = ε·P`), then `θ ← θ − η d` with η
//! from the grid `{0.5^k, k = 0..30}` on the loss.
//!
//! For a linear PDE this is Gauss–Newton: with [`Weighting::BlockMean`]
//! (`‖r̃‖² = L`) `φ̃ᵀ r̃ = ∇L/2` and `G` is the Gauss–Newton matrix of L, so
//! with full rank the direction equals ANaGRAM's `φ̃⁺ r̃` (tested). The
//! reference code weights each block by its measure `|Ω_b|` (an integral);
//! natgrad weights it by `1/S_b`, the loss every natgrad optimiser
//! minimises, so that comparisons use one objective. Forming G squares the
//! condition number of φ̃: components with `σ < √(rcond)·σ₁ ≈ 1.2e-7·σ₁`
//! (P ≈ 100–700) are lost, which is why E-NGD stalls above the accuracy of
//! the SVD-based methods. Cost per step `O(P²S + P³)`.
//!
//! For nonlinear PDEs the paper's energy Gram adds the curvature of the
//! operator: with `energy_hessian = true`, `G = φ̃ᵀφ̃ + C`,
//! `C = Σ_i w_i r_i Σ_{c,c'} ∂²F/∂J_c∂J_{c'} ∇_θJ_c ∇_θJ_{c'}ᵀ` (the Hessian of
//! `½‖r̃‖²` without the network's own curvature,
//! [`crate::residual::LeastSquares::operator_curvature`]); G may then be
//! indefinite and the pseudo-inverse drops eigenvalues with `|λ| ≤ rcond·max|λ|`.
//!
//! Defaults (the reference code's): block-mean weighting, damping 0,
//! `rcond = ε·P`, 31-point halving grid, Gauss–Newton Gram (no energy
//! Hessian). No termination of its own.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::linesearch::{GridStep, StepGrid, grid_step};
use super::{Objective, Optimizer, StepReport};
use crate::error::{Error, Result};
use crate::linalg::{Matrix, Par, gram, symmetric_eigen};
use crate::residual::{System, Weighting};

/// Settings of [`Engd`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngdConfig {
    /// Row weighting of the system (default block-mean: `G` is the Gauss–Newton matrix of the loss).
    pub weighting: Weighting,
    /// Damping λ ≥ 0 added to the diagonal of G (default 0, as in the reference code).
    pub damping: f64,
    /// Relative eigenvalue cutoff of the pseudo-inverse; `None` (default) is `ε·P`.
    pub rcond: Option<f64>,
    /// Line-search grid (default `0.5^k`, k = 0..30).
    pub line_search: StepGrid,
    /// Add the operator-curvature term to G (nonlinear PDEs; default false).
    pub energy_hessian: bool,
}

impl Default for EngdConfig {
    fn default() -> Self {
        EngdConfig {
            weighting: Weighting::BlockMean,
            damping: 0.0,
            rcond: None,
            line_search: StepGrid::default(),
            energy_hessian: false,
        }
    }
}

impl EngdConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<()> {
        if !(self.damping.is_finite() && self.damping >= 0.0) {
            return Err(Error::config(
                "optimizer.damping",
                format!("must be finite and ≥ 0, got {}", self.damping),
            ));
        }
        if let Some(r) = self.rcond
            && !(r.is_finite() && (0.0..1.0).contains(&r))
        {
            return Err(Error::config(
                "optimizer.rcond",
                format!("must be in [0, 1), got {r}"),
            ));
        }
        self.line_search.validate("optimizer.line_search")
    }
}

/// The E-NGD optimiser (see the module documentation).
#[derive(Debug)]
pub struct Engd {
    config: EngdConfig,
    sys: System,
    par: Par,
}

/// An E-NGD direction and how it was obtained.
#[derive(Clone, Debug)]
pub struct EngdDirection {
    /// `d = (G + λI)⁺ φ̃ᵀ r̃`.
    pub d: Vec<f64>,
    /// Eigen-directions of `G + λI` kept by the pseudo-inverse.
    pub keep: usize,
    /// Largest eigenvalue of `G + λI`.
    pub lambda_max: f64,
    /// Seconds assembling `(r̃, φ̃)`.
    pub assemble_s: f64,
    /// Seconds forming G and solving.
    pub solve_s: f64,
}

impl Engd {
    /// An optimiser with the given settings, on one thread.
    pub fn new(config: EngdConfig) -> Self {
        Engd {
            config,
            sys: System::default(),
            par: Par::Seq,
        }
    }

    /// An optimiser with the given settings whose Gram product uses `par` threads.
    pub fn with_par(config: EngdConfig, par: Par) -> Self {
        Engd {
            par,
            ..Engd::new(config)
        }
    }

    /// The direction at θ.
    pub fn direction(&mut self, obj: &dyn Objective, theta: &[f64]) -> Result<EngdDirection> {
        let t0 = Instant::now();
        obj.system_into(theta, self.config.weighting, &mut self.sys)?;
        let t1 = Instant::now();
        let jac_t: &Matrix = &self.sys.jac_t;
        let p = jac_t.nrows();
        let mut g = gram(jac_t, self.par);
        if self.config.energy_hessian {
            let c = obj.operator_curvature(theta, self.config.weighting)?;
            g.as_mut_slice()
                .iter_mut()
                .zip(c.as_slice())
                .for_each(|(a, b)| *a += b);
        }
        for i in 0..p {
            *g.at_mut(i, i) += self.config.damping;
        }
        let rhs = jac_t.mul_vec(&self.sys.r);
        let (values, vectors) = symmetric_eigen(&g)?;
        let lambda_max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let rcond = self.config.rcond.unwrap_or(f64::EPSILON * p as f64);
        let mut d = vec![0.0; p];
        let mut keep = 0;
        for (k, &lam) in values.iter().enumerate() {
            if lam.abs() > rcond * lambda_max {
                keep += 1;
                let v = vectors.col(k);
                let c = crate::linalg::dot(v, &rhs) / lam;
                d.iter_mut().zip(v).for_each(|(di, vi)| *di += c * vi);
            }
        }
        if d.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                quantity: "E-NGD direction",
                block: "-".into(),
                iteration: None,
            });
        }
        Ok(EngdDirection {
            d,
            keep,
            lambda_max,
            assemble_s: (t1 - t0).as_secs_f64(),
            solve_s: t1.elapsed().as_secs_f64(),
        })
    }
}

impl Optimizer for Engd {
    fn name(&self) -> &'static str {
        "engd"
    }

    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], _loss: f64) -> Result<StepReport> {
        let dir = self.direction(obj, theta)?;
        let GridStep {
            eta,
            loss,
            seconds: ls_s,
            ..
        } = grid_step(obj, theta, &dir.d, &self.config.line_search)?;
        Ok(StepReport {
            loss,
            rank: Some(dir.keep),
            step_size: Some(eta),
            extra: vec![dir.lambda_max, dir.assemble_s, dir.solve_s, ls_s],
            spectrum: None,
            phases: None,
        })
    }

    fn extra_columns(&self) -> &'static [&'static str] {
        &["gram_max", "t_assemble", "t_solve", "t_linesearch"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::Linear;
    use crate::optim::{Anagram, AnagramConfig, Cutoff};

    /// Full-rank system: E-NGD's direction equals ANaGRAM's `φ̃⁺ r̃`.
    #[test]
    fn same_direction_as_anagram_on_full_rank() {
        let (obj, theta0) = Linear::random(21, 40, 8);
        let d_engd = Engd::new(EngdConfig::default())
            .direction(&obj, &theta0)
            .unwrap();
        assert_eq!(d_engd.keep, 8);
        let d_ana = Anagram::new(AnagramConfig {
            cutoff: Cutoff::Absolute { value: 0.0 },
            ..Default::default()
        })
        .direction(&obj, &theta0)
        .unwrap()
        .d;
        let scale = crate::linalg::norm2(&d_ana);
        for (a, b) in d_engd.d.iter().zip(&d_ana) {
            assert!((a - b).abs() < 1e-11 * scale, "{a} vs {b}");
        }
    }

    /// Damping: the direction solves `(AᵀA + λI) d = Aᵀ r`, checked by the residual of those equations.
    #[test]
    fn damped_direction_solves_damped_normal_equations() {
        let (obj, theta0) = Linear::random(22, 30, 6);
        let lambda = 0.3;
        let d = Engd::new(EngdConfig {
            damping: lambda,
            ..Default::default()
        })
        .direction(&obj, &theta0)
        .unwrap()
        .d;
        let r = obj.residual(&theta0);
        let atr = obj.a.tr_mul_vec(&r);
        let atad = obj.a.tr_mul_vec(&obj.a.mul_vec(&d));
        for i in 0..6 {
            let lhs = atad[i] + lambda * d[i];
            assert!((lhs - atr[i]).abs() < 1e-12 * (1.0 + atr[i].abs()));
        }
    }

    /// Rank-deficient system (two equal columns): the pseudo-inverse drops the
    /// null direction, so d has no component along it, and one step with η = 1
    /// reaches the least-squares minimum.
    #[test]
    fn rank_deficient_uses_the_pseudo_inverse() {
        let (mut obj, theta0) = Linear::random(23, 25, 5);
        let c0 = obj.a.col(0).to_vec();
        obj.a.col_mut(1).copy_from_slice(&c0);
        let dir = Engd::new(EngdConfig::default())
            .direction(&obj, &theta0)
            .unwrap();
        assert_eq!(dir.keep, 4);
        assert!((dir.d[0] - dir.d[1]).abs() < 1e-10, "{:?}", dir.d);
        let mut opt = Engd::new(EngdConfig {
            line_search: StepGrid::Halving {
                count: 1,
                stride: 1,
            },
            ..Default::default()
        });
        let mut theta = theta0.clone();
        let l0 = obj.loss(&theta).unwrap();
        let l1 = opt.step(&obj, &mut theta, l0).unwrap().loss;
        let (_, g) = obj.loss_gradient(&theta).unwrap();
        assert!(l1 < l0);
        assert!(crate::linalg::norm2(&g) < 1e-12, "gradient {g:?}");
    }

    /// Energy Hessian: an objective without operator curvature is a clear
    /// error; on a linear PDE (heat) the curvature is zero and the direction
    /// equals the Gauss–Newton one; on a nonlinear PDE it changes it.
    #[test]
    fn energy_hessian_option() {
        let (obj, theta0) = Linear::random(24, 20, 4);
        let e = Engd::new(EngdConfig {
            energy_hessian: true,
            ..Default::default()
        })
        .direction(&obj, &theta0)
        .unwrap_err()
        .to_string();
        assert!(e.contains("optimizer.energy_hessian"), "{e}");
        for (name, same) in [("heat", true), ("allen-cahn", false)] {
            let pb = crate::train::catalogue::build(name).unwrap();
            let ls = pb.least_squares().unwrap();
            let theta = pb.initial_theta(3).unwrap();
            let dir = |energy_hessian| {
                Engd::new(EngdConfig {
                    energy_hessian,
                    ..Default::default()
                })
                .direction(&ls, &theta)
                .unwrap()
                .d
            };
            let (gn, eh) = (dir(false), dir(true));
            let diff: f64 = gn
                .iter()
                .zip(&eh)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            let scale = crate::linalg::norm2(&gn);
            assert_eq!(
                diff <= 1e-12 * scale,
                same,
                "{name}: max difference {diff:e}, |d| {scale:e}"
            );
        }
    }

    #[test]
    fn config_errors_name_fields() {
        for (c, field) in [
            (
                EngdConfig {
                    damping: -1.0,
                    ..Default::default()
                },
                "optimizer.damping",
            ),
            (
                EngdConfig {
                    rcond: Some(f64::NAN),
                    ..Default::default()
                },
                "optimizer.rcond",
            ),
        ] {
            assert!(c.validate().unwrap_err().to_string().contains(field));
        }
    }
}
