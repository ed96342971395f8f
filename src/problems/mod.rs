//! The benchmark catalogue: each problem with its network, training points,
//! evaluation set, reference solution and its papers' optimiser settings —
//! shared by the tests, the benches and the command line.
//!
//! Each problem follows the paper it comes from (named in its module docs);
//! every point convention is stated on the problem's constructor.

mod allen_cahn;
mod burgers;
mod custom;
mod heat;
mod laplace2d;
mod laplace5d;
mod nonlinear_poisson;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::geometry::{BoxDomain, Domain, Interval};
use crate::model::{Activation, Init, Mlp, OutputTransform};
use crate::optim::OptimizerConfig;
use crate::residual::{Block, LeastSquares, Resampling};

/// The space-time box `[t₀, t₁] × [x₀, x₁]` of a 1+1-D evolution problem
/// (time is axis 0).
fn space_time_1d(t: (f64, f64), x: (f64, f64)) -> Result<Arc<dyn Domain>> {
    Ok(Arc::new(BoxDomain::space_time(
        Interval::new(t.0, t.1)?,
        &BoxDomain::new(vec![Interval::new(x.0, x.1)?])?,
    )))
}

/// Names and one-line descriptions of the catalogue's problems.
pub const PROBLEMS: &[(&str, &str)] = &[
    (
        "laplace2d",
        "−Δu = 2π² sin(πx) sin(πy) on [0,1]², u = 0 on ∂; net [2,32,1]; 784 + 116 grid points",
    ),
    (
        "heat",
        "u_t − ¼u_xx = 0 on [0,1]², u(0,x) = sin(πx), u = 0 at x ∈ {0,1}; net [2,64,1]; 784 + 3×29 points",
    ),
    (
        "laplace5d",
        "−Δu = π² Σ sin(πx_k) on [0,1]⁵, u = Σ sin(πx_k) on ∂; net [5,64,1]; 4000 + 500 random points",
    ),
    (
        "allen-cahn",
        "u_t − 1e-3 u_xx = 5(u − u³), u(0,x) = x² cos(πx), u(t,±1) = −1; net [2,20,20,20,1]; 1624 + 41 + 2×29 points",
    ),
    (
        "burgers",
        "u_t + u u_x = (0.01/π) u_xx, u(0,x) = −sin(πx), hard constraints; net [2,24,24,1]; 31 × 60 graded grid points",
    ),
    (
        "nonlinear-poisson",
        "Δu − eᵘ = f on [0,1]², u* = 1 + sin(4πx) cos(4πy); net [2,30,30,1]; 1600 + 160 grid points",
    ),
];

/// Default budget, optimiser and resampling of a catalogue problem (natgrad's
/// settings in [`Problem::defaults`], its papers' in [`Problem::paper`]).
#[derive(Clone, Debug)]
pub struct Defaults {
    /// The optimiser and its settings.
    pub optimizer: OptimizerConfig,
    /// Iteration budget.
    pub max_iters: usize,
    /// Training-time budget in seconds.
    pub max_seconds: f64,
    /// Collocation resampling (off unless the problem's module says otherwise).
    pub sampling: Resampling,
}

impl Defaults {
    /// An optimiser and a budget, without resampling.
    pub fn new(optimizer: OptimizerConfig, max_iters: usize, max_seconds: f64) -> Self {
        Defaults {
            optimizer,
            max_iters,
            max_seconds,
            sampling: Resampling::default(),
        }
    }
}

/// Which settings of a catalogue problem a run starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// natgrad's settings ([`Problem::defaults`]).
    #[default]
    Default,
    /// The problem's papers' settings ([`Problem::paper`]).
    Paper,
}

impl Preset {
    /// The preset called `name` (`default`, `paper`).
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "default" => Ok(Preset::Default),
            "paper" => Ok(Preset::Paper),
            _ => Err(Error::UnknownName {
                kind: "preset",
                name: name.into(),
                known: "default, paper".into(),
            }),
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Default => "default",
            Preset::Paper => "paper",
        }
    }
}

