//! The training loop: one executor, explicit budgets, observers and typed
//! termination reasons.
//!
//! `time_s` is *training* time: the optimiser's steps (assembly, linear
//! algebra, line search). Evaluating the error on the evaluation grid and the
//! observers' I/O are excluded.

pub mod catalogue;
mod checkpoint;
mod config;
mod observer;
mod overrides;
mod record;
mod resample;
mod restart;
mod session;
#[cfg(test)]
mod tests;
mod trained;
mod trainer;

pub use catalogue::{Benchmark, Defaults, Metric, PaperResult, Preset, Setup};
pub use checkpoint::{CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Checkpoint, truncate_csv_after};
pub use config::{
    BudgetSection, ComputeSection, ModelSection, OutputSection, ProblemSection, RunConfig,
};
pub use observer::{HistoryCsv, ModelSnapshots, Observer, Progress, RunFiles, RunInfo, SpectraCsv};
pub use overrides::{FRONT_END_COMPUTE, Overrides};
pub use record::{
    BestIterate, IterRecord, OVERFIT_FLOOR, OVERFIT_RATIO, Outcome, overfitting_warning,
};
pub use resample::{ResampleMethod, ResampleState, Resampler, Resampling, rad_weights};
pub use restart::{RestartPlan, Restarts};
pub use session::{RUN_FILES, RunSpec, available_memory, checkpoint_path};
pub use trained::TrainedModel;
pub use trainer::{CheckpointPlan, Points, StallWatch, Trainer, TrainingState};

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default [`Budget::stall_iters`]: long enough for the slow phases of the
/// natural-gradient methods (their loss keeps falling by more than 1e-9
/// relative per 1000 iterations), short enough to end a run whose steps are
/// all zero within seconds (SSBroyden: ~1 ms per iteration on laplace2d).
pub const DEFAULT_STALL_ITERS: usize = 1000;

/// Default [`Budget::stall_rtol`].
pub const DEFAULT_STALL_RTOL: f64 = 1e-9;

/// Stopping criteria; the first one met ends the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budget {
    /// Maximum number of optimiser steps (`usize::MAX`: no limit).
    pub max_iters: usize,
    /// Maximum training time in seconds (infinite: no limit; written as
    /// `null` in JSON, `inf` in TOML).
    #[serde(with = "seconds_or_unlimited")]
    pub max_seconds: f64,
    /// Stop once the loss is at or below this value (0 disables).
    pub target_loss: f64,
    /// Stop with [`Termination::Stalled`] after this many iterations
    /// without a relative decrease of the best loss by more than
    /// `stall_rtol` (0 disables; default 1000).
    pub stall_iters: usize,
    /// The relative decrease that counts as progress (default 1e-9).
    pub stall_rtol: f64,
    /// Stop with [`Termination::Overfitting`] at the first evaluation whose
    /// held-out loss is more than [`OVERFIT_RATIO`] times the training loss
    /// (default on; needs a held-out objective). The best iterate by
    /// held-out loss is kept either way.
    pub stop_on_overfit: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_iters: 1000,
            max_seconds: 600.0,
            target_loss: 0.0,
            stall_iters: DEFAULT_STALL_ITERS,
            stall_rtol: DEFAULT_STALL_RTOL,
            stop_on_overfit: true,
        }
    }
}

impl Budget {
    /// Check every field.
    pub fn validate(&self) -> Result<()> {
        if self.max_seconds.is_nan() || self.max_seconds <= 0.0 {
            return Err(Error::config(
                "budget.max_seconds",
                format!("must be > 0, got {}", self.max_seconds),
            ));
        }
        if !(self.target_loss.is_finite() && self.target_loss >= 0.0) {
            return Err(Error::config(
                "budget.target_loss",
                format!("must be finite and ≥ 0, got {}", self.target_loss),
            ));
        }
        if !(0.0..1.0).contains(&self.stall_rtol) {
            return Err(Error::config(
                "budget.stall_rtol",
                format!("must lie in [0, 1), got {}", self.stall_rtol),
            ));
        }
        Ok(())
    }
}

/// `max_seconds` in JSON: a number, or `null` for no limit (JSON has no
/// infinity).
mod seconds_or_unlimited {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_infinite() {
            s.serialize_none()
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
    }
}

/// Why a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Termination {
    /// `max_iters` steps were taken.
    MaxIters,
    /// The training time reached `max_seconds`.
    MaxSeconds,
    /// The loss reached `target_loss`.
    TargetLoss,
    /// A NaN or infinity appeared; θ is the last finite iterate.
    NonFinite {
        /// Iteration whose step failed.
        iteration: usize,
        /// The residual block concerned (`-` if none).
        block: String,
        /// The quantity (residual, Jacobian, loss, …).
        quantity: String,
    },
    /// A linear-algebra routine failed (e.g. the SVD did not converge); θ is the last iterate.
    LinearAlgebra {
        /// Iteration whose step failed.
        iteration: usize,
        /// The routine's message.
        message: String,
    },
    /// A stop was requested (SIGINT/SIGTERM); θ is the iterate after the last completed step.
    Interrupted {
        /// Iterations completed.
        iteration: usize,
    },
    /// The best loss did not decrease by more than `stall_rtol` (relative)
    /// for `stall_iters` iterations.
    Stalled {
        /// Iterations completed.
        iteration: usize,
        /// The last iteration that decreased the best loss.
        since: usize,
    },
    /// The held-out loss exceeded [`OVERFIT_RATIO`] times the training loss
    /// ([`Budget::stop_on_overfit`]): further steps fit the collocation points,
    /// not the PDE. The best iterate by held-out loss is in [`Outcome::best`].
    Overfitting {
        /// Iterations completed.
        iteration: usize,
        /// The held-out / training loss ratio there.
        ratio: f64,
        /// Iteration of the best iterate by held-out loss.
        best: usize,
    },
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Termination::MaxIters => write!(f, "maximum iterations reached"),
            Termination::MaxSeconds => write!(f, "time budget reached"),
            Termination::TargetLoss => write!(f, "target loss reached"),
            Termination::NonFinite {
                iteration,
                block,
                quantity,
            } => write!(
                f,
                "non-finite {quantity} in block `{block}` at iteration {iteration}"
            ),
            Termination::LinearAlgebra { iteration, message } => {
                write!(
                    f,
                    "linear algebra failure at iteration {iteration}: {message}"
                )
            }
            Termination::Interrupted { iteration } => {
                write!(f, "interrupted after iteration {iteration}")
            }
            Termination::Stalled { iteration, since } => write!(
                f,
                "stalled: no decrease of the loss since iteration {since} ({} iterations)",
                iteration - since
            ),
            Termination::Overfitting {
                iteration,
                ratio,
                best,
            } => write!(
                f,
                "stopped for overfitting at iteration {iteration} (held-out loss {ratio:.1e}× \
                 the training loss); best iterate: iteration {best} (best_model.json)"
            ),
        }
    }
}
