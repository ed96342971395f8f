//! ANaGRAM: natural gradient through a truncated SVD of the residual Jacobian.
//!
//! Reference: N. Schwencke, C. Furtlehner, *ANaGRAM: A Natural Gradient
//! Relative to Adapted Model for efficient PINNs learning*, ICLR 2025.
//!
//! Each step assembles the weighted system `(r̃, φ̃)`, takes the thin SVD
//! `φ̃ = U Σ Vᵀ`, keeps the singular values `σ_k ≥ τ` and moves along
//! `d = Σ_{kept} V_k σ_k⁻¹ (U_kᵀ r̃)` (the truncated pseudo-inverse
//! `φ̃⁺_τ r̃`, i.e. Gauss–Newton in kernel form, `O(min(PS², P²S))`, no P×P
//! matrix), with `θ ← θ − η d` and η from a grid line search on the loss.
//!
//! Defaults: cutoff `τ = √(ε·P)·σ₁` (relative; the reference code's
//! `rcond = None`), [`Weighting::Uniform`] rows (as in the reference code),
//! grid `η ∈ {0.5^k, k = 0..30}`. The papers' benchmark settings override the
//! cutoff (laplace2d: 1e-6 absolute, heat: 1e-5 absolute), which the problem
//! catalogue carries. No termination of its own: it runs until the trainer's
//! budget or target is reached.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::linesearch::{GridStep, StepGrid, grid_step};
use super::{Objective, Optimizer, OptimizerState, Phases, Spectrum, StepReport};
use crate::error::{Error, Result};
use crate::linalg::{Compute, PartialSvdConfig, SvdMethod, SystemSvd, SystemSvdWorkspace};
use crate::residual::{System, Weighting};

/// The singular-value cutoff τ: components with `σ_k < τ` are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Cutoff {
    /// `τ = √(ε·P)·σ₁`, ε the f64 machine epsilon.
    #[default]
    Default,
    /// `τ = factor·σ₁`.
    Relative {
        /// The factor.
        factor: f64,
    },
    /// `τ = value`, in the units of the weighted system.
    Absolute {
        /// The threshold.
        value: f64,
    },
}

impl Cutoff {
    /// The threshold for a system with `p` parameters and largest singular value `sigma1`.
    pub fn threshold(&self, p: usize, sigma1: f64) -> f64 {
        match *self {
            Cutoff::Default => (f64::EPSILON * p as f64).sqrt() * sigma1,
            Cutoff::Relative { factor } => factor * sigma1,
            Cutoff::Absolute { value } => value,
        }
    }

    /// Parse the command-line form: `default`, `rel:X` (relative) or `X` (absolute).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            Error::config(
                "cutoff",
                format!(
                    "`{text}` is not a cutoff; use a number (absolute), `rel:X` (relative to σ₁) or `default`"
                ),
            )
        };
        let c = if text == "default" {
            Cutoff::Default
        } else if let Some(rest) = text.strip_prefix("rel:") {
            Cutoff::Relative {
                factor: rest.parse().map_err(|_| bad())?,
            }
        } else {
            Cutoff::Absolute {
                value: text.parse().map_err(|_| bad())?,
            }
        };
        c.validate()?;
        Ok(c)
    }

    /// Check the value is finite and non-negative.
    pub fn validate(&self) -> Result<()> {
        let v = match *self {
            Cutoff::Default => return Ok(()),
            Cutoff::Relative { factor } => factor,
            Cutoff::Absolute { value } => value,
        };
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(Error::config(
                "optimizer.cutoff",
                format!("must be finite and ≥ 0, got {v}"),
            ))
        }
    }
}

/// Settings of [`Anagram`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnagramConfig {
    /// Singular-value cutoff (default `√(εP)·σ₁`).
    pub cutoff: Cutoff,
    /// Row weighting of the system (default uniform).
    pub weighting: Weighting,
    /// Line-search grid (default `0.5^k`, k = 0..30, every candidate
    /// evaluated; a coarse-to-fine search measured worse, docs/notes.md).
    pub line_search: StepGrid,
    /// Tikhonov (Levenberg–Marquardt) damping λ ≥ 0 in units of σ²: the kept
    /// components are weighted by `σ/(σ² + λ)` instead of `1/σ`. Default 0
    /// (hard truncation, the reference method); with `cutoff` 0 and λ > 0 the
    /// step is the classical LM step `(φ̃ᵀφ̃ + λI)⁻¹ φ̃ᵀ r̃`.
    pub damping: f64,
    /// Decomposition: `partial` (default; the leading triplets down to the
    /// cutoff, [`crate::linalg::PartialSvdConfig`]; 3–5× faster steps on
    /// burgers and allen-cahn, docs/notes.md) or `full`.
    pub svd: SvdMethod,
}

