//! Run configurations in TOML: a whole run in one file.
//!
//! ```toml
//! seed = 0
//!
//! [problem]
//! name = "heat"              # a catalogue problem (`natgrad list`)
//!
//! [model]                    # optional: override the problem's network
//! widths = [2, 64, 1]        # input width = the problem's dimension, output 1
//! activation = "tanh"        # tanh | sin
//! init = { kind = "normal", std = 0.1 }   # or { kind = "glorot" }
//!
//! [optimizer]                # optional: the problem's own optimiser if absent
//! name = "amstramgram"
//! precision = 1e-14          # any field of the optimiser's configuration
//!
//! [budget]                   # optional: each field overrides the problem's default
//! max_iters = 2000
//! max_seconds = 60.0
//! target_loss = 0.0
//! stall_iters = 1000         # stop after this many iterations without progress (0: never)
//! stall_rtol = 1e-9          # the relative loss decrease that counts as progress
//! stop_on_overfit = true     # stop once held-out loss > 1e4 × training loss
//!
//! [sampling]                 # optional: redraw the interior points (default: the problem's)
//! resample_every = 500       # iterations between redraws (0: never)
//! method = "rad"             # rad | uniform
//! rad_k = 1.0                # RAD: p ∝ |r|^k / mean|r|^k + c
//! rad_c = 1.0
//! candidates = 10000         # RAD: uniform candidates per redraw
//! points = 0                 # points per redraw (0: as many as the block has)
//!
//! [restarts]                 # optional: start over from other initialisations (default: the problem's)
//! after = 2000               # iterations of a try before its loss is checked
//! above = 1e-14              # a try whose loss is still above this restarts
//! inits = [{ kind = "normal", std = 0.3 }]   # tries 2, 3, … (none: never restart)
//!
//! [output]                   # optional
//! dir = "runs/heat"
//! eval_every = 10
//! checkpoint_seconds = 60.0
//!
//! [compute]                  # optional
//! threads = 2                # threads of one dense kernel (products, SVDs)
//! device = "auto"            # cpu | cuda | auto: where the decompositions run
//!
//! [system_weights]           # optional: system weights of blocks by name
//! boundary = 100.0           # rows × √100 in the natural-gradient system; loss unchanged
//! ```
//!
//! Unknown keys are errors; every error is one line naming the field
//! (`budget.max_iters: invalid type: string "many", expected usize (line 9)`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Budget, RunSpec};
use super::{Resampling, Restarts};
use crate::error::{Error, Result};
use crate::linalg::Device;
use crate::model::{Activation, Init};
use crate::optim::OptimizerConfig;

/// `[problem]`: a catalogue name, or a name and a custom definition
/// ([`crate::problems::CustomProblem`]: `equation`, `domain`, `time`,
/// `solution`, `params`, `transform`, point counts; its conditions are the
/// file's `[[condition]]` entries).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemSection {
    /// Catalogue name, or the name of the custom problem.
    pub name: String,
    /// Custom problem: legacy shorthand, `poisson` (−Δu = f).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pde: Option<String>,
    /// Custom problem: the equation `A = B`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equation: Option<String>,
    /// Custom problem: the residual `R` (`R = 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual: Option<String>,
    /// Custom problem: the source `f`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Custom problem: the spatial domain (`{ kind = "l-shape" }`, `box`, `disk`, `polygon`, `union`, `difference`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<crate::problems::DomainSpec>,
    /// Custom problem: the time interval `[t0, t1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<[f64; 2]>,
    /// Custom problem: a manufactured solution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
    /// Custom problem: the exact solution (errors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Custom problem: a CSV of reference values (relative: from the file's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<PathBuf>,
    /// Custom problem: named constants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<std::collections::BTreeMap<String, f64>>,
    /// Custom problem: hard constraints `u = g + psi·N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<crate::problems::TransformSpec>,
    /// Custom problem: interior points (default 600 per input: 1200 in 2-D).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interior_points: Option<usize>,
    /// Custom problem: how interior points are placed (uniform, grid, halton).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interior_method: Option<crate::problems::PointMethod>,
    /// Custom problem: points of each condition without its own count (default 200 per input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary_points: Option<usize>,
    /// Custom problem: evaluation points (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_points: Option<usize>,
    /// Custom problem: seed of the point sets (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_seed: Option<u64>,
}

