//! Optimisers behind one trait, and the line searches they share.
//!
//! Every optimiser sees the problem only through [`Objective`] (loss,
//! gradient, the weighted least-squares system) and updates θ in place,
//! **only** once it has a finite step: on error θ is untouched, so the
//! trainer keeps the last good iterate.

mod adam;
mod amstramgram;
mod anagram;
mod engd;
mod lbfgs;
pub mod linesearch;
mod nystrom;
mod ssbroyden;
#[cfg(test)]
pub(crate) mod testing;

pub use adam::{Adam, AdamConfig, AdamState};
pub use amstramgram::{Amstramgram, AmstramgramConfig, AmstramgramState, elbow};
pub use anagram::{Anagram, AnagramConfig, AnagramState, Cutoff};
pub use engd::{Engd, EngdConfig, EngdDirection};
pub use lbfgs::{Lbfgs, LbfgsConfig, LbfgsState};
pub use linesearch::StepGrid;
pub use nystrom::{Nystrom, NystromConfig, NystromDirection, NystromPreconditioner, NystromState};
pub use ssbroyden::{SsBroyden, SsBroydenConfig, SsBroydenState};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::linalg::{Compute, Matrix};
use crate::residual::{LeastSquares, System, Weighting};

/// What an optimiser may ask of the problem (shared across line-search threads, hence `Sync`).
pub trait Objective: Sync {
    /// Number of parameters `P`.
    fn n_params(&self) -> usize;
    /// The loss `L(θ)`.
    fn loss(&self, theta: &[f64]) -> Result<f64>;
    /// `L(θ)` and `∇L(θ)`.
    fn loss_gradient(&self, theta: &[f64]) -> Result<(f64, Vec<f64>)>;
    /// The weighted least-squares system `(r̃, φ̃)` at θ, into `sys` (its buffers are reused).
    fn system_into(&self, theta: &[f64], weighting: Weighting, sys: &mut System) -> Result<()>;
    /// The weighted residual `r̃` at θ alone (no Jacobian), into `out`.
    /// The default assembles the whole system; implementors should override it.
    fn residuals_into(
        &self,
        theta: &[f64],
        weighting: Weighting,
        out: &mut Vec<f64>,
    ) -> Result<()> {
        let sys = self.system(theta, weighting)?;
        out.clear();
        out.extend_from_slice(&sys.r);
        Ok(())
    }
    /// The operator-curvature part of the loss Hessian at θ, in the units of
    /// the weighted system (see [`LeastSquares::operator_curvature`]); E-NGD's
    /// energy-Hessian option adds it to `φ̃ᵀφ̃`. The default: not available.
    fn operator_curvature(&self, _theta: &[f64], _weighting: Weighting) -> Result<Matrix> {
        Err(Error::config(
            "optimizer.energy_hessian",
            "this objective provides no operator curvature",
        ))
    }
    /// The weighted least-squares system `(r̃, φ̃)` at θ.
    fn system(&self, theta: &[f64], weighting: Weighting) -> Result<System> {
        let mut sys = System::default();
        self.system_into(theta, weighting, &mut sys)?;
        Ok(sys)
    }
}

impl Objective for LeastSquares {
    fn n_params(&self) -> usize {
        LeastSquares::n_params(self)
    }
    fn loss(&self, theta: &[f64]) -> Result<f64> {
        LeastSquares::loss(self, theta)
    }
    fn loss_gradient(&self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        LeastSquares::loss_gradient(self, theta)
    }
    fn system_into(&self, theta: &[f64], weighting: Weighting, sys: &mut System) -> Result<()> {
        self.assemble_into(theta, weighting, sys)
    }
    fn operator_curvature(&self, theta: &[f64], weighting: Weighting) -> Result<Matrix> {
        LeastSquares::operator_curvature(self, theta, weighting)
    }
    fn residuals_into(
        &self,
        theta: &[f64],
        weighting: Weighting,
        out: &mut Vec<f64>,
    ) -> Result<()> {
        self.weighted_residuals_into(theta, weighting, out)
    }
}

