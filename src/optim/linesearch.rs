//! Line searches: the natural-gradient grid search and a strong-Wolfe search.

use serde::{Deserialize, Serialize};

use super::Objective;
use crate::error::{Error, Result};

/// Candidate step sizes of the grid line search.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StepGrid {
    /// `η ∈ {0.5^k : k = 0..count−1}`; the reference ANaGRAM/E-NGD rule uses `count = 31`.
    Halving {
        /// Number of candidates.
        count: usize,
    },
    /// `η = 0.5^(e·s²)`, `s ∈ linspace(0, 1, count)`: the author's later grid (`e = 60`, `count = 101`).
    Quadratic {
        /// Number of candidates.
        count: usize,
        /// Exponent `e`: the smallest step is `2^−e`.
        exponent: f64,
    },
}

impl Default for StepGrid {
    fn default() -> Self {
        StepGrid::Halving { count: 31 }
    }
}

impl StepGrid {
    /// The candidate step sizes, largest first.
    pub fn steps(&self) -> Vec<f64> {
        match *self {
            StepGrid::Halving { count } => (0..count).map(|k| 0.5f64.powi(k as i32)).collect(),
            StepGrid::Quadratic { count, exponent } => (0..count)
                .map(|i| {
                    let s = if count > 1 {
                        i as f64 / (count - 1) as f64
                    } else {
                        0.0
                    };
                    0.5f64.powf(exponent * s * s)
                })
                .collect(),
        }
    }

    /// The number of candidates.
    pub fn count(&self) -> usize {
        match *self {
            StepGrid::Halving { count } | StepGrid::Quadratic { count, .. } => count,
        }
    }

