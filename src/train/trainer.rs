//! The executor loop: steps, evaluations, observers, checkpoints, resume
//! and the typed termination.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::Resampler;
use crate::error::{Error, Result};
use crate::model::Metrics;
use crate::optim::{Objective, Optimizer};

use super::{
    BestIterate, Budget, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Checkpoint, IterRecord, Observer,
    Outcome, RunSpec, Termination, overfitting_warning,
};

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
