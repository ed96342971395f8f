//! The executor loop: steps, evaluations, observers, checkpoints, resume
//! and the typed termination.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{
    BestIterate, Budget, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Checkpoint, IterRecord, Observer,
    Outcome, Resampler, RestartPlan, RunSpec, Termination, overfitting_warning,
};
use crate::error::{Error, Result};
use crate::model::Metrics;
use crate::optim::{Objective, Optimizer};

/// Computes error metrics at θ.
type Evaluator<'a> = Box<dyn Fn(&[f64]) -> Result<Metrics> + 'a>;

/// Where a run stands after an iteration: the trainer's own state, what a
/// [`Checkpoint`] stores and what [`Trainer::resume`] continues from (with
/// the optimiser's and the resampler's states, which they keep themselves).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingState {
    /// Iterations done.
    pub iter: usize,
    /// Training time so far, seconds.
    pub time_s: f64,
    /// Training time at the last error evaluation.
    pub last_eval_s: f64,
    /// The loss at θ, on the current training points.
    pub loss: f64,
    /// θ.
    pub theta: Vec<f64>,
    /// Progress of the loss, for [`Termination::Stalled`].
    pub stall: StallWatch,
    /// The best iterate so far by held-out loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<BestIterate>,
    /// The held-out loss of the initial θ, the scale of the overfitting
    /// check ([`super::OVERFIT_FLOOR`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_heldout: Option<f64>,
    /// The iterations after which the run restarted from another
    /// initialisation ([`Trainer::restarts`]; empty: still the first try).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<usize>,
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
    /// Write whenever this many seconds of training time have passed since
    /// the last one; a checkpoint is also written when the run ends, whatever
    /// the reason.
    pub seconds: f64,
    /// Also write one every this many iterations.
    pub every: Option<usize>,
    /// The run specification stored in the checkpoint (none: a bare trainer run).
    pub run: Option<RunSpec>,
    /// The digest of the training points the run started from
    /// ([`Checkpoint::points`]; none: not recorded).
    pub points: Option<String>,
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
    held_out: Option<Box<dyn Objective + 'a>>,
    restart: Option<RestartPlan>,
}

