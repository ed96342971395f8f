//! `natgrad kernel`: maps of a run's NTK, operator NTK and natural-gradient
//! Green's function ([`crate::kernel`]) around a point `x`, as PNG and CSV.
//!
//! The map is `y ↦ k(x, y)` on an `n × n` grid of the domain's bounding box
//! in two coordinate axes; for problems of more than two dimensions the
//! other coordinates of `y` are those of `x` (a slice through `x`). Grid
//! points outside the domain are left blank (NaN in the CSV).

use std::fmt::Write;
use std::path::Path;

use super::figures::{Iterate, RunData};
use super::plot::{Field, heatmaps};
use crate::error::{Error, Result};
use crate::kernel::{Green, ntk, operator_ntk};
use crate::optim::{Cutoff, OptimizerConfig};
use crate::residual::Weighting;

/// Which kernel a map shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// `K(x, y) = ∇u(x)·∇u(y)`.
    Ntk,
    /// `K_D(x, y) = ∇D(x)·∇D(y)` for the interior operator.
    OperatorNtk,
    /// `g(x, y) = ∇u(x)ᵀ G† ∇D(y)`.
    Green,
}

impl KernelKind {
    /// `ntk`, `operator-ntk` or `green`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "ntk" => Ok(KernelKind::Ntk),
            "operator-ntk" => Ok(KernelKind::OperatorNtk),
            "green" => Ok(KernelKind::Green),
            _ => Err(Error::UnknownName {
                kind: "kernel",
                name: name.into(),
                known: "ntk, operator-ntk, green".into(),
            }),
        }
    }

    /// The name [`KernelKind::parse`] takes.
    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Ntk => "ntk",
            KernelKind::OperatorNtk => "operator-ntk",
            KernelKind::Green => "green",
        }
    }
}

/// What to map: the kernel, the point `x`, the two axes of the map, the
/// grid size, and (for the Green's function) the cutoff.
#[derive(Clone, Debug)]
pub struct KernelRequest {
    /// The kernel.
    pub kind: KernelKind,
    /// The point `x` (the network's input dimension, inside the domain).
    pub at: Vec<f64>,
    /// The coordinate axes of the map (default 0 and 1).
    pub axes: (usize, usize),
    /// Grid points per axis (default 80).
    pub n: usize,
    /// The cutoff of `G†` (default: the run's ANaGRAM cutoff, else
    /// ANaGRAM's default `√(εP)·σ₁`).
    pub cutoff: Option<Cutoff>,
}

/// A computed map.
#[derive(Clone, Debug)]
pub struct KernelMap {
    /// The request it answers.
    pub request: KernelRequest,
    /// Grid values along the first axis.
    pub xs: Vec<f64>,
    /// Grid values along the second axis.
    pub ys: Vec<f64>,
    /// `k(x, y)` with the first index along `xs` (NaN outside the domain).
    pub values: Vec<f64>,
    /// For the Green's function: the absolute cutoff τ, the components kept
    /// and their total, and the row weighting.
    pub green: Option<(f64, usize, usize, Weighting)>,
    /// Names of the input coordinates.
    pub coordinates: Vec<String>,
}

/// Compute the map of `request` for the iterate `which` of `run`.
pub fn kernel_map(run: &RunData, which: Iterate, request: KernelRequest) -> Result<KernelMap> {
    let problem = run.problem()?;
    let d = problem.widths[0];
    let at = &request.at;
    if at.len() != d {
        return Err(Error::config(
            "--at",
            format!(
                "needs {d} coordinates ({}), got {}",
                problem.coordinates.join(", "),
                at.len()
            ),
        ));
    }
    if !problem.domain.contains(at) {
        return Err(Error::config(
            "--at",
            format!("{at:?} is outside the domain of {}", problem.name),
        ));
    }
    let (a, b) = request.axes;
    if a == b || a >= d || b >= d {
        return Err(Error::config(
            "--axes",
            format!("needs two different axes below {d}, got {a},{b}"),
        ));
    }
    if request.n < 2 {
        return Err(Error::config("--grid", "needs at least 2 points per axis"));
    }
    let ls = problem.least_squares()?;
    let theta = which.theta(run)?;
    if theta.len() != ls.n_params() {
        return Err(Error::DimensionMismatch {
            context: "saved model vs the run's problem".into(),
            expected: ls.n_params(),
            got: theta.len(),
        });
    }
    let bb = problem.domain.bounds();
    let axis = |k: usize| -> Vec<f64> {
        let s = bb.side(k);
        (0..request.n)
            .map(|i| s.lo + (s.hi - s.lo) * i as f64 / (request.n - 1) as f64)
            .collect()
    };
    let (xs, ys) = (axis(a), axis(b));
    let mut points = Vec::with_capacity(xs.len() * ys.len() * d);
    for &u in &xs {
        for &v in &ys {
            let mut p = at.clone();
            p[a] = u;
            p[b] = v;
            points.extend(p);
        }
    }
    let interior = || ls.block_index("interior");
    let mut green = None;
    let mut values = match request.kind {
        KernelKind::Ntk => ntk(&ls, &theta, at, &points)?,
        KernelKind::OperatorNtk => operator_ntk(&ls, &theta, interior()?, at, &points)?,
        KernelKind::Green => {
            let (weighting, own) = run_weighting_and_cutoff(run)?;
            let cutoff = request.cutoff.or(own).unwrap_or_default();
            let p = ls.n_params();
            let g = Green::new(&ls, &theta, weighting, |s1| cutoff.threshold(p, s1))?;
            green = Some((g.cutoff, g.kept, g.singular_values.len(), weighting));
            g.eval(&ls, &theta, at, interior()?, &points)?
        }
    };
    for (v, y) in values.iter_mut().zip(points.chunks_exact(d)) {
        if !problem.domain.contains(y) {
            *v = f64::NAN;
        }
    }
    Ok(KernelMap {
        request,
        xs,
        ys,
        values,
        green,
        coordinates: problem.coordinates.iter().map(|c| c.to_string()).collect(),
    })
}