/// What one optimiser step did, for the observers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepReport {
    /// Loss at the new θ.
    pub loss: f64,
    /// Number of singular directions kept (natural-gradient methods).
    pub rank: Option<usize>,
    /// Step size η taken.
    pub step_size: Option<f64>,
    /// Optimiser-specific values, in the order of [`Optimizer::extra_columns`].
    pub extra: Vec<f64>,
    /// The spectrum the step was computed from (SVD-based methods).
    pub spectrum: Option<Spectrum>,
    /// Where the step's time went (SVD-based methods), for `natgrad bench --profile`.
    pub phases: Option<Phases>,
}

/// Time and work of one step's phases: assembling `(r̃, φ̃)`, decomposing
/// it, and the line search's loss evaluations. Whatever else the step does
/// (cutoff choice, solves, bookkeeping) is the step's time minus these.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Phases {
    /// Seconds spent assembling the system.
    pub assembly_s: f64,
    /// Systems assembled.
    pub assemblies: usize,
    /// Seconds spent in the decompositions (and the projections of `r` on their basis).
    pub decomposition_s: f64,
    /// Decompositions computed.
    pub decompositions: usize,
    /// Their floating-point operations ([`crate::linalg::SystemSvd::flops`]).
    pub decomposition_flops: f64,
    /// How many of them ran on the CUDA device.
    pub device_decompositions: usize,
    /// Largest number of singular triplets a decomposition returned
    /// (`min(S, P)` for the full SVD; the reliable ones of a partial one).
    pub computed_rank: usize,
    /// Seconds spent evaluating line-search candidates.
    pub line_search_s: f64,
    /// Loss evaluations (forward passes over all S points) in line searches.
    pub loss_evals: usize,
}

/// The spectral picture behind one natural-gradient step: singular values
/// of the (weighted) residual Jacobian, the reconstruction-error curve and
/// the cutoffs chosen from them. Written to `spectra.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spectrum {
    /// Singular values σ_1 ≥ … ≥ σ_m.
    pub singular_values: Vec<f64>,
    /// `rce[n] = ‖r − Σ_{k≤n} U_k U_kᵀ r‖/√S`, n = 0..m (length m + 1).
    pub rce: Vec<f64>,
    /// √loss at the θ where the decomposition was taken.
    pub sqrt_loss: f64,
    /// Components kept by the (narrow) step.
    pub kept: usize,
    /// Components kept by the wide step (AMStraMGRAM).
    pub kept_wide: Option<usize>,
    /// `#{n : RCE_n < σ_n}` (AMStraMGRAM).
    pub rank1: Option<usize>,
    /// `#{n : RCE_n ≥ ε_prec}` (AMStraMGRAM).
    pub rank2: Option<usize>,
    /// The precision level ε_prec (AMStraMGRAM).
    pub precision: Option<f64>,
}

/// A training method: one call of [`Optimizer::step`] is one iteration.
pub trait Optimizer {
    /// Short name (`anagram`, `adam`, …).
    fn name(&self) -> &'static str;
    /// Take one step from θ (whose loss is `loss`), updating θ in place.
    fn step(&mut self, obj: &dyn Objective, theta: &mut [f64], loss: f64) -> Result<StepReport>;
    /// Names of the values in [`StepReport::extra`].
    fn extra_columns(&self) -> &'static [&'static str] {
        &[]
    }
    /// The objective's collocation points were redrawn (see
    /// [`crate::train::Resampler`]): drop whatever was computed on the old
    /// points (cached losses and gradients, a cached decomposition). What
    /// approximates the solution itself (Adam's moments, SSBroyden's `H`) is kept.
    /// Default: nothing to drop.
    fn objective_changed(&mut self) {}
    /// What the optimiser carries from one step to the next (moments,
    /// quasi-Newton memory, cutoffs, random stream position), for
    /// checkpoints. Restoring it into a fresh optimiser with the same
    /// configuration continues the run exactly. Default: nothing
    /// ([`OptimizerState::None`]).
    fn state(&self) -> OptimizerState {
        OptimizerState::None
    }
    /// Restore a [`Optimizer::state`]; a state of another optimiser is an
    /// error that names both.
    fn restore(&mut self, state: OptimizerState) -> Result<()> {
        match state {
            OptimizerState::None => Ok(()),
            other => Err(other.mismatch(self.name())),
        }
    }
}

