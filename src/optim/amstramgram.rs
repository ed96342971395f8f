//! AMStraMGRAM: ANaGRAM with two adaptive cutoffs per iteration, read off the
//! reconstruction-error curve.
//!
//! Reference: N. Schwencke, A. Rousselot, A. Shilova, C. Furtlehner,
//! *AMStraMGRAM*, arXiv 2510.15998 (2025); the rules follow the author's
//! public implementation (`run_amstramgram`, a later 1-D adaptation; the
//! paper's own code is not public).
//!
//! **Ranks.** At the start of an iteration the residual `r̃(θ)` is projected
//! on the left singular vectors of the previous narrow step's decomposition
//! (the reference implementation's order; the first iteration uses the
//! decomposition at θ), giving `c = Uᵀ r̃` and
//! `RCE_n = ‖r̃ − Σ_{k≤n} U_k c_k‖/√S` from tail sums plus the explicit part
//! of r̃ outside span U ([`rce_from_tail_sums`]). With those σ and RCE:
//!
//! * `rank1 = #{n ≥ 1 : RCE_n < σ_n}` — where the RCE curve meets the singular values;
//! * `rank2 = #{n ≥ 1 : RCE_n ≥ ε}` — where it meets the current precision level ε;
//! * `r_min = max(1, min(rank1, rank2))`; "flattening" (`rank1 > rank2`) is
//!   sticky and logged;
//! * `r_max` starts at the elbow of `log σ` beyond `r_min` ([`elbow`]), never
//!   falls below `rank1`, and during the lift-off (until `r_min ≥ r_max` first
//!   holds) grows by one whenever `r_min` did not change since the previous
//!   iteration; capped at `min(S, P) − 1`.
//!
//! **Steps.** A wide step keeping the components `0..=r_max` (inclusive, as
//! in the reference code) with a grid line search, then — after
//! re-assembling and re-decomposing at the new θ — a narrow step keeping
//! `0..=r_min`, grid line search. No termination of its own.
//!
//! **Precision level.** ε is in RMS units of the solved system; a converging
//! run settles where the residual's RMS has reached it (loss ≈ 1.2·ε²). With
//! `start_precision = precision` the level is fixed. Otherwise natgrad's
//! continuation starts at `start_precision` and multiplies ε by
//! `precision_factor` each time `rank2 ≤ 1`, down to `precision` (default
//! `1e-6 → 1e-14`). A run keeps the loss of the first level it settles at, so
//! the catalogue's most accurate presets use a fixed small level; why, with
//! measurements: docs/notes.md and docs/accuracy.md.
//!
//! **Line search.** The author's later grid `η = 0.5^(60 s²)`,
//! `s ∈ linspace(0, 1, 101)` (the wide step keeps components with tiny σ and
//! its direction can be so long that ANaGRAM's smallest step 2⁻³⁰ still
//! overshoots), searched coarse to fine with stride 10 (11 + at most 18 of
//! the 101 candidates, [`StepGrid`]); the reference code evaluates all 101
//! (`line_search.stride = 1`).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::linesearch::{StepGrid, grid_search};
use super::{Objective, Optimizer, OptimizerState, Phases, Spectrum, StepReport};
use crate::error::{Error, Result};
use crate::linalg::{
    Compute, PartialSvdConfig, SvdMethod, SystemSvd, SystemSvdWorkspace, rce_from_tail_sums,
};
use crate::residual::{System, Weighting};

/// Settings of [`Amstramgram`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmstramgramConfig {
    /// Final precision level ε_prec (RMS residual of the solved system;
    /// default 1e-14). The run settles at a loss ≈ 1.2·ε² of the first level
    /// it converges at (module docs).
    pub precision: f64,
    /// Precision level of the first iteration (≥ `precision`; default 1e-6).
    /// Equal to `precision` for a fixed level, which reaches the lowest
    /// losses where it converges (the catalogue's laplace2d and heat).
    pub start_precision: f64,
    /// Factor in (0, 1) applied to the level each time it is reached.
    pub precision_factor: f64,
    /// Row weighting of the system (default uniform).
    pub weighting: Weighting,
    /// Line-search grid of both steps (default `0.5^(60 s²)`, 101
    /// candidates, searched coarse to fine with stride 10; see the module docs).
    pub line_search: StepGrid,
    /// Decomposition: `full` (default) or `partial` (grown until the
    /// spectrum falls below 1% of the reconstruction error, past the wide
    /// cutoff). Over whole runs `partial` is not faster here: the wide cutoff
    /// soon needs a large part of the spectrum (docs/notes.md).
    pub svd: SvdMethod,
}

