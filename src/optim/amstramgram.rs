//! AMStraMGRAM: ANaGRAM with two adaptive cutoffs per iteration, read off the
//! reconstruction-error curve.
//!
//! Reference: N. Schwencke, A. Rousselot, A. Shilova, C. Furtlehner,
//! *AMStraMGRAM*, arXiv 2510.15998 (2025); rules as in ALGORITHMS.md §1.2.
//!
//! **Status: first implementation, not yet validated.** On laplace2d (seed 0,
//! defaults) it decreases the loss steadily but slowly — 400 iterations,
//! 21.8 s, loss 3.5e-5, l2_abs 2.8e-3 — with `rank1 ≈ 120` of 129, far from
//! the papers' machine precision. The unit conventions of RCE versus σ, the
//! inclusive ranks and the grid are the first things to check.
//!
//! At θ, with the SVD `φ̃ = U Σ Vᵀ` of the weighted system and `c = Uᵀ r̃`,
//! `RCE_n = ‖r̃ − Σ_{k≤n} U_k c_k‖/√S` (computed from tail sums plus the
//! explicit part of r̃ outside span U). Then
//!
//! * `rank1 = #{n : RCE_n < σ_n}` — where the RCE curve meets the singular values;
//! * `rank2 = #{n : RCE_n ≥ ε_prec}` — where it meets the precision level;
//! * `r_min = max(1, min(rank1, rank2))` (once `rank1 > rank2` — "flattening" — it
//!   follows `rank2`; the flag is sticky and logged);
//! * `r_max` starts at the elbow of `log σ` beyond `r_min`, never falls below
//!   `rank1`, and during the initial lift-off (until `r_min ≥ r_max` first
//!   holds) grows by one whenever `r_min` did not change since the previous
//!   iteration; capped at `min(S, P)`.
//!
//! One iteration is two natural-gradient steps: a wide one keeping the
//! components `0..=r_max`, grid line search, then — after re-assembling and
//! re-decomposing at the new θ — a narrow one keeping `0..=r_min`, grid line
//! search. Both SVDs are taken at their own θ (DESIGN.md §5); the ranks are
//! read from the first. No termination of its own.
//!
//! Defaults: `ε_prec = 1e-14` (RMS residual units of the solved system: the
//! level where the papers' figures end), uniform weighting, the author's
//! later grid `η = 0.5^(60 s²)`, `s ∈ linspace(0, 1, 101)`: the wide step
//! keeps components with tiny σ, and its direction can be so long that
//! ANaGRAM's smallest step 2⁻³⁰ still overshoots (measured on laplace2d:
//! the loss went from 1e2 to 4e8 in the first iteration with that grid).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::linesearch::{StepGrid, grid_search};
use super::{Objective, Optimizer, StepReport};
use crate::error::{Error, Result};
use crate::linalg::{SystemSvd, SystemSvdWorkspace};
use crate::residual::{System, Weighting};

/// Settings of [`Amstramgram`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmstramgramConfig {
    /// Precision level ε_prec (RMS residual of the solved system).
    pub precision: f64,
    /// Row weighting of the system (default uniform).
    pub weighting: Weighting,
    /// Line-search grid of both steps.
    pub line_search: StepGrid,
}

impl Default for AmstramgramConfig {
    fn default() -> Self {
        AmstramgramConfig {
            precision: 1e-14,
            weighting: Weighting::Uniform,
            line_search: StepGrid::Quadratic {
                count: 101,
                exponent: 60.0,
            },
        }
    }
}

impl AmstramgramConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<()> {
        if !(self.precision.is_finite() && self.precision > 0.0) {
            return Err(Error::config(
                "optimizer.precision",
                format!("must be finite and > 0, got {}", self.precision),
            ));
        }
        self.line_search.validate("optimizer.line_search")
    }
}

/// Where the adaptive cutoffs stand between iterations.
#[derive(Clone, Debug, PartialEq)]
struct Cutoffs {
    r_max: usize,
    previous_r_min: Option<usize>,
    lifted_off: bool,
    flattening: bool,
}

/// The AMStraMGRAM optimiser (see the module documentation).
#[derive(Debug)]
pub struct Amstramgram {
    config: AmstramgramConfig,
    sys: System,
    ws: SystemSvdWorkspace,
    cutoffs: Option<Cutoffs>,
}

/// `RCE`-based ranks of one decomposition.
fn ranks(svd: &SystemSvd, precision: f64) -> (usize, usize) {
    let rce = svd.rce_curve();
    let rank1 = (1..rce.len()).filter(|&n| rce[n] < svd.s[n - 1]).count();
    let rank2 = (1..rce.len()).filter(|&n| rce[n] >= precision).count();
    (rank1, rank2)
}

/// Index of the elbow of a curve `y_0, …, y_{L−1}`: the point farthest below
/// the chord from the first to the last point (0 for fewer than 3 points).
pub fn elbow(y: &[f64]) -> usize {
    let l = y.len();
    if l < 3 {
        return 0;
    }
    let (y0, y1) = (y[0], y[l - 1]);
    let span = (l - 1) as f64;
    let mut best = (0, f64::NEG_INFINITY);
    for (k, &yk) in y.iter().enumerate() {
        let chord = y0 + (y1 - y0) * k as f64 / span;
        let below = chord - yk;
        if below > best.1 {
            best = (k, below);
        }
    }
    best.0
}

