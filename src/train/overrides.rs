//! The options of one run on top of a catalogue preset or a configuration
//! file: what `natgrad solve`'s flags and the Python package's
//! `natgrad.solve(**options)` set, applied by one function so that both
//! front ends accept the same options with the same errors.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::catalogue::{self, Preset};
use super::{ResampleMethod, RunConfig, RunSpec};
use crate::error::{Error, Result};
use crate::linalg::{Compute, Device};
use crate::optim::{Cutoff, OptimizerConfig};
use crate::residual::Weighting;

/// The front ends' compute defaults (command line and Python): 2
/// dense-kernel threads, device `auto`. The library's own default
/// ([`Compute::default`]) is 1 thread.
pub const FRONT_END_COMPUTE: Compute = Compute {
    threads: 2,
    device: Device::Auto,
};

/// Options of one run; every field is optional and leaves the preset's or
/// the configuration's value where it is absent.
///
/// The names are the command line's flags with `_` for `-` (`max_seconds`
/// is `--max-seconds`); `params` is the list of `--param KEY=VALUE`,
/// `system_weights` the list of `--system-weight BLOCK=W`,
/// `overfit_stop = false` is `--no-overfit-stop` and `force` is `--force`.
/// Read from JSON or TOML, an unknown field is an error that lists the
/// known ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overrides {
    /// Optimiser name; a catalogue problem's own settings of it where it
    /// has some (with their resampling, unless the configuration file set
    /// `[sampling]`), else the optimiser's defaults.
    pub optimizer: Option<String>,
    /// Optimiser parameters, `(key, value)` in order, as
    /// [`OptimizerConfig::set`] takes them (`("precision", "1e-10")`).
    pub params: Vec<(String, String)>,
    /// ANaGRAM's cutoff: a number, `rel:X` or `default` ([`Cutoff::parse`]).
    pub cutoff: Option<String>,
    /// Row weighting, `uniform` or `block-mean` ([`Weighting::parse`]).
    pub weighting: Option<String>,
    /// System weights of blocks, `(block name, weight)` in order
    /// ([`RunSpec::system_weights`]; `("boundary", "100")`).
    pub system_weights: Vec<(String, String)>,
    /// Iteration limit; given alone (without `max_seconds`), the run has no time limit.
    pub max_iters: Option<usize>,
    /// Time limit in seconds; given alone, the run has no iteration limit.
    pub max_seconds: Option<f64>,
    /// Stop when the loss reaches this value.
    pub target_loss: Option<f64>,
    /// Stop when the held-out loss exceeds [`super::OVERFIT_RATIO`] × the
    /// training loss (default true).
    pub overfit_stop: Option<bool>,
    /// `false` turns off the preset's or the configuration's restarts from
    /// other initialisations (`--no-restarts`); `true` keeps them.
    pub restarts: Option<bool>,
    /// Seed of the initialisation.
    pub seed: Option<u64>,
    /// Evaluate the error every this many iterations.
    pub eval_every: Option<usize>,
    /// Redraw the interior points every this many iterations.
    pub resample_every: Option<usize>,
    /// How to redraw them: `rad` or `uniform`.
    pub resample: Option<String>,
    /// Points per redraw.
    pub resample_points: Option<usize>,
    /// Save the model at these iterations (`model-<iter>.json`).
    pub save_models_at: Option<Vec<usize>>,
    /// Checkpoint every this many seconds of training time.
    pub checkpoint_seconds: Option<f64>,
    /// Also checkpoint every this many iterations.
    pub checkpoint_every: Option<usize>,
    /// Dense-kernel threads.
    pub threads: Option<usize>,
    /// Device of the decompositions: `cpu`, `cuda` or `auto`.
    pub device: Option<String>,
    /// Output directory (default: the configuration's, else
    /// `runs/<problem>-<optimizer>-<seed>`).
    pub out: Option<PathBuf>,
    /// Replace the run files of an output folder that already holds a run.
    pub force: bool,
}