/// The row weighting of the run's natural-gradient system and its ANaGRAM
/// cutoff, if it has one (uniform weighting and none for other optimisers).
fn run_weighting_and_cutoff(run: &RunData) -> Result<(Weighting, Option<Cutoff>)> {
    let Some(spec) = run.spec()? else {
        return Ok((Weighting::Uniform, None));
    };
    Ok(match spec.optimizer {
        OptimizerConfig::Anagram(c) => (c.weighting, Some(c.cutoff)),
        OptimizerConfig::Amstramgram(c) => (c.weighting, None),
        OptimizerConfig::Engd(c) => (c.weighting, None),
        OptimizerConfig::Nystrom(c) => (c.weighting, None),
        _ => (Weighting::Uniform, None),
    })
}

impl KernelMap {
    /// The figure's title: kernel, point and run.
    pub fn title(&self, run: &RunData, which: Iterate) -> String {
        let at: Vec<String> = self.request.at.iter().map(|v| format!("{v}")).collect();
        let what = match self.request.kind {
            KernelKind::Ntk => "NTK K(x, y)",
            KernelKind::OperatorNtk => "operator NTK K_D(x, y)",
            KernelKind::Green => "Green's function g(x, y)",
        };
        format!(
            "{what}, x = ({}): {} {} s{}{}",
            at.join(", "),
            run.problem,
            run.optimizer,
            run.seed,
            which.label()
        )
    }

    /// The panel's caption: the map's axes and, for the Green's function,
    /// the cutoff and how many components it keeps.
    fn caption(&self) -> String {
        match self.green {
            Some((tau, kept, total, w)) => format!(
                "cutoff τ = {tau:.2e}: {kept} of {total} kept; {} rows",
                match w {
                    Weighting::Uniform => "uniform",
                    Weighting::BlockMean => "block-mean",
                }
            ),
            None => "y ↦ k(x, y); x marked".to_string(),
        }
    }

    /// Draw the map with `x` marked. The colours span the 1–99 % quantiles
    /// of the values (a few grid points next to the boundary, where the
    /// interior operator is extrapolated, would otherwise set the whole
    /// scale); values beyond are drawn in the end colours, and the CSV keeps
    /// them as they are.
    pub fn draw(&self, path: &Path, title: &str) -> Result<()> {
        let (a, b) = self.request.axes;
        let mut finite: Vec<f64> = self
            .values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        finite.sort_by(f64::total_cmp);
        let q = |f: f64| {
            finite
                .get(((finite.len() as f64 - 1.0) * f).round() as usize)
                .copied()
        };
        let (lo, hi) = (q(0.01).unwrap_or(0.0), q(0.99).unwrap_or(0.0));
        let clipped = self
            .values
            .iter()
            .any(|v| v.is_finite() && (*v < lo || *v > hi));
        let values = self
            .values
            .iter()
            .map(|v| {
                if v.is_finite() && hi > lo {
                    v.clamp(lo, hi)
                } else {
                    *v
                }
            })
            .collect();
        let field = Field {
            title: if clipped {
                format!("{}; colours clipped to 1–99 %", self.caption())
            } else {
                self.caption()
            },
            x_name: self.coordinates.get(a).cloned().unwrap_or(format!("x{a}")),
            y_name: self.coordinates.get(b).cloned().unwrap_or(format!("x{b}")),
            xs: self.xs.clone(),
            ys: self.ys.clone(),
            values,
            log_abs: false,
            marker: Some((self.request.at[a], self.request.at[b])),
        };
        heatmaps(path, title, &[field], (900, 720))
    }

    /// CSV: the two map coordinates and the value, one grid point per line.
    pub fn to_csv(&self) -> String {
        let (a, b) = self.request.axes;
        let name = |k: usize| self.coordinates.get(k).cloned().unwrap_or(format!("x{k}"));
        let mut s = format!("{},{},{}\n", name(a), name(b), self.request.kind.name());
        for (i, u) in self.xs.iter().enumerate() {
            for (j, v) in self.ys.iter().enumerate() {
                let _ = writeln!(s, "{u:e},{v:e},{:e}", self.values[i * self.ys.len() + j]);
            }
        }
        s
    }
}
