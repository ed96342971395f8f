//! Limited-memory BFGS with a strong-Wolfe line search.
//!
//! Reference: J. Nocedal, S. J. Wright, *Numerical Optimization* (2nd ed.),
//! Algorithm 7.4 (two-loop recursion) and 7.5, with the line search of
//! Algorithms 3.5–3.6. Defaults: memory 10 (optax's default, used by the
//! ANaGRAM baseline), c₁ = 1e-4, c₂ = 0.9, at most 25 function evaluations
//! per line search, initial inverse-Hessian scaling `sᵀy/yᵀy`. A pair is
//! stored only when `sᵀy > 1e-12·‖s‖‖y‖`; a non-descent direction resets the
//! memory. No termination of its own.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::linesearch::{strong_wolfe, validate_wolfe};
use super::{Objective, Optimizer, OptimizerState, StepReport};
use crate::error::{Error, Result};
use crate::linalg::{dot, norm2};

/// Settings of [`Lbfgs`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LbfgsConfig {
    /// Number of stored `(s, y)` pairs.
    pub memory: usize,
    /// Sufficient-decrease constant c₁.
    pub c1: f64,
    /// Curvature constant c₂.
    pub c2: f64,
    /// Maximum loss/gradient evaluations per line search.
    pub max_evals: usize,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        LbfgsConfig {
            memory: 10,
            c1: 1e-4,
            c2: 0.9,
            max_evals: 25,
        }
    }
}

impl LbfgsConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<()> {
        if self.memory == 0 {
            return Err(Error::config("optimizer.memory", "must be at least 1"));
        }
        validate_wolfe(self.c1, self.c2, self.max_evals)
    }
}

/// What [`Lbfgs`] saves in a checkpoint ([`super::OptimizerState::Lbfgs`]):
/// the `(s, y, 1/sᵀy)` pairs, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LbfgsState {
    pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)>,
}

/// The L-BFGS optimiser.
#[derive(Clone, Debug)]
pub struct Lbfgs {
    config: LbfgsConfig,
    pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)>,
    cache: Option<(Vec<f64>, f64, Vec<f64>)>,
}

impl Lbfgs {
    /// An optimiser with the given settings and empty memory.
    pub fn new(config: LbfgsConfig) -> Self {
        Lbfgs {
            config,
            pairs: VecDeque::new(),
            cache: None,
        }
    }

    /// `−H g` by the two-loop recursion.
    fn direction(&self, g: &[f64]) -> Vec<f64> {
        let mut q = g.to_vec();
        let mut alphas = Vec::with_capacity(self.pairs.len());
        for (s, y, rho) in self.pairs.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        if let Some((s, y, _)) = self.pairs.back() {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for ((s, y, rho), a) in self.pairs.iter().zip(alphas.into_iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        q.iter_mut().for_each(|v| *v = -*v);
        q
    }
}

impl Optimizer for Lbfgs {
    fn name(&self) -> &'static str {
        "lbfgs"
    }

    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], _loss: f64) -> Result<StepReport> {
        let (loss0, g0) = match self.cache.take() {
            Some((th, l, g)) if th.as_slice() == &*theta => (l, g),
            _ => obj.loss_gradient(theta)?,
        };
        let mut p = self.direction(&g0);
        if dot(&p, &g0) >= 0.0 {
            self.pairs.clear();
            p = g0.iter().map(|v| -v).collect();
        }
        let alpha0 = if self.pairs.is_empty() {
            (1.0 / norm2(&g0).max(f64::MIN_POSITIVE)).min(1.0)
        } else {
            1.0
        };
        let c = &self.config;
        let wp = strong_wolfe(obj, theta, loss0, &g0, &p, alpha0, c.c1, c.c2, c.max_evals)?;
        let s: Vec<f64> = wp
            .theta
            .iter()
            .zip(theta.iter())
            .map(|(a, b)| a - b)
            .collect();
        let y: Vec<f64> = wp.grad.iter().zip(&g0).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * norm2(&s) * norm2(&y) {
            if self.pairs.len() == c.memory {
                self.pairs.pop_front();
            }
            self.pairs.push_back((s, y, 1.0 / sy));
        }
        theta.copy_from_slice(&wp.theta);
        let loss = wp.loss;
        self.cache = Some((wp.theta, wp.loss, wp.grad));
        Ok(StepReport {
            loss,
            rank: None,
            step_size: Some(wp.alpha),
            extra: vec![],
            spectrum: None,
            phases: None,
        })
    }

    /// Drops the cached gradient and the curvature pairs: they are
    /// differences of the old loss (a fresh start, as a new L-BFGS call on the
    /// new points would make).
    fn objective_changed(&mut self) {
        self.cache = None;
        self.pairs.clear();
    }

    /// The `(s, y, 1/sᵀy)` pairs (the cached gradient is recomputed: same θ, same value).
    fn state(&self) -> OptimizerState {
        OptimizerState::Lbfgs(LbfgsState {
            pairs: self.pairs.clone(),
        })
    }

    fn restore(&mut self, state: OptimizerState) -> Result<()> {
        match state {
            OptimizerState::Lbfgs(s) => self.pairs = s.pairs,
            other => return Err(other.mismatch("lbfgs")),
        }
        self.cache = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::Rosenbrock;

    #[test]
    fn converges_on_rosenbrock() {
        let mut opt = Lbfgs::new(LbfgsConfig::default());
        let mut theta = vec![-1.2, 1.0];
        let mut loss = Rosenbrock.loss(&theta).unwrap();
        for _ in 0..100 {
            loss = opt.step(&Rosenbrock, &mut theta, loss).unwrap().loss;
        }
        assert!(loss < 1e-20, "loss {loss:e}");
        assert!(
            (theta[0] - 1.0).abs() < 1e-9 && (theta[1] - 1.0).abs() < 1e-9,
            "{theta:?}"
        );
    }

    #[test]
    fn adam_decreases_rosenbrock() {
        let mut opt = super::super::Adam::new(super::super::AdamConfig {
            lr: 1e-2,
            ..Default::default()
        });
        let mut theta = vec![-1.2, 1.0];
        let l0 = Rosenbrock.loss(&theta).unwrap();
        let mut loss = l0;
        for _ in 0..2000 {
            loss = opt.step(&Rosenbrock, &mut theta, loss).unwrap().loss;
        }
        assert!(loss < 1e-2 * l0, "loss {loss:e} from {l0:e}");
    }
}