impl Overrides {
    /// The run of catalogue problem `problem` with `preset`'s settings and
    /// these options; `compute` is the front end's default.
    pub fn catalogue_run(
        &self,
        problem: &str,
        preset: Preset,
        compute: Compute,
    ) -> Result<RunSpec> {
        let mut spec = RunSpec::with_preset(problem, preset)?;
        spec.compute = compute;
        self.apply(&mut spec, None)?;
        Ok(spec)
    }

    /// The run a configuration file describes, with these options on top;
    /// `compute` gives what the file does not set.
    pub fn config_run(&self, config: &RunConfig, compute: Compute) -> Result<RunSpec> {
        let mut spec = config.to_spec()?;
        spec.compute = Compute {
            threads: config.compute.threads.unwrap_or(compute.threads),
            device: config.compute.device.unwrap_or(compute.device),
        };
        self.apply(&mut spec, Some(config))?;
        Ok(spec)
    }

    /// Apply the options to `spec`, checking each (errors name the option).
    /// `config` is the file the run came from, if any: its `[sampling]`
    /// survives a change of optimiser, and its output directory comes
    /// before the default one.
    pub fn apply(&self, spec: &mut RunSpec, config: Option<&RunConfig>) -> Result<()> {
        if let Some(t) = self.threads {
            spec.compute.threads = t;
        }
        if let Some(d) = &self.device {
            spec.compute.device = Device::parse(d)?;
        }
        spec.compute.validate()?;
        if let Some(name) = &self.optimizer
            && name != spec.optimizer.name()
        {
            match &spec.custom {
                None => {
                    let setup = catalogue::entry(&spec.problem)?.setup_for(name)?;
                    spec.optimizer = setup.optimizer;
                    if config.is_none_or(|c| c.sampling.is_none()) {
                        spec.sampling = setup.sampling;
                    }
                    if config.is_none_or(|c| c.restarts.is_none()) {
                        spec.restarts = setup.restarts;
                    }
                    if config.is_none_or(|c| c.budget.stop_on_overfit.is_none()) {
                        spec.budget.stop_on_overfit = setup.stop_on_overfit;
                    }
                }
                Some(_) => spec.optimizer = OptimizerConfig::default_for(name)?,
            }
        }
        if self.restarts == Some(false) {
            spec.restarts.inits.clear();
        }
        if let Some(c) = &self.cutoff {
            let cutoff = serde_json::to_string(&Cutoff::parse(c)?).expect("cutoffs serialise");
            spec.optimizer.set("cutoff", &cutoff)?;
        }
        if let Some(w) = &self.weighting {
            let w = serde_json::to_string(&Weighting::parse(w)?).expect("weightings serialise");
            spec.optimizer.set("weighting", &w)?;
        }
        for (k, v) in &self.params {
            spec.optimizer.set(k.trim(), v.trim())?;
        }
        for (name, w) in &self.system_weights {
            let (name, w) = (name.trim(), w.trim());
            let weight = w.parse::<f64>().map_err(|_| {
                Error::config(
                    format!("system_weights.{name}"),
                    format!("`{w}` is not a number"),
                )
            })?;
            spec.system_weights.insert(name.to_string(), weight);
        }
        let budget = &mut spec.budget;
        match (self.max_iters, self.max_seconds) {
            (None, Some(_)) => budget.max_iters = usize::MAX,
            (Some(_), None) => budget.max_seconds = f64::INFINITY,
            _ => {}
        }
        self.apply_budget(budget);
        if let Some(seed) = self.seed {
            spec.seed = seed;
        }
        if let Some(k) = self.eval_every {
            spec.eval_every = k;
        }
        if let Some(n) = self.resample_every {
            spec.sampling.resample_every = n;
        }
        if let Some(n) = self.resample_points {
            spec.sampling.points = n;
        }
        if let Some(m) = &self.resample {
            spec.sampling.method = match m.as_str() {
                "rad" => ResampleMethod::Rad,
                "uniform" => ResampleMethod::Uniform,
                other => {
                    return Err(Error::UnknownName {
                        kind: "resampling method",
                        name: other.into(),
                        known: "rad, uniform".into(),
                    });
                }
            };
        }
        if let Some(at) = &self.save_models_at {
            spec.save_models_at = at.clone();
        }
        if let Some(t) = self.checkpoint_seconds {
            spec.checkpoint_seconds = t;
        }
        if self.checkpoint_every.is_some() {
            spec.checkpoint_every = self.checkpoint_every;
        }
        spec.out = Some(
            self.out
                .clone()
                .or_else(|| config.and_then(|c| c.output.dir.clone()))
                .unwrap_or_else(|| spec.default_out()),
        );
        spec.replace_existing = self.force;
        spec.validate()
    }

