//! What a run records: a history row, the outcome, the best iterate by
//! held-out loss, and the overfitting check.

use serde::{Deserialize, Serialize};

use crate::model::Metrics;
use crate::optim::Spectrum;

use super::Termination;

/// One row of the history.
#[derive(Clone, Debug, PartialEq)]
pub struct IterRecord {
    /// Iteration (0 = the initial θ).
    pub iter: usize,
    /// Training time so far, seconds.
    pub time_s: f64,
    /// Loss at this iterate.
    pub loss: f64,
    /// Errors against the reference, when evaluated at this iteration.
    pub metrics: Option<Metrics>,
    /// Rank kept by the step (natural-gradient methods).
    pub rank: Option<usize>,
    /// Step size taken.
    pub step_size: Option<f64>,
    /// Optimiser-specific values ([`crate::optim::Optimizer::extra_columns`]).
    pub extra: Vec<f64>,
    /// The step's spectrum, on iterations where the error is evaluated.
    pub spectrum: Option<Spectrum>,
    /// The loss on the held-out points ([`super::Trainer::held_out`]), when evaluated.
    pub heldout_loss: Option<f64>,
}

/// The end of a run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Final parameters (the last finite iterate).
    pub theta: Vec<f64>,
    /// Why the run stopped.
    pub termination: Termination,
    /// Steps taken.
    pub iters: usize,
    /// Training time, seconds.
    pub time_s: f64,
    /// Final loss.
    pub loss: f64,
    /// Final errors, if an evaluator was given.
    pub metrics: Option<Metrics>,
    /// Final held-out loss, if a held-out objective was given.
    pub heldout_loss: Option<f64>,
    /// The held-out loss of the run's initial θ (of the first run, for a
    /// resumed one; `None` for checkpoints written before it was kept).
    pub initial_heldout_loss: Option<f64>,
    /// The evaluated iterate with the lowest held-out loss (over all tries
    /// of a run that restarted).
    pub best: Option<BestIterate>,
    /// The iterations after which the run restarted from another
    /// initialisation ([`super::Restarts`]); `theta` and the final values
    /// are the last try's.
    pub restarts: Vec<usize>,
}

impl Outcome {
    /// The [`overfitting_warning`] for the final iterate, if any.
    pub fn overfitting(&self) -> Option<String> {
        self.heldout_loss
            .and_then(|h| overfitting_warning(self.loss, h, self.initial_heldout_loss))
    }
}

/// Above this held-out/training loss ratio a run is flagged as overfitting
/// its collocation points (see [`overfitting_warning`]).
///
/// Runs that are right between their points still end above 1: at machine
/// precision the training residual is only what a grid can see, and the
/// held-out points see the rest (laplace2d's default ends at 274, heat's at
/// 139). Runs that fit their points and not the PDE end many decades higher
/// (burgers with SSBroyden on its fixed points: 2e12 after 60 s; laplace5d:
/// 1e19). 10⁴ sits 36× above the first and catches the second early.
/// docs/accuracy.md has the measurements.
pub const OVERFIT_RATIO: f64 = 1e4;

/// A held-out loss at or below this fraction of the run's initial held-out
/// loss is never flagged, whatever the ratio: the residual between the points
/// has fallen by 10⁵ in RMS, so the network solves the PDE there too, and the
/// ratio only says how much better the grid itself is fitted.
/// (nonlinear-poisson's default settles at held-out/train 2.3e4 with
/// held-out/initial 1.5e-12 and l2_rel 1.7e-7; the runs that fit their points
/// were flagged at held-out/initial 2.6e-1 (burgers), 1.2e-1 (allen-cahn) and
/// 2.0e-8 (laplace5d's first drift); docs/accuracy.md.)
pub const OVERFIT_FLOOR: f64 = 1e-10;

/// The warning for a run whose held-out loss is more than [`OVERFIT_RATIO`]
/// times its training loss and above [`OVERFIT_FLOOR`] times the held-out
/// loss of its initial θ (when known), naming the likely cause; `None`
/// otherwise.
pub fn overfitting_warning(
    loss: f64,
    heldout: f64,
    initial_heldout: Option<f64>,
) -> Option<String> {
    let ratio = heldout / loss.max(f64::MIN_POSITIVE);
    let solved_between = initial_heldout.is_some_and(|h0| heldout <= OVERFIT_FLOOR * h0);
    (ratio > OVERFIT_RATIO && !solved_between).then(|| {
        format!(
            "the held-out loss {heldout:.2e} is {ratio:.1e}× the training loss {loss:.2e}: the \
             network fits the collocation points, not the PDE between them; use more points or \
             redraw them during training (--resample-every)"
        )
    })
}

/// The evaluated iterate with the lowest held-out loss (kept as
/// `best_model.json`): what to use when the final one overfits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestIterate {
    /// Its iteration.
    pub iter: usize,
    /// Its training loss.
    pub loss: f64,
    /// Its held-out loss.
    pub heldout_loss: f64,
    /// Its errors, when evaluated.
    pub l2_abs: Option<f64>,
    /// See `l2_abs`.
    pub l2_rel: Option<f64>,
    /// See `l2_abs`.
    pub linf: Option<f64>,
    /// Its parameters.
    pub theta: Vec<f64>,
}

impl BestIterate {
    /// Keep `(iter, θ)` if its held-out loss is the lowest so far.
    pub(super) fn offer(
        best: &mut Option<BestIterate>,
        (iter, loss, heldout): (usize, f64, f64),
        metrics: Option<Metrics>,
        theta: &[f64],
    ) {
        if heldout.is_finite() && best.as_ref().is_none_or(|b| heldout < b.heldout_loss) {
            *best = Some(BestIterate {
                iter,
                loss,
                heldout_loss: heldout,
                l2_abs: metrics.map(|m| m.l2_abs),
                l2_rel: metrics.map(|m| m.l2_rel),
                linf: metrics.map(|m| m.linf),
                theta: theta.to_vec(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ratio alone flags a run; a held-out loss that has fallen by more
    /// than 1/[`OVERFIT_FLOOR`] since the start is not flagged, at any ratio.
    #[test]
    fn overfitting_needs_the_ratio_and_a_held_out_loss_above_the_floor() {
        // Below the ratio: never.
        assert!(overfitting_warning(1e-12, 0.9e-8, None).is_none());
        assert!(overfitting_warning(1e-12, 0.9e-8, Some(1.0)).is_none());
        // Above the ratio, without a known start or with a held-out loss that
        // is still a sizeable part of the start (burgers' case: 0.26 of it).
        let w = overfitting_warning(3.15e-5, 3.22e-1, None).unwrap();
        assert!(
            w.contains("1.0e4×") && w.contains("--resample-every"),
            "{w}"
        );
        assert!(overfitting_warning(3.15e-5, 3.22e-1, Some(1.25)).is_some());
        // laplace5d's first drift: 2e-8 of the start, above the floor.
        assert!(overfitting_warning(1.42e-9, 2.04e-5, Some(1.04e3)).is_some());
        // nonlinear-poisson settled: ratio 2.3e4, but 1.5e-12 of the start.
        assert!(overfitting_warning(1.68e-12, 3.89e-8, Some(2.53e4)).is_none());
        // Exactly at the floor counts as solved between the points.
        assert!(overfitting_warning(1e-20, OVERFIT_FLOOR, Some(1.0)).is_none());
    }
}
