//! Adam on the problem's loss `L(θ)` (the per-block mean of the squared
//! residuals summed over blocks, see [`crate::residual`]).
//!
//! Reference: D. P. Kingma, J. Ba, *Adam: A Method for Stochastic
//! Optimization*, ICLR 2015. Defaults follow the ANaGRAM reference baseline:
//! learning rate 1e-3, β₁ = 0.9, β₂ = 0.999, ε = 1e-8, the rate multiplied by
//! 0.1 at iterations 15 000, 25 000, 35 000 and 45 000. No termination of its
//! own.

use serde::{Deserialize, Serialize};

use super::{Objective, Optimizer, OptimizerState, StepReport};
use crate::error::{Error, Result};

/// Settings of [`Adam`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    /// Initial learning rate.
    pub lr: f64,
    /// First-moment decay β₁.
    pub beta1: f64,
    /// Second-moment decay β₂.
    pub beta2: f64,
    /// Denominator guard ε.
    pub eps: f64,
    /// Iterations (1-based) at which the rate is multiplied by `decay_factor`.
    pub decay_steps: Vec<usize>,
    /// Multiplier applied at each decay step.
    pub decay_factor: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            decay_steps: vec![15_000, 25_000, 35_000, 45_000],
            decay_factor: 0.1,
        }
    }
}

impl AdamConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<()> {
        let pos = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::config(
                    format!("optimizer.{name}"),
                    format!("must be finite and > 0, got {v}"),
                ))
            }
        };
        pos("lr", self.lr)?;
        pos("eps", self.eps)?;
        pos("decay_factor", self.decay_factor)?;
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config(
                    format!("optimizer.{name}"),
                    format!("must be in [0, 1), got {b}"),
                ));
            }
        }
        Ok(())
    }
}

/// The Adam optimiser.
#[derive(Clone, Debug)]
pub struct Adam {
    config: AdamConfig,
    state: AdamState,
}

/// Adam's moments and step count ([`super::OptimizerState::Adam`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdamState {
    m: Vec<f64>,
    v: Vec<f64>,
    t: usize,
}

impl Adam {
    /// An optimiser with the given settings and zero moments.
    pub fn new(config: AdamConfig) -> Self {
        Adam {
            config,
            state: AdamState::default(),
        }
    }

    fn lr(&self) -> f64 {
        let n = self
            .config
            .decay_steps
            .iter()
            .filter(|&&s| self.state.t >= s)
            .count();
        self.config.lr * self.config.decay_factor.powi(n as i32)
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &'static str {
        "adam"
    }

    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], _loss: f64) -> Result<StepReport> {
        let (_, g) = obj.loss_gradient(theta)?;
        if self.state.m.len() != theta.len() {
            self.state.m = vec![0.0; theta.len()];
            self.state.v = vec![0.0; theta.len()];
        }
        self.state.t += 1;
        let (b1, b2) = (self.config.beta1, self.config.beta2);
        let c1 = 1.0 - b1.powi(self.state.t as i32);
        let c2 = 1.0 - b2.powi(self.state.t as i32);
        let lr = self.lr();
        let mut next = theta.to_vec();
        let AdamState { m, v, .. } = &mut self.state;
        for i in 0..theta.len() {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            next[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + self.config.eps);
        }
        let loss = obj.loss(&next)?;
        theta.copy_from_slice(&next);
        Ok(StepReport {
            loss,
            rank: None,
            step_size: Some(lr),
            extra: vec![],
            spectrum: None,
            phases: None,
        })
    }

    fn state(&self) -> OptimizerState {
        OptimizerState::Adam(self.state.clone())
    }

    fn restore(&mut self, state: OptimizerState) -> Result<()> {
        match state {
            OptimizerState::Adam(s) => self.state = s,
            other => return Err(other.mismatch("adam")),
        }
        Ok(())
    }
}