/// The error metric a problem's accuracy targets are stated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// RMS error.
    L2Abs,
    /// Relative 2-norm error.
    L2Rel,
}

impl Metric {
    /// The column name in `history.csv` and `summary.json`.
    pub fn column(self) -> &'static str {
        match self {
            Metric::L2Abs => "l2_abs",
            Metric::L2Rel => "l2_rel",
        }
    }
}

/// A result reported by a paper (mean over 10 seeds).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct PaperResult {
    /// The method.
    pub method: &'static str,
    /// Final training loss, where reported.
    pub loss: Option<f64>,
    /// Final error in the stated metric.
    pub l2: f64,
    /// Caveat (different metric or problem variant), empty if none.
    pub note: &'static str,
}

/// Accuracy and speed targets natgrad holds itself to, and the papers' numbers.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Benchmark {
    /// The metric of `l2_target` and of "time to 1e-4/1e-8/1e-12".
    pub metric: Metric,
    /// Error target.
    pub l2_target: f64,
    /// Loss target.
    pub loss_target: f64,
    /// Training-time target in seconds, where the catalogue sets one.
    pub time_target_s: Option<f64>,
    /// What the papers report.
    pub paper: Vec<PaperResult>,
}

impl Benchmark {
    /// The benchmark data of the catalogue problem `name`.
    pub fn of(name: &str) -> Result<Self> {
        let pr = |method, loss, l2, note| PaperResult {
            method,
            loss,
            l2,
            note,
        };
        let (metric, l2_target, loss_target, time_target_s, paper) = match name {
            "laplace2d" => (
                Metric::L2Abs,
                1e-13,
                1e-24,
                Some(60.0),
                vec![
                    pr("amstramgram", Some(1.46e-28), 2.24e-15, ""),
                    pr("anagram", None, 3.49e-9, ""),
                ],
            ),
            "heat" => (
                Metric::L2Abs,
                1e-12,
                1e-24,
                Some(120.0),
                vec![
                    pr("amstramgram", Some(6.29e-29), 2.32e-14, ""),
                    pr("anagram", None, 1.28e-6, ""),
                ],
            ),
            "laplace5d" => (
                Metric::L2Abs,
                3e-5,
                5e-8,
                Some(600.0),
                vec![
                    pr("amstramgram", Some(2.04e-8), 2.12e-5, ""),
                    pr("anagram", None, 4.00e-5, ""),
                ],
            ),
            "allen-cahn" => (
                Metric::L2Abs,
                1e-4,
                1e-10,
                Some(1800.0),
                vec![
                    pr("amstramgram", Some(3.19e-11), 5.87e-5, "vs DeepXDE data"),
                    pr("anagram", None, 4.32e-3, "vs DeepXDE data"),
                    pr(
                        "ssbroyden",
                        Some(6.42e-12),
                        3.94e-6,
                        "other variant, relative",
                    ),
                ],
            ),
            "burgers" => (
                Metric::L2Rel,
                2e-6,
                1e-11,
                Some(1800.0),
                vec![
                    pr("amstramgram", Some(2.99e-12), 1.5e-6, "metric not stated"),
                    pr("ssbroyden", Some(2.92e-10), 1.59e-6, "relative"),
                ],
            ),
            "nonlinear-poisson" => (
                Metric::L2Rel,
                1e-9,
                1e-20,
                Some(600.0),
                vec![
                    pr("amstramgram", Some(8.51e-24), 6.81e-10, "metric not stated"),
                    pr("ssbroyden", Some(3.03e-16), 9.29e-12, "relative"),
                ],
            ),
            _ => return Err(unknown_problem(name)),
        };
        Ok(Benchmark {
            metric,
            l2_target,
            loss_target,
            time_target_s,
            paper,
        })
    }
}