impl ProblemSection {
    /// The custom definition, if any field of one (or a condition) is given.
    fn custom(
        &self,
        conditions: &[crate::problems::ConditionSpec],
    ) -> Result<Option<crate::problems::CustomProblem>> {
        let catalogue_only = ProblemSection {
            name: self.name.clone(),
            ..Default::default()
        };
        if *self == catalogue_only && conditions.is_empty() {
            return Ok(None);
        }
        if self.domain.is_none() && super::catalogue::contains(&self.name) {
            return Err(Error::config(
                "problem.name",
                format!(
                    "`{}` is a catalogue problem: the custom fields and [[condition]] entries are for problems of your own (give another name and a domain)",
                    self.name
                ),
            ));
        }
        let d = crate::problems::CustomProblem::default();
        let inputs =
            self.domain.as_ref().map_or(2, |dom| dom.dim()) + usize::from(self.time.is_some());
        let (interior, boundary) = crate::problems::CustomProblem::default_points(inputs);
        Ok(Some(crate::problems::CustomProblem {
            pde: self.pde.clone(),
            equation: self.equation.clone(),
            residual: self.residual.clone(),
            source: self.source.clone(),
            domain: self.domain.clone().ok_or_else(|| {
                Error::config(
                    "problem.domain",
                    "missing (a custom problem needs a domain and an equation)",
                )
            })?,
            time: self.time,
            solution: self.solution.clone(),
            exact: self.exact.clone(),
            reference: self.reference.clone(),
            params: self.params.clone().unwrap_or_default(),
            transform: self.transform.clone(),
            conditions: conditions.to_vec(),
            interior_points: self.interior_points.unwrap_or(interior),
            interior_method: self.interior_method.unwrap_or(d.interior_method),
            boundary_points: self.boundary_points.unwrap_or(boundary),
            eval_points: self.eval_points.unwrap_or(d.eval_points),
            points_seed: self.points_seed.unwrap_or(d.points_seed),
        }))
    }

    /// The section of a custom problem called `name`, every field written out.
    fn of_custom(name: &str, c: &crate::problems::CustomProblem) -> Self {
        ProblemSection {
            name: name.to_string(),
            pde: c.pde.clone(),
            equation: c.equation.clone(),
            residual: c.residual.clone(),
            source: c.source.clone(),
            domain: Some(c.domain.clone()),
            time: c.time,
            solution: c.solution.clone(),
            exact: c.exact.clone(),
            reference: c.reference.clone(),
            params: (!c.params.is_empty()).then(|| c.params.clone()),
            transform: c.transform.clone(),
            interior_points: Some(c.interior_points),
            interior_method: Some(c.interior_method),
            boundary_points: Some(c.boundary_points),
            eval_points: Some(c.eval_points),
            points_seed: Some(c.points_seed),
        }
    }
}

/// `[model]`: overrides of the problem's network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Layer widths, input first (input = the problem's dimension, output 1).
    pub widths: Option<Vec<usize>>,
    /// Hidden activation.
    pub activation: Option<Activation>,
    /// Parameter initialisation: `{ kind = "normal", std = … }` (every
    /// weight and bias N(0, std²)) or `{ kind = "glorot" }`.
    pub init: Option<Init>,
}

/// `[budget]`: overrides of the problem's default budget.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    /// Maximum iterations.
    pub max_iters: Option<usize>,
    /// Maximum training time, seconds.
    pub max_seconds: Option<f64>,
    /// Stop at this loss.
    pub target_loss: Option<f64>,
    /// Stop after this many iterations without progress (0: never).
    pub stall_iters: Option<usize>,
    /// The relative loss decrease that counts as progress.
    pub stall_rtol: Option<f64>,
    /// Stop once the held-out loss exceeds 10⁴ × the training loss.
    pub stop_on_overfit: Option<bool>,
}

/// `[output]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Run directory (default `runs/<problem>-<optimizer>-<seed>`).
    pub dir: Option<PathBuf>,
    /// Evaluate the error every this many iterations (default 10).
    pub eval_every: Option<usize>,
    /// Checkpoint every this many seconds of training time (default 60).
    pub checkpoint_seconds: Option<f64>,
    /// Also checkpoint every this many iterations.
    pub checkpoint_every: Option<usize>,
    /// Save the model at these iterations as `model-<iter>.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_models_at: Option<Vec<usize>>,
}

/// `[compute]`: where the dense linear algebra runs (see [`crate::linalg::Compute`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeSection {
    /// Threads of one dense kernel (default 1 in the library, 2 on the command line).
    pub threads: Option<usize>,
    /// `cpu`, `cuda` or `auto` (default `auto`).
    pub device: Option<Device>,
}

