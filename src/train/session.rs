//! A whole run of a catalogue or configured problem: build, train, write
//! the run directory, checkpoint, resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::catalogue::{self, Defaults, Preset};
use super::{
    Budget, Checkpoint, CheckpointPlan, HistoryCsv, ModelSnapshots, Observer, Outcome, Points,
    Progress, RunFiles, RunInfo, SpectraCsv, Trainer, truncate_csv_after,
};
use super::{Resampler, Resampling, RestartPlan, Restarts};
use crate::error::{Error, Result};
use crate::linalg::Compute;
use crate::model::{Activation, Init};
use crate::optim::OptimizerConfig;
use crate::problems;

/// Everything that defines a run (serialised into `summary.json` and
/// checkpoints, so that a run can be reproduced or continued exactly).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Problem name: a catalogue name, or the name of the `custom` problem.
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
    /// Write `checkpoint.json` into `out` whenever this much training time
    /// has passed since the last one, and when the run ends.
    #[serde(default = "default_checkpoint_seconds")]
    pub checkpoint_seconds: f64,
    /// Also write one every this many iterations.
    #[serde(default)]
    pub checkpoint_every: Option<usize>,
    /// When set (e.g. by a SIGINT/SIGTERM handler), stop at the end of the
    /// current step with a checkpoint.
    #[serde(skip)]
    pub stop: Option<Arc<AtomicBool>>,
    /// A fresh run into an `out` folder that already holds a run replaces
    /// its files ([`RUN_FILES`]) instead of refusing (`--force`).
    #[serde(skip)]
    pub replace_existing: bool,
    /// Network widths replacing the problem's (input = its dimension, output 1).
    #[serde(default)]
    pub widths: Option<Vec<usize>>,
    /// Hidden activation replacing the problem's.
    #[serde(default)]
    pub activation: Option<Activation>,
    /// Parameter initialisation replacing the problem's.
    #[serde(default)]
    pub init: Option<Init>,
    /// System weights of blocks by name, replacing the problem's
    /// ([`crate::residual::Block::with_system_weight`]; the loss is unchanged).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub system_weights: BTreeMap<String, f64>,
    /// The problem's definition when it is not a catalogue problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<problems::CustomProblem>,
    /// Save the model at these iterations as `model-<iter>.json` in `out`
    /// ([`super::ModelSnapshots`]; none by default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub save_models_at: Vec<usize>,
    /// Collocation resampling (off by default).
    #[serde(default)]
    pub sampling: Resampling,
    /// Restarts from other initialisations (off by default; laplace2d's
    /// preset has one).
    #[serde(default, skip_serializing_if = "Restarts::is_off")]
    pub restarts: Restarts,
    /// Threads of the dense kernels and the device of the decompositions.
    #[serde(default)]
    pub compute: Compute,
    /// The catalogue preset the settings came from.
    #[serde(default)]
    pub preset: Preset,
}

fn default_checkpoint_seconds() -> f64 {
    60.0
}

