//! The catalogue: one table from a problem's name to its constructor, its
//! optimiser presets (natgrad's and its papers'), and its accuracy targets
//! with the papers' numbers — shared by the tests, `natgrad bench`,
//! `natgrad compare` and `natgrad solve`.
//!
//! The problems themselves ([`crate::problems`]) only define networks,
//! points, residuals and references; what to train them with lives here,
//! beside the trainer. Each preset's docs state the settings; the
//! measurements behind natgrad's choices are in docs/accuracy.md.

use std::collections::BTreeMap;

use super::{ResampleMethod, Resampling, Restarts};
use crate::error::{Error, Result};
use crate::linalg::SvdMethod;
use crate::model::Init;
use crate::optim::{AmstramgramConfig, AnagramConfig, Cutoff, OptimizerConfig, SsBroydenConfig};
use crate::problems::{self, Problem};

/// Budget, optimiser and resampling of a run of a catalogue problem.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// The optimiser and its settings.
    pub optimizer: OptimizerConfig,
    /// Iteration budget.
    pub max_iters: usize,
    /// Training-time budget in seconds.
    pub max_seconds: f64,
    /// Collocation resampling (off unless the preset says otherwise).
    pub sampling: Resampling,
    /// System weights of blocks by name ([`super::RunSpec::system_weights`]; none
    /// unless the preset says otherwise).
    pub system_weights: BTreeMap<String, f64>,
    /// Restarts from other initialisations (off unless the preset says otherwise).
    pub restarts: Restarts,
    /// Network widths replacing the problem's ([`super::RunSpec::widths`];
    /// none: the problem's own).
    pub widths: Option<Vec<usize>>,
    /// [`super::Budget::stop_on_overfit`] (on unless the preset says otherwise).
    pub stop_on_overfit: bool,
}

impl Defaults {
    /// An optimiser and a budget, without resampling.
    pub fn new(optimizer: OptimizerConfig, max_iters: usize, max_seconds: f64) -> Self {
        Defaults {
            optimizer,
            max_iters,
            max_seconds,
            sampling: Resampling::default(),
            system_weights: BTreeMap::new(),
            restarts: Restarts::default(),
            widths: None,
            stop_on_overfit: true,
        }
    }

    /// The same with restarts.
    pub fn with_restarts(mut self, restarts: Restarts) -> Self {
        self.restarts = restarts;
        self
    }

    /// The same with block `name` weighted `weight` in the system.
    pub fn with_system_weight(mut self, name: &str, weight: f64) -> Self {
        self.system_weights.insert(name.to_string(), weight);
        self
    }
}

/// Which settings of a catalogue problem a run starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// natgrad's settings ([`Entry::defaults`]).
    #[default]
    Default,
    /// The problem's papers' settings ([`Entry::paper`]).
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
        Ok((entry(name)?.benchmark)())
    }
}

/// One problem of the catalogue.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The name `natgrad solve` takes.
    pub name: &'static str,
    /// One line: equation, network, points.
    pub summary: &'static str,
    /// Build the problem (network, blocks, reference).
    pub build: fn() -> Result<Problem>,
    /// natgrad's settings: what `natgrad solve <problem>` runs.
    pub defaults: fn() -> Defaults,
    /// The settings of the problem's papers, for comparison (`--preset
    /// paper`); the same as `defaults` where natgrad has no recipe of its own.
    pub paper: fn() -> Defaults,
    /// Targets and the papers' results.
    pub benchmark: fn() -> Benchmark,
}

impl Entry {
    /// The settings of a preset.
    pub fn preset(&self, preset: Preset) -> Defaults {
        match preset {
            Preset::Default => (self.defaults)(),
            Preset::Paper => (self.paper)(),
        }
    }

    /// The problem's own settings of the optimiser called `name` and the
    /// resampling, overfitting stop and restarts that go with them:
    /// natgrad's preset if its optimiser has that name, else the papers' if
    /// theirs has (their resampling is off), else the optimiser's documented
    /// defaults with natgrad's resampling and overfitting stop and no
    /// restarts (they are tuned to the preset's optimiser).
    pub fn setup_for(&self, name: &str) -> Result<Setup> {
        let (ours, paper) = ((self.defaults)(), (self.paper)());
        match [&ours, &paper]
            .into_iter()
            .find(|d| d.optimizer.name() == name)
        {
            Some(d) => Ok(Setup {
                optimizer: d.optimizer.clone(),
                sampling: d.sampling.clone(),
                restarts: d.restarts.clone(),
                stop_on_overfit: d.stop_on_overfit,
            }),
            None => Ok(Setup {
                optimizer: OptimizerConfig::default_for(name)?,
                sampling: ours.sampling.clone(),
                restarts: Restarts::default(),
                stop_on_overfit: ours.stop_on_overfit,
            }),
        }
    }
}

