//! The training loop: one executor, explicit budgets, observers and typed
//! termination reasons.
//!
//! `time_s` is *training* time: the optimiser's steps (assembly, linear
//! algebra, line search). Evaluating the error on the evaluation grid and the
//! observers' I/O are excluded.

mod checkpoint;
mod config;
mod observer;
mod session;

pub use checkpoint::{CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Checkpoint, truncate_csv_after};
pub use config::{
    BudgetSection, ComputeSection, ModelSection, OutputSection, ProblemSection, RunConfig,
};
pub use observer::{HistoryCsv, Observer, Progress, RunFiles, RunInfo, SpectraCsv};
pub use session::{RUN_FILES, RunSpec, available_memory, checkpoint_path};

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::{Objective, Optimizer, Spectrum};
use crate::problems::Metrics;
use crate::residual::Resampler;

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
    /// Optimiser-specific values ([`Optimizer::extra_columns`]).
    pub extra: Vec<f64>,
    /// The step's spectrum, on iterations where the error is evaluated.
    pub spectrum: Option<Spectrum>,
    /// The loss on the held-out points ([`Trainer::held_out`]), when evaluated.
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
    /// The evaluated iterate with the lowest held-out loss.
    pub best: Option<BestIterate>,
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

/// The warning for a run whose held-out loss is more than [`OVERFIT_RATIO`]
/// times its training loss, naming the likely cause; `None` otherwise.
pub fn overfitting_warning(loss: f64, heldout: f64) -> Option<String> {
    let ratio = heldout / loss.max(f64::MIN_POSITIVE);
    (ratio > OVERFIT_RATIO).then(|| {
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
    fn offer(
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

/// Computes error metrics at θ.
type Evaluator<'a> = Box<dyn Fn(&[f64]) -> Result<Metrics> + 'a>;

/// Where a resumed run starts (from a [`Checkpoint`]).
#[derive(Clone, Debug)]
pub struct ResumePoint {
    /// Iterations already done.
    pub iter: usize,
    /// Training time already spent.
    pub time_s: f64,
    /// Training time at the last error evaluation.
    pub last_eval_s: f64,
    /// Loss at θ.
    pub loss: f64,
    /// θ.
    pub theta: Vec<f64>,
    /// The stall watch at that point (a fresh one from `loss` if `None`).
    pub stall: Option<StallWatch>,
    /// The best iterate so far by held-out loss.
    pub best: Option<BestIterate>,
}

/// Tracks the best loss for [`Termination::Stalled`]: progress is a
/// decrease of the best loss by more than `rtol` relative.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StallWatch {
    /// The best loss at the last progress.
    pub best: f64,
    /// The iteration of the last progress.
    pub since: usize,
}

impl StallWatch {
    /// A watch starting at `loss`, iteration `iter`.
    pub fn new(loss: f64, iter: usize) -> Self {
        StallWatch {
            best: loss,
            since: iter,
        }
    }

    /// Record the loss after iteration `iter`; true once `window`
    /// iterations have passed without progress (never for `window = 0`).
    pub fn stalled(&mut self, loss: f64, iter: usize, window: usize, rtol: f64) -> bool {
        if loss < self.best * (1.0 - rtol) {
            *self = StallWatch::new(loss, iter);
        }
        window > 0 && iter - self.since >= window
    }
}

/// When and where the trainer writes checkpoints.
#[derive(Clone, Debug)]
pub struct CheckpointPlan {
    /// The checkpoint file (replaced atomically each time).
    pub path: PathBuf,
    /// Write whenever this much training time has passed since the last one;
    /// a checkpoint is also written when the run ends, whatever the reason.
    pub every_s: f64,
    /// Also write one every this many iterations.
    pub every_iters: Option<usize>,
    /// The run specification stored in the checkpoint (none: a bare trainer run).
    pub run: Option<RunSpec>,
}

/// The termination a numerical fault at `iteration` ends the run with; other
/// errors (I/O, configuration) are passed on.
fn fault(e: Error, iteration: usize) -> Result<Termination> {
    match e {
        Error::NonFinite {
            quantity, block, ..
        } => Ok(Termination::NonFinite {
            iteration,
            block,
            quantity: quantity.into(),
        }),
        Error::LinearAlgebra(message) => Ok(Termination::LinearAlgebra { iteration, message }),
        e => Err(e),
    }
}

/// The executor: runs an optimiser on an objective within a budget.
pub struct Trainer<'a> {
    budget: Budget,
    eval_every: usize,
    eval_interval_s: Option<f64>,
    evaluator: Option<Evaluator<'a>>,
    observers: Vec<Box<dyn Observer + 'a>>,
    stop: Option<Arc<AtomicBool>>,
    checkpoint: Option<CheckpointPlan>,
    resume: Option<ResumePoint>,
    resampler: Option<Resampler>,
    held_out: Option<Box<dyn Objective + 'a>>,
}

impl<'a> Trainer<'a> {
    /// Measure the loss of `objective` — the problem on fresh points
    /// ([`crate::residual::LeastSquares::held_out`]) — at every evaluation:
    /// `heldout_loss` in the history, the best iterate by it kept in
    /// [`Outcome::best`], and, when it exceeds [`OVERFIT_RATIO`] times the
    /// training loss, a warning and (with [`Budget::stop_on_overfit`]) the
    /// end of the run.
    pub fn held_out(mut self, objective: impl Objective + 'a) -> Self {
        self.held_out = Some(Box::new(objective));
        self
    }

    /// A trainer with the given budget, evaluating errors every 10 iterations.
    pub fn new(budget: Budget) -> Self {
        Trainer {
            budget,
            eval_every: 10,
            eval_interval_s: None,
            evaluator: None,
            observers: vec![],
            stop: None,
            checkpoint: None,
            resume: None,
            resampler: None,
            held_out: None,
        }
    }

    /// Redraw collocation points as `resampler` says. The trainer then
    /// optimises the resampler's objective (the `obj` given to
    /// [`Trainer::run`] is not used); after each redraw the loss is
    /// recomputed on the new points (training time) and the optimiser is told
    /// ([`Optimizer::objective_changed`]).
    pub fn resampler(mut self, resampler: Resampler) -> Self {
        self.resampler = Some(resampler);
        self
    }

    /// Stop with [`Termination::Interrupted`] at the end of the current step
    /// once `flag` is set (e.g. by a signal handler).
    pub fn stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Write checkpoints as `plan` says.
    pub fn checkpoint(mut self, plan: CheckpointPlan) -> Self {
        self.checkpoint = Some(plan);
        self
    }

    /// Continue a run from `point` instead of starting at iteration 0: no
    /// iteration-0 record is emitted (the history already has it), and the
    /// budgets count the iterations and time already spent.
    pub fn resume(mut self, point: ResumePoint) -> Self {
        self.resume = Some(point);
        self
    }

    fn write_checkpoint(
        &mut self,
        opt: &dyn Optimizer,
        theta: &[f64],
        (iter, clock, last_eval, loss): (usize, f64, f64, f64),
        stall: StallWatch,
        best: &Option<BestIterate>,
    ) -> Result<()> {
        let Some(plan) = &self.checkpoint else {
            return Ok(());
        };
        for o in &mut self.observers {
            o.flush()?;
        }
        Checkpoint {
            format: CHECKPOINT_FORMAT.into(),
            version: CHECKPOINT_VERSION,
            run: plan.run.clone(),
            iter,
            time_s: clock,
            last_eval_s: last_eval,
            loss,
            theta: theta.to_vec(),
            optimizer: opt.name().into(),
            optimizer_state: opt.state(),
            sampling: self.resampler.as_ref().map(Resampler::state),
            stall: Some(stall),
            best: best.clone(),
        }
        .save(&plan.path)
    }

    /// Evaluate the error every `k` iterations (and at the first and last); `0` only at the ends.
    pub fn eval_every(mut self, k: usize) -> Self {
        self.eval_every = k;
        self
    }

    /// Also evaluate whenever `seconds` of training time have passed since the
    /// last evaluation: even curves against wall time for methods whose
    /// iterations differ in cost by 100× (`eval_every(0)` makes it the only rule).
    pub fn eval_interval(mut self, seconds: Option<f64>) -> Self {
        self.eval_interval_s = seconds;
        self
    }

    /// The function computing error metrics at θ (its time is not counted as training time).
    pub fn evaluator(mut self, f: impl Fn(&[f64]) -> Result<Metrics> + 'a) -> Self {
        self.evaluator = Some(Box::new(f));
        self
    }

    /// Add an observer.
    pub fn observe(mut self, o: impl Observer + 'a) -> Self {
        self.observers.push(Box::new(o));
        self
    }

    fn evaluate(&self, theta: &[f64]) -> Result<Option<Metrics>> {
        self.evaluator.as_ref().map(|f| f(theta)).transpose()
    }

    /// The held-out loss at θ (infinite where it is not finite: a network
    /// that blows up between the points is as bad as it gets).
    fn heldout(&self, theta: &[f64]) -> Result<Option<f64>> {
        let Some(h) = &self.held_out else {
            return Ok(None);
        };
        match h.loss(theta) {
            Ok(l) if l.is_finite() => Ok(Some(l)),
            Ok(_) | Err(Error::NonFinite { .. }) => Ok(Some(f64::INFINITY)),
            Err(e) => Err(e),
        }
    }

    /// Run from `theta`. Errors only for failures outside the numerical
    /// iteration (invalid budget, an observer's I/O, an initial θ whose loss
    /// is not finite); numerical faults during training end the run with a
    /// [`Termination`] and keep the last good θ.
    pub fn run(
        mut self,
        obj: &dyn Objective,
        opt: &mut dyn Optimizer,
        theta_init: Vec<f64>,
    ) -> Result<Outcome> {
        self.budget.validate()?;
        let base = obj;
        // The objective being trained: the resampler's, when there is one.
        macro_rules! obj {
            () => {
                match &self.resampler {
                    Some(r) => r.objective() as &dyn Objective,
                    None => base,
                }
            };
        }
        let resumed = self.resume.is_some();
        let mut stall = None;
        let mut best = None;
        let (mut theta, mut clock, mut loss, mut iter, mut last_eval, metrics0) =
            match self.resume.take() {
                Some(rp) => {
                    if rp.theta.len() != obj!().n_params() {
                        return Err(Error::DimensionMismatch {
                            context: "resumed parameters vs the problem's network".into(),
                            expected: obj!().n_params(),
                            got: rp.theta.len(),
                        });
                    }
                    stall = rp.stall;
                    best = rp.best;
                    (rp.theta, rp.time_s, rp.loss, rp.iter, rp.last_eval_s, None)
                }
                None => {
                    let t0 = Instant::now();
                    let loss = obj!().loss(&theta_init).map_err(|e| e.at_iteration(0))?;
                    let clock = t0.elapsed().as_secs_f64();
                    let metrics = self.evaluate(&theta_init)?;
                    (theta_init, clock, loss, 0, clock, metrics)
                }
            };
        let mut stall = stall.unwrap_or_else(|| StallWatch::new(loss, iter));
        let heldout0 = if resumed { None } else { self.heldout(&theta)? };
        if let Some(h) = heldout0 {
            BestIterate::offer(&mut best, (iter, loss, h), metrics0, &theta);
        }
        let mut record = IterRecord {
            iter,
            time_s: clock,
            loss,
            metrics: metrics0,
            rank: None,
            step_size: None,
            extra: vec![f64::NAN; opt.extra_columns().len()],
            spectrum: None,
            heldout_loss: heldout0,
        };
        for o in &mut self.observers {
            o.start(opt.extra_columns())?;
            // A resumed history already has the row of its starting iterate.
            if !resumed {
                o.iteration(&record)?;
            }
        }
        let mut last_checkpoint = clock;
        let mut metrics;
        let termination = loop {
            if iter >= self.budget.max_iters {
                break Termination::MaxIters;
            }
            if clock >= self.budget.max_seconds {
                break Termination::MaxSeconds;
            }
            if loss <= self.budget.target_loss {
                break Termination::TargetLoss;
            }
            if self
                .stop
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed))
            {
                break Termination::Interrupted { iteration: iter };
            }
            let t = Instant::now();
            let step = opt.step(obj!(), &mut theta, loss);
            clock += t.elapsed().as_secs_f64();
            let next = iter + 1;
            let report = match step {
                Ok(r) if r.loss.is_finite() => r,
                Ok(_) => {
                    break Termination::NonFinite {
                        iteration: next,
                        block: "-".into(),
                        quantity: "loss".into(),
                    };
                }
                Err(e) => break fault(e, next)?,
            };
            iter = next;
            loss = report.loss;
            let stalled =
                stall.stalled(loss, iter, self.budget.stall_iters, self.budget.stall_rtol);
            let last = stalled
                || iter >= self.budget.max_iters
                || clock >= self.budget.max_seconds
                || loss <= self.budget.target_loss;
            let due = last
                || (self.eval_every > 0 && iter.is_multiple_of(self.eval_every))
                || self
                    .eval_interval_s
                    .is_some_and(|dt| clock - last_eval >= dt);
            let mut heldout = None;
            metrics = if due {
                last_eval = clock;
                heldout = self.heldout(&theta)?;
                self.evaluate(&theta)?
            } else {
                None
            };
            if let Some(h) = heldout {
                BestIterate::offer(&mut best, (iter, loss, h), metrics, &theta);
            }
            record = IterRecord {
                iter,
                time_s: clock,
                loss,
                metrics,
                rank: report.rank,
                step_size: report.step_size,
                extra: report.extra,
                spectrum: if due { report.spectrum } else { None },
                heldout_loss: heldout,
            };
            for o in &mut self.observers {
                o.iteration(&record)?;
            }
            if let Some(h) = heldout
                && self.budget.stop_on_overfit
                && overfitting_warning(loss, h).is_some()
            {
                break Termination::Overfitting {
                    iteration: iter,
                    ratio: h / loss.max(f64::MIN_POSITIVE),
                    best: best.as_ref().map_or(iter, |b| b.iter),
                };
            }
            if stalled {
                break Termination::Stalled {
                    iteration: iter,
                    since: stall.since,
                };
            }
            if let Some(r) = &mut self.resampler
                && r.due(iter)
            {
                let t = Instant::now();
                let redrawn = r.resample(&theta).and_then(|()| {
                    opt.objective_changed();
                    obj!().loss(&theta)
                });
                clock += t.elapsed().as_secs_f64();
                loss = match redrawn {
                    Ok(l) => l,
                    // θ is fine; the new points are not (e.g. the residual
                    // overflows at a RAD candidate): end the run as a step would.
                    Err(e) => break fault(e, iter)?,
                };
                for o in &mut self.observers {
                    o.resampled(iter, loss)?;
                }
                // The loss on new points is another function: progress restarts.
                stall = StallWatch::new(loss, iter);
            }
            if self.checkpoint.as_ref().is_some_and(|c| {
                clock - last_checkpoint >= c.every_s
                    || c.every_iters.is_some_and(|n| iter.is_multiple_of(n))
            }) {
                last_checkpoint = clock;
                self.write_checkpoint(opt, &theta, (iter, clock, last_eval, loss), stall, &best)?;
            }
        };
        self.write_checkpoint(opt, &theta, (iter, clock, last_eval, loss), stall, &best)?;
        let final_metrics = match record.metrics {
            Some(m) => Some(m),
            None => self.evaluate(&theta)?,
        };
        let final_heldout = match record.heldout_loss {
            Some(h) => Some(h),
            None => self.heldout(&theta)?,
        };
        if let Some(h) = final_heldout {
            BestIterate::offer(&mut best, (iter, loss, h), final_metrics, &theta);
        }
        let outcome = Outcome {
            theta,
            termination,
            iters: iter,
            time_s: clock,
            loss,
            metrics: final_metrics,
            heldout_loss: final_heldout,
            best,
        };
        for o in &mut self.observers {
            o.finish(&outcome)?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::StepReport;
    use crate::residual::{System, Weighting};

    /// L(θ) = Σθ², finite only while θ₀ < 10.
    struct Bowl;
    impl Objective for Bowl {
        fn n_params(&self) -> usize {
            2
        }
        fn loss(&self, t: &[f64]) -> Result<f64> {
            if t[0] >= 10.0 {
                return Err(Error::NonFinite {
                    quantity: "residual",
                    block: "interior".into(),
                    iteration: None,
                });
            }
            Ok(t.iter().map(|v| v * v).sum())
        }
        fn loss_gradient(&self, t: &[f64]) -> Result<(f64, Vec<f64>)> {
            Ok((self.loss(t)?, t.iter().map(|v| 2.0 * v).collect()))
        }
        fn system_into(&self, _t: &[f64], _w: Weighting, _s: &mut System) -> Result<()> {
            unreachable!()
        }
    }

    /// Halves θ each step; from step `blow_at` on it jumps θ₀ to 10 (non-finite loss).
    struct Scripted {
        steps: usize,
        blow_at: usize,
    }
    impl Optimizer for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn step(
            &mut self,
            obj: &dyn Objective,
            theta: &mut [f64],
            _loss: f64,
        ) -> Result<StepReport> {
            self.steps += 1;
            let mut next: Vec<f64> = theta.iter().map(|v| v * 0.5).collect();
            if self.steps >= self.blow_at {
                next[0] = 10.0;
            }
            let loss = obj.loss(&next)?;
            theta.copy_from_slice(&next);
            Ok(StepReport {
                loss,
                ..Default::default()
            })
        }
    }

    fn budget(max_iters: usize, target_loss: f64) -> Budget {
        Budget {
            max_iters,
            max_seconds: 60.0,
            target_loss,
            ..Default::default()
        }
    }

    #[test]
    fn non_finite_step_stops_and_keeps_last_good_theta() {
        let mut opt = Scripted {
            steps: 0,
            blow_at: 4,
        };
        let out = Trainer::new(budget(100, 0.0))
            .run(&Bowl, &mut opt, vec![1.0, 2.0])
            .unwrap();
        assert_eq!(
            out.termination,
            Termination::NonFinite {
                iteration: 4,
                block: "interior".into(),
                quantity: "residual".into()
            }
        );
        assert_eq!(out.iters, 3);
        assert_eq!(out.theta, vec![0.125, 0.25]);
        assert_eq!(out.loss, 0.125 * 0.125 + 0.25 * 0.25);
        assert!(
            out.termination
                .to_string()
                .contains("block `interior` at iteration 4")
        );
    }

    #[test]
    fn budgets_and_target_end_the_run() {
        let mut opt = Scripted {
            steps: 0,
            blow_at: usize::MAX,
        };
        let out = Trainer::new(budget(5, 0.0))
            .run(&Bowl, &mut opt, vec![1.0, 1.0])
            .unwrap();
        assert_eq!(
            (out.termination.clone(), out.iters),
            (Termination::MaxIters, 5)
        );
        let mut opt = Scripted {
            steps: 0,
            blow_at: usize::MAX,
        };
        let out = Trainer::new(budget(100, 1e-6))
            .run(&Bowl, &mut opt, vec![1.0, 1.0])
            .unwrap();
        assert_eq!(out.termination, Termination::TargetLoss);
        assert!(
            out.loss <= 1e-6 && out.iters == 11,
            "{} after {}",
            out.loss,
            out.iters
        );
        assert!(
            Trainer::new(Budget {
                max_seconds: -1.0,
                ..budget(1, 0.0)
            })
            .run(&Bowl, &mut opt, vec![1.0, 1.0])
            .is_err()
        );
    }

    /// An optimiser whose steps change nothing: the run ends as stalled
    /// after `stall_iters` iterations (a slowly improving one does not),
    /// and never with `stall_iters = 0`.
    #[test]
    fn zero_steps_end_the_run_as_stalled() {
        struct Idle;
        impl Optimizer for Idle {
            fn name(&self) -> &'static str {
                "idle"
            }
            fn step(
                &mut self,
                _obj: &dyn Objective,
                _theta: &mut [f64],
                loss: f64,
            ) -> Result<StepReport> {
                Ok(StepReport {
                    loss,
                    step_size: Some(0.0),
                    ..Default::default()
                })
            }
        }
        let run = |stall_iters: usize, opt: &mut dyn Optimizer| {
            Trainer::new(Budget {
                stall_iters,
                ..budget(5000, 0.0)
            })
            .run(&Bowl, opt, vec![1.0, 1.0])
            .unwrap()
        };
        let out = run(300, &mut Idle);
        assert_eq!(
            out.termination,
            Termination::Stalled {
                iteration: 300,
                since: 0
            }
        );
        assert!(out.termination.to_string().contains("since iteration 0"));
        assert_eq!(run(0, &mut Idle).termination, Termination::MaxIters);
        // Halving θ each step: progress every iteration, even with a window
        // of 3, until the loss reaches 0 (the target).
        let mut opt = Scripted {
            steps: 0,
            blow_at: usize::MAX,
        };
        let out = run(3, &mut opt);
        assert_eq!(
            out.termination,
            Termination::TargetLoss,
            "after {}",
            out.iters
        );
        assert!(out.iters > 500);
    }

    /// The evaluation schedule: by iteration count, by elapsed training time, or only at the ends.
    #[test]
    fn evaluation_schedules() {
        let evaluated = |every: usize, interval: Option<f64>| {
            let calls = std::cell::Cell::new(0usize);
            let mut opt = Scripted {
                steps: 0,
                blow_at: usize::MAX,
            };
            Trainer::new(budget(20, 0.0))
                .eval_every(every)
                .eval_interval(interval)
                .evaluator(|_| {
                    calls.set(calls.get() + 1);
                    Ok(Metrics {
                        l2_abs: 0.0,
                        l2_rel: 0.0,
                        linf: 0.0,
                    })
                })
                .run(&Bowl, &mut opt, vec![1.0, 1.0])
                .unwrap();
            calls.get()
        };
        // Start, iterations 5, 10, 15, 20 (the last).
        assert_eq!(evaluated(5, None), 5);
        // Only the start and the last iteration.
        assert_eq!(evaluated(0, None), 2);
        assert_eq!(evaluated(0, Some(1e9)), 2);
        // Any positive step time exceeds a zero-length interval: every iteration.
        assert_eq!(evaluated(0, Some(f64::MIN_POSITIVE)), 21);
    }

    /// Checkpoints every 2 iterations (and at the end) hold the iterate of that iteration.
    #[test]
    fn checkpoints_every_n_iterations() {
        struct Watch(
            std::path::PathBuf,
            std::rc::Rc<std::cell::RefCell<Vec<usize>>>,
        );
        impl Observer for Watch {
            fn iteration(&mut self, _r: &IterRecord) -> Result<()> {
                if let Ok(c) = Checkpoint::load(&self.0) {
                    self.1.borrow_mut().push(c.iter);
                }
                Ok(())
            }
        }
        let dir = std::env::temp_dir().join(format!("natgrad-ck-every-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checkpoint.json");
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut opt = Scripted {
            steps: 0,
            blow_at: usize::MAX,
        };
        let out = Trainer::new(budget(5, 0.0))
            .checkpoint(CheckpointPlan {
                path: path.clone(),
                every_s: 1e9,
                every_iters: Some(2),
                run: None,
            })
            .observe(Watch(path.clone(), seen.clone()))
            .run(&Bowl, &mut opt, vec![1.0, 1.0])
            .unwrap();
        // Seen before each iteration's own write: none at 0–2, then 2, 2, 4.
        assert_eq!(*seen.borrow(), vec![2, 2, 4]);
        let last = Checkpoint::load(&path).unwrap();
        assert_eq!((last.iter, last.theta.clone()), (5, out.theta.clone()));
        assert_eq!(last.loss, out.loss);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// An initial θ whose loss is not finite is an error, not a silent run.
    #[test]
    fn non_finite_start_is_an_error() {
        let mut opt = Scripted {
            steps: 0,
            blow_at: usize::MAX,
        };
        let e = Trainer::new(budget(5, 0.0))
            .run(&Bowl, &mut opt, vec![11.0, 0.0])
            .unwrap_err();
        assert!(e.to_string().contains("iteration 0"), "{e}");
    }
}
