//! `natgrad bench`: run a set of (problem × optimiser × seed) cases, each with
//! its own budget, and tabulate them beside the targets and the papers'
//! numbers ([`crate::train::Benchmark`]) as Markdown and CSV.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::linalg::Compute;
use crate::train::catalogue::{self, Benchmark, Metric, Preset};
use crate::train::{Budget, RunSpec};

/// The error levels whose first-reach times are reported.
pub const THRESHOLDS: [f64; 3] = [1e-4, 1e-8, 1e-12];

/// A bench or compare case: a run, and the catalogue preset that chose its
/// settings when it was named by a preset rather than an optimiser.
#[derive(Clone, Debug)]
pub struct Case {
    /// The run.
    pub spec: RunSpec,
    /// `Some` when the case is a whole preset (`default` or `paper`): its
    /// optimiser, resampling and system weights; `None` when it is an
    /// optimiser named on its own.
    pub preset: Option<Preset>,
}

/// The optimiser, with the preset in brackets for a preset's case.
fn setup_label(optimizer: &str, preset: Option<Preset>) -> String {
    match preset {
        Some(p) => format!("{optimizer} ({})", p.name()),
        None => optimizer.to_string(),
    }
}

impl Case {
    /// What the tables call the case: the optimiser, with the preset in
    /// brackets for a preset's case (`amstramgram (paper)`).
    pub fn setup(&self) -> String {
        setup_label(self.spec.optimizer.name(), self.preset)
    }

    /// The case's name and folder: `<problem>-<optimizer>-s<seed>`, or
    /// `<problem>-<preset>-<optimizer>-s<seed>` for a preset.
    pub fn label(&self) -> String {
        let s = &self.spec;
        match self.preset {
            Some(p) => format!(
                "{}-{}-{}-s{}",
                s.problem,
                p.name(),
                s.optimizer.name(),
                s.seed
            ),
            None => format!("{}-{}-s{}", s.problem, s.optimizer.name(), s.seed),
        }
    }
}

/// The case `setup` of `problem` with `seed` and the bench's default
/// budget: the problem's time target ([`Benchmark`]), else its default time
/// budget, and no iteration limit. `setup` is either a preset, `default`
/// or `paper` (the whole preset: optimiser, resampling, system weights,
/// [`crate::train::RunSpec::with_preset`]), or an optimiser name (the
/// problem's own settings of that optimiser and the resampling that goes
/// with them, [`crate::train::catalogue::Entry::setup_for`]; natgrad's
/// other settings). [`run_case`] sets where it writes.
pub fn case(problem: &str, setup: &str, seed: u64) -> Result<Case> {
    let preset = Preset::parse(setup).ok();
    let mut spec = match preset {
        Some(p) => RunSpec::with_preset(problem, p)?,
        None => {
            let chosen = catalogue::entry(problem)?
                .setup_for(setup)
                .map_err(|e| match e {
                    // A setup is a preset or an optimiser: the error lists both.
                    Error::UnknownName { name, known, .. } => Error::UnknownName {
                        kind: "setup (preset or optimizer)",
                        name,
                        known: format!("default, paper, {known}"),
                    },
                    other => other,
                })?;
            let mut spec = RunSpec::defaults(problem)?;
            spec.optimizer = chosen.optimizer;
            spec.sampling = chosen.sampling;
            spec.restarts = chosen.restarts;
            spec.budget.stop_on_overfit = chosen.stop_on_overfit;
            spec
        }
    };
    let bench = Benchmark::of(problem)?;
    spec.budget = Budget {
        max_iters: usize::MAX,
        max_seconds: bench.time_target_s.unwrap_or(spec.budget.max_seconds),
        ..spec.budget.clone()
    };
    spec.seed = seed;
    spec.compute = Compute::default();
    Ok(Case { spec, preset })
}

/// The result of one case.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// Problem.
    pub problem: String,
    /// Optimiser name.
    pub optimizer: String,
    /// The preset of a case named by one ([`Case::preset`]).
    pub preset: Option<Preset>,
    /// Seed.
    pub seed: u64,
    /// Iterations taken.
    pub iters: usize,
    /// Training time, seconds.
    pub time_s: f64,
    /// Why the run stopped.
    pub termination: String,
    /// Final loss.
    pub loss: f64,
    /// Final RMS error.
    pub l2_abs: f64,
    /// Final relative error.
    pub l2_rel: f64,
    /// The problem's metric.
    pub metric: Metric,
    /// Training time when the metric first reached each of [`THRESHOLDS`]
    /// (at the evaluated iterations).
    pub time_to: Vec<Option<f64>>,
    /// Training time when both the error and the loss targets first held
    /// (at the evaluated iterations).
    pub time_to_target: Option<f64>,
    /// Targets and papers' numbers.
    pub benchmark: Benchmark,
    /// The run directory.
    pub run_dir: PathBuf,
}

impl BenchRow {
    /// The case's [`Case::setup`] label.
    pub fn setup(&self) -> String {
        setup_label(&self.optimizer, self.preset)
    }

