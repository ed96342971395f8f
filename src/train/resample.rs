//! Redrawing collocation points during training: uniform redraws and
//! residual-based adaptive distribution (RAD, Wu, Zhu, Tan, Kartha & Lu,
//! *A comprehensive study of non-adaptive and residual-based adaptive
//! sampling for PINNs*, CMAME 2023).
//!
//! Every `every` iterations the points of one block (by default `interior`)
//! are replaced by as many new points of the problem's domain:
//!
//! * **uniform**: i.i.d. uniform points;
//! * **RAD**: `N_c` uniform candidates `x_j` are drawn, the residual `r(x_j)`
//!   is evaluated at the current θ, and `S_b` of them are picked **without
//!   replacement** with probability proportional to
//!   `p_j = |r_j|^k / mean_j |r_j|^k + c`
//!   (as the SSBroyden paper's code does; `k = 0` is a uniform redraw,
//!   large `k` concentrates the points where the residual is large).
//!   Weighted sampling without replacement uses the exponential-keys method
//!   (Efraimidis & Spirakis 2006): keep the `S_b` largest `ln(u_j)/p_j`,
//!   `u_j` uniform in (0, 1).
//!
//! The random stream is ChaCha8 seeded by the run's seed on its own stream,
//! so resampling does not change the initialisation, and its position is
//! saved in checkpoints ([`ResampleState`]).

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geometry::{Domain, sample_interior};
use crate::residual::LeastSquares;

/// ChaCha8 stream of the resampling draws (stream 0 is the initialisation's).
const RESAMPLE_STREAM: u64 = 7;

/// How new points are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResampleMethod {
    /// Uniform i.i.d. points of the domain.
    Uniform,
    /// Residual-based adaptive distribution (see the module documentation).
    #[default]
    Rad,
}

/// Resampling settings (`[sampling]` in a run configuration). Off by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resampling {
    /// Redraw the points every this many iterations; 0 (the default) never.
    pub resample_every: usize,
    /// `rad` (default) or `uniform`.
    pub method: ResampleMethod,
    /// RAD exponent `k` (default 1, as in the SSBroyden paper's Burgers runs).
    pub rad_k: f64,
    /// RAD offset `c` (default 1).
    pub rad_c: f64,
    /// RAD candidates per redraw (default 10 000; at least the number of
    /// points drawn).
    pub candidates: usize,
    /// Points drawn at each redraw; 0 (the default) keeps the block's own
    /// number. More points than the problem's fixed set cost proportionally
    /// more per step and see more of the domain.
    pub points: usize,
    /// The block whose points are redrawn (default `interior`).
    pub block: String,
}

impl Default for Resampling {
    fn default() -> Self {
        Resampling {
            resample_every: 0,
            method: ResampleMethod::Rad,
            rad_k: 1.0,
            rad_c: 1.0,
            candidates: 10_000,
            points: 0,
            block: "interior".into(),
        }
    }
}

impl Resampling {
    /// Whether resampling is on.
    pub fn enabled(&self) -> bool {
        self.resample_every > 0
    }

    /// Check every field; errors name it as `sampling.<field>`.
    pub fn validate(&self) -> Result<()> {
        if !(self.rad_k.is_finite() && self.rad_k >= 0.0) {
            return Err(Error::config(
                "sampling.rad_k",
                format!("must be finite and ≥ 0, got {}", self.rad_k),
            ));
        }
        if !(self.rad_c.is_finite() && self.rad_c >= 0.0) {
            return Err(Error::config(
                "sampling.rad_c",
                format!("must be finite and ≥ 0, got {}", self.rad_c),
            ));
        }
        if self.method == ResampleMethod::Rad && self.rad_c == 0.0 && self.rad_k == 0.0 {
            return Err(Error::config(
                "sampling.rad_c",
                "rad_k = 0 and rad_c = 0 give every candidate probability 0",
            ));
        }
        if self.candidates == 0 {
            return Err(Error::config("sampling.candidates", "must be at least 1"));
        }
        if self.block.is_empty() {
            return Err(Error::config("sampling.block", "must name a block"));
        }
        Ok(())
    }
}