/// The memory a run may use, in bytes: `MemAvailable` of `/proc/meminfo`
/// (when readable), lowered to `$NATGRAD_MEMORY_LIMIT_MIB` when that is set.
pub fn available_memory() -> Result<Option<u64>> {
    let system = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
    let limit = match std::env::var("NATGRAD_MEMORY_LIMIT_MIB") {
        Ok(v) => Some(
            v.trim().parse::<u64>().map_err(|_| {
                Error::config(
                    "NATGRAD_MEMORY_LIMIT_MIB",
                    format!("`{v}` is not a whole number of MiB"),
                )
            })? << 20,
        ),
        Err(_) => None,
    };
    Ok(match (system, limit) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// At most this many held-out points per block (the training set's size
/// below it): fresh points of the same regions, drawn once per run.
pub const HELD_OUT_CAP: usize = 20_000;

/// The files a run writes into its folder (`natgrad plot` adds its figures).
pub const RUN_FILES: &[&str] = &[
    "history.csv",
    "spectra.csv",
    "summary.json",
    "model.json",
    "best_model.json",
    "checkpoint.json",
    "checkpoint.json.tmp",
];

/// Make `dir` ready for a fresh run: refuse a folder that holds another
/// run's files unless `replace`, which deletes them (so no stale file, say
/// an old `spectra.csv`, survives into the new run).
fn prepare_run_dir(dir: &Path, replace: bool) -> Result<()> {
    let present: Vec<&str> = RUN_FILES
        .iter()
        .copied()
        .filter(|f| dir.join(f).exists())
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    if !replace {
        return Err(Error::config(
            "out",
            format!(
                "`{}` already holds a run ({}); pass --force to replace it, or --resume {} to continue it",
                dir.display(),
                present.join(", "),
                dir.display()
            ),
        ));
    }
    for f in present {
        let p = dir.join(f);
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
    }
    // Model snapshots (`model-<iter>.json`) of the replaced run.
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let snapshot = name
            .strip_prefix("model-")
            .and_then(|r| r.strip_suffix(".json"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if snapshot {
            let p = entry.path();
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

/// The checkpoint file of a run directory.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.json")
}

impl RunSpec {
    /// The catalogue's defaults for `problem` (natgrad's optimiser settings
    /// and budget, [`catalogue::Entry::defaults`]), seed 0, output in
    /// `runs/<problem>-<optimizer>-<seed>/`, progress every 100 iterations.
    pub fn defaults(problem: &str) -> Result<Self> {
        Self::with_preset(problem, Preset::Default)
    }

    /// [`RunSpec::defaults`] from a preset: natgrad's settings or the
    /// problem's papers' (output in `runs/<problem>-paper-<optimizer>-<seed>/`).
    pub fn with_preset(problem: &str, preset: Preset) -> Result<Self> {
        let d = catalogue::entry(problem)?.preset(preset);
        let mut spec = Self::from_defaults(problem, d, None)?;
        spec.preset = preset;
        spec.out = Some(spec.default_out());
        Ok(spec)
    }

    /// A run of a problem declared in a configuration (see
    /// [`problems::CustomProblem`]) with its defaults
    /// ([`catalogue::custom_defaults`]: SSBroyden, 60 s).
    pub fn custom(name: &str, custom: problems::CustomProblem) -> Result<Self> {
        if catalogue::contains(name) {
            return Err(Error::config(
                "problem.name",
                format!("`{name}` is a catalogue problem; give the custom problem another name"),
            ));
        }
        custom.build(name)?;
        Self::from_defaults(name, catalogue::custom_defaults(), Some(custom))
    }

    fn from_defaults(
        problem: &str,
        d: Defaults,
        custom: Option<problems::CustomProblem>,
    ) -> Result<Self> {
        let mut spec = RunSpec {
            problem: problem.to_string(),
            optimizer: d.optimizer,
            budget: Budget {
                max_iters: d.max_iters,
                max_seconds: d.max_seconds,
                stop_on_overfit: d.stop_on_overfit,
                ..Default::default()
            },
            seed: 0,
            eval_every: 10,
            eval_interval_s: None,
            out: None,
            progress_every: Some(100),
            checkpoint_seconds: default_checkpoint_seconds(),
            checkpoint_every: None,
            save_models_at: Vec::new(),
            stop: None,
            replace_existing: false,
            widths: d.widths,
            activation: None,
            init: None,
            system_weights: d.system_weights,
            custom,
            sampling: d.sampling,
            restarts: d.restarts,
            compute: Compute::default(),
            preset: Preset::Default,
        };
        spec.out = Some(spec.default_out());
        Ok(spec)
    }

    /// `runs/<problem>-<optimizer>-<seed>` (`<problem>-paper-…` for the paper preset).
    pub fn default_out(&self) -> PathBuf {
        let preset = match self.preset {
            Preset::Default => "",
            Preset::Paper => "-paper",
        };
        PathBuf::from("runs").join(format!(
            "{}{preset}-{}-{}",
            self.problem,
            self.optimizer.name(),
            self.seed
        ))
    }

    /// The catalogue problem with this run's network overrides applied.
    pub fn problem(&self) -> Result<problems::Problem> {
        let mut pb = match &self.custom {
            Some(c) => c.build(&self.problem)?,
            None => catalogue::build(&self.problem)?,
        };
        if let Some(w) = &self.widths {
            let dim = pb.widths[0];
            if w.len() < 2 || w.contains(&0) {
                return Err(Error::config(
                    "model.widths",
                    format!("need at least an input and an output width, all > 0, got {w:?}"),
                ));
            }
            if w[0] != dim {
                return Err(Error::config(
                    "model.widths",
                    format!(
                        "the input width must be the dimension of `{}`, {dim}, got {}",
                        self.problem, w[0]
                    ),
                ));
            }
            if w[w.len() - 1] != 1 {
                return Err(Error::config(
                    "model.widths",
                    format!("the output width must be 1, got {}", w[w.len() - 1]),
                ));
            }
            pb.widths = w.clone();
        }
        if let Some(a) = self.activation {
            pb.activation = a;
        }
        if let Some(i) = self.init {
            i.validate("model.init")?;
            pb.init = i;
        }
        for (name, &w) in &self.system_weights {
            let field = format!("system_weights.{name}");
            if !(w.is_finite() && w > 0.0) {
                return Err(Error::config(
                    field,
                    format!("must be finite and > 0, got {w}"),
                ));
            }
            let Some(b) = pb.blocks.iter_mut().find(|b| b.name() == name) else {
                let known: Vec<&str> = pb.blocks.iter().map(|b| b.name()).collect();
                return Err(Error::config(
                    field,
                    format!(
                        "`{}` has no block `{name}`; its blocks: {}",
                        self.problem,
                        known.join(", ")
                    ),
                ));
            };
            *b = b.clone().with_system_weight(w);
        }
        Ok(pb)
    }

    /// The system weight of every block of the problem, by name (the
    /// problem's own, with [`RunSpec::system_weights`] applied).
    pub fn block_system_weights(&self) -> Result<BTreeMap<String, f64>> {
        Ok(self.problem()?.system_weights())
    }

    /// Check the network overrides and the resampling settings against the problem.
    pub fn check_model(&self) -> Result<()> {
        let pb = self.problem()?;
        if self.sampling.enabled() {
            Resampler::new(
                pb.least_squares()?,
                pb.domain.clone(),
                self.sampling.clone(),
                self.seed,
            )?;
        }
        Ok(())
    }

    /// The network this run trains: widths, activation and initialisation.
    pub fn model(&self) -> Result<(Vec<usize>, Activation, Init)> {
        let pb = self.problem()?;
        Ok((pb.widths, pb.activation, pb.init))
    }

    /// Check the whole specification.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        if !(self.checkpoint_seconds.is_finite() && self.checkpoint_seconds > 0.0) {
            return Err(Error::config(
                "checkpoint_seconds",
                format!("must be finite and > 0, got {}", self.checkpoint_seconds),
            ));
        }
        if self.checkpoint_every == Some(0) {
            return Err(Error::config("checkpoint_every", "must be at least 1"));
        }
        if let Some(dt) = self.eval_interval_s
            && !(dt.is_finite() && dt > 0.0)
        {
            return Err(Error::config(
                "eval_interval_s",
                format!("must be finite and > 0, got {dt}"),
            ));
        }
        self.sampling.validate()?;
        if !self.restarts.is_off() {
            // The inits are checked against the first try's.
            self.restarts.validate(self.model()?.2)?;
        }
        if !self.system_weights.is_empty() {
            // The system weights name blocks of the problem: checked against it.
            self.problem()?;
        }
        self.compute.validate()?;
        self.budget.validate()
    }

    /// Build the problem, train, and write `history.csv`, `summary.json`,
    /// `model.json` and `checkpoint.json` into `out` (created if needed).
    pub fn run(&self) -> Result<Outcome> {
        self.run_from(None, None)
    }

    /// [`RunSpec::run`] with one more observer, called after the run's own
    /// ones on the calling thread (the Python package's progress bar,
    /// callbacks and interrupt checks).
    pub fn run_observed(&self, observer: &mut dyn Observer) -> Result<Outcome> {
        self.run_from(None, Some(observer))
    }

    /// Continue the run whose directory `dir` holds a `checkpoint.json`: the
    /// specification is the checkpoint's (its budget and compute settings
    /// adjusted by `adjust`, e.g. a longer budget), `history.csv` and `spectra.csv` are cut back to the
    /// checkpoint's iteration and appended to. With the same budget the
    /// resumed history equals an uninterrupted run's (timings aside).
    /// `observer`, if any, is called as in [`RunSpec::run_observed`].
    pub fn resume(
        dir: &Path,
        adjust: impl FnOnce(&mut Budget, &mut Compute),
        progress_every: Option<usize>,
        stop: Option<Arc<AtomicBool>>,
        observer: Option<&mut dyn Observer>,
    ) -> Result<Outcome> {
        let path = checkpoint_path(dir);
        if !path.exists() {
            return Err(Error::config(
                "resume",
                format!(
                    "`{}` holds no run to resume (no {})",
                    dir.display(),
                    path.display()
                ),
            ));
        }
        let ck = Checkpoint::load(&path)?;
        let mut spec: RunSpec = ck.run.clone().ok_or_else(|| Error::Parse {
            path: path.display().to_string(),
            reason: "no run specification (a checkpoint of a bare trainer run)".into(),
        })?;
        if spec.optimizer.name() != ck.optimizer {
            return Err(Error::Parse {
                path: path.display().to_string(),
                reason: format!(
                    "optimizer `{}` does not match the run's `{}`",
                    ck.optimizer,
                    spec.optimizer.name()
                ),
            });
        }
        adjust(&mut spec.budget, &mut spec.compute);
        spec.out = Some(dir.to_path_buf());
        spec.progress_every = progress_every;
        spec.stop = stop;
        spec.run_from(Some(ck), observer)
    }

    fn run_from(
        &self,
        resume: Option<Checkpoint>,
        observer: Option<&mut dyn Observer>,
    ) -> Result<Outcome> {
        self.validate()?;
        // `cuda` without a usable device is an error whatever the optimiser.
        let device = self.compute.resolve()?;
        if resume.is_none()
            && let Some(dir) = &self.out
        {
            prepare_run_dir(dir, self.replace_existing)?;
        }
        let pb = self.problem()?;
        let ls = pb.least_squares()?;
        let digest = ls.points_digest();
        let mlp = pb.mlp()?;
        let mut opt = self.optimizer.build(&self.compute)?;
        let fresh = opt.state();
        if let Some(ck) = &resume {
            if let Some(theirs) = ck.points.as_ref().filter(|&d| *d != digest) {
                return Err(Error::config(
                    "resume",
                    format!(
                        "the checkpoint was taken on other training points ({theirs}) than \
                         `{}` has now ({digest}): the problem's set-up changed since it was \
                         written; start a fresh run",
                        self.problem
                    ),
                ));
            }
            opt.restore(ck.optimizer_state.clone())?;
            if ck.state.theta.len() != ls.n_params() {
                return Err(Error::DimensionMismatch {
                    context: "checkpoint parameters vs the problem's network".into(),
                    expected: ls.n_params(),
                    got: ck.state.theta.len(),
                });
            }
        }
        let (needed, what) =
            crate::optim::memory_estimate(&self.optimizer, ls.n_points(), ls.n_params());
        if let Some(available) = available_memory()?
            && needed > available
        {
            return Err(Error::Memory {
                needed_mib: needed >> 20,
                available_mib: available >> 20,
                what,
            });
        }
        let eval_pb = pb.clone();
        // The same problem on fresh points, seeded by the run's seed.
        let held_out = ls.held_out(&*pb.domain, self.seed, HELD_OUT_CAP)?;
        let (n_params, n_residuals) = (ls.n_params(), ls.n_residuals());
        let mut trainer = Trainer::new(self.budget.clone())
            .eval_every(self.eval_every)
            .eval_interval(self.eval_interval_s)
            .held_out(held_out);
        if !eval_pb.reference.is_empty() {
            // Without a reference (a custom problem with no known
            // solution) the held-out residual is the only accuracy signal.
            trainer = trainer.evaluator(move |th| eval_pb.metrics(th));
        }
        if let Some(flag) = &self.stop {
            trainer = trainer.stop_flag(flag.clone());
        }
        if !self.restarts.is_off() {
            trainer = trainer.restarts(RestartPlan {
                after: self.restarts.after,
                above: self.restarts.above,
                starts: self
                    .restarts
                    .inits
                    .iter()
                    .map(|&init| mlp.init(init, self.seed))
                    .collect(),
                fresh,
            });
        }
        let points = if self.sampling.enabled() {
            // The resampler owns the objective: its points are redrawn in place.
            let mut r = Resampler::new(ls, pb.domain.clone(), self.sampling.clone(), self.seed)?;
            if let Some(ck) = &resume {
                let state = ck.sampling.as_ref().ok_or_else(|| Error::Parse {
                    path: "checkpoint".into(),
                    reason: "resampling is on but the checkpoint holds no sampling state".into(),
                })?;
                r.restore(state)?;
            }
            Points::from(r)
        } else {
            Points::Fixed(&ls)
        };
        if let Some(every) = self.progress_every {
            let iters = if self.budget.max_iters == usize::MAX {
                "no iteration limit".to_string()
            } else {
                format!("{} iterations", self.budget.max_iters)
            };
            let secs = if self.budget.max_seconds.is_infinite() {
                "no time limit".to_string()
            } else {
                format!("{} s", self.budget.max_seconds)
            };
            let from = resume
                .as_ref()
                .map(|c| format!(", resumed at iteration {}", c.state.iter))
                .unwrap_or_default();
            let sampling = if self.sampling.enabled() {
                let s = &self.sampling;
                let how = match s.method {
                    super::ResampleMethod::Uniform => "uniform".to_string(),
                    super::ResampleMethod::Rad => format!(
                        "RAD k = {}, c = {}, {} candidates",
                        s.rad_k, s.rad_c, s.candidates
                    ),
                };
                format!(
                    "; block `{}` redrawn every {} iterations ({how})",
                    s.block, s.resample_every
                )
            } else {
                String::new()
            };
            let weighted: Vec<String> = pb
                .blocks
                .iter()
                .filter(|b| b.system_weight() != 1.0)
                .map(|b| format!("{} {}", b.name(), b.system_weight()))
                .collect();
            let system_weights = match (&self.optimizer, weighted.is_empty()) {
                (_, true) => String::new(),
                (
                    OptimizerConfig::Anagram(_)
                    | OptimizerConfig::Amstramgram(_)
                    | OptimizerConfig::Engd(_)
                    | OptimizerConfig::Nystrom(_),
                    false,
                ) => format!("; system weights {}", weighted.join(", ")),
                (o, false) => format!(
                    "; system weights ({}) not used by {}, which steps on the loss",
                    weighted.join(", "),
                    o.name()
                ),
            };
            let device = match &self.optimizer {
                OptimizerConfig::Anagram(_) | OptimizerConfig::Amstramgram(_) => {
                    format!("; decompositions on {device}")
                }
                _ => String::new(),
            };
            let restarts = match self.restarts.inits.len() {
                0 => String::new(),
                n => format!(
                    "; up to {n} restart(s) from other initialisations after {} iterations above loss {:e}",
                    self.restarts.after, self.restarts.above
                ),
            };
            eprintln!(
                "natgrad: {} with {} (P = {}, S = {}, seed {}), budget {iters} / {secs}{from}; \
                 memory estimate {:.1} MiB ({what}){sampling}{system_weights}{restarts}; {} dense-kernel thread(s){device}",
                self.problem,
                self.optimizer.name(),
                n_params,
                n_residuals,
                self.seed,
                needed as f64 / (1u64 << 20) as f64,
                self.compute.threads,
            );
            trainer = trainer.observe(
                Progress::new(every).with_budget(self.budget.max_iters, self.budget.max_seconds),
            );
        }
        if let Some(dir) = &self.out {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let info = RunInfo {
                problem: self.problem.clone(),
                optimizer: self.optimizer.name().into(),
                seed: self.seed,
                params: n_params,
                samples: n_residuals,
                config: serde_json::to_value(self).expect("spec serialises"),
                output_transform: pb.transform.as_ref().map(|t| t.description().to_string()),
            };
            let (history, spectra) = (dir.join("history.csv"), dir.join("spectra.csv"));
            trainer = match &resume {
                Some(ck) => {
                    truncate_csv_after(&history, ck.state.iter)?;
                    truncate_csv_after(&spectra, ck.state.iter)?;
                    trainer
                        .observe(HistoryCsv::append(history))
                        .observe(SpectraCsv::append(spectra))
                }
                None => trainer
                    .observe(HistoryCsv::new(history))
                    .observe(SpectraCsv::new(spectra)),
            };
            if !self.save_models_at.is_empty() {
                trainer = trainer.observe(ModelSnapshots::new(
                    dir,
                    mlp.clone(),
                    self.save_models_at.clone(),
                ));
            }
            trainer = trainer
                .observe(RunFiles::new(dir, info, mlp))
                .checkpoint(CheckpointPlan {
                    path: checkpoint_path(dir),
                    seconds: self.checkpoint_seconds,
                    every: self.checkpoint_every,
                    run: Some(self.clone()),
                    points: Some(digest),
                });
        }
        if let Some(o) = observer {
            trainer = trainer.observe(o);
        }
        match resume {
            Some(ck) => trainer.resume(points, opt.as_mut(), ck.state),
            None => trainer.run(points, opt.as_mut(), pb.initial_theta(self.seed)?),
        }
    }
}