impl Amstramgram {
    /// An optimiser with the given settings.
    pub fn new(config: AmstramgramConfig) -> Self {
        Amstramgram {
            config,
            sys: System::default(),
            ws: SystemSvdWorkspace::default(),
            cutoffs: None,
        }
    }

    /// Assemble and decompose at θ.
    fn decompose(&mut self, obj: &dyn Objective, theta: &[f64]) -> Result<SystemSvd> {
        obj.system_into(theta, self.config.weighting, &mut self.sys)?;
        SystemSvd::compute_with(&self.sys.jac_t, &self.sys.r, &mut self.ws)
    }

    /// Update the cutoffs from the ranks at the current θ; returns `(r_min, r_max)`.
    fn update_cutoffs(&mut self, svd: &SystemSvd, rank1: usize, rank2: usize) -> (usize, usize) {
        let m = svd.s.len().max(1);
        let r_min = rank1.min(rank2).max(1).min(m - 1);
        let c = self.cutoffs.get_or_insert_with(|| {
            let logs: Vec<f64> = svd.s[r_min..]
                .iter()
                .map(|s| s.max(f64::MIN_POSITIVE).ln())
                .collect();
            Cutoffs {
                r_max: r_min + elbow(&logs),
                previous_r_min: None,
                lifted_off: false,
                flattening: false,
            }
        });
        c.flattening |= rank1 > rank2;
        c.r_max = c.r_max.max(rank1);
        if !c.lifted_off {
            if r_min >= c.r_max {
                c.lifted_off = true;
            } else if c.previous_r_min == Some(r_min) {
                c.r_max += 1;
            }
            c.previous_r_min = Some(r_min);
        }
        c.r_max = c.r_max.min(m - 1);
        (r_min, c.r_max)
    }
}

impl Optimizer for Amstramgram {
    fn name(&self) -> &'static str {
        "amstramgram"
    }

    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], _loss: f64) -> Result<StepReport> {
        let t0 = Instant::now();
        let svd = self.decompose(obj, theta)?;
        let sigma1 = svd.s.first().copied().unwrap_or(0.0);
        let (rank1, rank2) = ranks(&svd, self.config.precision);
        let (r_min, r_max) = self.update_cutoffs(&svd, rank1, rank2);
        // Wide step: components 0..=r_max.
        let d1 = svd.truncated_solve(r_max + 1);
        self.ws.recycle(svd);
        let (eta1, _) = grid_search(obj, theta, &d1, &self.config.line_search)?;
        let mut wide: Vec<f64> = theta.iter().zip(&d1).map(|(t, d)| t - eta1 * d).collect();
        // Narrow step at the new θ: components 0..=r_min.
        let svd = self.decompose(obj, &wide)?;
        let d2 = svd.truncated_solve(r_min + 1);
        self.ws.recycle(svd);
        let (eta2, loss) = grid_search(obj, &wide, &d2, &self.config.line_search)?;
        for (t, d) in wide.iter_mut().zip(&d2) {
            *t -= eta2 * d;
        }
        theta.copy_from_slice(&wide);
        let flattening = self.cutoffs.as_ref().is_some_and(|c| c.flattening);
        Ok(StepReport {
            loss,
            rank: Some(r_min + 1),
            step_size: Some(eta2),
            extra: vec![
                (r_max + 1) as f64,
                eta1,
                rank1 as f64,
                rank2 as f64,
                f64::from(u8::from(flattening)),
                sigma1,
                t0.elapsed().as_secs_f64(),
            ],
        })
    }

    fn extra_columns(&self) -> &'static [&'static str] {
        &[
            "rank_wide",
            "step_size_wide",
            "rank1",
            "rank2",
            "flattening",
            "sigma_max",
            "t_step",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elbow_of_a_bent_curve() {
        // Steep then flat: the bend is at index 3.
        let y = [0.0, -3.0, -6.0, -9.0, -9.5, -10.0, -10.5, -11.0];
        assert_eq!(elbow(&y), 3);
        assert_eq!(elbow(&[1.0, 0.0]), 0);
    }

    /// A few iterations on laplace2d: the loss decreases and the ranks are consistent.
    #[test]
    fn decreases_the_laplace2d_loss() {
        let pb = crate::problems::build("laplace2d").unwrap();
        let ls = pb.least_squares().unwrap();
        let mut theta = pb.initial_theta(0).unwrap();
        let l0 = ls.loss(&theta).unwrap();
        let mut opt = Amstramgram::new(AmstramgramConfig::default());
        let mut loss = l0;
        for _ in 0..5 {
            let rep = opt.step(&ls, &mut theta, loss).unwrap();
            assert!(
                rep.rank.unwrap() <= rep.extra[0] as usize,
                "narrow rank exceeds wide rank"
            );
            loss = rep.loss;
        }
        assert!(loss < l0, "{l0} → {loss}");
    }
}