/// A catalogue problem's settings of one optimiser ([`Entry::setup_for`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    /// The optimiser and its settings.
    pub optimizer: OptimizerConfig,
    /// Collocation resampling.
    pub sampling: Resampling,
    /// Restarts from other initialisations.
    pub restarts: Restarts,
    /// Whether the overfitting stop is on (it goes with the resampling).
    pub stop_on_overfit: bool,
}

/// The catalogue, in the order `natgrad list` shows it.
pub static CATALOGUE: &[Entry] = &[
    Entry {
        name: "laplace2d",
        summary: "−Δu = 2π² sin(πx) sin(πy) on [0,1]², u = 0 on ∂; net [2,32,1]; 784 + 116 grid points",
        build: || Ok(problems::laplace2d()),
        defaults: laplace2d_defaults,
        paper: laplace2d_paper,
        benchmark: laplace2d_benchmark,
    },
    Entry {
        name: "heat",
        summary: "u_t − ¼u_xx = 0 on [0,1]², u(0,x) = sin(πx), u = 0 at x ∈ {0,1}; net [2,64,1]; 784 + 3×29 points",
        build: || Ok(problems::heat()),
        defaults: heat_defaults,
        paper: heat_paper,
        benchmark: heat_benchmark,
    },
    Entry {
        name: "laplace5d",
        summary: "−Δu = π² Σ sin(πx_k) on [0,1]⁵, u = Σ sin(πx_k) on ∂; net [5,64,1]; 4000 + 500 random points",
        build: || Ok(problems::laplace5d()),
        defaults: laplace5d_defaults,
        paper: laplace5d_paper,
        benchmark: laplace5d_benchmark,
    },
    Entry {
        name: "allen-cahn",
        summary: "u_t − 1e-3 u_xx = 5(u − u³), u(0,x) = x² cos(πx), u(t,±1) = −1; net [2,20,20,20,1]; 1624 + 41 + 2×29 points (natgrad's preset: 10 000 RAD interior points)",
        build: problems::allen_cahn,
        defaults: allen_cahn_defaults,
        paper: allen_cahn_paper,
        benchmark: allen_cahn_benchmark,
    },
    Entry {
        name: "burgers",
        summary: "u_t + u u_x = (0.01/π) u_xx, u(0,x) = −sin(πx), hard constraints; net [2,24,24,1] (natgrad's preset: [2,20,20,20,1], RAD points); 31 × 60 graded grid points",
        build: problems::burgers,
        defaults: burgers_defaults,
        paper: burgers_paper,
        benchmark: burgers_benchmark,
    },
    Entry {
        name: "nonlinear-poisson",
        summary: "Δu − eᵘ = f on [0,1]², u* = 1 + sin(4πx) cos(4πy); net [2,30,30,1]; 1681 + 160 grid points",
        build: || Ok(problems::nonlinear_poisson()),
        defaults: nonlinear_poisson_defaults,
        paper: nonlinear_poisson_paper,
        benchmark: nonlinear_poisson_benchmark,
    },
];