impl Default for AmstramgramConfig {
    fn default() -> Self {
        AmstramgramConfig {
            precision: 1e-14,
            start_precision: 1e-6,
            precision_factor: 0.1,
            weighting: Weighting::Uniform,
            line_search: StepGrid::Quadratic {
                count: 101,
                exponent: 60.0,
                stride: 10,
            },
            svd: SvdMethod::Full,
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
        if !(self.start_precision.is_finite() && self.start_precision >= self.precision) {
            return Err(Error::config(
                "optimizer.start_precision",
                format!(
                    "must be finite and ≥ precision ({}), got {}",
                    self.precision, self.start_precision
                ),
            ));
        }
        if !(self.precision_factor > 0.0 && self.precision_factor < 1.0) {
            return Err(Error::config(
                "optimizer.precision_factor",
                format!("must lie in (0, 1), got {}", self.precision_factor),
            ));
        }
        self.line_search.validate("optimizer.line_search")
    }
}

/// Where the adaptive cutoffs stand between iterations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// σ of the last narrow-step decomposition, whose basis `ws` still holds.
    basis_sigma: Option<Vec<f64>>,
    r: Vec<f64>,
    /// The current precision level ε of the continuation.
    stage_precision: Option<f64>,
    /// θ where the last narrow-step decomposition was taken: its basis is
    /// the one the next RCE curve is computed in.
    basis_theta: Option<Vec<f64>>,
    /// Set by [`Optimizer::restore`]: rebuild the basis at `basis_theta`
    /// before the next step (the decomposition is deterministic).
    basis_pending: bool,
    /// The current step's phase times.
    phases: Phases,
    /// Start rank of the next partial decomposition (the last one's final rank).
    svd_rank: usize,
    /// Start rank of the last decomposition, and of the narrow one whose basis is kept.
    svd_last_start: usize,
    basis_start: usize,
}

/// What [`Amstramgram`] saves in a checkpoint ([`super::OptimizerState::Amstramgram`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AmstramgramState {
    cutoffs: Option<Cutoffs>,
    stage_precision: Option<f64>,
    basis_theta: Option<Vec<f64>>,
    #[serde(default)]
    svd_rank: usize,
    #[serde(default)]
    basis_start: usize,
}