    /// The final error in the problem's metric.
    pub fn error(&self) -> f64 {
        match self.metric {
            Metric::L2Abs => self.l2_abs,
            Metric::L2Rel => self.l2_rel,
        }
    }
}

/// Run one case, writing its run directory under `runs_dir`, evaluating the
/// error every `eval_every` iterations and, with `eval_interval_s`, also
/// whenever that much training time has passed since the last evaluation.
pub fn run_case(
    case: &Case,
    runs_dir: &Path,
    eval_every: usize,
    eval_interval_s: Option<f64>,
    progress_every: Option<usize>,
    stop: Option<Arc<AtomicBool>>,
) -> Result<BenchRow> {
    let mut spec = case.spec.clone();
    spec.stop = stop;
    spec.eval_every = eval_every;
    spec.eval_interval_s = eval_interval_s;
    spec.progress_every = progress_every;
    let dir = runs_dir.join(case.label());
    spec.out = Some(dir.clone());
    // A case's folder belongs to the bench: a rerun replaces it.
    spec.replace_existing = true;
    let outcome = spec.run()?;
    let benchmark = Benchmark::of(&spec.problem)?;
    let rows = evaluated_rows(&dir.join("history.csv"), benchmark.metric)?;
    let time_to = first_below_thresholds(&rows);
    let time_to_target = first_on_target(&rows, &benchmark);
    let m = outcome.metrics;
    Ok(BenchRow {
        problem: spec.problem.clone(),
        optimizer: spec.optimizer.name().to_string(),
        preset: case.preset,
        seed: spec.seed,
        iters: outcome.iters,
        time_s: outcome.time_s,
        termination: outcome.termination.to_string(),
        loss: outcome.loss,
        l2_abs: m.map_or(f64::NAN, |m| m.l2_abs),
        l2_rel: m.map_or(f64::NAN, |m| m.l2_rel),
        metric: benchmark.metric,
        time_to,
        time_to_target,
        benchmark,
        run_dir: dir,
    })
}

/// The rows of a run's `history.csv` where the error was evaluated, as
/// `(time_s, loss, error in metric)`.
fn evaluated_rows(history: &Path, metric: Metric) -> Result<Vec<(f64, f64, f64)>> {
    let h = super::History::read(history)?;
    let (ct, cl, cm) = (
        h.column("time_s")?,
        h.column("loss")?,
        h.column(metric.column())?,
    );
    Ok(h.rows
        .iter()
        .filter_map(|r| Some((r[ct]?, r[cl]?, r[cm]?)))
        .collect())
}

/// From a run's `history.csv`: the first `time_s` at which the metric column
/// is at or below each of [`THRESHOLDS`].
pub fn times_to_thresholds(history: &Path, metric: Metric) -> Result<Vec<Option<f64>>> {
    Ok(first_below_thresholds(&evaluated_rows(history, metric)?))
}

fn first_below_thresholds(rows: &[(f64, f64, f64)]) -> Vec<Option<f64>> {
    THRESHOLDS
        .iter()
        .map(|&thr| rows.iter().find(|r| r.2 <= thr).map(|r| r.0))
        .collect()
}

/// From a run's `history.csv`: the first `time_s` at which both the error
/// and the loss targets of `b` held.
pub fn time_to_target(history: &Path, b: &Benchmark) -> Result<Option<f64>> {
    Ok(first_on_target(&evaluated_rows(history, b.metric)?, b))
}

fn first_on_target(rows: &[(f64, f64, f64)], b: &Benchmark) -> Option<f64> {
    rows.iter()
        .find(|r| r.2 <= b.l2_target && r.1 <= b.loss_target)
        .map(|r| r.0)
}

pub(super) fn sci(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2e}")
    } else {
        "–".into()
    }
}

pub(super) fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |t| format!("{t:.1}"))
}