/// What a checkpoint keeps of a [`Resampler`]: the current points and the
/// position in the random stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResampleState {
    /// The block's current points, row-major.
    pub points: Vec<f64>,
    /// ChaCha8 word position of the stream.
    pub word_pos: u128,
    /// Redraws done so far.
    pub redraws: usize,
}

/// Owns the objective whose points it redraws.
pub struct Resampler {
    config: Resampling,
    domain: Arc<dyn Domain>,
    block: usize,
    /// Points per redraw: `config.points`, or the block's own number.
    count: usize,
    /// The block's number of points before the first redraw.
    initial: usize,
    rng: ChaCha8Rng,
    objective: LeastSquares,
    redraws: usize,
}

impl Resampler {
    /// A resampler of `objective`'s block `config.block`, drawing from
    /// `domain` with the stream of `seed`.
    pub fn new(
        objective: LeastSquares,
        domain: Arc<dyn Domain>,
        config: Resampling,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        let block = objective
            .block_index(&config.block)
            .map_err(|e| Error::config("sampling.block", e.to_string()))?;
        let blk = &objective.blocks()[block];
        if blk.normals().is_some() {
            return Err(Error::config(
                "sampling.block",
                format!(
                    "`{}` is a boundary piece (it has normals); only interior blocks can be resampled",
                    config.block
                ),
            ));
        }
        if blk.combination().is_some()
            || blk
                .region()
                .is_some_and(|r| r != crate::residual::Region::Interior)
        {
            return Err(Error::config(
                "sampling.block",
                format!(
                    "`{}` is not an interior block (a condition on a part of the domain, or rows tying points together); only interior blocks can be resampled",
                    config.block
                ),
            ));
        }
        if domain.dim() != objective.model().input_dim() {
            return Err(Error::DimensionMismatch {
                context: "resampling domain vs network input".into(),
                expected: objective.model().input_dim(),
                got: domain.dim(),
            });
        }
        let initial = blk.len();
        let count = if config.points > 0 {
            config.points
        } else {
            initial
        };
        if config.method == ResampleMethod::Rad && config.candidates < count {
            return Err(Error::config(
                "sampling.candidates",
                format!(
                    "RAD picks {count} points of block `{}` among the candidates: need at least that many, got {}",
                    config.block, config.candidates
                ),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(RESAMPLE_STREAM);
        Ok(Resampler {
            config,
            domain,
            block,
            count,
            initial,
            rng,
            objective,
            redraws: 0,
        })
    }

    /// The objective with the current points.
    pub fn objective(&self) -> &LeastSquares {
        &self.objective
    }

    /// Whether iteration `iter` (just completed) ends with a redraw.
    pub fn due(&self, iter: usize) -> bool {
        self.config.enabled() && iter > 0 && iter.is_multiple_of(self.config.resample_every)
    }

    /// Number of redraws so far.
    pub fn redraws(&self) -> usize {
        self.redraws
    }

    /// Redraw the block's points at θ (RAD evaluates the residual there).
    pub fn resample(&mut self, theta: &[f64]) -> Result<()> {
        let n = self.count;
        let d = self.domain.dim();
        let points = match self.config.method {
            ResampleMethod::Uniform => sample_interior(self.domain.as_ref(), n, &mut self.rng),
            ResampleMethod::Rad => {
                let m = self.config.candidates;
                let cand = sample_interior(self.domain.as_ref(), m, &mut self.rng);
                let probe = self.objective.with_block_points(self.block, cand.clone())?;
                let r = probe.block_residuals(self.block, theta)?;
                let weights = rad_weights(&r, self.config.rad_k, self.config.rad_c);
                let keys: Vec<f64> = weights
                    .iter()
                    .map(|&w| {
                        // u ∈ (0, 1]: ln u ≤ 0, larger key = more likely kept.
                        let u: f64 = 1.0 - self.rng.random::<f64>();
                        if w > 0.0 {
                            u.ln() / w
                        } else {
                            f64::NEG_INFINITY
                        }
                    })
                    .collect();
                let mut order: Vec<usize> = (0..m).collect();
                order.sort_by(|&a, &b| keys[b].total_cmp(&keys[a]).then(a.cmp(&b)));
                order[..n]
                    .iter()
                    .flat_map(|&j| cand[j * d..(j + 1) * d].iter().copied())
                    .collect()
            }
        };
        self.objective.set_block_points(self.block, points)?;
        self.redraws += 1;
        Ok(())
    }

    /// The state a checkpoint keeps.
    pub fn state(&self) -> ResampleState {
        ResampleState {
            points: self.objective.blocks()[self.block].points().to_vec(),
            word_pos: self.rng.get_word_pos(),
            redraws: self.redraws,
        }
    }

    /// Continue from a checkpoint's state.
    pub fn restore(&mut self, state: &ResampleState) -> Result<()> {
        // Before the first redraw the block still has its own points.
        let d = self.domain.dim();
        let n = if state.redraws == 0 {
            self.initial
        } else {
            self.count
        };
        if state.points.len() != n * d {
            return Err(Error::DimensionMismatch {
                context: format!("checkpoint points of block `{}`", self.config.block),
                expected: n * d,
                got: state.points.len(),
            });
        }
        self.objective
            .set_block_points(self.block, state.points.clone())?;
        self.rng.set_word_pos(state.word_pos);
        self.redraws = state.redraws;
        Ok(())
    }
}

/// RAD's unnormalised probabilities `|r_j|^k / mean|r|^k + c`
/// (`c` alone where every `|r_j|^k` is 0).
pub fn rad_weights(r: &[f64], k: f64, c: f64) -> Vec<f64> {
    let pow: Vec<f64> = r.iter().map(|v| v.abs().powf(k)).collect();
    let mean = pow.iter().sum::<f64>() / pow.len().max(1) as f64;
    pow.iter()
        .map(|p| if mean > 0.0 { p / mean + c } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problems;

    fn laplace() -> (LeastSquares, Arc<dyn Domain>, Vec<f64>) {
        let pb = problems::laplace2d();
        let theta = pb.initial_theta(3).unwrap();
        (pb.least_squares().unwrap(), pb.domain.clone(), theta)
    }

    #[test]
    fn rad_weights_follow_the_formula() {
        let w = rad_weights(&[1.0, -3.0, 0.0], 2.0, 0.5);
        // |r|² = 1, 9, 0; mean 10/3.
        let expect = [0.3 + 0.5, 2.7 + 0.5, 0.5];
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-15, "{a} vs {b}");
        }
        assert_eq!(rad_weights(&[0.0, 0.0], 1.0, 2.0), vec![2.0, 2.0]);
    }

    #[test]
    fn uniform_redraw_keeps_size_stays_in_domain_and_changes_points() {
        let (ls, dom, theta) = laplace();
        let before = ls.blocks()[0].points().to_vec();
        let cfg = Resampling {
            resample_every: 5,
            method: ResampleMethod::Uniform,
            ..Default::default()
        };
        let mut r = Resampler::new(ls, dom.clone(), cfg, 0).unwrap();
        assert!(!r.due(0) && !r.due(4) && r.due(5) && r.due(10));
        r.resample(&theta).unwrap();
        let after = r.objective().blocks()[0].points();
        assert_eq!(after.len(), before.len());
        assert!(after.chunks(2).all(|x| dom.contains(x)));
        assert_ne!(after, &before[..]);
        // Data terms follow the points: the loss equals one recomputed from scratch.
        let fresh = r
            .objective()
            .with_block_points(0, after.to_vec())
            .unwrap()
            .loss(&theta)
            .unwrap();
        assert_eq!(r.objective().loss(&theta).unwrap(), fresh);
        // The boundary block is untouched.
        assert_eq!(r.objective().blocks()[1].len(), 116);
    }

    #[test]
    fn rad_concentrates_points_where_the_residual_is_large() {
        let (ls, dom, theta) = laplace();
        let n = ls.blocks()[0].len();
        let rms = |ls: &LeastSquares| {
            let r = ls.block_residuals(0, &theta).unwrap();
            (r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64).sqrt()
        };
        let mut uniform = Resampler::new(
            ls.clone(),
            dom.clone(),
            Resampling {
                resample_every: 1,
                method: ResampleMethod::Uniform,
                ..Default::default()
            },
            1,
        )
        .unwrap();
        uniform.resample(&theta).unwrap();
        let mut rad = Resampler::new(
            ls,
            dom,
            Resampling {
                resample_every: 1,
                rad_k: 2.0,
                rad_c: 0.0,
                candidates: 8 * n,
                ..Default::default()
            },
            1,
        )
        .unwrap();
        rad.resample(&theta).unwrap();
        let (ru, rr) = (rms(uniform.objective()), rms(rad.objective()));
        // With p ∝ r², the kept points' RMS residual exceeds a uniform sample's
        // (the initial residual is the source term 2π² sin πx sin πy, so RAD
        // favours the centre): measured ratio 1.45.
        assert!(rr > 1.3 * ru, "RAD rms {rr} vs uniform {ru}");
        // Without replacement: no candidate twice.
        let pts = rad.objective().blocks()[0].points();
        let mut seen: Vec<(u64, u64)> = pts
            .chunks(2)
            .map(|x| (x[0].to_bits(), x[1].to_bits()))
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), n);
    }