/// What an optimiser carries between steps, one variant per optimiser that
/// keeps anything ([`Optimizer::state`]); checkpoints store it as tagged
/// JSON (`"none"`, `{"adam": {…}}`, …). The payloads are opaque: only the
/// optimiser that wrote one reads it back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerState {
    /// Nothing (E-NGD, and every optimiser before its first step).
    #[default]
    None,
    /// [`Adam`]'s moments and step count.
    Adam(AdamState),
    /// [`Anagram`]'s partial-SVD start rank.
    Anagram(AnagramState),
    /// [`Amstramgram`]'s cutoffs, precision stage and basis.
    Amstramgram(AmstramgramState),
    /// [`Lbfgs`]'s curvature pairs.
    Lbfgs(LbfgsState),
    /// [`Nystrom`]'s random-stream position.
    Nystrom(NystromState),
    /// [`SsBroyden`]'s inverse-Hessian approximation and counters.
    Ssbroyden(SsBroydenState),
}

impl OptimizerState {
    /// The optimiser name this state belongs to (`none` for no state).
    pub fn kind(&self) -> &'static str {
        match self {
            OptimizerState::None => "none",
            OptimizerState::Adam(_) => "adam",
            OptimizerState::Anagram(_) => "anagram",
            OptimizerState::Amstramgram(_) => "amstramgram",
            OptimizerState::Lbfgs(_) => "lbfgs",
            OptimizerState::Nystrom(_) => "nystrom",
            OptimizerState::Ssbroyden(_) => "ssbroyden",
        }
    }

    /// The error for restoring this state into the optimiser `name`.
    pub(crate) fn mismatch(&self, name: &str) -> Error {
        Error::Parse {
            path: "checkpoint optimizer_state".into(),
            reason: format!("{name} cannot continue from a {} state", self.kind()),
        }
    }
}

/// A serialisable choice of optimiser and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// [`Anagram`].
    Anagram(AnagramConfig),
    /// [`Amstramgram`].
    Amstramgram(AmstramgramConfig),
    /// [`Adam`].
    Adam(AdamConfig),
    /// [`Lbfgs`].
    Lbfgs(LbfgsConfig),
    /// [`Engd`].
    Engd(EngdConfig),
    /// [`Nystrom`].
    Nystrom(NystromConfig),
    /// [`SsBroyden`].
    Ssbroyden(SsBroydenConfig),
}

/// Estimated peak memory of the optimiser's dense linear algebra, in bytes,
/// for `s` residual rows and `p` parameters, with what dominates it.
///
/// Natural-gradient methods hold the Jacobian `φ̃ᵀ` (`8·S·P` bytes); the
/// SVD-based ones also a copy for the Householder QR (tall) or the
/// decomposition itself (wide) and a few `min(S,P)²` factors; E-NGD the
/// `P × P` Gram matrix and its eigenvectors; Nyström-PCG two `S × ℓ`/`P × ℓ`
/// sketches; SSBroyden its dense `P × P` inverse Hessian. Gradient methods
/// (Adam, L-BFGS) need `O(P)` only. Network tapes and the evaluation grid
/// come on top (bounded by the assembly chunk size) and are covered by a
/// 25 % margin.
pub fn memory_estimate(config: &OptimizerConfig, s: usize, p: usize) -> (u64, String) {
    let (s64, p64) = (s as u64, p as u64);
    let m = s64.min(p64);
    let jac = 8 * s64 * p64;
    let (bytes, what) = match config {
        OptimizerConfig::Anagram(_) | OptimizerConfig::Amstramgram(_) => {
            let extra = if s >= p {
                jac + 8 * 4 * m * m
            } else {
                8 * (s64 * s64 + 3 * m * p64)
            };
            (
                jac + extra,
                format!("S×P = {s}×{p} Jacobian, its QR copy and SVD factors"),
            )
        }
        OptimizerConfig::Engd(_) => (
            jac + 8 * 4 * p64 * p64,
            format!("S×P = {s}×{p} Jacobian and P×P Gram matrix with eigenvectors"),
        ),
        OptimizerConfig::Nystrom(c) => {
            let l = c.rank.min(p) as u64;
            (
                jac + 8 * (s64 + 3 * p64) * l,
                format!("S×P = {s}×{p} Jacobian and rank-{l} sketches"),
            )
        }
        OptimizerConfig::Ssbroyden(_) => {
            (8 * 2 * p64 * p64, format!("P×P = {p}×{p} inverse Hessian"))
        }
        OptimizerConfig::Adam(_) | OptimizerConfig::Lbfgs(_) => {
            (8 * 30 * p64, "parameter-sized vectors".to_string())
        }
    };
    (bytes + bytes / 4, what)
}