/// The Markdown report: one row per case, then the targets and the papers'
/// numbers per problem. `preamble` (the command, the machine) goes first.
pub fn markdown(rows: &[BenchRow], preamble: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# natgrad bench\n\n{preamble}\n");
    let _ = writeln!(
        s,
        "Times are training time in seconds (assembly, SVD, line search; not error evaluation) when the \
         problem's metric first reached the level, at the evaluated iterations; `–`: not reached.\n"
    );
    let _ = writeln!(
        s,
        "| problem | optimizer | seed | iters | time_s | metric | t(1e-4) | t(1e-8) | t(1e-12) | loss | l2_abs | l2_rel | target | t(target) | reached | paper (same method) |"
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let b = &r.benchmark;
        let reached = r
            .time_to_target
            .is_some_and(|t| b.time_target_s.is_none_or(|limit| t <= limit));
        let paper = b
            .paper
            .iter()
            .find(|p| p.method == r.optimizer)
            .map_or("–".into(), |p| {
                format!(
                    "{}{}{}",
                    sci(p.l2),
                    p.loss
                        .map_or(String::new(), |l| format!(" (loss {})", sci(l))),
                    if p.note.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", p.note)
                    }
                )
            });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} ≤ {}, loss ≤ {}{} | {} | {} | {} |",
            r.problem,
            r.setup(),
            r.seed,
            r.iters,
            r.time_s,
            r.metric.column(),
            secs(r.time_to[0]),
            secs(r.time_to[1]),
            secs(r.time_to[2]),
            sci(r.loss),
            sci(r.l2_abs),
            sci(r.l2_rel),
            r.metric.column(),
            sci(b.l2_target),
            sci(b.loss_target),
            b.time_target_s
                .map_or(String::new(), |t| format!(", ≤ {t:.0} s")),
            secs(r.time_to_target),
            if reached { "yes" } else { "no" },
            paper
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    let _ = writeln!(
        s,
        "\n## The papers' numbers (mean over 10 seeds)\n\n| problem | method | loss | error | note |\n|---|---|---|---|---|"
    );
    for r in rows {
        if seen.contains(&r.problem.as_str()) {
            continue;
        }
        seen.push(&r.problem);
        for p in &r.benchmark.paper {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                r.problem,
                p.method,
                p.loss.map_or("–".into(), sci),
                sci(p.l2),
                p.note
            );
        }
    }
    s
}

/// The CSV report (one row per case; empty cells where a level was not reached).
pub fn csv(rows: &[BenchRow]) -> String {
    let mut s = String::from(
        "problem,optimizer,preset,seed,iters,time_s,termination,metric,t_1e-4,t_1e-8,t_1e-12,t_target,loss,l2_abs,l2_rel,l2_target,loss_target,time_target_s\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |t| format!("{t:e}"));
    for r in rows {
        let b = &r.benchmark;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{:e},\"{}\",{},{},{},{},{},{:e},{:e},{:e},{:e},{:e},{}",
            r.problem,
            r.optimizer,
            r.preset.map_or("", Preset::name),
            r.seed,
            r.iters,
            r.time_s,
            r.termination.replace('"', "'"),
            r.metric.column(),
            opt(r.time_to[0]),
            opt(r.time_to[1]),
            opt(r.time_to[2]),
            opt(r.time_to_target),
            r.loss,
            r.l2_abs,
            r.l2_rel,
            b.l2_target,
            b.loss_target,
            opt(b.time_target_s)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_read_from_history() {
        let dir = std::env::temp_dir().join(format!("natgrad-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let h = dir.join("history.csv");
        std::fs::write(
            &h,
            "iter,time_s,loss,l2_abs,l2_rel\n0,0,1,1e-1,1\n1,0.5,1e-3,,\n2,1.5,1e-6,5e-5,1e-3\n3,2.5,1e-9,1e-9,1e-7\n",
        )
        .unwrap();
        let t = times_to_thresholds(&h, Metric::L2Abs).unwrap();
        assert_eq!(t, vec![Some(1.5), Some(2.5), None]);
        let t = times_to_thresholds(&h, Metric::L2Rel).unwrap();
        assert_eq!(t, vec![Some(2.5), None, None]);
        let mut b = Benchmark::of("laplace2d").unwrap();
        (b.l2_target, b.loss_target) = (1e-4, 1e-5);
        assert_eq!(time_to_target(&h, &b).unwrap(), Some(1.5));
        b.loss_target = 1e-7;
        assert_eq!(time_to_target(&h, &b).unwrap(), Some(2.5));
        std::fs::write(&h, "iter,time_s\n").unwrap();
        assert!(times_to_thresholds(&h, Metric::L2Abs).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A preset's case carries the whole preset (nonlinear-poisson: the
    /// boundary system weight of natgrad's, none in the paper's) and a
    /// folder of its own; an optimiser's case keeps the old label.
    #[test]
    fn presets_are_cases() {
        let own = case("nonlinear-poisson", "default", 3).unwrap();
        let paper = case("nonlinear-poisson", "paper", 3).unwrap();
        assert_eq!(own.preset, Some(Preset::Default));
        assert_eq!(own.spec.system_weights.get("boundary"), Some(&100.0));
        assert!(paper.spec.system_weights.is_empty());
        assert_ne!(own.spec.optimizer, paper.spec.optimizer);
        assert_eq!(own.label(), "nonlinear-poisson-default-amstramgram-s3");
        assert_eq!(paper.label(), "nonlinear-poisson-paper-amstramgram-s3");
        assert_eq!(paper.setup(), "amstramgram (paper)");
        assert_eq!(paper.spec.budget.max_seconds, 600.0);
        assert_eq!(paper.spec.budget.max_iters, usize::MAX);
        let named = case("laplace2d", "ssbroyden", 0).unwrap();
        assert_eq!(named.preset, None);
        assert_eq!(named.label(), "laplace2d-ssbroyden-s0");
        assert_eq!(named.setup(), "ssbroyden");
        assert!(case("laplace2d", "nope", 0).is_err());
    }
}