impl Default for AnagramConfig {
    fn default() -> Self {
        AnagramConfig {
            cutoff: Cutoff::default(),
            weighting: Weighting::default(),
            line_search: StepGrid::default(),
            damping: 0.0,
            svd: SvdMethod::Partial,
        }
    }
}

impl AnagramConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<()> {
        self.cutoff.validate()?;
        if !(self.damping.is_finite() && self.damping >= 0.0) {
            return Err(Error::config(
                "optimizer.damping",
                format!("must be finite and ≥ 0, got {}", self.damping),
            ));
        }
        self.line_search.validate("optimizer.line_search")
    }
}

/// The ANaGRAM optimiser (see the module documentation).
#[derive(Debug)]
pub struct Anagram {
    config: AnagramConfig,
    sys: System,
    ws: SystemSvdWorkspace,
    /// Start rank of the next partial decomposition (the last one's final rank).
    svd_rank: usize,
}

/// What [`Anagram`] saves in a checkpoint ([`super::OptimizerState::Anagram`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnagramState {
    svd_rank: usize,
}

impl Anagram {
    /// An optimiser with the given settings, decomposing on one CPU thread.
    pub fn new(config: AnagramConfig) -> Self {
        Anagram {
            config,
            sys: System::default(),
            ws: SystemSvdWorkspace::default(),
            svd_rank: 0,
        }
    }

    /// An optimiser with the given settings whose decompositions use the
    /// run's threads and device ([`Compute`]). A system the CUDA device takes
    /// gets the full decomposition there whatever `svd` says (the partial
    /// SVD is a CPU economy).
    pub fn with_compute(config: AnagramConfig, compute: &Compute) -> Result<Self> {
        Ok(Anagram {
            ws: SystemSvdWorkspace::new(compute)?,
            ..Anagram::new(config)
        })
    }

    /// The direction `d = φ̃⁺_τ r̃` at θ, with what the step reports.
    pub fn direction(&mut self, obj: &dyn Objective, theta: &[f64]) -> Result<Direction> {
        let t0 = Instant::now();
        obj.system_into(theta, self.config.weighting, &mut self.sys)?;
        let t1 = Instant::now();
        let sys = &self.sys;
        let (p, s) = (sys.jac_t.nrows(), sys.jac_t.ncols());
        let cutoff = self.config.cutoff;
        let method = match self.ws.on_device(s, p) {
            true => SvdMethod::Full,
            false => self.config.svd,
        };
        let svd = match method {
            SvdMethod::Full => SystemSvd::compute_with(&sys.jac_t, &sys.r, &mut self.ws)?,
            SvdMethod::Partial => {
                // Enough once the smallest returned σ is below the cutoff.
                let enough = |sigma: &[f64], _rce: &[f64]| {
                    sigma.last().is_some_and(|&last| {
                        last < cutoff.threshold(p, sigma.first().copied().unwrap_or(0.0))
                    })
                };
                let (svd, info) = SystemSvd::compute_partial(
                    &sys.jac_t,
                    &sys.r,
                    &mut self.ws,
                    self.svd_rank,
                    &PartialSvdConfig::default(),
                    &enough,
                )?;
                self.svd_rank = info.final_rank;
                svd
            }
        };
        let sigma1 = svd.s.first().copied().unwrap_or(0.0);
        let tau = cutoff.threshold(p, sigma1);
        let keep = svd.rank_above(tau);
        let lambda = self.config.damping;
        let d = if lambda > 0.0 {
            svd.filtered_solve(keep, |s| s / (s * s + lambda))
        } else {
            svd.truncated_solve(keep)
        };
        let singular_values = svd.s.clone();
        let rce = svd.rce_curve();
        let (svd_flops, on_device) = (svd.flops, svd.on_device);
        self.ws.recycle(svd);
        Ok(Direction {
            d,
            keep,
            singular_values,
            rce,
            sigma1,
            tau,
            assemble_s: (t1 - t0).as_secs_f64(),
            svd_s: t1.elapsed().as_secs_f64(),
            svd_flops,
            on_device,
        })
    }
}

/// An ANaGRAM direction and how it was obtained.
#[derive(Clone, Debug)]
pub struct Direction {
    /// `d = φ̃⁺_τ r̃`.
    pub d: Vec<f64>,
    /// Singular directions kept.
    pub keep: usize,
    /// All singular values of φ̃.
    pub singular_values: Vec<f64>,
    /// The reconstruction-error curve (see [`SystemSvd::rce_curve`]).
    pub rce: Vec<f64>,
    /// Largest singular value σ₁.
    pub sigma1: f64,
    /// The threshold τ applied.
    pub tau: f64,
    /// Seconds spent assembling `(r̃, φ̃)`.
    pub assemble_s: f64,
    /// Seconds spent in the SVD and the solve.
    pub svd_s: f64,
    /// The decomposition's flops ([`SystemSvd::flops`]).
    pub svd_flops: f64,
    /// Whether the decomposition ran on the CUDA device.
    pub on_device: bool,
}