/// Names of the implemented optimisers with a one-line description.
pub const OPTIMIZERS: &[(&str, &str)] = &[
    (
        "anagram",
        "ANaGRAM: truncated-SVD natural gradient φ⁺r with a grid line search (Schwencke & Furtlehner 2025)",
    ),
    (
        "amstramgram",
        "AMStraMGRAM: two adaptive cutoffs from the RCE curve; settles at loss ≈ ε² of its precision level (laplace2d 1e-20 at ε = 1e-10)",
    ),
    (
        "adam",
        "Adam on the loss, step-decay schedule (Kingma & Ba 2015)",
    ),
    (
        "lbfgs",
        "L-BFGS with a strong-Wolfe line search (Nocedal & Wright, Alg. 7.5)",
    ),
    (
        "engd",
        "E-NGD: Gram-matrix (P×P) natural gradient, pseudo-inverse solve, grid line search (Müller & Zeinhofer 2023)",
    ),
    (
        "nystrom",
        "Nyström-preconditioned natural gradient: matrix-free PCG on (φ̃ᵀφ̃ + λI)d = φ̃ᵀr̃ (Bioli et al. 2025)",
    ),
    (
        "ssbroyden",
        "SSBroyden: self-scaled Broyden quasi-Newton, strong Wolfe, restarts (Urbán et al. 2025)",
    ),
];

