//! Figures of run directories: loss and error curves of several runs, the
//! spectral signature of natural-gradient steps, and solution / reference /
//! error heat maps for two-dimensional problems.

use std::path::{Path, PathBuf};

use super::history::History;
use super::plot::{Field, LogPlot, Series, heatmaps, log_plot};
use crate::error::{Error, Result};
use crate::model::SavedModel;
use crate::problems::Problem;

const CURVE_SIZE: (u32, u32) = (1000, 650);

/// What a run directory holds: its `summary.json` identity and its history.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The directory.
    pub dir: PathBuf,
    /// Problem name.
    pub problem: String,
    /// Optimiser name.
    pub optimizer: String,
    /// Seed.
    pub seed: u64,
    /// `history.csv`.
    pub history: History,
    /// The run's full configuration (`summary.json`'s `config`: a
    /// serialised [`crate::train::RunSpec`]), when present.
    pub config: Option<serde_json::Value>,
}

impl RunData {
    /// Read `dir/summary.json` and `dir/history.csv`.
    pub fn read(dir: &Path) -> Result<Self> {
        let sp = dir.join("summary.json");
        let text = std::fs::read_to_string(&sp).map_err(|e| Error::io(&sp, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: sp.display().to_string(),
            reason: e.to_string(),
        })?;
        let field = |k: &str| {
            v.get(k).ok_or_else(|| Error::Parse {
                path: sp.display().to_string(),
                reason: format!("no `{k}` field"),
            })
        };
        let text_of = |k: &str| -> Result<String> {
            field(k)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::Parse {
                    path: sp.display().to_string(),
                    reason: format!("`{k}` is not a string"),
                })
        };
        Ok(RunData {
            dir: dir.to_path_buf(),
            problem: text_of("problem")?,
            optimizer: text_of("optimizer")?,
            seed: field("seed")?.as_u64().ok_or_else(|| Error::Parse {
                path: sp.display().to_string(),
                reason: "`seed` is not an unsigned integer".into(),
            })?,
            history: History::read(&dir.join("history.csv"))?,
            config: v.get("config").cloned(),
        })
    }

    /// The problem the run trained (its network overrides and, for a
    /// problem declared in a run config, its definition), rebuilt from the
    /// configuration; the catalogue problem of its name for older summaries.
    pub fn problem(&self) -> Result<Problem> {
        match self.spec()? {
            Some(spec) => spec.problem(),
            None => crate::train::catalogue::build(&self.problem),
        }
    }

    /// The run's specification from `summary.json`'s `config` (none in older
    /// summaries).
    pub fn spec(&self) -> Result<Option<crate::train::RunSpec>> {
        self.config
            .as_ref()
            .map(|c| {
                serde_json::from_value(c.clone()).map_err(|e| Error::Parse {
                    path: self.dir.join("summary.json").display().to_string(),
                    reason: format!("run configuration: {e}"),
                })
            })
            .transpose()
    }
}

/// Check that every iteration of `iterations` has a logged spectrum in the
/// run's `spectra.csv` (nothing to check without the file or a request).
pub fn check_spectrum_iterations(run: &RunData, iterations: &[usize]) -> Result<()> {
    let path = run.dir.join("spectra.csv");
    if iterations.is_empty() || !path.exists() {
        return Ok(());
    }
    let logged = spectra_iterations(&History::read(&path)?)?;
    for it in iterations {
        if !logged.contains(it) {
            return Err(Error::config(
                "--iters",
                match (logged.first(), logged.last()) {
                    (Some(a), Some(b)) => format!(
                        "iteration {it} is not in {} (logged: {a} to {b})",
                        path.display()
                    ),
                    _ => format!("iteration {it} is not in {} (none logged)", path.display()),
                },
            ));
        }
    }
    Ok(())
}

/// Legend labels: the optimiser, with the seed when several seeds appear,
/// and the directory name when that is still ambiguous.
pub fn labels(runs: &[RunData]) -> Vec<String> {
    let seeds_differ = runs.iter().any(|r| r.seed != runs[0].seed);
    let problems_differ = runs.iter().any(|r| r.problem != runs[0].problem);
    let mut out: Vec<String> = runs
        .iter()
        .map(|r| {
            let mut l = r.optimizer.clone();
            if problems_differ {
                l = format!("{} {l}", r.problem);
            }
            if seeds_differ {
                l = format!("{l} s{}", r.seed);
            }
            l
        })
        .collect();
    let dup = |i: usize, out: &[String]| out.iter().filter(|l| **l == out[i]).count() > 1;
    let dups: Vec<bool> = (0..out.len()).map(|i| dup(i, &out)).collect();
    for (i, d) in dups.iter().enumerate() {
        if *d {
            out[i] = runs[i]
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| out[i].clone());
        }
    }
    out
}

