//! A whole run of a catalogue problem: build, train, write the run directory.

use std::path::PathBuf;

use serde::Serialize;

use super::{Budget, HistoryCsv, Outcome, Progress, RunFiles, RunInfo, SpectraCsv, Trainer};
use crate::error::{Error, Result};
use crate::optim::OptimizerConfig;
use crate::problems;

/// Everything that defines a run of a catalogue problem.
#[derive(Clone, Debug, Serialize)]
pub struct RunSpec {
    /// Catalogue problem name.
    pub problem: String,
    /// Optimiser and settings.
    pub optimizer: OptimizerConfig,
    /// Stopping criteria.
    pub budget: Budget,
    /// Seed of the initialisation.
    pub seed: u64,
    /// Evaluate the error every this many iterations (0: only by `eval_interval_s` and at the ends).
    pub eval_every: usize,
    /// Also evaluate whenever this much training time has passed since the last evaluation.
    pub eval_interval_s: Option<f64>,
    /// Output directory (none: write nothing).
    pub out: Option<PathBuf>,
    /// Print a progress line every this many iterations (none: quiet).
    pub progress_every: Option<usize>,
}

impl RunSpec {
    /// The catalogue's defaults for `problem`: its papers' optimiser and budget, seed 0,
    /// output in `runs/<problem>-<optimizer>-<seed>/`, progress every 100 iterations.
    pub fn defaults(problem: &str) -> Result<Self> {
        let pb = problems::build(problem)?;
        let d = pb.defaults;
        let mut spec = RunSpec {
            problem: problem.to_string(),
            optimizer: d.optimizer,
            budget: Budget {
                max_iters: d.max_iters,
                max_seconds: d.max_seconds,
                target_loss: 0.0,
            },
            seed: 0,
            eval_every: 10,
            eval_interval_s: None,
            out: None,
            progress_every: Some(100),
        };
        spec.out = Some(spec.default_out());
        Ok(spec)
    }

    /// `runs/<problem>-<optimizer>-<seed>`.
    pub fn default_out(&self) -> PathBuf {
        PathBuf::from("runs").join(format!(
            "{}-{}-{}",
            self.problem,
            self.optimizer.name(),
            self.seed
        ))
    }

    /// Check the whole specification.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        if let Some(dt) = self.eval_interval_s
            && !(dt.is_finite() && dt > 0.0)
        {
            return Err(Error::config(
                "eval_interval_s",
                format!("must be finite and > 0, got {dt}"),
            ));
        }
        self.budget.validate()
    }

    /// Build the problem, train, and write `history.csv`, `summary.json` and
    /// `model.json` into `out` (created if needed).
    pub fn run(&self) -> Result<Outcome> {
        self.validate()?;
        let pb = problems::build(&self.problem)?;
        let ls = pb.least_squares()?;
        let mlp = pb.mlp()?;
        let theta = pb.initial_theta(self.seed)?;
        let mut opt = self.optimizer.build()?;
        let eval_pb = pb.clone();
        let mut trainer = Trainer::new(self.budget.clone())
            .eval_every(self.eval_every)
            .eval_interval(self.eval_interval_s)
            .evaluator(move |th| eval_pb.metrics(th));
        if let Some(every) = self.progress_every {
            let iters = if self.budget.max_iters == usize::MAX {
                "no iteration limit".to_string()
            } else {
                format!("{} iterations", self.budget.max_iters)
            };
            eprintln!(
                "natgrad: {} with {} (P = {}, S = {}, seed {}), budget {iters} / {} s",
                self.problem,
                self.optimizer.name(),
                ls.n_params(),
                ls.n_residuals(),
                self.seed,
                self.budget.max_seconds
            );
            trainer = trainer.observe(Progress::new(every));
        }
        if let Some(dir) = &self.out {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let info = RunInfo {
                problem: self.problem.clone(),
                optimizer: self.optimizer.name().into(),
                seed: self.seed,
                params: ls.n_params(),
                samples: ls.n_residuals(),
                config: serde_json::to_value(self).expect("spec serialises"),
                output_transform: pb.transform.as_ref().map(|t| t.description().to_string()),
            };
            trainer = trainer
                .observe(HistoryCsv::new(dir.join("history.csv")))
                .observe(SpectraCsv::new(dir.join("spectra.csv")))
                .observe(RunFiles::new(dir, info, mlp));
        }
        trainer.run(&ls, opt.as_mut(), theta)
    }
}