/// A whole run as written in a TOML file (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Initialisation seed (default 0).
    #[serde(default)]
    pub seed: u64,
    /// The problem.
    pub problem: ProblemSection,
    /// Network overrides.
    #[serde(default)]
    pub model: ModelSection,
    /// The optimiser (default: the problem's own, with its paper settings).
    /// Read key by key on top of the named optimiser's defaults, so that an
    /// error names `optimizer.<key>`.
    #[serde(default, deserialize_with = "optimizer_section")]
    pub optimizer: Option<OptimizerConfig>,
    /// Budget overrides.
    #[serde(default)]
    pub budget: BudgetSection,
    /// Collocation resampling (absent: the problem's default).
    #[serde(default)]
    pub sampling: Option<Resampling>,
    /// Restarts from other initialisations (absent: the problem's default;
    /// `inits = []` turns them off).
    #[serde(default)]
    pub restarts: Option<Restarts>,
    /// Outputs.
    #[serde(default)]
    pub output: OutputSection,
    /// Threads and device.
    #[serde(default)]
    pub compute: ComputeSection,
    /// `[system_weights]`: the system weight of blocks by name (`boundary = 100.0`),
    /// replacing the problem's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub system_weights: BTreeMap<String, f64>,
    /// The custom problem's conditions (`[[condition]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub condition: Vec<crate::problems::ConditionSpec>,
    /// The text and the name of the file it was read from, so that errors
    /// found after parsing still name their line.
    #[serde(skip)]
    source: Option<(String, String)>,
}

/// `[optimizer]`: `name` selects the defaults, every other key is applied
/// with [`OptimizerConfig::set`] (validated, errors naming the key).
fn optimizer_section<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> std::result::Result<Option<OptimizerConfig>, D::Error> {
    use serde::de::Error as _;
    let table = toml::Table::deserialize(de)?;
    let name = match table.get("name") {
        Some(toml::Value::String(n)) => n.clone(),
        Some(other) => {
            return Err(D::Error::custom(format!(
                "invalid value for `optimizer.name`: expected a string, got {other}"
            )));
        }
        None => {
            return Err(D::Error::custom(
                "invalid value for `optimizer.name`: missing (e.g. name = \"amstramgram\")",
            ));
        }
    };
    let mut config = OptimizerConfig::default_for(&name).map_err(|e| match e {
        Error::UnknownName { name, known, .. } => D::Error::custom(format!(
            "invalid value for `optimizer.name`: unknown optimizer `{name}`; known: {known}"
        )),
        other => D::Error::custom(other.to_string()),
    })?;
    for (key, value) in &table {
        if key == "name" {
            continue;
        }
        let json = serde_json::to_string(value).map_err(|e| D::Error::custom(e.to_string()))?;
        config
            .set(key, &json)
            .map_err(|e| D::Error::custom(e.to_string()))?;
    }
    Ok(Some(config))
}

