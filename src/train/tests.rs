//! Tests of the trainer loop: budgets, terminations, checkpoints, resume.

use super::*;
use crate::model::Metrics;
use crate::optim::{Objective, Optimizer, StepReport};
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
    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], _loss: f64) -> Result<StepReport> {
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
                self.1.borrow_mut().push(c.state.iter);
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
            seconds: 1e9,
            every: Some(2),
            run: None,
            points: None,
        })
        .observe(Watch(path.clone(), seen.clone()))
        .run(&Bowl, &mut opt, vec![1.0, 1.0])
        .unwrap();
    // Seen before each iteration's own write: none at 0–2, then 2, 2, 4.
    assert_eq!(*seen.borrow(), vec![2, 2, 4]);
    let last = Checkpoint::load(&path).unwrap();
    assert_eq!(
        (last.state.iter, last.state.theta.clone()),
        (5, out.theta.clone())
    );
    assert_eq!(last.state.loss, out.loss);
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

/// A run resumed from its checkpoint's state and optimiser state continues
/// bit for bit (Adam, whose moments are state), and a θ of the wrong size
/// is refused.
#[test]
fn resume_from_a_checkpoint_state_continues_exactly() {
    use crate::optim::OptimizerConfig;
    let compute = crate::linalg::Compute::default();
    let adam = OptimizerConfig::default_for("adam").unwrap();
    let start = vec![1.0, -0.5];
    let mut whole = adam.build(&compute).unwrap();
    let straight = Trainer::new(budget(8, 0.0))
        .run(&Bowl, whole.as_mut(), start.clone())
        .unwrap();
    let dir = std::env::temp_dir().join(format!("natgrad-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("checkpoint.json");
    let plan = CheckpointPlan {
        path: path.clone(),
        seconds: 1e9,
        every: None,
        run: None,
        points: None,
    };
    let mut first = adam.build(&compute).unwrap();
    Trainer::new(budget(3, 0.0))
        .checkpoint(plan)
        .run(&Bowl, first.as_mut(), start)
        .unwrap();
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.state.iter, 3);
    let mut second = adam.build(&compute).unwrap();
    second.restore(ck.optimizer_state.clone()).unwrap();
    let resumed = Trainer::new(budget(8, 0.0))
        .resume(&Bowl, second.as_mut(), ck.state.clone())
        .unwrap();
    assert_eq!(resumed.iters, 8);
    assert_eq!(resumed.theta, straight.theta);
    assert_eq!(resumed.loss.to_bits(), straight.loss.to_bits());
    let mut short = ck.state;
    short.theta.pop();
    let mut third = adam.build(&compute).unwrap();
    let e = Trainer::new(budget(8, 0.0))
        .resume(&Bowl, third.as_mut(), short)
        .unwrap_err();
    assert!(matches!(e, Error::DimensionMismatch { .. }), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Records the restarts an observer is told of.
#[derive(Default)]
struct Restarted(Vec<(usize, usize, f64)>);
impl Observer for Restarted {
    fn iteration(&mut self, _r: &IterRecord) -> Result<()> {
        Ok(())
    }
    fn restarted(&mut self, iter: usize, attempt: usize, loss: f64) -> Result<()> {
        self.0.push((iter, attempt, loss));
        Ok(())
    }
}

fn plan(after: usize, above: f64, starts: Vec<Vec<f64>>) -> RestartPlan {
    RestartPlan {
        after,
        above,
        starts,
        fresh: crate::optim::OptimizerState::None,
    }
}

/// A try whose loss is above `above` after `after` iterations continues
/// from the next start; once the starts are used up the last try runs to
/// the end of the budget; a converged try and the run's last iteration do
/// not restart.
#[test]
fn restarts_after_a_try_that_has_not_converged() {
    let scripted = || Scripted {
        steps: 0,
        blow_at: usize::MAX,
    };
    // Halving θ: the loss falls 4× per step, 2 → 2/64 after 3 steps.
    let mut seen = Restarted::default();
    let out = Trainer::new(budget(8, 0.0))
        .restarts(plan(3, 1e-2, vec![vec![4.0, 0.0]]))
        .observe(&mut seen)
        .run(&Bowl, &mut scripted(), vec![1.0, 1.0])
        .unwrap();
    assert_eq!(out.restarts, [3]);
    assert_eq!(seen.0, [(3, 2, 16.0)]);
    // Five steps of the second try (its check at 6 finds 16/64 > 1e-2, but
    // there is no third start).
    assert_eq!(out.theta, [4.0 / 32.0, 0.0]);
    assert_eq!((out.iters, out.termination), (8, Termination::MaxIters));
    // Converged at the check (2/64 ≤ 0.05): no restart.
    let out = Trainer::new(budget(8, 0.0))
        .restarts(plan(3, 0.05, vec![vec![4.0, 0.0]]))
        .run(&Bowl, &mut scripted(), vec![1.0, 1.0])
        .unwrap();
    assert!(out.restarts.is_empty());
    assert_eq!(out.theta, [1.0 / 256.0; 2]);
    // A start that does not fit the network is an error, not a panic.
    let err = Trainer::new(budget(8, 0.0))
        .restarts(plan(3, 1e-2, vec![vec![4.0]]))
        .run(&Bowl, &mut scripted(), vec![1.0, 1.0])
        .unwrap_err();
    assert!(err.to_string().contains("restart"), "{err}");
    // The check falls on the last iteration: the run ends with its θ.
    let out = Trainer::new(budget(3, 0.0))
        .restarts(plan(3, 1e-2, vec![vec![4.0, 0.0]]))
        .run(&Bowl, &mut scripted(), vec![1.0, 1.0])
        .unwrap();
    assert!(out.restarts.is_empty());
    assert_eq!(out.theta, [0.125; 2]);
}

/// A try that stalls before its check restarts instead of ending the run;
/// the last try's stall ends it.
#[test]
fn a_stalled_try_restarts() {
    struct Idle;
    impl Optimizer for Idle {
        fn name(&self) -> &'static str {
            "idle"
        }
        fn step(&mut self, _o: &dyn Objective, _t: &mut [f64], loss: f64) -> Result<StepReport> {
            Ok(StepReport {
                loss,
                ..Default::default()
            })
        }
    }
    let out = Trainer::new(Budget {
        stall_iters: 10,
        ..budget(1000, 0.0)
    })
    .restarts(plan(500, 1e-14, vec![vec![2.0, 0.0]]))
    .run(&Bowl, &mut Idle, vec![1.0, 1.0])
    .unwrap();
    assert_eq!(out.restarts, [10]);
    assert_eq!(
        out.termination,
        Termination::Stalled {
            iteration: 20,
            since: 10
        }
    );
    assert_eq!((out.theta, out.loss), (vec![2.0, 0.0], 4.0));
}