    /// Check the grid's parameters.
    pub fn validate(&self, field: &str) -> Result<()> {
        match *self {
            StepGrid::Halving { count } | StepGrid::Quadratic { count, .. } if count == 0 => Err(
                Error::config(format!("{field}.count"), "must be at least 1"),
            ),
            StepGrid::Quadratic { exponent, .. } if !(exponent.is_finite() && exponent >= 0.0) => {
                Err(Error::config(
                    format!("{field}.exponent"),
                    format!("must be finite and ≥ 0, got {exponent}"),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Grid line search along `−d`: evaluates `L(θ − η d)` for every candidate η
/// and returns the best `(η, L)`, as the reference codes do (the best
/// candidate is taken even if it does not decrease the loss; the smallest
/// steps make that harmless). Non-finite candidates are skipped; if all are
/// non-finite the search fails with [`Error::NonFinite`].
pub fn grid_search(
    obj: &dyn Objective,
    theta: &[f64],
    d: &[f64],
    grid: &StepGrid,
) -> Result<(f64, f64)> {
    let steps = grid.steps();
    let losses = losses_along(obj, theta, d, &steps)?;
    let mut best: Option<(f64, f64)> = None;
    for (&eta, &l) in steps.iter().zip(&losses) {
        if l.is_finite() && best.is_none_or(|(_, bl)| l < bl) {
            best = Some((eta, l));
        }
    }
    best.ok_or(Error::NonFinite {
        quantity: "loss at every line-search candidate",
        block: "-".into(),
        iteration: None,
    })
}

/// What [`grid_step`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridStep {
    /// The step size η taken.
    pub eta: f64,
    /// The loss at the new θ.
    pub loss: f64,
    /// Seconds spent in the search.
    pub seconds: f64,
}

/// [`grid_search`] along `−d`, then `θ ← θ − η d` with the best η.
pub fn grid_step(
    obj: &dyn Objective,
    theta: &mut [f64],
    d: &[f64],
    grid: &StepGrid,
) -> Result<GridStep> {
    let t = std::time::Instant::now();
    let (eta, loss) = grid_search(obj, theta, d, grid)?;
    let seconds = t.elapsed().as_secs_f64();
    theta.iter_mut().zip(d).for_each(|(x, dd)| *x -= eta * dd);
    Ok(GridStep { eta, loss, seconds })
}

/// Check the strong-Wolfe constants `0 < c₁ < c₂ < 1` and the evaluation budget.
pub fn validate_wolfe(c1: f64, c2: f64, max_evals: usize) -> Result<()> {
    if max_evals == 0 {
        return Err(Error::config("optimizer.max_evals", "must be at least 1"));
    }
    if !(0.0 < c1 && c1 < c2 && c2 < 1.0) {
        return Err(Error::config(
            "optimizer.c1/c2",
            format!("need 0 < c1 < c2 < 1, got c1 = {c1}, c2 = {c2}"),
        ));
    }
    Ok(())
}

/// `L(θ − η d)` for every η (`+∞` where the loss is not finite), candidates
/// spread over the worker threads ([`crate::parallel`]).
pub fn losses_along(
    obj: &dyn Objective,
    theta: &[f64],
    d: &[f64],
    steps: &[f64],
) -> Result<Vec<f64>> {
    let eval = |eta: f64, trial: &mut Vec<f64>| -> Result<f64> {
        trial.clear();
        trial.extend(theta.iter().zip(d).map(|(x, dd)| x - eta * dd));
        match obj.loss(trial) {
            Ok(l) if l.is_finite() => Ok(l),
            Ok(_) | Err(Error::NonFinite { .. }) => Ok(f64::INFINITY),
            Err(e) => Err(e),
        }
    };
    thread_local! {
        static TRIAL: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    crate::parallel::map_groups(steps.to_vec(), |eta| {
        TRIAL.with_borrow_mut(|trial| eval(eta, trial))
    })
    .into_iter()
    .collect()
}

/// Result of a Wolfe line search.
#[derive(Clone, Debug)]
pub struct WolfePoint {
    /// Step length α.
    pub alpha: f64,
    /// `θ + α p`.
    pub theta: Vec<f64>,
    /// Loss there.
    pub loss: f64,
    /// Gradient there.
    pub grad: Vec<f64>,
    /// Whether both strong-Wolfe conditions hold (false: best point found within the budget).
    pub wolfe: bool,
}

/// Strong-Wolfe line search along the descent direction `p` (Nocedal & Wright,
/// Algorithms 3.5 and 3.6, with cubic-interpolation zoom):
/// `L(θ+αp) ≤ L(θ) + c₁α∇Lᵀp` and `|∇L(θ+αp)ᵀp| ≤ c₂|∇Lᵀp|`.
/// Starts at `alpha0`, expands by 2 up to `max_evals` evaluations.
#[allow(clippy::too_many_arguments)]
pub fn strong_wolfe(
    obj: &dyn Objective,
    theta: &[f64],
    loss0: f64,
    grad0: &[f64],
    p: &[f64],
    alpha0: f64,
    c1: f64,
    c2: f64,
    max_evals: usize,
) -> Result<WolfePoint> {
    let dphi0 = crate::linalg::dot(grad0, p);
    let eval = |a: f64| -> Result<(f64, Vec<f64>, f64, Vec<f64>)> {
        let th: Vec<f64> = theta.iter().zip(p).map(|(t, d)| t + a * d).collect();
        match obj.loss_gradient(&th) {
            Ok((l, g)) if l.is_finite() => {
                let dphi = crate::linalg::dot(&g, p);
                Ok((l, g, dphi, th))
            }
            Ok(_) | Err(Error::NonFinite { .. }) => Ok((f64::INFINITY, vec![], f64::NAN, th)),
            Err(e) => Err(e),
        }
    };
    let mut evals = 0;
    let mut best: Option<WolfePoint> = None;
    let keep_best = |a: f64, l: f64, g: &Vec<f64>, th: &Vec<f64>, best: &mut Option<WolfePoint>| {
        if l.is_finite() && best.as_ref().is_none_or(|b| l < b.loss) {
            *best = Some(WolfePoint {
                alpha: a,
                theta: th.clone(),
                loss: l,
                grad: g.clone(),
                wolfe: false,
            });
        }
    };
    let (mut a_prev, mut l_prev, mut d_prev) = (0.0, loss0, dphi0);
    let mut a = alpha0;
    // Bracketing phase.
    let (mut lo, mut hi);
    loop {
        let (l, g, dphi, th) = eval(a)?;
        evals += 1;
        keep_best(a, l, &g, &th, &mut best);
        if !l.is_finite() || l > loss0 + c1 * a * dphi0 || (evals > 1 && l >= l_prev) {
            lo = (a_prev, l_prev, d_prev);
            hi = (a, l, dphi);
            break;
        }
        if dphi.abs() <= -c2 * dphi0 {
            return Ok(WolfePoint {
                alpha: a,
                theta: th,
                loss: l,
                grad: g,
                wolfe: true,
            });
        }
        if dphi >= 0.0 {
            lo = (a, l, dphi);
            hi = (a_prev, l_prev, d_prev);
            break;
        }
        if evals >= max_evals {
            return best.ok_or_else(non_finite_search);
        }
        a_prev = a;
        l_prev = l;
        d_prev = dphi;
        a *= 2.0;
    }
    // Zoom phase.
    while evals < max_evals {
        let (a_lo, l_lo, d_lo) = lo;
        let (a_hi, l_hi, d_hi) = hi;
        let mut a_j = cubic_min(a_lo, l_lo, d_lo, a_hi, l_hi, d_hi);
        let (left, right) = (a_lo.min(a_hi), a_lo.max(a_hi));
        let margin = 0.1 * (right - left);
        if !a_j.is_finite() || a_j < left + margin || a_j > right - margin {
            a_j = 0.5 * (a_lo + a_hi);
        }
        let (l, g, dphi, th) = eval(a_j)?;
        evals += 1;
        keep_best(a_j, l, &g, &th, &mut best);
        if !l.is_finite() || l > loss0 + c1 * a_j * dphi0 || l >= l_lo {
            hi = (a_j, l, dphi);
        } else {
            if dphi.abs() <= -c2 * dphi0 {
                return Ok(WolfePoint {
                    alpha: a_j,
                    theta: th,
                    loss: l,
                    grad: g,
                    wolfe: true,
                });
            }
            if dphi * (a_hi - a_lo) >= 0.0 {
                hi = lo;
            }
            lo = (a_j, l, dphi);
        }
        if (hi.0 - lo.0).abs() <= 1e-16 * lo.0.abs().max(1e-300) {
            break;
        }
    }
    best.ok_or_else(non_finite_search)
}

fn non_finite_search() -> Error {
    Error::NonFinite {
        quantity: "loss at every Wolfe line-search trial",
        block: "-".into(),
        iteration: None,
    }
}

/// Minimiser of the cubic interpolating values and slopes at `a` and `b`.
fn cubic_min(a: f64, fa: f64, da: f64, b: f64, fb: f64, db: f64) -> f64 {
    if !(fa.is_finite() && fb.is_finite() && da.is_finite() && db.is_finite()) {
        return f64::NAN;
    }
    let d1 = da + db - 3.0 * (fa - fb) / (a - b);
    let disc = d1 * d1 - da * db;
    if disc < 0.0 {
        return f64::NAN;
    }
    let d2 = (b - a).signum() * disc.sqrt();
    b - (b - a) * (db + d2 - d1) / (db - da + 2.0 * d2)
}