    #[test]
    fn state_round_trip_continues_the_stream() {
        let (ls, dom, theta) = laplace();
        let cfg = Resampling {
            resample_every: 1,
            candidates: 2000,
            ..Default::default()
        };
        let mut a = Resampler::new(ls.clone(), dom.clone(), cfg.clone(), 9).unwrap();
        a.resample(&theta).unwrap();
        let saved = a.state();
        a.resample(&theta).unwrap();
        let mut b = Resampler::new(ls, dom, cfg, 9).unwrap();
        b.restore(&saved).unwrap();
        assert_eq!(b.redraws(), 1);
        b.resample(&theta).unwrap();
        assert_eq!(
            a.objective().blocks()[0].points(),
            b.objective().blocks()[0].points()
        );
    }

    /// `points` sets the number drawn per redraw; checkpoints taken before
    /// and after the first redraw both restore.
    #[test]
    fn points_sets_the_redrawn_count() {
        let (ls, dom, theta) = laplace();
        let n0 = ls.blocks()[0].len();
        let cfg = Resampling {
            resample_every: 1,
            points: 3 * n0,
            candidates: 8 * n0,
            ..Default::default()
        };
        let mut a = Resampler::new(ls.clone(), dom.clone(), cfg.clone(), 4).unwrap();
        let before = a.state();
        a.resample(&theta).unwrap();
        assert_eq!(a.objective().blocks()[0].len(), 3 * n0);
        let after = a.state();
        let mut b = Resampler::new(ls.clone(), dom.clone(), cfg.clone(), 4).unwrap();
        b.restore(&before).unwrap();
        assert_eq!(b.objective().blocks()[0].len(), n0);
        b.restore(&after).unwrap();
        assert_eq!(
            b.objective().blocks()[0].points(),
            a.objective().blocks()[0].points()
        );
        let too_few = Resampling {
            candidates: 2 * n0,
            ..cfg
        };
        let e = Resampler::new(ls, dom, too_few, 4)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("sampling.candidates"), "{e}");
    }

    #[test]
    fn bad_settings_name_the_field() {
        let (ls, dom, _) = laplace();
        let err = |cfg: Resampling| {
            Resampler::new(ls.clone(), dom.clone(), cfg, 0)
                .err()
                .expect("must fail")
                .to_string()
        };
        let on = Resampling {
            resample_every: 10,
            ..Default::default()
        };
        for (cfg, field) in [
            (
                Resampling {
                    rad_k: -1.0,
                    ..on.clone()
                },
                "sampling.rad_k",
            ),
            (
                Resampling {
                    rad_c: f64::NAN,
                    ..on.clone()
                },
                "sampling.rad_c",
            ),
            (
                Resampling {
                    candidates: 100,
                    ..on.clone()
                },
                "sampling.candidates",
            ),
            (
                Resampling {
                    block: "boundary".into(),
                    ..on.clone()
                },
                "boundary piece",
            ),
            (
                Resampling {
                    block: "edge".into(),
                    ..on.clone()
                },
                "sampling.block",
            ),
        ] {
            let e = err(cfg);
            assert!(e.contains(field), "{e}");
        }
    }
}