fn unknown_problem(name: &str) -> Error {
    Error::UnknownName {
        kind: "problem",
        name: name.into(),
        known: PROBLEMS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Points where the error is measured, with the exact (or reference) solution there.
#[derive(Clone, Debug)]
pub struct Reference {
    /// Evaluation points, row-major.
    pub points: Vec<f64>,
    /// `u*` at the points.
    pub values: Vec<f64>,
}

/// Error metrics of a model against a [`Reference`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// RMS error `√(mean (u_θ − u*)²)` (the ANaGRAM papers' "L2").
    pub l2_abs: f64,
    /// `‖u_θ − u*‖ / ‖u*‖`.
    pub l2_rel: f64,
    /// `max |u_θ − u*|`.
    pub linf: f64,
}

impl Reference {
    /// Evaluate `exact` at every point.
    pub fn from_fn(points: Vec<f64>, dim: usize, exact: impl Fn(&[f64]) -> f64) -> Self {
        let values = points.chunks(dim).map(exact).collect();
        Reference { points, values }
    }

    /// Errors of the network (output 0) with parameters θ.
    pub fn metrics(&self, mlp: &Mlp, theta: &[f64]) -> Result<Metrics> {
        let u = mlp.values(theta, &self.points)?;
        let k = mlp.output_dim();
        Ok(self.metrics_of(&u.iter().step_by(k).copied().collect::<Vec<_>>()))
    }

    /// Errors of predicted values `u` (one per evaluation point).
    pub fn metrics_of(&self, u: &[f64]) -> Metrics {
        let (mut se, mut su, mut mx) = (0.0, 0.0, 0.0_f64);
        for (i, &ref_v) in self.values.iter().enumerate() {
            let e = u[i] - ref_v;
            se += e * e;
            su += ref_v * ref_v;
            mx = mx.max(e.abs());
        }
        let n = self.values.len().max(1) as f64;
        Metrics {
            l2_abs: (se / n).sqrt(),
            l2_rel: (se / su).sqrt(),
            linf: if se.is_finite() { mx } else { f64::NAN },
        }
    }
}

/// A catalogue problem, fully built.
#[derive(Clone)]
pub struct Problem {
    /// Catalogue name.
    pub name: &'static str,
    /// Names of the input coordinates, in order (e.g. `["t", "x"]`), for
    /// figures and tables.
    pub coordinates: &'static [&'static str],
    /// Network widths.
    pub widths: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Parameter initialisation.
    pub init: Init,
    /// Residual blocks with their training points.
    pub blocks: Vec<Block>,
    /// The domain of the `interior` block (space-time for evolution
    /// problems): where [`crate::residual::Resampler`] draws new points.
    pub domain: Arc<dyn Domain>,
    /// Evaluation points and reference values.
    pub reference: Reference,
    /// natgrad's settings for the problem: what `natgrad solve <problem>` runs.
    pub defaults: Defaults,
    /// The settings of the problem's papers (ANaGRAM, AMStraMGRAM), for
    /// comparison (`--preset paper`); the same as `defaults` where natgrad
    /// has no recipe of its own yet.
    pub paper: Defaults,
    /// Hard constraints `u = g + ψ·N_θ`, if the problem uses them.
    pub transform: Option<OutputTransform>,
}

impl Problem {
    /// The settings of a preset.
    pub fn preset(&self, preset: Preset) -> &Defaults {
        match preset {
            Preset::Default => &self.defaults,
            Preset::Paper => &self.paper,
        }
    }

    /// The problem's own settings of the optimiser called `name` and the
    /// resampling that goes with them: natgrad's preset if its optimiser has
    /// that name, else the papers' if theirs has (their resampling is off),
    /// else the optimiser's documented defaults with natgrad's resampling.
    pub fn setup_for(&self, name: &str) -> Result<(OptimizerConfig, Resampling)> {
        match [&self.defaults, &self.paper]
            .into_iter()
            .find(|d| d.optimizer.name() == name)
        {
            Some(d) => Ok((d.optimizer.clone(), d.sampling.clone())),
            None => Ok((
                OptimizerConfig::default_for(name)?,
                self.defaults.sampling.clone(),
            )),
        }
    }