    /// `max_iters`, `max_seconds`, `target_loss` and `overfit_stop` as given
    /// (no replacement of the other limit: what a resumed run takes).
    pub fn apply_budget(&self, budget: &mut super::Budget) {
        if let Some(n) = self.max_iters {
            budget.max_iters = n;
        }
        if let Some(t) = self.max_seconds {
            budget.max_seconds = t;
        }
        if let Some(l) = self.target_loss {
            budget.target_loss = l;
        }
        if let Some(stop) = self.overfit_stop {
            budget.stop_on_overfit = stop;
        }
    }

    /// Read options from JSON text (e.g. the Python package's keyword
    /// arguments); an error names the option.
    pub fn from_json(text: &str) -> Result<Self> {
        super::config::from_json_named(text).map_err(|(field, reason)| {
            Error::config(field.unwrap_or_else(|| "options".into()), reason)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_apply_like_the_command_line() {
        let o = Overrides {
            optimizer: Some("anagram".into()),
            cutoff: Some("rel:1e-7".into()),
            max_seconds: Some(5.0),
            seed: Some(3),
            params: vec![("damping".into(), "1e-12".into())],
            ..Default::default()
        };
        let spec = o
            .catalogue_run("laplace2d", Preset::Default, FRONT_END_COMPUTE)
            .unwrap();
        assert_eq!(spec.optimizer.name(), "anagram");
        assert_eq!(spec.seed, 3);
        assert_eq!(spec.budget.max_seconds, 5.0);
        assert_eq!(spec.budget.max_iters, usize::MAX, "a time limit alone");
        assert_eq!(spec.compute, FRONT_END_COMPUTE);
        assert_eq!(
            spec.out.as_deref(),
            Some(std::path::Path::new("runs/laplace2d-anagram-3"))
        );
        let json = serde_json::to_value(&spec.optimizer).unwrap();
        assert_eq!(
            json["cutoff"],
            serde_json::json!({"kind": "relative", "factor": 1e-7})
        );
        assert_eq!(json["damping"], serde_json::json!(1e-12));
    }

    #[test]
    fn bad_options_name_the_option() {
        let err = |json: &str| {
            let o = Overrides::from_json(json)?;
            o.catalogue_run("laplace2d", Preset::Default, FRONT_END_COMPUTE)
                .map(|_| ())
        };
        let cases = [
            (r#"{"max_second": 3}"#, "unknown field `max_second`"),
            (r#"{"max_iters": "many"}"#, "`max_iters`"),
            (
                r#"{"params": [["precison", "1e-9"]]}"#,
                "optimizer.precison",
            ),
            (
                r#"{"resample": "sobol"}"#,
                "unknown resampling method `sobol`",
            ),
            (r#"{"device": "tpu"}"#, "unknown device `tpu`"),
            (r#"{"threads": 0}"#, "compute.threads"),
            (r#"{"max_seconds": -1}"#, "budget.max_seconds"),
            (r#"{"optimizer": "sgd"}"#, "unknown optimizer `sgd`"),
        ];
        for (json, msg) in cases {
            let e = err(json).expect_err(json).to_string();
            assert!(e.contains(msg), "{json}: expected `{msg}` in `{e}`");
            assert!(!e.contains('\n'), "{json}: one line, got `{e}`");
        }
    }
}