impl Optimizer for Anagram {
    fn name(&self) -> &'static str {
        "anagram"
    }

    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], loss: f64) -> Result<StepReport> {
        let mut dir = self.direction(obj, theta)?;
        let computed = dir.singular_values.len();
        let spectrum = Spectrum {
            singular_values: std::mem::take(&mut dir.singular_values),
            rce: std::mem::take(&mut dir.rce),
            sqrt_loss: loss.sqrt(),
            kept: dir.keep,
            ..Default::default()
        };
        let GridStep {
            eta,
            loss,
            seconds: ls_s,
            evaluations,
        } = grid_step(obj, theta, &dir.d, &self.config.line_search)?;
        Ok(StepReport {
            loss,
            rank: Some(dir.keep),
            step_size: Some(eta),
            extra: vec![dir.sigma1, dir.tau, dir.assemble_s, dir.svd_s, ls_s],
            spectrum: Some(spectrum),
            phases: Some(Phases {
                assembly_s: dir.assemble_s,
                assemblies: 1,
                decomposition_s: dir.svd_s,
                decompositions: 1,
                decomposition_flops: dir.svd_flops,
                device_decompositions: usize::from(dir.on_device),
                computed_rank: computed,
                line_search_s: ls_s,
                loss_evals: evaluations,
            }),
        })
    }

    fn extra_columns(&self) -> &'static [&'static str] {
        &["sigma_max", "cutoff", "t_assemble", "t_svd", "t_linesearch"]
    }

    /// The partial SVD's start rank (the decomposition is otherwise a function of θ).
    fn state(&self) -> OptimizerState {
        OptimizerState::Anagram(AnagramState {
            svd_rank: self.svd_rank,
        })
    }

    fn restore(&mut self, state: OptimizerState) -> Result<()> {
        self.svd_rank = match state {
            OptimizerState::Anagram(s) => s.svd_rank,
            // Before the first step: the partial SVD starts from scratch.
            OptimizerState::None => 0,
            other => return Err(other.mismatch("anagram")),
        };
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::linalg::{Matrix, Par, Svd, View, lstsq_qr, matmul_in_place};
    use crate::optim::testing::Linear;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn one_step(obj: &Linear, cutoff: Cutoff, theta0: &[f64]) -> Vec<f64> {
        let mut opt = Anagram::new(AnagramConfig {
            cutoff,
            line_search: StepGrid::Halving {
                count: 1,
                stride: 1,
            },
            ..Default::default()
        });
        let mut theta = theta0.to_vec();
        let l0 = obj.loss(&theta).unwrap();
        opt.step(obj, &mut theta, l0).unwrap();
        theta
    }

    /// Full rank, cutoff below every σ: one step with η = 1 lands on the
    /// least-squares solution, checked against an independent QR solve.
    #[test]
    fn full_rank_step_is_least_squares_solution() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (s, p) = (50, 7);
        let a = Matrix::from_fn(s, p, |_, _| rng.random_range(-1.0..1.0));
        let b: Vec<f64> = (0..s).map(|_| rng.random_range(-1.0..1.0)).collect();
        let theta0: Vec<f64> = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
        let obj = Linear {
            a: a.clone(),
            b: b.clone(),
        };
        let theta1 = one_step(&obj, Cutoff::Absolute { value: 1e-12 }, &theta0);
        let x = lstsq_qr(&a, &b).unwrap();
        for (u, v) in theta1.iter().zip(&x) {
            assert!((u - v).abs() < 1e-12, "{u} vs {v}");
        }
    }

    /// Levenberg–Marquardt option: with cutoff 0 and damping λ the step d
    /// solves the damped normal equations `(AᵀA + λI) d = Aᵀ r₀`, checked by
    /// the residual of those equations.
    #[test]
    fn damped_step_solves_damped_normal_equations() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let (s, p) = (40, 6);
        let a = Matrix::from_fn(s, p, |_, _| rng.random_range(-1.0..1.0));
        let b: Vec<f64> = (0..s).map(|_| rng.random_range(-1.0..1.0)).collect();
        let theta0: Vec<f64> = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
        let obj = Linear { a: a.clone(), b };
        let lambda = 0.7;
        let mut opt = Anagram::new(AnagramConfig {
            cutoff: Cutoff::Absolute { value: 0.0 },
            damping: lambda,
            ..Default::default()
        });
        let d = opt.direction(&obj, &theta0).unwrap().d;
        let r0 = obj.residual(&theta0);
        let atr = a.transpose().mul_vec(&r0);
        let ad = a.mul_vec(&d);
        let atad = a.transpose().mul_vec(&ad);
        for i in 0..p {
            let lhs = atad[i] + lambda * d[i];
            assert!(
                (lhs - atr[i]).abs() < 1e-12 * (1.0 + atr[i].abs()),
                "{lhs} vs {}",
                atr[i]
            );
        }
        let bad = AnagramConfig {
            damping: -1.0,
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("optimizer.damping")
        );
    }

    /// A matrix with known SVD and a spectral gap; the cutoff inside the gap:
    /// the step equals θ₀ − V_k Σ_k⁻¹ U_kᵀ r₀ built from the known factors.
    #[test]
    fn truncated_step_matches_known_factors() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let (s, p, k) = (30, 6, 3);
        let orth = |rng: &mut ChaCha8Rng, n: usize, m: usize| {
            let g = Matrix::from_fn(n, m, |_, _| rng.random_range(-1.0..1.0));
            // Orthonormal columns from the SVD of a random matrix (reconstruction-checked in linalg).
            Svd::compute(View::col_major(g.as_slice(), n, m), Par::Seq)
                .unwrap()
                .u
        };
        let u0 = orth(&mut rng, s, p);
        let v0 = orth(&mut rng, p, p);
        let sig = [3.0, 2.0, 1.0, 1e-3, 5e-4, 1e-4];
        let mut us = u0.clone();
        for j in 0..p {
            us.col_mut(j).iter_mut().for_each(|x| *x *= sig[j]);
        }
        let mut a = Matrix::zeros(s, p);
        matmul_in_place(
            a.as_mut_slice(),
            View::col_major(us.as_slice(), s, p),
            View::col_major(v0.as_slice(), p, p).t(),
            false,
            Par::Seq,
        );
        let b: Vec<f64> = (0..s).map(|_| rng.random_range(-1.0..1.0)).collect();
        let theta0: Vec<f64> = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
        let obj = Linear { a, b };
        let r0 = obj.residual(&theta0);
        let mut expected = theta0.clone();
        for j in 0..k {
            let c = crate::linalg::dot(u0.col(j), &r0) / sig[j];
            for (e, v) in expected.iter_mut().zip(v0.col(j)) {
                *e -= c * v;
            }
        }
        for cutoff in [
            Cutoff::Absolute { value: 0.1 },
            Cutoff::Relative { factor: 0.1 / 3.0 },
        ] {
            let theta1 = one_step(&obj, cutoff, &theta0);
            for (u, v) in theta1.iter().zip(&expected) {
                assert!((u - v).abs() < 1e-12, "{cutoff:?}: {u} vs {v}");
            }
        }
    }

    #[test]
    fn cutoff_parsing() {
        assert_eq!(
            Cutoff::parse("1e-6").unwrap(),
            Cutoff::Absolute { value: 1e-6 }
        );
        assert_eq!(
            Cutoff::parse("rel:1e-7").unwrap(),
            Cutoff::Relative { factor: 1e-7 }
        );
        assert_eq!(Cutoff::parse("default").unwrap(), Cutoff::Default);
        assert!(Cutoff::parse("-1").is_err());
        assert!(Cutoff::parse("abc").is_err());
        assert!(Cutoff::parse("nan").is_err());
    }

    /// On a real system (heat, P = 257 ≥ the partial SVD's minimum size)
    /// the partial SVD gives the full SVD's steps: 5 iterations with the
    /// paper's cutoff (1e-5) from the same θ end at the same loss to 1e-9
    /// relative, using far fewer than P singular triplets.
    #[test]
    fn partial_svd_steps_match_full_svd_steps() {
        use crate::problems;
        let pb = problems::heat();
        let ls = pb.least_squares().unwrap();
        let run = |svd: SvdMethod| {
            let mut opt = Anagram::new(AnagramConfig {
                cutoff: Cutoff::Absolute { value: 1e-5 },
                svd,
                ..Default::default()
            });
            let mut theta = pb.initial_theta(0).unwrap();
            let mut loss = ls.loss(&theta).unwrap();
            let mut kept = vec![];
            for _ in 0..5 {
                let r = opt.step(&ls, &mut theta, loss).unwrap();
                loss = r.loss;
                kept.push((r.rank.unwrap(), r.phases.unwrap().computed_rank));
            }
            (loss, kept)
        };
        let (lf, kf) = run(SvdMethod::Full);
        let (lp, kp) = run(SvdMethod::Partial);
        assert!(
            (lf - lp).abs() <= 1e-9 * lf,
            "loss {lf:e} (full) vs {lp:e} (partial)"
        );
        for ((keep_f, computed_f), (keep_p, computed_p)) in kf.iter().zip(&kp) {
            assert_eq!(keep_f, keep_p);
            assert_eq!(*computed_f, 257);
            assert!(
                *computed_p < 257 / 2,
                "partial computed {computed_p} triplets"
            );
        }
    }
}