    /// The network.
    pub fn mlp(&self) -> Result<Mlp> {
        Mlp::new(self.widths.clone(), self.activation)
    }

    /// The least-squares problem (network + blocks).
    pub fn least_squares(&self) -> Result<LeastSquares> {
        let ls = LeastSquares::new(self.mlp()?, self.blocks.clone())?;
        match &self.transform {
            Some(t) => ls.with_transform(t.clone()),
            None => Ok(ls),
        }
    }

    /// The solution `u` at `points` (the network output, through the output
    /// transform if there is one).
    pub fn solution(&self, theta: &[f64], points: &[f64]) -> Result<Vec<f64>> {
        let mlp = self.mlp()?;
        let n = mlp.values(theta, points)?;
        let k = mlp.output_dim();
        let d = mlp.input_dim();
        Ok(match &self.transform {
            Some(t) => points
                .chunks_exact(d)
                .zip(n.iter().step_by(k))
                .map(|(x, &v)| t.value(x, v))
                .collect(),
            None => n.iter().step_by(k).copied().collect(),
        })
    }

    /// Errors of the solution against the problem's reference.
    pub fn metrics(&self, theta: &[f64]) -> Result<Metrics> {
        Ok(self
            .reference
            .metrics_of(&self.solution(theta, &self.reference.points)?))
    }

    /// Initial parameters for `seed`.
    pub fn initial_theta(&self, seed: u64) -> Result<Vec<f64>> {
        Ok(self.mlp()?.init(self.init, seed))
    }
}

pub use custom::{CustomProblem, DomainSpec};

/// Build the catalogue problem called `name`.
pub fn build(name: &str) -> Result<Problem> {
    match name {
        "laplace2d" => Ok(laplace2d::build()),
        "heat" => Ok(heat::build()),
        "laplace5d" => Ok(laplace5d::build()),
        "burgers" => burgers::build(),
        "allen-cahn" => allen_cahn::build(),
        "nonlinear-poisson" => Ok(nonlinear_poisson::build()),
        _ => Err(unknown_problem(name)),
    }
}

/// Test support: a block's own residual evaluated on a reference solution.
#[cfg(test)]
pub(crate) mod testing {
    use crate::pde::Point;
    use crate::residual::Block;