impl RunConfig {
    /// Parse TOML text; `origin` (a file name) goes into error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let de =
            toml::de::Deserializer::parse(text).map_err(|e| toml_error(&e, text, origin, ""))?;
        let mut config: RunConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            toml_error(e.inner(), text, origin, &path)
        })?;
        config.source = Some((text.to_string(), origin.to_string()));
        Ok(config)
    }

    /// Parse the same schema from JSON text (the Python package passes a
    /// dict this way); `origin` goes into error messages, which name the
    /// field (`problem.domain.kind`).
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        from_json_named(text).map_err(|(path, reason)| match path {
            None => Error::Parse {
                path: origin.to_string(),
                reason,
            },
            Some(path) => Error::config(path, format!("{reason} in {origin}")),
        })
    }

    /// Read a TOML file (a relative `problem.reference` is taken from the
    /// file's folder).
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config = Self::parse(&text, &path.display().to_string())?;
        if let Some(r) = &mut config.problem.reference
            && r.is_relative()
            && let Some(dir) = path.parent()
        {
            // Absolute, so that the run's saved config finds it from anywhere.
            let joined = dir.join(&*r);
            *r = std::path::absolute(&joined).unwrap_or(joined);
        }
        Ok(config)
    }

    /// The run this configuration describes: the catalogue problem's
    /// defaults with every given field applied, validated.
    pub fn to_spec(&self) -> Result<RunSpec> {
        self.build_spec().map_err(|e| match (&self.source, e) {
            (Some((text, origin)), Error::InvalidConfig { field, reason }) => {
                let line = key_line(text, &field)
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default();
                Error::config(field, format!("{reason}{line} in {origin}"))
            }
            (_, e) => e,
        })
    }

    fn build_spec(&self) -> Result<RunSpec> {
        let base = match self.problem.custom(&self.condition)? {
            Some(c) => RunSpec::custom(&self.problem.name, c),
            None => RunSpec::defaults(&self.problem.name),
        };
        let mut spec = base.map_err(|e| match e {
            Error::UnknownName { name, known, .. } => Error::config(
                "problem.name",
                format!("unknown problem `{name}`; known: {known}"),
            ),
            other => other,
        })?;
        spec.seed = self.seed;
        if let Some(o) = &self.optimizer {
            spec.optimizer = o.clone();
        }
        let b = &self.budget;
        spec.budget = Budget {
            max_iters: b.max_iters.unwrap_or(spec.budget.max_iters),
            max_seconds: b.max_seconds.unwrap_or(spec.budget.max_seconds),
            target_loss: b.target_loss.unwrap_or(spec.budget.target_loss),
            stall_iters: b.stall_iters.unwrap_or(spec.budget.stall_iters),
            stall_rtol: b.stall_rtol.unwrap_or(spec.budget.stall_rtol),
            stop_on_overfit: b.stop_on_overfit.unwrap_or(spec.budget.stop_on_overfit),
        };
        if let Some(w) = &self.model.widths {
            // Absent: the preset's network (burgers'), else the problem's.
            spec.widths = Some(w.clone());
        }
        spec.activation = self.model.activation;
        spec.init = self.model.init;
        spec.system_weights = self.system_weights.clone();
        if let Some(s) = &self.sampling {
            spec.sampling = s.clone();
        }
        if let Some(r) = &self.restarts {
            spec.restarts = r.clone();
        }
        if let Some(t) = self.compute.threads {
            spec.compute.threads = t;
        }
        if let Some(d) = self.compute.device {
            spec.compute.device = d;
        }
        let o = &self.output;
        if let Some(k) = o.eval_every {
            spec.eval_every = k;
        }
        if let Some(t) = o.checkpoint_seconds {
            spec.checkpoint_seconds = t;
        }
        spec.checkpoint_every = o.checkpoint_every.or(spec.checkpoint_every);
        if let Some(at) = &o.save_models_at {
            spec.save_models_at = at.clone();
        }
        spec.out = Some(o.dir.clone().unwrap_or_else(|| spec.default_out()));
        spec.validate()?;
        spec.check_model()?;
        Ok(spec)
    }

    /// The full effective configuration of `spec`, every field written out
    /// (what `natgrad solve --print-config` prints).
    pub fn from_spec(spec: &RunSpec) -> Result<Self> {
        // One build of the problem gives the network and the blocks' weights.
        let pb = spec.problem()?;
        let system_weights = pb.system_weights();
        Ok(RunConfig {
            seed: spec.seed,
            problem: match &spec.custom {
                None => ProblemSection {
                    name: spec.problem.clone(),
                    ..Default::default()
                },
                Some(c) => ProblemSection::of_custom(&spec.problem, c),
            },
            condition: spec
                .custom
                .as_ref()
                .map(|c| c.conditions.clone())
                .unwrap_or_default(),
            model: ModelSection {
                widths: Some(pb.widths),
                activation: Some(pb.activation),
                init: Some(pb.init),
            },
            optimizer: Some(spec.optimizer.clone()),
            budget: BudgetSection {
                max_iters: Some(spec.budget.max_iters),
                max_seconds: Some(spec.budget.max_seconds),
                target_loss: Some(spec.budget.target_loss),
                stall_iters: Some(spec.budget.stall_iters),
                stall_rtol: Some(spec.budget.stall_rtol),
                stop_on_overfit: Some(spec.budget.stop_on_overfit),
            },
            sampling: Some(spec.sampling.clone()),
            restarts: Some(spec.restarts.clone()),
            output: OutputSection {
                dir: spec.out.clone(),
                eval_every: Some(spec.eval_every),
                checkpoint_seconds: Some(spec.checkpoint_seconds),
                checkpoint_every: spec.checkpoint_every,
                save_models_at: (!spec.save_models_at.is_empty())
                    .then(|| spec.save_models_at.clone()),
            },
            compute: ComputeSection {
                threads: Some(spec.compute.threads),
                device: Some(spec.compute.device),
            },
            system_weights,
            source: None,
        })
    }

    /// As TOML text.
    pub fn to_toml(&self) -> String {
        compact_floats(&toml::to_string(self).expect("run configs serialise to TOML"))
    }
}

/// Rewrite the floats of TOML `text` below 1e-4 or from 1e16 up in
/// magnitude, which the serialiser spells out in full (`0.0000000001`), in
/// exponent form (`1e-10`); strings are left alone. The value is unchanged:
/// `{:e}` prints the shortest digits that read back to the same f64.
fn compact_floats(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // The open string, across lines for multi-line ones (`"""` toggles thrice).
    let mut quote: Option<char> = None;
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            if let Some(q) = quote {
                // Inside a string: copy through, honouring `\"` in basic strings.
                let n = if c == '\\' && q == '"' {
                    rest.chars().take(2).map(char::len_utf8).sum()
                } else {
                    if c == q {
                        quote = None;
                    }
                    c.len_utf8()
                };
                out.push_str(&rest[..n]);
                rest = &rest[n..];
                continue;
            }
            if c == '"' || c == '\'' {
                quote = Some(c);
                out.push(c);
                rest = &rest[1..];
                continue;
            }
            let starts_number = (c.is_ascii_digit() || c == '-')
                && !out.ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_' || p == '.');
            if starts_number {
                let len = rest
                    .find(|ch: char| {
                        !(ch.is_ascii_digit() || matches!(ch, '-' | '+' | '.' | 'e' | 'E'))
                    })
                    .unwrap_or(rest.len());
                let token = &rest[..len];
                let shorter = token
                    .contains('.')
                    .then(|| token.parse::<f64>().ok())
                    .flatten()
                    .filter(|v| *v != 0.0 && !(1e-4..1e16).contains(&v.abs()))
                    .map(|v| format!("{v:e}"))
                    .filter(|e| e.len() < token.len());
                out.push_str(shorter.as_deref().unwrap_or(token));
                rest = &rest[len..];
                continue;
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Deserialise JSON text; on error, the dotted path of the field (none
/// for the document itself) and the reason without serde_json's position,
/// which refers to text the user did not write (a converted dict).
pub(super) fn from_json_named<T: serde::de::DeserializeOwned>(
    text: &str,
) -> std::result::Result<T, (Option<String>, String)> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.inner().to_string();
        let reason = match reason.rfind(" at line ") {
            Some(i) => reason[..i].to_string(),
            None => reason,
        };
        ((path != ".").then_some(path), reason)
    })
}