impl OptimizerConfig {
    /// The default configuration of the optimiser called `name`.
    pub fn default_for(name: &str) -> Result<Self> {
        match name {
            "anagram" => Ok(OptimizerConfig::Anagram(AnagramConfig::default())),
            "amstramgram" => Ok(OptimizerConfig::Amstramgram(AmstramgramConfig::default())),
            "adam" => Ok(OptimizerConfig::Adam(AdamConfig::default())),
            "lbfgs" => Ok(OptimizerConfig::Lbfgs(LbfgsConfig::default())),
            "engd" => Ok(OptimizerConfig::Engd(EngdConfig::default())),
            "nystrom" => Ok(OptimizerConfig::Nystrom(NystromConfig::default())),
            "ssbroyden" => Ok(OptimizerConfig::Ssbroyden(SsBroydenConfig::default())),
            _ => Err(Error::UnknownName {
                kind: "optimizer",
                name: name.into(),
                known: OPTIMIZERS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The optimiser's name.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Anagram(_) => "anagram",
            OptimizerConfig::Amstramgram(_) => "amstramgram",
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::Lbfgs(_) => "lbfgs",
            OptimizerConfig::Engd(_) => "engd",
            OptimizerConfig::Nystrom(_) => "nystrom",
            OptimizerConfig::Ssbroyden(_) => "ssbroyden",
        }
    }

    /// Check every field.
    pub fn validate(&self) -> Result<()> {
        match self {
            OptimizerConfig::Anagram(c) => c.validate(),
            OptimizerConfig::Amstramgram(c) => c.validate(),
            OptimizerConfig::Adam(c) => c.validate(),
            OptimizerConfig::Lbfgs(c) => c.validate(),
            OptimizerConfig::Engd(c) => c.validate(),
            OptimizerConfig::Nystrom(c) => c.validate(),
            OptimizerConfig::Ssbroyden(c) => c.validate(),
        }
    }

    /// Set one parameter by name from text, e.g. `("precision", "1e-10")`,
    /// `("line_search", "{\"kind\": \"halving\", \"count\": 31}")` or a
    /// nested field by its dotted path, `("line_search.stride", "10")`: the
    /// value is read as JSON (a bare word is taken as a string) and the whole
    /// configuration is re-read and validated, so an unknown key or a value
    /// of the wrong type is an error naming `optimizer.<key>`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let field = format!("optimizer.{key}");
        if key == "name" {
            return Err(Error::config(
                field,
                "choose the optimiser with its name, not a parameter",
            ));
        }
        let mut json = serde_json::to_value(&*self).expect("configs serialise");
        let mut map = json
            .as_object_mut()
            .expect("tagged enum serialises to an object");
        let path: Vec<&str> = key.split('.').collect();
        let (last, parents) = path.split_last().expect("split yields one piece");
        let known = |map: &serde_json::Map<String, serde_json::Value>| -> String {
            let keys: Vec<&str> = map
                .keys()
                .filter(|k| *k != "name")
                .map(|k| k.as_str())
                .collect();
            keys.join(", ")
        };
        for (depth, part) in parents.iter().enumerate() {
            let here = path[..=depth].join(".");
            let keys = known(map);
            map = match map.get_mut(*part) {
                Some(serde_json::Value::Object(inner)) => inner,
                Some(_) => {
                    return Err(Error::config(
                        field,
                        format!("`{here}` is a value, not a group of parameters"),
                    ));
                }
                None => {
                    return Err(Error::config(
                        field,
                        format!("no parameter `{here}`; known at this level: {keys}"),
                    ));
                }
            };
        }
        if !map.contains_key(*last) {
            let owner = if parents.is_empty() {
                self.name().to_string()
            } else {
                format!("`{}`", parents.join("."))
            };
            return Err(Error::config(
                field,
                format!("{owner} has no such parameter; known: {}", known(map)),
            ));
        }
        let parsed = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        map.insert((*last).to_string(), parsed);
        let next: OptimizerConfig = serde_json::from_value(json)
            .map_err(|e| Error::config(&field, format!("`{value}`: {e}")))?;
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// Build the optimiser (validating first), its dense linear algebra on
    /// the run's threads and device ([`Compute`]; an error for a CUDA
    /// device that cannot be used).
    pub fn build(&self, compute: &Compute) -> Result<Box<dyn Optimizer>> {
        self.validate()?;
        let par = compute.par();
        Ok(match self {
            OptimizerConfig::Anagram(c) => Box::new(Anagram::with_compute(c.clone(), compute)?),
            OptimizerConfig::Amstramgram(c) => {
                Box::new(Amstramgram::with_compute(c.clone(), compute)?)
            }
            OptimizerConfig::Adam(c) => Box::new(Adam::new(c.clone())),
            OptimizerConfig::Lbfgs(c) => Box::new(Lbfgs::new(c.clone())),
            OptimizerConfig::Engd(c) => Box::new(Engd::with_par(c.clone(), par)),
            OptimizerConfig::Nystrom(c) => Box::new(Nystrom::with_par(c.clone(), par)),
            OptimizerConfig::Ssbroyden(c) => Box::new(SsBroyden::new(c.clone())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state survives JSON exactly; restoring it into a fresh optimiser
    /// continues the run bit for bit; another optimiser's state is refused
    /// with both names.
    #[test]
    fn typed_states_round_trip_and_mismatches_are_named() {
        use crate::optim::testing::Rosenbrock;
        let compute = Compute::default();
        for name in ["adam", "lbfgs", "ssbroyden"] {
            let cfg = OptimizerConfig::default_for(name).unwrap();
            let mut a = cfg.build(&compute).unwrap();
            let mut theta = vec![-1.2, 1.0];
            for _ in 0..3 {
                let loss = Rosenbrock.loss(&theta).unwrap();
                a.step(&Rosenbrock, &mut theta, loss).unwrap();
            }
            let state = a.state();
            assert_eq!(state.kind(), name);
            let text = serde_json::to_string(&state).unwrap();
            let back: OptimizerState = serde_json::from_str(&text).unwrap();
            assert_eq!(back, state);
            let mut b = cfg.build(&compute).unwrap();
            b.restore(back).unwrap();
            let (mut ta, mut tb) = (theta.clone(), theta.clone());
            for _ in 0..3 {
                let la = Rosenbrock.loss(&ta).unwrap();
                a.step(&Rosenbrock, &mut ta, la).unwrap();
                let lb = Rosenbrock.loss(&tb).unwrap();
                b.step(&Rosenbrock, &mut tb, lb).unwrap();
            }
            assert_eq!(ta, tb, "{name}");
        }
        let adam = OptimizerConfig::default_for("adam").unwrap();
        let mut a = adam.build(&compute).unwrap();
        let mut theta = vec![0.5, 0.5];
        let loss = Rosenbrock.loss(&theta).unwrap();
        a.step(&Rosenbrock, &mut theta, loss).unwrap();
        let mut l = OptimizerConfig::default_for("lbfgs")
            .unwrap()
            .build(&compute)
            .unwrap();
        let err = l.restore(a.state()).unwrap_err().to_string();
        assert!(err.contains("lbfgs") && err.contains("adam"), "{err}");
        let mut engd = OptimizerConfig::default_for("engd")
            .unwrap()
            .build(&compute)
            .unwrap();
        engd.restore(OptimizerState::None).unwrap();
        assert!(engd.restore(a.state()).is_err());
    }

    /// The residual alone equals the assembled system's residual, for both weightings.
    #[test]
    fn residuals_into_matches_the_system() {
        let pb = crate::problems::heat();
        let ls = pb.least_squares().unwrap();
        let theta = pb.initial_theta(1).unwrap();
        for w in [Weighting::Uniform, Weighting::BlockMean] {
            let sys = ls.system(&theta, w).unwrap();
            let mut r = Vec::new();
            ls.residuals_into(&theta, w, &mut r).unwrap();
            assert_eq!(r.len(), sys.r.len());
            for (a, b) in r.iter().zip(&sys.r) {
                assert!(
                    (a - b).abs() <= 1e-14 * (1.0 + b.abs()),
                    "{w:?}: {a} vs {b}"
                );
            }
        }
    }

    /// `set` reads JSON values, names unknown keys and bad values, and validates.
    #[test]
    fn set_parameters_by_name() {
        let mut c = OptimizerConfig::default_for("amstramgram").unwrap();
        c.set("precision", "1e-10").unwrap();
        c.set("weighting", "block-mean").unwrap();
        match &c {
            OptimizerConfig::Amstramgram(a) => {
                assert_eq!(a.precision, 1e-10);
                assert_eq!(a.weighting, Weighting::BlockMean);
            }
            _ => unreachable!(),
        }
        let e = c.set("precison", "1").unwrap_err().to_string();
        assert!(
            e.contains("optimizer.precison") && e.contains("precision_factor"),
            "{e}"
        );
        let e = c.set("precision", "abc").unwrap_err().to_string();
        assert!(e.contains("optimizer.precision"), "{e}");
        let e = c.set("precision", "-1").unwrap_err().to_string();
        assert!(e.contains("optimizer.precision"), "{e}");
        assert!(c.set("name", "adam").is_err());
        let mut a = OptimizerConfig::default_for("anagram").unwrap();
        a.set("damping", "1e-8").unwrap();
        a.set("cutoff", r#"{"kind": "absolute", "value": 1e-7}"#)
            .unwrap();
        assert_eq!(
            a,
            OptimizerConfig::Anagram(AnagramConfig {
                damping: 1e-8,
                cutoff: Cutoff::Absolute { value: 1e-7 },
                ..Default::default()
            })
        );
        // Nested fields by their dotted path.
        c.set("line_search.stride", "10").unwrap();
        match &c {
            OptimizerConfig::Amstramgram(a) => assert_eq!(a.line_search.stride(), 10),
            _ => unreachable!(),
        }
        let e = c.set("line_search.strid", "10").unwrap_err().to_string();
        assert!(
            e.contains("optimizer.line_search.strid") && e.contains("stride"),
            "{e}"
        );
        let e = c.set("precision.x", "1").unwrap_err().to_string();
        assert!(e.contains("not a group"), "{e}");
        let e = c.set("line_search.stride", "0").unwrap_err().to_string();
        assert!(e.contains("optimizer.line_search.stride"), "{e}");
    }
}