    /// `F(x, J) − f(x)` of `block` at `x`, with the jet `J` of a reference
    /// solution given by its value `u`, first derivatives `d1(k)` and
    /// second derivatives `d2(k, l)` (axis 0 is time for space-time
    /// problems); the Laplacian, when the operator reads it, is Σ_k d2(k, k).
    pub fn reference_residual(
        block: &Block,
        x: &[f64],
        u: f64,
        d1: impl Fn(usize) -> f64,
        d2: impl Fn(usize, usize) -> f64,
    ) -> f64 {
        let f = block.residual_fn();
        let ch = f.jet_spec().resolve(x.len()).unwrap();
        let mut jet = vec![u];
        jet.extend(ch.first_axes().iter().map(|&k| d1(k)));
        jet.extend(ch.second_pairs().iter().map(|&(k, l)| d2(k, l)));
        if ch.has_laplacian() {
            jet.push((0..x.len()).map(|k| d2(k, k)).sum());
        }
        let p = Point { x, normal: None };
        f.eval(&p, &jet, &ch, 1) - f.source(x)
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_sizes_follow_the_papers() {
        let expect = [
            ("laplace2d", 129, vec![784, 116], 198 * 198),
            ("heat", 257, vec![784, 29, 29, 29], 298 * 298),
            ("laplace5d", 449, vec![4000, 500], 40_000),
            ("burgers", 697, vec![1860], 100 * 256),
            ("allen-cahn", 921, vec![1624, 41, 29, 29], 101 * 201),
            ("nonlinear-poisson", 1051, vec![1600, 160], 250 * 250),
        ];
        for (name, p, blocks, n_eval) in expect {
            let pb = build(name).unwrap();
            let ls = pb.least_squares().unwrap();
            assert_eq!(ls.n_params(), p, "{name}");
            assert_eq!(
                ls.blocks().iter().map(|b| b.len()).collect::<Vec<_>>(),
                blocks,
                "{name}"
            );
            assert_eq!(pb.reference.values.len(), n_eval, "{name}");
        }
        assert!(matches!(build("nope"), Err(Error::UnknownName { .. })));
        for (name, _) in PROBLEMS {
            assert!(Benchmark::of(name).is_ok(), "{name} lacks benchmark data");
        }
    }

    /// An optimiser brings the resampling of the preset it comes from:
    /// laplace5d's SSBroyden (natgrad's) redraws, its ANaGRAM (the paper's)
    /// does not; an optimiser of neither preset gets natgrad's.
    #[test]
    fn setup_for_follows_the_preset() {
        let pb = build("laplace5d").unwrap();
        let every = |name: &str| pb.setup_for(name).unwrap().1.resample_every;
        assert_eq!(every("ssbroyden"), 500);
        assert_eq!(every("anagram"), 0);
        assert_eq!(every("lbfgs"), 500);
        assert_eq!(
            build("heat")
                .unwrap()
                .setup_for("ssbroyden")
                .unwrap()
                .1
                .resample_every,
            0
        );
        assert!(pb.setup_for("nope").is_err());
    }

    /// The closed-form solutions satisfy every block's residual: the jet of
    /// u* is built by finite differences of the closed form and fed to each
    /// block's own residual function (this catches sign errors in sources).
    #[test]
    fn exact_solutions_satisfy_the_residuals() {
        type Exact = fn(&[f64]) -> f64;
        let cases: [(&str, Exact); 4] = [
            ("laplace2d", laplace2d::exact),
            ("heat", heat::exact),
            ("laplace5d", laplace5d::exact),
            ("nonlinear-poisson", nonlinear_poisson::exact),
        ];
        for (name, u) in cases {
            let pb = build(name).unwrap();
            for blk in &pb.blocks {
                let ch = blk.residual_fn().jet_spec().resolve(2).unwrap();
                for i in (0..blk.len()).step_by(7) {
                    let p = blk.point(i);
                    let shift = |k: usize, d: f64| {
                        let mut y = p.x.to_vec();
                        y[k] += d;
                        y
                    };
                    // Central differences with one Richardson step (O(h⁴)):
                    // accurate to ~1e-8 even for nonlinear-poisson's k = 4 waves.
                    let c1 = |k: usize, h: f64| (u(&shift(k, h)) - u(&shift(k, -h))) / (2.0 * h);
                    let c2 = |k: usize, h: f64| {
                        (u(&shift(k, h)) - 2.0 * u(p.x) + u(&shift(k, -h))) / (h * h)
                    };
                    let h = 1e-3;
                    let d1 = |k: usize| (4.0 * c1(k, h / 2.0) - c1(k, h)) / 3.0;
                    let d2 = |k: usize| (4.0 * c2(k, h / 2.0) - c2(k, h)) / 3.0;
                    let mut jet = vec![u(p.x)];
                    jet.extend(ch.first_axes().iter().map(|&k| d1(k)));
                    for &(k, l) in ch.second_pairs() {
                        assert_eq!(k, l, "mixed derivatives not used by these problems");
                        jet.push(d2(k));
                    }
                    if ch.has_laplacian() {
                        jet.push((0..p.x.len()).map(d2).sum());
                    }
                    let r = blk.residual_fn().eval(&p, &jet, &ch, 1) - blk.sources()[i];
                    assert!(
                        r.abs() < 1e-6,
                        "{name} block {} point {i}: residual {r:e}",
                        blk.name()
                    );
                }
            }
        }
        let pb = build("heat").unwrap();
        let r = &pb.reference;
        for i in [0, 1000, 50_000] {
            assert_eq!(r.values[i], heat::exact(&r.points[2 * i..2 * i + 2]));
        }
    }
}