impl<'a> Trainer<'a> {
    /// Measure the loss of `objective` — the problem on fresh points
    /// ([`crate::residual::LeastSquares::held_out`]) — at every evaluation:
    /// `heldout_loss` in the history, the best iterate by it kept in
    /// [`Outcome::best`], and, when it exceeds [`super::OVERFIT_RATIO`] times the
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
            held_out: None,
            restart: None,
        }
    }

    /// Restart as `plan` says ([`super::Restarts`]): after `plan.after`
    /// iterations of a try (or when it stalls) whose loss is above
    /// `plan.above`, continue from the next of `plan.starts` with the
    /// optimiser restored to `plan.fresh`. The last try runs to the end of
    /// the budget; a restart never happens on the run's last iteration.
    pub fn restarts(mut self, plan: RestartPlan) -> Self {
        self.restart = Some(plan);
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

    fn write_checkpoint(
        &mut self,
        opt: &dyn Optimizer,
        state: &TrainingState,
        points: &Points<'_>,
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
            state: state.clone(),
            optimizer: opt.name().into(),
            optimizer_state: opt.state(),
            points: plan.points.clone(),
            sampling: match points {
                Points::Fixed(_) => None,
                Points::Resampled(r) => Some(r.state()),
            },
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

    /// Run from `theta` on `points`: an objective (`&objective`, its
    /// points fixed) or a [`Resampler`] that owns the objective and redraws
    /// its points ([`Points`]). Errors only for failures outside the
    /// numerical iteration (invalid budget, an observer's I/O, an initial θ
    /// whose loss is not finite); numerical faults during training end the
    /// run with a [`Termination`] and keep the last good θ.
    pub fn run<'o>(
        self,
        points: impl Into<Points<'o>>,
        opt: &mut dyn Optimizer,
        theta: Vec<f64>,
    ) -> Result<Outcome> {
        self.execute(points.into(), opt, Start::Fresh(theta))
    }

    /// Continue a run from `state` (a [`Checkpoint`]'s), with the optimiser
    /// (and the resampler) restored to their states at that point: no
    /// iteration-0 record is emitted (the history already has it), and the
    /// budgets count the iterations and time already spent. Errors as
    /// [`Trainer::run`], and for a θ that does not fit the objective.
    pub fn resume<'o>(
        self,
        points: impl Into<Points<'o>>,
        opt: &mut dyn Optimizer,
        state: TrainingState,
    ) -> Result<Outcome> {
        self.execute(points.into(), opt, Start::Resumed(state))
    }

    fn execute(
        mut self,
        mut points: Points<'_>,
        opt: &mut dyn Optimizer,
        start: Start,
    ) -> Result<Outcome> {
        self.budget.validate()?;
        // The objective on the current points.
        macro_rules! obj {
            () => {
                points.objective()
            };
        }
        if let Some(plan) = &self.restart
            && let Some(bad) = plan.starts.iter().find(|t| t.len() != obj!().n_params())
        {
            return Err(Error::DimensionMismatch {
                context: "a restart's parameters vs the problem's network".into(),
                expected: obj!().n_params(),
                got: bad.len(),
            });
        }
        let resumed = matches!(start, Start::Resumed(_));
        let (mut s, metrics0) = match start {
            Start::Resumed(state) => {
                if state.theta.len() != obj!().n_params() {
                    return Err(Error::DimensionMismatch {
                        context: "resumed parameters vs the problem's network".into(),
                        expected: obj!().n_params(),
                        got: state.theta.len(),
                    });
                }
                (state, None)
            }
            Start::Fresh(theta) => {
                let t0 = Instant::now();
                let loss = obj!().loss(&theta).map_err(|e| e.at_iteration(0))?;
                let clock = t0.elapsed().as_secs_f64();
                let metrics = self.evaluate(&theta)?;
                let state = TrainingState {
                    iter: 0,
                    time_s: clock,
                    last_eval_s: clock,
                    loss,
                    theta,
                    stall: StallWatch::new(loss, 0),
                    best: None,
                    initial_heldout: None,
                    restarts: Vec::new(),
                };
                (state, metrics)
            }
        };
        let heldout0 = if resumed {
            None
        } else {
            self.heldout(&s.theta)?
        };
        if let Some(h) = heldout0 {
            BestIterate::offer(&mut s.best, (s.iter, s.loss, h), metrics0, &s.theta);
            s.initial_heldout = Some(h);
        }
        let mut record = IterRecord {
            iter: s.iter,
            time_s: s.time_s,
            loss: s.loss,
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
                o.parameters(s.iter, &s.theta)?;
            }
        }
        let mut last_checkpoint = s.time_s;
        let mut metrics;
        let termination = loop {
            if s.iter >= self.budget.max_iters {
                break Termination::MaxIters;
            }
            if s.time_s >= self.budget.max_seconds {
                break Termination::MaxSeconds;
            }
            if s.loss <= self.budget.target_loss {
                break Termination::TargetLoss;
            }
            if self
                .stop
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed))
            {
                break Termination::Interrupted { iteration: s.iter };
            }
            let t = Instant::now();
            let step = opt.step(obj!(), &mut s.theta, s.loss);
            s.time_s += t.elapsed().as_secs_f64();
            let next = s.iter + 1;
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
            s.iter = next;
            s.loss = report.loss;
            let stalled = s.stall.stalled(
                s.loss,
                s.iter,
                self.budget.stall_iters,
                self.budget.stall_rtol,
            );
            // The budget ends the run after this step.
            let last_step = s.iter >= self.budget.max_iters
                || s.time_s >= self.budget.max_seconds
                || s.loss <= self.budget.target_loss;
            let last = stalled
                || s.iter >= self.budget.max_iters
                || s.time_s >= self.budget.max_seconds
                || s.loss <= self.budget.target_loss;
            let due = last
                || (self.eval_every > 0 && s.iter.is_multiple_of(self.eval_every))
                || self
                    .eval_interval_s
                    .is_some_and(|dt| s.time_s - s.last_eval_s >= dt);
            let mut heldout = None;
            metrics = if due {
                s.last_eval_s = s.time_s;
                heldout = self.heldout(&s.theta)?;
                self.evaluate(&s.theta)?
            } else {
                None
            };
            if let Some(h) = heldout {
                BestIterate::offer(&mut s.best, (s.iter, s.loss, h), metrics, &s.theta);
            }
            record = IterRecord {
                iter: s.iter,
                time_s: s.time_s,
                loss: s.loss,
                metrics,
                rank: report.rank,
                step_size: report.step_size,
                extra: report.extra,
                spectrum: if due { report.spectrum } else { None },
                heldout_loss: heldout,
            };
            for o in &mut self.observers {
                o.iteration(&record)?;
                o.parameters(s.iter, &s.theta)?;
            }
            if let Some(h) = heldout
                && self.budget.stop_on_overfit
                && overfitting_warning(s.loss, h, s.initial_heldout).is_some()
            {
                break Termination::Overfitting {
                    iteration: s.iter,
                    ratio: h / s.loss.max(f64::MIN_POSITIVE),
                    best: s.best.as_ref().map_or(s.iter, |b| b.iter),
                };
            }
            if let Some(plan) = &self.restart
                && let Some(start) = plan.starts.get(s.restarts.len())
                && !last_step
                && s.loss > plan.above
                && (stalled || s.iter - s.restarts.last().copied().unwrap_or(0) >= plan.after)
            {
                let t = Instant::now();
                let restarted = opt
                    .restore(plan.fresh.clone())
                    .and_then(|()| obj!().loss(start));
                s.time_s += t.elapsed().as_secs_f64();
                match restarted {
                    Ok(l) if l.is_finite() => {
                        s.theta.copy_from_slice(start);
                        s.loss = l;
                    }
                    Ok(_) => {
                        break Termination::NonFinite {
                            iteration: s.iter,
                            block: "-".into(),
                            quantity: "loss of the restart's initial θ".into(),
                        };
                    }
                    Err(e) => break fault(e, s.iter)?,
                }
                s.restarts.push(s.iter);
                s.stall = StallWatch::new(s.loss, s.iter);
                for o in &mut self.observers {
                    o.restarted(s.iter, s.restarts.len() + 1, s.loss)?;
                }
            } else if stalled {
                break Termination::Stalled {
                    iteration: s.iter,
                    since: s.stall.since,
                };
            }
            if let Points::Resampled(r) = &mut points
                && r.due(s.iter)
            {
                let t = Instant::now();
                let redrawn = r.resample(&s.theta).and_then(|()| {
                    opt.objective_changed();
                    r.objective().loss(&s.theta)
                });
                s.time_s += t.elapsed().as_secs_f64();
                s.loss = match redrawn {
                    Ok(l) => l,
                    // θ is fine; the new points are not (e.g. the residual
                    // overflows at a RAD candidate): end the run as a step would.
                    Err(e) => break fault(e, s.iter)?,
                };
                for o in &mut self.observers {
                    o.resampled(s.iter, s.loss)?;
                }
                // The loss on new points is another function: progress restarts.
                s.stall = StallWatch::new(s.loss, s.iter);
            }
            if self.checkpoint.as_ref().is_some_and(|c| {
                s.time_s - last_checkpoint >= c.seconds
                    || c.every.is_some_and(|n| s.iter.is_multiple_of(n))
            }) {
                last_checkpoint = s.time_s;
                self.write_checkpoint(opt, &s, &points)?;
            }
        };
        self.write_checkpoint(opt, &s, &points)?;
        let final_metrics = match record.metrics {
            Some(m) => Some(m),
            None => self.evaluate(&s.theta)?,
        };
        let final_heldout = match record.heldout_loss {
            Some(h) => Some(h),
            None => self.heldout(&s.theta)?,
        };
        if let Some(h) = final_heldout {
            BestIterate::offer(&mut s.best, (s.iter, s.loss, h), final_metrics, &s.theta);
        }
        let outcome = Outcome {
            termination,
            iters: s.iter,
            time_s: s.time_s,
            loss: s.loss,
            metrics: final_metrics,
            heldout_loss: final_heldout,
            initial_heldout_loss: s.initial_heldout,
            best: s.best,
            theta: s.theta,
            restarts: s.restarts,
        };
        for o in &mut self.observers {
            o.finish(&outcome)?;
        }
        Ok(outcome)
    }
}

/// How [`Trainer::execute`] starts.
enum Start {
    /// From θ at iteration 0.
    Fresh(Vec<f64>),
    /// From a saved state.
    Resumed(TrainingState),
}

/// The training points of a run: fixed (the objective as given), or redrawn
/// during the run by a [`Resampler`], which owns the objective on its current
/// points. `&objective` converts into `Fixed`, a `Resampler` into `Resampled`.
pub enum Points<'o> {
    /// The objective's own points, for the whole run.
    Fixed(&'o dyn Objective),
    /// Points redrawn every so many iterations.
    Resampled(Box<Resampler>),
}

impl Points<'_> {
    /// The objective on the current points.
    pub fn objective(&self) -> &dyn Objective {
        match self {
            Points::Fixed(o) => *o,
            Points::Resampled(r) => r.objective(),
        }
    }
}

impl<'o, T: Objective + 'o> From<&'o T> for Points<'o> {
    fn from(objective: &'o T) -> Self {
        Points::Fixed(objective)
    }
}

impl From<Resampler> for Points<'_> {
    fn from(resampler: Resampler) -> Self {
        Points::Resampled(Box::new(resampler))
    }
}