/// The line of the key `a.b` (section `[a]`, key `b`; a top-level key
/// before any section) in TOML `text`, 1-based.
fn key_line(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = match dotted.rsplit_once('.') {
        Some((s, k)) => (Some(s), k),
        None => (None, dotted),
    };
    let mut current: Option<String> = None;
    let mut entries: std::collections::HashMap<String, usize> = Default::default();
    let mut header = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.split('#').next().unwrap_or("").trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
            // The k-th entry of an array of tables is `name[k]`.
            let n = entries.entry(h.trim().to_string()).or_insert(0);
            current = Some(format!("{}[{n}]", h.trim()));
            *n += 1;
        } else if let Some(h) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            current = Some(h.trim().to_string());
        } else if let Some((k, _)) = t.split_once('=')
            && current.as_deref() == section
            && k.trim() == key
        {
            return Some(i + 1);
        }
        if current.is_some() && current.as_deref() == section.or(Some(dotted)) && header.is_none() {
            header = Some(i + 1);
        }
    }
    // A missing key of a section: the section's header line.
    header
}

/// One line: `origin: path: message (line L)`.
fn toml_error(e: &toml::de::Error, text: &str, origin: &str, path: &str) -> Error {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let message = e.message().replace('\n', " ");
    let message = message.trim_end_matches('.').trim();
    // A message that already names its field (from `OptimizerConfig::set`):
    // the line of that key, not the span's (the whole section's header).
    if let Some(rest) = message.strip_prefix("invalid value for `")
        && let Some((f, reason)) = rest.split_once("`: ")
    {
        let line = key_line(text, f).or(line);
        return Error::config(
            f,
            format!(
                "{reason}{} in {origin}",
                line.map(|l| format!(" (line {l})")).unwrap_or_default()
            ),
        );
    }
    let mut field = if path.is_empty() || path == "." {
        String::new()
    } else {
        path.to_string()
    };
    // Inside a tagged section (the optimiser) serde loses the key: take it
    // from the `key = value` line the error points at.
    let key = e.span().and_then(|s| {
        let start = text[..s.start.min(text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line = text[start..].lines().next()?;
        let (k, _) = line.split_once('=')?;
        let k = k.trim();
        k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            .then(|| k.to_string())
    });
    if let Some(k) = key
        && !k.is_empty()
        && !field.ends_with(&k)
    {
        field = if field.is_empty() {
            k
        } else {
            format!("{field}.{k}")
        };
    }
    if field.is_empty() {
        field = "config".into();
    }
    Error::config(
        field,
        format!(
            "{message}{} in {origin}",
            line.map(|l| format!(" (line {l})")).unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file without `[sampling]` keeps the problem's own resampling (on
    /// for laplace5d, off for heat); a `[sampling]` section replaces it.
    #[test]
    fn sampling_defaults_to_the_problems() {
        let spec = |text: &str| RunConfig::parse(text, "t").unwrap().to_spec().unwrap();
        assert_eq!(
            spec("[problem]\nname = \"laplace5d\"\n")
                .sampling
                .resample_every,
            500
        );
        assert_eq!(
            spec("[problem]\nname = \"heat\"\n").sampling.resample_every,
            0
        );
        let off = spec("[problem]\nname = \"laplace5d\"\n[sampling]\nresample_every = 0\n");
        assert_eq!(off.sampling.resample_every, 0);
    }

    /// laplace2d's preset restarts; the printed configuration keeps them,
    /// a `[restarts]` section replaces them (`inits = []`: none).
    #[test]
    fn restarts_default_to_the_presets_and_print_back() {
        let spec = |text: &str| RunConfig::parse(text, "t").unwrap().to_spec().unwrap();
        let own = spec("[problem]\nname = \"laplace2d\"\n");
        assert_eq!(
            own.restarts.inits,
            [Init::Normal { std: 0.3 }],
            "the preset's"
        );
        let text = RunConfig::from_spec(&own).unwrap().to_toml();
        assert!(text.contains("[restarts]\nafter = 2200\n"), "{text}");
        assert_eq!(spec(&text).restarts, own.restarts);
        assert!(spec("[problem]\nname = \"heat\"\n").restarts.is_off());
        let off = spec("[problem]\nname = \"laplace2d\"\n[restarts]\ninits = []\n");
        assert!(off.restarts.is_off());
        let text = RunConfig::from_spec(&off).unwrap().to_toml();
        assert!(spec(&text).restarts.is_off(), "{text}");
        let mine = spec(
            "[problem]\nname = \"heat\"\n[restarts]\nafter = 50\ninits = [{ kind = \"glorot\" }]\n",
        );
        assert_eq!(
            mine.restarts,
            Restarts {
                after: 50,
                above: 1e-14,
                inits: vec![Init::Glorot]
            }
        );
    }

    /// Long spelled-out floats become exponents with the same value;
    /// strings, integers and short floats stay as they are.
    #[test]
    fn printed_floats_are_compact() {
        let text = "a = 0.0000000001\nb = [0.00000000000001, 2.5]\nc = \"0.0000000001\"\n\
                    d = 18446744073709551615\ne = -0.000001\nf = { std = 0.3 }\n\
                    g = 100000000000000000000.0\nh = 'x 0.0000001'\nc1 = 0.0001\nx = 60.0\n";
        assert_eq!(
            compact_floats(text),
            "a = 1e-10\nb = [1e-14, 2.5]\nc = \"0.0000000001\"\nd = 18446744073709551615\n\
             e = -1e-6\nf = { std = 0.3 }\ng = 1e20\nh = 'x 0.0000001'\nc1 = 0.0001\nx = 60.0\n"
        );
        let printed = RunConfig::from_spec(&RunSpec::defaults("laplace2d").unwrap())
            .unwrap()
            .to_toml();
        assert!(printed.contains("precision = 1e-10\n"), "{printed}");
        assert!(printed.contains("above = 1e-14\n"), "{printed}");
    }

    /// `--print-config` output reads back to the same run.
    #[test]
    fn effective_config_round_trips() {
        let mut spec = RunSpec::defaults("heat").unwrap();
        spec.seed = 3;
        spec.optimizer = OptimizerConfig::default_for("nystrom").unwrap();
        spec.optimizer.set("rank", "32").unwrap();
        spec.budget.max_iters = 77;
        spec.sampling.resample_every = 50;
        spec.sampling.rad_k = 2.0;
        spec.system_weights.insert("initial".into(), 100.0);
        let text = RunConfig::from_spec(&spec).unwrap().to_toml();
        assert!(
            text.contains("[system_weights]\ninitial = 100.0\n"),
            "{text}"
        );
        let back = RunConfig::parse(&text, "printed")
            .unwrap()
            .to_spec()
            .unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&spec)
                .unwrap()
                .as_object()
                .map(|m| {
                    let mut m = m.clone();
                    m.insert("widths".into(), serde_json::json!([2, 64, 1]));
                    m.insert("activation".into(), serde_json::json!("tanh"));
                    m.insert(
                        "system_weights".into(),
                        serde_json::json!({"initial": 100.0, "interior": 1.0, "x=0": 1.0, "x=1": 1.0}),
                    );
                    m.insert(
                        "init".into(),
                        serde_json::json!({"kind": "normal", "std": 0.1}),
                    );
                    serde_json::Value::Object(m)
                })
                .unwrap(),
            "{text}"
        );
    }

    /// A minimal file takes the problem's defaults; sections override them.
    #[test]
    fn minimal_and_overriding_files() {
        let spec = RunConfig::parse("[problem]\nname = \"laplace2d\"\n", "t")
            .unwrap()
            .to_spec()
            .unwrap();
        let d = RunSpec::defaults("laplace2d").unwrap();
        assert_eq!(spec.optimizer, d.optimizer);
        assert_eq!(spec.budget, d.budget);
        let text = "seed = 4\n[problem]\nname = \"heat\"\n[model]\nwidths = [2, 16, 16, 1]\nactivation = \"sin\"\n\
                    [optimizer]\nname = \"amstramgram\"\nprecision = 1e-12\n[budget]\nmax_seconds = 5.0\n\
                    [output]\ndir = \"x\"\neval_every = 2\n";
        let spec = RunConfig::parse(text, "t").unwrap().to_spec().unwrap();
        assert_eq!(spec.seed, 4);
        assert_eq!(
            spec.model().unwrap(),
            (
                vec![2, 16, 16, 1],
                Activation::Sin,
                Init::Normal { std: 0.1 }
            )
        );
        let glorot = "[problem]\nname = \"heat\"\n[model]\ninit = { kind = \"glorot\" }\n";
        let glorot = RunConfig::parse(glorot, "t").unwrap().to_spec().unwrap();
        assert_eq!(glorot.model().unwrap().2, Init::Glorot);
        let pb = glorot.problem().unwrap();
        assert_eq!(pb.init, Init::Glorot);
        let default = RunSpec::defaults("heat").unwrap().problem().unwrap();
        assert_ne!(
            pb.initial_theta(3).unwrap(),
            default.initial_theta(3).unwrap()
        );
        let weighted =
            "[problem]\nname = \"heat\"\n[system_weights]\ninitial = 100.0\n\"x=0\" = 4.0\n";
        let weighted = RunConfig::parse(weighted, "t").unwrap().to_spec().unwrap();
        let w = weighted.block_system_weights().unwrap();
        assert_eq!(
            (w["initial"], w["x=0"], w["x=1"], w["interior"]),
            (100.0, 4.0, 1.0, 1.0)
        );
        let pb = weighted.problem().unwrap();
        let initial = pb.blocks.iter().find(|b| b.name() == "initial").unwrap();
        assert_eq!(initial.system_weight(), 100.0);
        assert_eq!(spec.budget.max_seconds, 5.0);
        assert_eq!(spec.budget.max_iters, d.budget.max_iters);
        assert_eq!(spec.out, Some(PathBuf::from("x")));
        assert_eq!(spec.eval_every, 2);
        match &spec.optimizer {
            OptimizerConfig::Amstramgram(a) => assert_eq!(a.precision, 1e-12),
            other => panic!("{other:?}"),
        }
    }

    /// Errors name the line of their own key, also inside the optimiser
    /// section and for values checked after parsing.
    #[test]
    fn errors_name_their_own_line() {
        let text = "seed = 0\n[problem]\nname = \"heat\"\n[optimizer]\nname = \"amstramgram\"\n\
                    precision = 1e-12\nprecison = 1e-10\n[budget]\nmax_iters = 5\nmax_seconds = -2.0\n";
        let e = RunConfig::parse(text, "run.toml").unwrap_err().to_string();
        assert!(
            e.contains("optimizer.precison") && e.contains("(line 7) in run.toml"),
            "{e}"
        );
        let fixed = text.replace("precison = 1e-10\n", "");
        let e = RunConfig::parse(&fixed, "run.toml")
            .unwrap()
            .to_spec()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("budget.max_seconds") && e.contains("(line 9) in run.toml"),
            "{e}"
        );
    }

    /// Every bad field gives one line naming it.
    #[test]
    fn bad_fields_are_named() {
        let cases = [
            ("[budget]\nmax_iters = \"many\"", "budget.max_iters"),
            ("[budget]\nmax_iters = -5", "budget.max_iters"),
            ("[budget]\nmax_seconds = -1.0", "budget.max_seconds"),
            ("[budget]\nmax_iter = 5", "max_iter"),
            ("[optimizer]\nname = \"sgd\"", "optimizer"),
            (
                "[optimizer]\nname = \"adam\"\nlr = \"fast\"",
                "optimizer.lr",
            ),
            ("[optimizer]\nname = \"adam\"\nmomentum = 0.9", "momentum"),
            (
                "[optimizer]\nname = \"nystrom\"\nrank = 0",
                "optimizer.rank",
            ),
            ("[model]\nwidths = []", "model.widths"),
            ("[model]\nwidths = [3, 10, 1]", "model.widths"),
            ("[model]\nwidths = [2, 0, 1]", "model.widths"),
            ("[model]\nwidths = [2, 10, 2]", "model.widths"),
            ("[model]\nactivation = \"relu\"", "model.activation"),
            (
                "[model]\ninit = { kind = \"normal\", std = -1.0 }",
                "model.init",
            ),
            ("[model]\ninit = { kind = \"he\" }", "model.init"),
            ("[system_weights]\nwalls = 2.0", "system_weights.walls"),
            ("[system_weights]\ninitial = -2.0", "system_weights.initial"),
            (
                "[system_weights]\ninitial = \"heavy\"",
                "system_weights.initial",
            ),
            ("[output]\neval_every = 1.5", "output.eval_every"),
            ("[output]\ncheckpoint_seconds = 0.0", "checkpoint_seconds"),
            ("seed = \"zero\"", "seed"),
            ("colour = 1", "colour"),
            ("[sampling]\nresample_every = -1", "sampling.resample_every"),
            ("[sampling]\nmethod = \"sobol\"", "sampling.method"),
            ("[sampling]\nrad_k = -2.0", "sampling.rad_k"),
            ("[sampling]\nevery = 10", "every"),
            (
                "[sampling]\nresample_every = 10\ncandidates = 5",
                "sampling.candidates",
            ),
            (
                "[sampling]\nresample_every = 10\nblock = \"x=0\"",
                "sampling.block",
            ),
            (
                "[sampling]\nresample_every = 10\nblock = \"walls\"",
                "sampling.block",
            ),
            (
                "[restarts]\nafter = 0\ninits = [{ kind = \"glorot\" }]",
                "restarts.after",
            ),
            (
                "[restarts]\nabove = -1.0\ninits = [{ kind = \"glorot\" }]",
                "restarts.above",
            ),
            (
                "[restarts]\ninits = [{ kind = \"normal\", std = 0.0 }]",
                "restarts.inits[0]",
            ),
            (
                "[restarts]\ninits = [{ kind = \"normal\", std = 0.1 }]",
                "restarts.inits[0]",
            ),
            (
                "[restarts]\ninits = [{ kind = \"glorot\" }, { kind = \"glorot\" }]",
                "restarts.inits[1]",
            ),
            ("[restarts]\nevery = 10", "every"),
        ];
        for (body, field) in cases {
            let text = format!("[problem]\nname = \"heat\"\n{body}\n");
            let e = RunConfig::parse(&text, "run.toml")
                .and_then(|c| c.to_spec())
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "`{body}`: {e}");
            assert_eq!(e.lines().count(), 1, "`{body}`: {e}");
        }
        let e = RunConfig::parse("[problem]\nname = \"heet\"\n", "t")
            .unwrap()
            .to_spec()
            .unwrap_err()
            .to_string();
        assert!(e.contains("problem.name") && e.contains("heet"), "{e}");
        let e = RunConfig::parse("seed = 1\n", "t").unwrap_err().to_string();
        assert!(e.contains("problem"), "{e}");
        let e = RunConfig::parse("[problem\nname = 1", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.lines().count() == 1, "{e}");
    }

    /// A custom problem: Poisson on the L-shape with a manufactured solution;
    /// its definition round-trips through `--print-config`, and a custom
    /// problem may not take a catalogue name or miss its solution.
    #[test]
    fn custom_problem_sections() {
        let text = "[problem]\nname = \"mine\"\npde = \"poisson\"\ndomain = { kind = \"l-shape\" }\n\
                    solution = \"sin(pi*x)*sin(pi*y) + x*y\"\ninterior_points = 64\n";
        let spec = RunConfig::parse(text, "t").unwrap().to_spec().unwrap();
        assert_eq!(spec.optimizer.name(), "ssbroyden");
        assert_eq!(spec.custom.as_ref().unwrap().interior_points, 64);
        let printed = RunConfig::from_spec(&spec).unwrap().to_toml();
        let again = RunConfig::parse(&printed, "p").unwrap().to_spec().unwrap();
        assert_eq!(again.custom, spec.custom);
        for (body, field) in [
            (
                "name = \"heat\"\npde = \"poisson\"\ndomain = { kind = \"l-shape\" }\nsolution = \"x\"",
                "problem.name",
            ),
            (
                "name = \"m\"\npde = \"poisson\"\ndomain = { kind = \"l-shape\" }",
                "problem.solution",
            ),
            (
                "name = \"m\"\npde = \"poisson\"\ndomain = { kind = \"ring\" }\nsolution = \"x\"",
                "problem.domain",
            ),
            (
                "name = \"m\"\npde = \"poisson\"\ndomain = { kind = \"l-shape\" }\nsolution = \"x +\"",
                "problem.solution",
            ),
        ] {
            let e = RunConfig::parse(&format!("[problem]\n{body}\n"), "t")
                .and_then(|c| c.to_spec())
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "`{body}`: {e}");
        }
    }

    /// The same schema read from JSON (the Python package's dicts) gives
    /// the same configuration as the TOML text; errors name the field.
    #[test]
    fn json_reads_the_same_schema() {
        let text = std::fs::read_to_string("examples/configs/poisson-large.toml").unwrap();
        let from_toml = RunConfig::parse(&text, "t").unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        let json = serde_json::to_string(&value).unwrap();
        let from_json = RunConfig::from_json(&json, "j").unwrap();
        // `source` (the TOML text, for line numbers) differs by design.
        assert_eq!(from_json.to_toml(), from_toml.to_toml());
        assert_eq!(
            serde_json::to_string(&from_json.to_spec().unwrap()).unwrap(),
            serde_json::to_string(&from_toml.to_spec().unwrap()).unwrap()
        );
        for (json, field) in [
            (
                r#"{"problem": {"name": "laplace2d"}, "budget": {"max_iter": 3}}"#,
                "budget.max_iter",
            ),
            (r#"{"problem": {"name": "laplace2d"}, "seed": -1}"#, "seed"),
            (
                r#"{"problem": {"name": "laplace2d"}, "optimizer": {"name": "adam", "lr": "x"}}"#,
                "optimizer.lr",
            ),
            (r#"{"problem": 3}"#, "problem"),
        ] {
            let e = RunConfig::from_json(json, "the dict")
                .unwrap_err()
                .to_string();
            assert!(e.contains(field) && e.contains("the dict"), "{json}: {e}");
            assert!(!e.contains("line 1 column"), "{json}: {e}");
        }
    }
}
