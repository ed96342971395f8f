//! Optimisers behind one trait, and the line searches they share.
//!
//! Every optimiser sees the problem only through [`Objective`] (loss,
//! gradient, the weighted least-squares system) and updates θ in place,
//! **only** once it has a finite step: on error θ is untouched, so the
//! trainer keeps the last good iterate.

mod adam;
mod amstramgram;
mod anagram;
mod lbfgs;
pub mod linesearch;

pub use adam::{Adam, AdamConfig};
pub use amstramgram::{Amstramgram, AmstramgramConfig, elbow};
pub use anagram::{Anagram, AnagramConfig, Cutoff};
pub use lbfgs::{Lbfgs, LbfgsConfig};
pub use linesearch::StepGrid;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::residual::{LeastSquares, System, Weighting};

/// What an optimiser may ask of the problem (shared across line-search threads, hence `Sync`).
pub trait Objective: Sync {
    /// Number of parameters `P`.
    fn n_params(&self) -> usize;
    /// The loss `L(θ)`.
    fn loss(&self, theta: &[f64]) -> Result<f64>;
    /// `L(θ)` and `∇L(θ)`.
    fn loss_gradient(&self, theta: &[f64]) -> Result<(f64, Vec<f64>)>;
    /// The weighted least-squares system `(r̃, φ̃)` at θ, into `sys` (its buffers are reused).
    fn system_into(&self, theta: &[f64], weighting: Weighting, sys: &mut System) -> Result<()>;
    /// The weighted least-squares system `(r̃, φ̃)` at θ.
    fn system(&self, theta: &[f64], weighting: Weighting) -> Result<System> {
        let mut sys = System::default();
        self.system_into(theta, weighting, &mut sys)?;
        Ok(sys)
    }
}

impl Objective for LeastSquares {
    fn n_params(&self) -> usize {
        LeastSquares::n_params(self)
    }
    fn loss(&self, theta: &[f64]) -> Result<f64> {
        LeastSquares::loss(self, theta)
    }
    fn loss_gradient(&self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        LeastSquares::loss_gradient(self, theta)
    }
    fn system_into(&self, theta: &[f64], weighting: Weighting, sys: &mut System) -> Result<()> {
        self.assemble_into(theta, weighting, sys)
    }
}

/// What one optimiser step did, for the observers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepReport {
    /// Loss at the new θ.
    pub loss: f64,
    /// Number of singular directions kept (natural-gradient methods).
    pub rank: Option<usize>,
    /// Step size η taken.
    pub step_size: Option<f64>,
    /// Optimiser-specific values, in the order of [`Optimizer::extra_columns`].
    pub extra: Vec<f64>,
}

/// A training method: one call of [`Optimizer::step`] is one iteration.
pub trait Optimizer {
    /// Short name (`anagram`, `adam`, …).
    fn name(&self) -> &'static str;
    /// Take one step from θ (whose loss is `loss`), updating θ in place.
    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], loss: f64) -> Result<StepReport>;
    /// Names of the values in [`StepReport::extra`].
    fn extra_columns(&self) -> &'static [&'static str] {
        &[]
    }
}

/// A serialisable choice of optimiser and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// [`Anagram`].
    Anagram(AnagramConfig),
    /// [`Amstramgram`].
    Amstramgram(AmstramgramConfig),
    /// [`Adam`].
    Adam(AdamConfig),
    /// [`Lbfgs`].
    Lbfgs(LbfgsConfig),
}

/// Names of the implemented optimisers with a one-line description.
pub const OPTIMIZERS: &[(&str, &str)] = &[
    (
        "anagram",
        "ANaGRAM: truncated-SVD natural gradient φ⁺r with a grid line search (Schwencke & Furtlehner 2025)",
    ),
    (
        "amstramgram",
        "AMStraMGRAM (experimental, not yet at the papers' accuracy): ANaGRAM with two adaptive cutoffs from the RCE curve",
    ),
    (
        "adam",
        "Adam on the loss, step-decay schedule (Kingma & Ba 2015)",
    ),
    (
        "lbfgs",
        "L-BFGS with a strong-Wolfe line search (Nocedal & Wright, Alg. 7.5)",
    ),
];

impl OptimizerConfig {
    /// The default configuration of the optimiser called `name`.
    pub fn default_for(name: &str) -> Result<Self> {
        match name {
            "anagram" => Ok(OptimizerConfig::Anagram(AnagramConfig::default())),
            "amstramgram" => Ok(OptimizerConfig::Amstramgram(AmstramgramConfig::default())),
            "adam" => Ok(OptimizerConfig::Adam(AdamConfig::default())),
            "lbfgs" => Ok(OptimizerConfig::Lbfgs(LbfgsConfig::default())),
            _ => Err(Error::UnknownName {
                kind: "optimizer",
                name: name.into(),
                known: OPTIMIZERS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The optimiser's name.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Anagram(_) => "anagram",
            OptimizerConfig::Amstramgram(_) => "amstramgram",
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::Lbfgs(_) => "lbfgs",
        }
    }

    /// Check every field.
    pub fn validate(&self) -> Result<()> {
        match self {
            OptimizerConfig::Anagram(c) => c.validate(),
            OptimizerConfig::Amstramgram(c) => c.validate(),
            OptimizerConfig::Adam(c) => c.validate(),
            OptimizerConfig::Lbfgs(c) => c.validate(),
        }
    }

    /// Build the optimiser (validating first).
    pub fn build(&self) -> Result<Box<dyn Optimizer>> {
        self.validate()?;
        Ok(match self {
            OptimizerConfig::Anagram(c) => Box::new(Anagram::new(c.clone())),
            OptimizerConfig::Amstramgram(c) => Box::new(Amstramgram::new(c.clone())),
            OptimizerConfig::Adam(c) => Box::new(Adam::new(c.clone())),
            OptimizerConfig::Lbfgs(c) => Box::new(Lbfgs::new(c.clone())),
        })
    }
}