/// `loss_vs_iter.png`, `loss_vs_time.png`, `error_vs_iter.png`,
/// `error_vs_time.png` in `out` (the error figures only where some run
/// measured errors): every run on one plot, log-scale y; the
/// time axis is logarithmic too (per-iteration costs differ by 100× between
/// methods, and most of the action is in the first seconds). The error is
/// the history column `error_column` (`l2_abs` or `l2_rel`).
pub fn curve_figures(
    runs: &[RunData],
    out: &Path,
    title: &str,
    error_column: &str,
) -> Result<Vec<PathBuf>> {
    let names = labels(runs);
    let mut written = Vec::new();
    for (y, y_label, stem) in [
        ("loss", "training loss (held-out: dashed)", "loss"),
        (error_column, error_column, "error"),
    ] {
        for (x, x_label, suffix, log_x) in [
            ("iter", "iteration", "iter", false),
            ("time_s", "training time (s, log scale)", "time", true),
        ] {
            let series = runs
                .iter()
                .zip(&names)
                .map(|(r, label)| {
                    // The held-out loss (runs since it exists), dashed beside the loss.
                    let companion = (y == "loss")
                        .then(|| r.history.pairs(x, "heldout_loss").ok())
                        .flatten()
                        .filter(|p| !p.is_empty())
                        .map(|p| (format!("{label} held-out"), p));
                    Ok(Series {
                        label: label.clone(),
                        points: r.history.pairs(x, y)?,
                        companion,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if y != "loss" && series.iter().all(|s| s.points.is_empty()) {
                // No reference solution: no errors to draw.
                continue;
            }
            let path = out.join(format!("{stem}_vs_{suffix}.png"));
            let plot = LogPlot {
                title: format!("{title}: {y_label} vs {x_label}"),
                x_label: x_label.into(),
                y_label: y_label.into(),
                series,
                hlines: vec![],
                vlines: vec![],
                log_x,
            };
            log_plot(&path, &plot, CURVE_SIZE)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The iterations logged in a `spectra.csv`.
fn spectra_iterations(spectra: &History) -> Result<Vec<usize>> {
    let i = spectra.column("iter")?;
    let mut its: Vec<usize> = spectra
        .rows
        .iter()
        .filter_map(|r| r[i].map(|v| v as usize))
        .collect();
    its.dedup();
    Ok(its)
}

/// One `spectrum-iter<k>.png` per requested iteration of a run with a
/// `spectra.csv` (natural-gradient methods): σ_n and the RCE curve against
/// n, the precision level, and the kept ranks and rank1/rank2 as vertical
/// lines. `iterations` empty: the first, middle and last logged iteration.
/// Returns the files written (none when the run has no `spectra.csv`).
pub fn spectrum_figures(run: &RunData, out: &Path, iterations: &[usize]) -> Result<Vec<PathBuf>> {
    let path = run.dir.join("spectra.csv");
    if !path.exists() {
        return Ok(vec![]);
    }
    let sp = History::read(&path)?;
    let logged = spectra_iterations(&sp)?;
    if logged.is_empty() {
        return Ok(vec![]);
    }
    let chosen: Vec<usize> = if iterations.is_empty() {
        let mut c = vec![
            logged[0],
            logged[logged.len() / 2],
            logged[logged.len() - 1],
        ];
        c.dedup();
        c
    } else {
        for it in iterations {
            if !logged.contains(it) {
                return Err(Error::config(
                    "--iters",
                    format!(
                        "iteration {it} is not in {} (logged: {} to {})",
                        path.display(),
                        logged[0],
                        logged[logged.len() - 1]
                    ),
                ));
            }
        }
        iterations.to_vec()
    };
    let col = |name: &str| sp.index(name);
    let (ci, cn, cs, cr) = (
        sp.column("iter")?,
        sp.column("n")?,
        sp.column("sigma")?,
        sp.column("rce")?,
    );
    let mut written = Vec::new();
    for it in chosen {
        let rows: Vec<&Vec<Option<f64>>> = sp
            .rows
            .iter()
            .filter(|r| r[ci] == Some(it as f64))
            .collect();
        let sigma: Vec<(f64, f64)> = rows.iter().filter_map(|r| Some((r[cn]?, r[cs]?))).collect();
        let rce: Vec<(f64, f64)> = rows.iter().filter_map(|r| Some((r[cn]?, r[cr]?))).collect();
        let first = rows[0];
        let scalar = |name: &str| col(name).and_then(|c| first[c]);
        let mut hlines = vec![];
        if let Some(p) = scalar("precision") {
            hlines.push((p, format!("precision {p:.1e}")));
        }
        let mut vlines = vec![];
        for (name, label) in [
            ("kept", "kept (narrow step)"),
            ("kept_wide", "kept (wide step)"),
            ("rank1", "rank1: RCE meets σ"),
            ("rank2", "rank2: RCE meets precision"),
        ] {
            if let Some(k) = scalar(name) {
                vlines.push((k, format!("{label} = {k}")));
            }
        }
        let sqrt_loss = scalar("sqrt_loss").unwrap_or(f64::NAN);
        let plot = LogPlot {
            title: format!(
                "{} {} s{}: spectrum at iteration {it} (√loss {sqrt_loss:.2e})",
                run.problem, run.optimizer, run.seed
            ),
            x_label: "n".into(),
            y_label: "singular value σ_n, RCE_n".into(),
            series: vec![
                Series {
                    label: "σ_n".into(),
                    points: sigma,
                    companion: None,
                },
                Series {
                    label: "RCE_n".into(),
                    points: rce,
                    companion: None,
                },
            ],
            hlines,
            vlines,
            log_x: false,
        };
        let file = out.join(format!("spectrum-iter{it}.png"));
        log_plot(&file, &plot, CURVE_SIZE)?;
        written.push(file);
    }
    Ok(written)
}

/// The axes of a two-dimensional tensor grid whose last coordinate varies
/// fastest, or `None` if `points` is not such a grid.
pub fn grid_axes(points: &[f64], dim: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    if dim != 2 || points.len() < 4 {
        return None;
    }
    let n = points.len() / 2;
    let ny = points
        .chunks_exact(2)
        .take_while(|p| p[0] == points[0])
        .count();
    if ny == 0 || !n.is_multiple_of(ny) {
        return None;
    }
    let nx = n / ny;
    let xs: Vec<f64> = (0..nx).map(|i| points[2 * i * ny]).collect();
    let ys: Vec<f64> = (0..ny).map(|j| points[2 * j + 1]).collect();
    let increasing = |v: &[f64]| v.windows(2).all(|w| w[1] > w[0]);
    if !(increasing(&xs) && increasing(&ys)) {
        return None;
    }
    let matches = points
        .chunks_exact(2)
        .enumerate()
        .all(|(k, p)| p[0] == xs[k / ny] && p[1] == ys[k % ny]);
    matches.then_some((xs, ys))
}

/// Which saved iterate of a run a figure shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Iterate {
    /// The final iterate, `model.json`; figures named `solution.png`.
    #[default]
    Final,
    /// The evaluated iterate with the lowest held-out loss, `best_model.json`;
    /// figures named `solution-best.png`.
    Best,
    /// The snapshot at an iteration, `model-<iter>.json` (a run with
    /// `save_models_at`); figures named `solution-iter<iter>.png`.
    Snapshot(usize),
}

impl Iterate {
    /// `final`, `best` or `iter:N`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "final" => Ok(Iterate::Final),
            "best" => Ok(Iterate::Best),
            _ => text
                .strip_prefix("iter:")
                .and_then(|n| n.parse().ok())
                .map(Iterate::Snapshot)
                .ok_or_else(|| {
                    Error::config(
                        "--model",
                        format!("`{text}` is not `final`, `best` or `iter:N`"),
                    )
                }),
        }
    }

    /// The model file of this iterate in a run directory.
    pub fn file(self) -> String {
        match self {
            Iterate::Final => "model.json".into(),
            Iterate::Best => "best_model.json".into(),
            Iterate::Snapshot(k) => crate::train::ModelSnapshots::file(k),
        }
    }

    /// θ of this iterate, read from the run directory.
    pub(crate) fn theta(self, run: &RunData) -> Result<Vec<f64>> {
        let path = run.dir.join(self.file());
        if self == Iterate::Best && !path.exists() {
            return Err(Error::config(
                "--model best",
                format!(
                    "{} has no best_model.json (a run written before held-out losses existed, or \
                     stopped before its first evaluation); plot the final model instead",
                    run.dir.display()
                ),
            ));
        }
        if let Iterate::Snapshot(k) = self
            && !path.exists()
        {
            return Err(Error::config(
                "--model",
                format!(
                    "{} has no model-{k}.json (snapshots are saved with `natgrad solve --save-models-at`)",
                    run.dir.display()
                ),
            ));
        }
        Ok(SavedModel::load(path)?.1)
    }

    /// Title suffix naming the iterate.
    pub(crate) fn label(self) -> String {
        match self {
            Iterate::Final => String::new(),
            Iterate::Best => " (best iterate by held-out loss)".into(),
            Iterate::Snapshot(k) => format!(" (iteration {k})"),
        }
    }

    /// Output name of the solution figure.
    fn figure(self) -> String {
        match self {
            Iterate::Final => "solution.png".into(),
            Iterate::Best => "solution-best.png".into(),
            Iterate::Snapshot(k) => format!("solution-iter{k}.png"),
        }
    }
}

/// `solution.png` (or `solution-best.png`, see [`Iterate`]) for a two-dimensional problem: the trained solution, the
/// reference and `log10 |error|` on the problem's evaluation grid when that
/// is a tensor grid; otherwise (scattered evaluation points, e.g. a disk
/// declared in a run config) the trained solution alone on a 160 × 160 grid
/// of the domain's bounding box, blank outside the domain, with the errors
/// at the evaluation points in the title. `None` for other dimensions.
pub fn solution_figure(
    run: &RunData,
    problem: &Problem,
    which: Iterate,
    out: &Path,
) -> Result<Option<PathBuf>> {
    let d = problem.widths[0];
    if d != 2 {
        return Ok(None);
    }
    let Some((xs, ys)) = grid_axes(&problem.reference.points, d) else {
        return solution_alone(run, problem, which, out).map(Some);
    };
    let theta = which.theta(run)?;
    let u = problem.solution(&theta, &problem.reference.points)?;
    let m = problem.reference.metrics_of(&u);
    let err: Vec<f64> = u
        .iter()
        .zip(&problem.reference.values)
        .map(|(a, b)| a - b)
        .collect();
    let (xn, yn) = (problem.coordinates[0], problem.coordinates[1]);
    let field = |title: &str, values: Vec<f64>, log_abs: bool| Field {
        marker: None,
        title: title.into(),
        x_name: xn.into(),
        y_name: yn.into(),
        xs: xs.clone(),
        ys: ys.clone(),
        values,
        log_abs,
    };
    let fields = [
        field("u_θ (trained)", u, false),
        field("u* (reference)", problem.reference.values.clone(), false),
        field("log10 |u_θ − u*|", err, true),
    ];
    let path = out.join(which.figure());
    heatmaps(
        &path,
        &format!(
            "{} {} s{}{}: l2_abs {:.2e}, l2_rel {:.2e}, linf {:.2e}",
            run.problem,
            run.optimizer,
            run.seed,
            which.label(),
            m.l2_abs,
            m.l2_rel,
            m.linf
        ),
        &fields,
        (520, 460),
    )?;
    Ok(Some(path))
}

/// [`solution_figure`] without a gridded reference: u_θ on a grid of the
/// domain's bounding box (NaN, drawn blank, outside the domain).
fn solution_alone(run: &RunData, problem: &Problem, which: Iterate, out: &Path) -> Result<PathBuf> {
    const N: usize = 160;
    let bb = problem.domain.bounds();
    let axis = |k: usize| -> Vec<f64> {
        let s = bb.side(k);
        (0..N)
            .map(|i| s.lo + (s.hi - s.lo) * (i as f64 + 0.5) / N as f64)
            .collect()
    };
    let (xs, ys) = (axis(0), axis(1));
    let points = crate::geometry::tensor_grid(&[xs.clone(), ys.clone()]);
    let theta = which.theta(run)?;
    let mut u = problem.solution(&theta, &points)?;
    for (v, x) in u.iter_mut().zip(points.chunks_exact(2)) {
        if !problem.domain.contains(x) {
            *v = f64::NAN;
        }
    }
    let errors = if problem.reference.is_empty() {
        "no reference".to_string()
    } else {
        let at_ref = problem.solution(&theta, &problem.reference.points)?;
        let m = problem.reference.metrics_of(&at_ref);
        format!("l2_rel {:.2e}, no gridded reference", m.l2_rel)
    };
    let fields = [Field {
        marker: None,
        title: "u_θ (trained)".into(),
        x_name: problem.coordinates[0].into(),
        y_name: problem.coordinates[1].into(),
        xs,
        ys,
        values: u,
        log_abs: false,
    }];
    let path = out.join(which.figure());
    heatmaps(
        &path,
        &format!(
            "{} {} s{}{}: u_θ only ({errors})",
            run.problem,
            run.optimizer,
            run.seed,
            which.label(),
        ),
        &fields,
        (760, 560),
    )?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::tensor_grid;

    #[test]
    fn grid_axes_recognises_tensor_grids_only() {
        let xs = vec![0.0, 0.5, 1.0];
        let ys = vec![-1.0, 0.0, 2.0, 3.0];
        let pts = tensor_grid(&[xs.clone(), ys.clone()]);
        assert_eq!(grid_axes(&pts, 2), Some((xs, ys)));
        let mut bad = pts.clone();
        bad[5] = 7.0;
        assert_eq!(grid_axes(&bad, 2), None);
        assert_eq!(grid_axes(&pts, 3), None);
    }
}