/// The catalogue entry called `name`; an error lists the known names.
pub fn entry(name: &str) -> Result<&'static Entry> {
    CATALOGUE
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::UnknownName {
            kind: "problem",
            name: name.into(),
            known: CATALOGUE
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Build the catalogue problem called `name`.
pub fn build(name: &str) -> Result<Problem> {
    (entry(name)?.build)()
}

/// Whether `name` is a catalogue problem.
pub fn contains(name: &str) -> bool {
    CATALOGUE.iter().any(|e| e.name == name)
}

/// The settings of a problem defined in a config file
/// ([`crate::problems::CustomProblem`]): SSBroyden with its defaults for
/// 60 s, no iteration limit. It has no paper: both presets are these.
pub fn custom_defaults() -> Defaults {
    Defaults::new(
        OptimizerConfig::Ssbroyden(SsBroydenConfig::default()),
        usize::MAX,
        60.0,
    )
}

fn paper_result(
    method: &'static str,
    loss: Option<f64>,
    l2: f64,
    note: &'static str,
) -> PaperResult {
    PaperResult {
        method,
        loss,
        l2,
        note,
    }
}

/// laplace2d, natgrad's: AMStraMGRAM at the fixed precision level 1e-10
/// (`start_precision = precision`, no continuation) for 60 s, no iteration
/// limit. A converging run settles at a loss ≈ 1.2·ε² ≈ 1.2e-20. A run
/// whose loss is still above 1e-14 after 2200 iterations (about 36 s)
/// restarts once, from every weight and bias drawn from N(0, 0.3²) instead
/// of N(0, 0.1²): the two scales converge on different seeds, those at 0.3
/// within 900 iterations (docs/accuracy.md).
fn laplace2d_defaults() -> Defaults {
    Defaults::new(
        OptimizerConfig::Amstramgram(AmstramgramConfig {
            start_precision: 1e-10,
            precision: 1e-10,
            ..Default::default()
        }),
        usize::MAX,
        60.0,
    )
    .with_restarts(Restarts {
        after: 2200,
        above: 1e-14,
        inits: vec![Init::Normal { std: 0.3 }],
    })
}

/// laplace2d, the papers': ANaGRAM with absolute cutoff 1e-6 on the
/// uniform-weight system, 2001 iterations (600 s cap).
fn laplace2d_paper() -> Defaults {
    Defaults::new(
        OptimizerConfig::Anagram(AnagramConfig {
            cutoff: Cutoff::Absolute { value: 1e-6 },
            ..Default::default()
        }),
        2001,
        600.0,
    )
}

fn laplace2d_benchmark() -> Benchmark {
    Benchmark {
        metric: Metric::L2Abs,
        l2_target: 1e-13,
        loss_target: 1e-24,
        time_target_s: Some(60.0),
        paper: vec![
            paper_result("amstramgram", Some(1.46e-28), 2.24e-15, ""),
            paper_result("anagram", None, 3.49e-9, ""),
        ],
    }
}

/// heat, natgrad's: AMStraMGRAM at the fixed precision level 1e-9 for 120 s,
/// no iteration limit.
fn heat_defaults() -> Defaults {
    Defaults::new(
        OptimizerConfig::Amstramgram(AmstramgramConfig {
            start_precision: 1e-9,
            precision: 1e-9,
            ..Default::default()
        }),
        usize::MAX,
        120.0,
    )
}

/// heat, the papers': ANaGRAM with absolute cutoff 1e-5, 2001 iterations
/// (600 s cap).
fn heat_paper() -> Defaults {
    Defaults::new(
        OptimizerConfig::Anagram(AnagramConfig {
            cutoff: Cutoff::Absolute { value: 1e-5 },
            ..Default::default()
        }),
        2001,
        600.0,
    )
}

fn heat_benchmark() -> Benchmark {
    Benchmark {
        metric: Metric::L2Abs,
        l2_target: 1e-12,
        loss_target: 1e-24,
        time_target_s: Some(120.0),
        paper: vec![
            paper_result("amstramgram", Some(6.29e-29), 2.32e-14, ""),
            paper_result("anagram", None, 1.28e-6, ""),
        ],
    }
}

/// laplace5d, natgrad's: SSBroyden for 600 s, no iteration limit, the
/// interior points redrawn uniformly every 500 iterations and SSBroyden's H
/// reset to I at each redraw (on the fixed points SSBroyden ends up fitting
/// the points and not the PDE).
fn laplace5d_defaults() -> Defaults {
    Defaults {
        optimizer: OptimizerConfig::Ssbroyden(SsBroydenConfig {
            keep_h_on_redraw: false,
            ..Default::default()
        }),
        max_iters: usize::MAX,
        max_seconds: 600.0,
        sampling: Resampling {
            resample_every: 500,
            method: ResampleMethod::Uniform,
            ..Default::default()
        },
        system_weights: BTreeMap::new(),
        restarts: Restarts::default(),
        widths: None,
        stop_on_overfit: true,
    }
}

/// laplace5d, the papers': the fixed points, ANaGRAM with the default
/// relative cutoff √(εP)·σ₁, 1001 iterations, 600 s.
fn laplace5d_paper() -> Defaults {
    Defaults::new(
        OptimizerConfig::Anagram(AnagramConfig {
            cutoff: Cutoff::Default,
            ..Default::default()
        }),
        1001,
        600.0,
    )
}

fn laplace5d_benchmark() -> Benchmark {
    Benchmark {
        metric: Metric::L2Abs,
        l2_target: 3e-5,
        loss_target: 5e-8,
        time_target_s: Some(600.0),
        paper: vec![
            paper_result("amstramgram", Some(2.04e-8), 2.12e-5, ""),
            paper_result("anagram", None, 4.00e-5, ""),
        ],
    }
}

/// allen-cahn, natgrad's: SSBroyden for 1800 s, no iteration limit, the
/// interior redrawn by RAD (10 000 points from 50 000 candidates, k = c = 1)
/// every 500 iterations, H kept across redraws, without the overfitting
/// stop: before the first redraw the run overfits the fixed 1624-point grid
/// (held-out / training loss 4.7e4 at iteration 500), after it the ratio
/// stays within 1.1–20. Measurements: docs/accuracy.md.
fn allen_cahn_defaults() -> Defaults {
    Defaults {
        stop_on_overfit: false,
        ..ssbroyden_with_rad_redraws()
    }
}

/// SSBroyden (H kept across redraws) for 1800 s, no iteration limit, the
/// interior redrawn by RAD, 10 000 points from 50 000 candidates, every 500
/// iterations: what burgers' and allen-cahn's presets share.
fn ssbroyden_with_rad_redraws() -> Defaults {
    Defaults {
        sampling: Resampling {
            resample_every: 500,
            method: ResampleMethod::Rad,
            points: 10_000,
            candidates: 50_000,
            ..Default::default()
        },
        ..Defaults::new(
            OptimizerConfig::Ssbroyden(SsBroydenConfig::default()),
            usize::MAX,
            1800.0,
        )
    }
}

/// allen-cahn, the ANaGRAM paper's: ANaGRAM with the default relative
/// cutoff, 4001 iterations, 1800 s.
fn allen_cahn_paper() -> Defaults {
    Defaults::new(
        OptimizerConfig::Anagram(AnagramConfig {
            cutoff: Cutoff::Default,
            ..Default::default()
        }),
        4001,
        1800.0,
    )
}

fn allen_cahn_benchmark() -> Benchmark {
    Benchmark {
        metric: Metric::L2Abs,
        l2_target: 1e-4,
        loss_target: 1e-10,
        time_target_s: Some(1800.0),
        paper: vec![
            paper_result("amstramgram", Some(3.19e-11), 5.87e-5, "vs DeepXDE data"),
            paper_result("anagram", None, 4.32e-3, "vs DeepXDE data"),
            paper_result(
                "ssbroyden",
                Some(6.42e-12),
                3.94e-6,
                "other variant, relative",
            ),
        ],
    }
}

/// burgers, natgrad's: SSBroyden for 1800 s, no iteration limit, on a
/// [2, 20, 20, 20, 1] network (the SSBroyden paper's depth; the problem's
/// own is [2, 24, 24, 1]), the interior redrawn by RAD (10 000 points from
/// 50 000 candidates, k = c = 1) every 500 iterations, H kept across
/// redraws (symmetrised, reset only when indefinite, every 500 iterations).
/// Measurements: docs/accuracy.md.
fn burgers_defaults() -> Defaults {
    Defaults {
        widths: Some(vec![2, 20, 20, 20, 1]),
        ..ssbroyden_with_rad_redraws()
    }
}

/// burgers, the papers': the fixed grid, AMStraMGRAM with its defaults,
/// 1000 iterations, 1800 s.
fn burgers_paper() -> Defaults {
    Defaults::new(
        OptimizerConfig::Amstramgram(AmstramgramConfig::default()),
        1000,
        1800.0,
    )
}

fn burgers_benchmark() -> Benchmark {
    Benchmark {
        metric: Metric::L2Rel,
        l2_target: 2e-6,
        loss_target: 1e-11,
        time_target_s: Some(1800.0),
        paper: vec![
            paper_result("amstramgram", Some(2.99e-12), 1.5e-6, "metric not stated"),
            paper_result("ssbroyden", Some(2.92e-10), 1.59e-6, "relative"),
        ],
    }
}

/// nonlinear-poisson, natgrad's: AMStraMGRAM at the fixed precision level
/// 5e-8 (`start_precision = precision`), partial SVD, the boundary block
/// weighted 100 in the system (its residual resolved 10× more finely than
/// the interior's, in the system's units), 1000 iterations, 600 s. A run
/// that converges settles at a loss ≈ 2.5e-15.
fn nonlinear_poisson_defaults() -> Defaults {
    Defaults::new(
        OptimizerConfig::Amstramgram(AmstramgramConfig {
            start_precision: 5e-8,
            precision: 5e-8,
            svd: SvdMethod::Partial,
            ..Default::default()
        }),
        1000,
        600.0,
    )
    .with_system_weight("boundary", 100.0)
}

/// nonlinear-poisson, the AMStraMGRAM paper's: AMStraMGRAM with its
/// defaults (the precision continuation 1e-6 → 1e-14, full SVD, uniform
/// system), 1000 iterations, 1800 s.
fn nonlinear_poisson_paper() -> Defaults {
    Defaults::new(
        OptimizerConfig::Amstramgram(AmstramgramConfig::default()),
        1000,
        1800.0,
    )
}

fn nonlinear_poisson_benchmark() -> Benchmark {
    Benchmark {
        metric: Metric::L2Rel,
        l2_target: 1e-9,
        loss_target: 1e-20,
        time_target_s: Some(600.0),
        paper: vec![
            paper_result("amstramgram", Some(8.51e-24), 6.81e-10, "metric not stated"),
            paper_result("ssbroyden", Some(3.03e-16), 9.29e-12, "relative"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry builds, its presets validate, and its problem carries the
    /// entry's name; unknown names list the known ones.
    #[test]
    fn every_entry_builds_and_validates() {
        for e in CATALOGUE {
            for preset in [Preset::Default, Preset::Paper] {
                e.preset(preset).optimizer.validate().unwrap();
            }
            assert_eq!((e.build)().unwrap().name, e.name);
            assert_eq!(
                Benchmark::of(e.name).unwrap().metric,
                (e.benchmark)().metric
            );
        }
        let err = build("nope").err().unwrap().to_string();
        assert!(
            err.contains("laplace2d") && err.contains("nonlinear-poisson"),
            "{err}"
        );
    }

    /// An optimiser of a preset gets that preset's settings and resampling;
    /// another one its documented defaults with natgrad's resampling.
    #[test]
    fn setup_for_prefers_the_presets() {
        let burgers = entry("burgers").unwrap();
        let s = burgers.setup_for("ssbroyden").unwrap();
        assert_eq!(s.optimizer, burgers_defaults().optimizer);
        assert_eq!(s.sampling.resample_every, 500);
        let s = burgers.setup_for("amstramgram").unwrap();
        assert_eq!(s.optimizer, burgers_paper().optimizer);
        assert_eq!(
            s.sampling.resample_every, 0,
            "the papers' runs keep their points"
        );
        let s = burgers.setup_for("adam").unwrap();
        assert_eq!(s.optimizer, OptimizerConfig::default_for("adam").unwrap());
        assert_eq!(s.sampling.resample_every, 500);
    }

    /// burgers' own preset trains a deeper network than the problem's, on
    /// 10 000 RAD points; its paper preset keeps the problem's network. A
    /// run config without `[model]` keeps the preset's network.
    #[test]
    fn burgers_preset_network_and_points() {
        use crate::train::{RunConfig, RunSpec};
        let own = RunSpec::with_preset("burgers", Preset::Default).unwrap();
        assert_eq!(own.model().unwrap().0, [2, 20, 20, 20, 1]);
        assert_eq!(
            (own.sampling.points, own.sampling.candidates),
            (10_000, 50_000)
        );
        let paper = RunSpec::with_preset("burgers", Preset::Paper).unwrap();
        assert_eq!(paper.model().unwrap().0, [2, 24, 24, 1]);
        let file = RunConfig::parse("[problem]\nname = \"burgers\"\n", "t")
            .unwrap()
            .to_spec()
            .unwrap();
        assert_eq!(file.model().unwrap().0, [2, 20, 20, 20, 1]);
        for e in CATALOGUE {
            if e.name != "burgers" {
                assert!(e.preset(Preset::Default).widths.is_none(), "{}", e.name);
            }
            assert!(e.preset(Preset::Paper).widths.is_none(), "{}", e.name);
        }
    }

    /// allen-cahn's own preset redraws 10 000 RAD points without the
    /// overfitting stop; its papers' ANaGRAM keeps the fixed points and the
    /// stop, as does every other preset.
    #[test]
    fn allen_cahn_preset_redraws_without_the_overfitting_stop() {
        use crate::train::RunSpec;
        let own = RunSpec::with_preset("allen-cahn", Preset::Default).unwrap();
        assert_eq!(own.optimizer.name(), "ssbroyden");
        assert_eq!(
            (
                own.sampling.resample_every,
                own.sampling.points,
                own.sampling.candidates
            ),
            (500, 10_000, 50_000)
        );
        assert!(!own.budget.stop_on_overfit);
        let anagram = entry("allen-cahn").unwrap().setup_for("anagram").unwrap();
        assert!(anagram.stop_on_overfit && !anagram.sampling.enabled());
        for e in CATALOGUE {
            assert!(e.preset(Preset::Paper).stop_on_overfit, "{}", e.name);
            if e.name != "allen-cahn" {
                assert!(e.preset(Preset::Default).stop_on_overfit, "{}", e.name);
            }
        }
    }

    /// laplace2d's own optimiser keeps the preset's restarts; the papers'
    /// and any other optimiser run without.
    #[test]
    fn restarts_go_with_the_preset_optimizer() {
        let pb = entry("laplace2d").unwrap();
        let own = pb.setup_for("amstramgram").unwrap().restarts;
        assert_eq!(own, laplace2d_defaults().restarts);
        assert!(!own.is_off());
        assert!(pb.setup_for("anagram").unwrap().restarts.is_off());
        assert!(pb.setup_for("ssbroyden").unwrap().restarts.is_off());
        for e in CATALOGUE {
            assert!(e.preset(Preset::Paper).restarts.is_off(), "{}", e.name);
        }
    }

    /// nonlinear-poisson's own preset weights its boundary in the system and
    /// reaches the run and its problem; the paper preset and every other
    /// problem keep the uniform system.
    #[test]
    fn system_weights_come_from_the_preset() {
        use crate::train::RunSpec;
        let own = RunSpec::with_preset("nonlinear-poisson", Preset::Default).unwrap();
        assert_eq!(own.system_weights.get("boundary"), Some(&100.0));
        let pb = own.problem().unwrap();
        let weights: Vec<f64> = pb.blocks.iter().map(|b| b.system_weight()).collect();
        assert_eq!(weights, [1.0, 100.0]);
        for e in CATALOGUE {
            let paper = RunSpec::with_preset(e.name, Preset::Paper).unwrap();
            assert!(paper.system_weights.is_empty(), "{}", e.name);
            if e.name != "nonlinear-poisson" {
                assert!(
                    e.preset(Preset::Default).system_weights.is_empty(),
                    "{}",
                    e.name
                );
            }
        }
    }

    #[test]
    fn catalogue_sizes_follow_the_papers() {
        let expect = [
            ("laplace2d", 129, vec![784, 116], 198 * 198),
            ("heat", 257, vec![784, 29, 29, 29], 298 * 298),
            ("laplace5d", 449, vec![4000, 500], 40_000),
            ("burgers", 697, vec![1860], 100 * 256),
            ("allen-cahn", 921, vec![1624, 41, 29, 29], 101 * 201),
            ("nonlinear-poisson", 1051, vec![1681, 160], 250 * 250),
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
    }

    /// An optimiser brings the resampling of the preset it comes from:
    /// laplace5d's SSBroyden (natgrad's) redraws, its ANaGRAM (the paper's)
    /// does not; an optimiser of neither preset gets natgrad's.
    #[test]
    fn setup_for_follows_the_preset() {
        let pb = entry("laplace5d").unwrap();
        let every = |name: &str| pb.setup_for(name).unwrap().sampling.resample_every;
        assert_eq!(every("ssbroyden"), 500);
        assert_eq!(every("anagram"), 0);
        assert_eq!(every("lbfgs"), 500);
        assert_eq!(
            entry("heat")
                .unwrap()
                .setup_for("ssbroyden")
                .unwrap()
                .sampling
                .resample_every,
            0
        );
        assert!(pb.setup_for("nope").is_err());
    }
}