/// `RCE`-based ranks: `rank1 = #{n ≥ 1 : RCE_n < σ_n}`, `rank2 = #{n ≥ 1 : RCE_n ≥ ε_prec}`.
fn ranks(sigma: &[f64], rce: &[f64], precision: f64) -> (usize, usize) {
    let rank1 = (1..rce.len()).filter(|&n| rce[n] < sigma[n - 1]).count();
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
            basis_sigma: None,
            r: Vec::new(),
            stage_precision: None,
            basis_theta: None,
            basis_pending: false,
            phases: Phases::default(),
            svd_rank: 0,
            svd_last_start: 0,
            basis_start: 0,
        }
    }

    /// An optimiser with the given settings whose decompositions use the
    /// run's threads and device ([`Compute`]). A system the CUDA device takes
    /// gets the full decomposition there whatever `svd` says.
    pub fn with_compute(config: AmstramgramConfig, compute: &Compute) -> Result<Self> {
        Ok(Amstramgram {
            ws: SystemSvdWorkspace::new(compute)?,
            ..Amstramgram::new(config)
        })
    }

    /// Assemble and decompose at θ.
    fn decompose(&mut self, obj: &dyn Objective, theta: &[f64]) -> Result<SystemSvd> {
        let t0 = Instant::now();
        obj.system_into(theta, self.config.weighting, &mut self.sys)?;
        let t1 = Instant::now();
        let (p, s) = (self.sys.jac_t.nrows(), self.sys.jac_t.ncols());
        let method = match self.ws.on_device(s, p) {
            true => SvdMethod::Full,
            false => self.config.svd,
        };
        let svd = match method {
            SvdMethod::Full => SystemSvd::compute_with(&self.sys.jac_t, &self.sys.r, &mut self.ws)?,
            SvdMethod::Partial => {
                // Components the cutoffs can use: beyond the current wide
                // cutoff, and down to where σ has fallen well below the
                // reconstruction error (RCE_n < σ_n can no longer hold; the
                // factor 0.01 leaves room for the smaller residual after the
                // step, whose RCE is read in this basis) or the RCE below the
                // final precision.
                let need = self.cutoffs.as_ref().map_or(0, |c| c.r_max + 1);
                let floor = self.config.precision;
                let enough = |sigma: &[f64], rce: &[f64]| {
                    let n = sigma.len();
                    n > need && (sigma[n - 1] < 0.01 * rce[n] || rce[n] < floor)
                };
                self.svd_last_start = self.svd_rank;
                let (svd, info) = SystemSvd::compute_partial(
                    &self.sys.jac_t,
                    &self.sys.r,
                    &mut self.ws,
                    self.svd_rank,
                    &PartialSvdConfig::default(),
                    &enough,
                )?;
                self.svd_rank = info.final_rank;
                svd
            }
        };
        let ph = &mut self.phases;
        ph.assembly_s += (t1 - t0).as_secs_f64();
        ph.assemblies += 1;
        ph.decomposition_s += t1.elapsed().as_secs_f64();
        ph.decompositions += 1;
        ph.decomposition_flops += svd.flops;
        ph.device_decompositions += usize::from(svd.on_device);
        ph.computed_rank = ph.computed_rank.max(svd.s.len());
        Ok(svd)
    }

    /// [`grid_search`] with its time and evaluations added to the step's phases.
    fn line_search(&mut self, obj: &dyn Objective, theta: &[f64], d: &[f64]) -> Result<(f64, f64)> {
        let t = Instant::now();
        let pick = grid_search(obj, theta, d, &self.config.line_search)?;
        self.phases.line_search_s += t.elapsed().as_secs_f64();
        self.phases.loss_evals += pick.evaluations;
        Ok((pick.eta, pick.loss))
    }

    /// Update the cutoffs from the ranks at the current θ; returns `(r_min, r_max)`.
    fn update_cutoffs(&mut self, sigma: &[f64], rank1: usize, rank2: usize) -> (usize, usize) {
        let m = sigma.len().max(1);
        let r_min = rank1.min(rank2).max(1).min(m - 1);
        let c = self.cutoffs.get_or_insert_with(|| {
            let logs: Vec<f64> = sigma[r_min..]
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

    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], loss: f64) -> Result<StepReport> {
        let t0 = Instant::now();
        self.phases = Phases::default();
        if self.basis_pending {
            self.basis_pending = false;
            if let Some(b) = self.basis_theta.clone() {
                let next_rank = self.svd_rank;
                self.svd_rank = self.basis_start;
                let svd = self.decompose(obj, &b)?;
                self.svd_rank = next_rank;
                self.basis_sigma = Some(svd.s.clone());
                self.ws.recycle(svd);
            }
        }
        // The RCE curve of the residual at θ in the basis of the previous
        // narrow step (at the first iteration: of the decomposition at θ).
        let (svd, sigma, rce) = match self.basis_sigma.take() {
            Some(sigma) => {
                let t = Instant::now();
                obj.residuals_into(theta, self.config.weighting, &mut self.r)?;
                self.phases.assembly_s += t.elapsed().as_secs_f64();
                let t = Instant::now();
                let (c, outside2) = self.ws.reproject(&self.r)?;
                self.phases.decomposition_s += t.elapsed().as_secs_f64();
                let rce = rce_from_tail_sums(outside2, &c, self.r.len());
                (self.decompose(obj, theta)?, sigma, rce)
            }
            None => {
                let svd = self.decompose(obj, theta)?;
                let (sigma, rce) = (svd.s.clone(), svd.rce_curve());
                (svd, sigma, rce)
            }
        };
        let sigma1 = svd.s.first().copied().unwrap_or(0.0);
        let mut prec = *self
            .stage_precision
            .get_or_insert(self.config.start_precision);
        let (rank1, mut rank2) = ranks(&sigma, &rce, prec);
        while rank2 <= 1 && prec > self.config.precision {
            prec = (prec * self.config.precision_factor).max(self.config.precision);
            rank2 = ranks(&sigma, &rce, prec).1;
        }
        self.stage_precision = Some(prec);
        let (r_min, r_max) = self.update_cutoffs(&sigma, rank1, rank2);
        let spectrum = Spectrum {
            singular_values: sigma,
            rce,
            sqrt_loss: loss.sqrt(),
            kept: r_min + 1,
            kept_wide: Some(r_max + 1),
            rank1: Some(rank1),
            rank2: Some(rank2),
            precision: Some(prec),
        };
        // Wide step: components 0..=r_max.
        let d1 = svd.truncated_solve(r_max + 1);
        self.ws.recycle(svd);
        let (eta1, _) = self.line_search(obj, theta, &d1)?;
        let mut wide: Vec<f64> = theta.iter().zip(&d1).map(|(t, d)| t - eta1 * d).collect();
        // Narrow step at the new θ: components 0..=r_min.
        let svd = self.decompose(obj, &wide)?;
        self.basis_start = self.svd_last_start;
        let d2 = svd.truncated_solve(r_min + 1);
        self.basis_sigma = Some(svd.s.clone());
        self.basis_theta = Some(wide.clone());
        self.ws.recycle(svd);
        let (eta2, loss) = self.line_search(obj, &wide, &d2)?;
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
            spectrum: Some(spectrum),
            phases: Some(self.phases),
        })
    }

    /// Drops the basis of the last narrow decomposition (its rows were the
    /// old points): the next RCE curve is that of a fresh decomposition.
    /// The cutoffs and the precision stage are kept.
    fn objective_changed(&mut self) {
        self.basis_sigma = None;
        self.basis_theta = None;
        self.basis_pending = false;
    }

    fn state(&self) -> OptimizerState {
        OptimizerState::Amstramgram(AmstramgramState {
            cutoffs: self.cutoffs.clone(),
            stage_precision: self.stage_precision,
            basis_theta: self.basis_theta.clone(),
            svd_rank: self.svd_rank,
            basis_start: self.basis_start,
        })
    }

    fn restore(&mut self, state: OptimizerState) -> Result<()> {
        let s = match state {
            OptimizerState::Amstramgram(s) => s,
            other => return Err(other.mismatch("amstramgram")),
        };
        self.cutoffs = s.cutoffs;
        self.stage_precision = s.stage_precision;
        self.basis_pending = s.basis_theta.is_some();
        self.basis_theta = s.basis_theta;
        self.basis_sigma = None;
        self.svd_rank = s.svd_rank;
        self.basis_start = s.basis_start;
        Ok(())
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

    /// The two ranks on a hand-made spectrum: RCE crosses σ after 3 components
    /// and the precision after 2.
    #[test]
    fn ranks_count_the_crossings() {
        let sigma = [10.0, 1.0, 0.1, 0.01, 0.001];
        let rce = [5.0, 0.5, 0.05, 0.02, 0.015, 0.014];
        assert_eq!(ranks(&sigma, &rce, 0.03), (3, 2));
        // Precision above every RCE value: rank2 = 0.
        assert_eq!(ranks(&sigma, &rce, 10.0).1, 0);
    }

    /// Every field is validated and named.
    #[test]
    fn config_validation_names_fields() {
        let ok = AmstramgramConfig::default();
        ok.validate().unwrap();
        for (cfg, field) in [
            (
                AmstramgramConfig {
                    precision: 0.0,
                    ..ok.clone()
                },
                "optimizer.precision",
            ),
            (
                AmstramgramConfig {
                    start_precision: 1e-16,
                    ..ok.clone()
                },
                "optimizer.start_precision",
            ),
            (
                AmstramgramConfig {
                    precision_factor: 1.0,
                    ..ok.clone()
                },
                "optimizer.precision_factor",
            ),
        ] {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }

    /// A few iterations on laplace2d: the loss decreases and the ranks are consistent.
    #[test]
    fn decreases_the_laplace2d_loss() {
        let pb = crate::problems::laplace2d();
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
