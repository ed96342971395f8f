//! Line searches: the natural-gradient grid search and a strong-Wolfe search.

use serde::{Deserialize, Serialize};

use super::Objective;
use crate::error::{Error, Result};

/// Candidate step sizes of the grid line search, and how many of them are evaluated.
///
/// `stride = 1` (the default when the field is omitted) evaluates every
/// candidate, as the reference codes do. `stride = m > 1` searches coarse to
/// fine: first every m-th candidate (and the last), then the `m − 1`
/// candidates on either side of the best of those, with at most
/// `⌈count/m⌉ + 1 + 2(m − 1)` evaluations instead of `count`. It finds the
/// exhaustive search's minimum whenever the losses along the grid strictly
/// decrease and then strictly increase (the minimum then lies between the
/// two coarse candidates around it, one of which is the best coarse one);
/// a dip narrower than the stride elsewhere can be missed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StepGrid {
    /// `η ∈ {0.5^k : k = 0..count−1}`; the reference ANaGRAM/E-NGD rule uses `count = 31`.
    Halving {
        /// Number of candidates.
        count: usize,
        /// Coarse-to-fine stride (1: every candidate).
        #[serde(default = "exhaustive")]
        stride: usize,
    },
    /// `η = 0.5^(e·s²)`, `s ∈ linspace(0, 1, count)`: the author's later grid (`e = 60`, `count = 101`).
    Quadratic {
        /// Number of candidates.
        count: usize,
        /// Exponent `e`: the smallest step is `2^−e`.
        exponent: f64,
        /// Coarse-to-fine stride (1: every candidate).
        #[serde(default = "exhaustive")]
        stride: usize,
    },
}

fn exhaustive() -> usize {
    1
}

impl Default for StepGrid {
    fn default() -> Self {
        StepGrid::Halving {
            count: 31,
            stride: 1,
        }
    }
}

impl StepGrid {
    /// The candidate step sizes, largest first.
    pub fn steps(&self) -> Vec<f64> {
        match *self {
            StepGrid::Halving { count, .. } => (0..count).map(|k| 0.5f64.powi(k as i32)).collect(),
            StepGrid::Quadratic {
                count, exponent, ..
            } => (0..count)
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
            StepGrid::Halving { count, .. } | StepGrid::Quadratic { count, .. } => count,
        }
    }

    /// The coarse-to-fine stride (1: every candidate is evaluated).
    pub fn stride(&self) -> usize {
        match *self {
            StepGrid::Halving { stride, .. } | StepGrid::Quadratic { stride, .. } => stride,
        }
    }

    /// Check the grid's parameters.
    pub fn validate(&self, field: &str) -> Result<()> {
        match *self {
            StepGrid::Halving { count, .. } | StepGrid::Quadratic { count, .. } if count == 0 => {
                Err(Error::config(
                    format!("{field}.count"),
                    "must be at least 1",
                ))
            }
            StepGrid::Halving { stride, .. } | StepGrid::Quadratic { stride, .. }
                if stride == 0 =>
            {
                Err(Error::config(
                    format!("{field}.stride"),
                    "must be at least 1 (1 evaluates every candidate)",
                ))
            }
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

/// The candidate a grid line search picked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridPick {
    /// The step size η.
    pub eta: f64,
    /// The loss at `θ − η d`.
    pub loss: f64,
    /// Loss evaluations spent.
    pub evaluations: usize,
}

/// Grid line search along `−d`: evaluates `L(θ − η d)` for the grid's
/// candidates (all of them, or coarse to fine: see [`StepGrid`]) and returns
/// the best, as the reference codes do (the best candidate is taken even if
/// it does not decrease the loss; the smallest steps make that harmless).
/// Ties go to the larger step. Non-finite candidates are skipped; when every
/// coarse candidate is non-finite the rest are evaluated too, and if all
/// are non-finite the search fails with [`Error::NonFinite`].
pub fn grid_search(
    obj: &dyn Objective,
    theta: &[f64],
    d: &[f64],
    grid: &StepGrid,
) -> Result<GridPick> {
    let steps = grid.steps();
    let n = steps.len();
    let m = grid.stride().max(1);
    // Losses of the evaluated candidates, by index.
    let mut seen: Vec<Option<f64>> = vec![None; n];
    let evaluate = |idx: Vec<usize>, seen: &mut Vec<Option<f64>>| -> Result<()> {
        let etas: Vec<f64> = idx.iter().map(|&i| steps[i]).collect();
        for (i, l) in idx.into_iter().zip(losses_along(obj, theta, d, &etas)?) {
            seen[i] = Some(l);
        }
        Ok(())
    };
    let best_of = |seen: &[Option<f64>]| -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, l) in seen.iter().enumerate() {
            if let Some(l) = *l
                && l.is_finite()
                && best.is_none_or(|(_, bl)| l < bl)
            {
                best = Some((i, l));
            }
        }
        best.map(|(i, _)| i)
    };
    if m == 1 || n <= 2 * m {
        evaluate((0..n).collect(), &mut seen)?;
    } else {
        let mut coarse: Vec<usize> = (0..n).step_by(m).collect();
        if coarse.last() != Some(&(n - 1)) {
            coarse.push(n - 1);
        }
        evaluate(coarse, &mut seen)?;
        let fine: Vec<usize> = match best_of(&seen) {
            Some(i) => (i.saturating_sub(m - 1)..(i + m).min(n)).collect(),
            None => (0..n).collect(),
        };
        let fine = fine.into_iter().filter(|&i| seen[i].is_none()).collect();
        evaluate(fine, &mut seen)?;
    }
    let evaluations = seen.iter().filter(|l| l.is_some()).count();
    match best_of(&seen) {
        Some(i) => Ok(GridPick {
            eta: steps[i],
            loss: seen[i].expect("evaluated"),
            evaluations,
        }),
        None => Err(Error::NonFinite {
            quantity: "loss at every line-search candidate",
            block: "-".into(),
            iteration: None,
        }),
    }
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
    /// Loss evaluations spent.
    pub evaluations: usize,
}

/// [`grid_search`] along `−d`, then `θ ← θ − η d` with the best η.
pub fn grid_step(
    obj: &dyn Objective,
    theta: &mut [f64],
    d: &[f64],
    grid: &StepGrid,
) -> Result<GridStep> {
    let t = std::time::Instant::now();
    let GridPick {
        eta,
        loss,
        evaluations,
    } = grid_search(obj, theta, d, grid)?;
    let seconds = t.elapsed().as_secs_f64();
    theta.iter_mut().zip(d).for_each(|(x, dd)| *x -= eta * dd);
    Ok(GridStep {
        eta,
        loss,
        seconds,
        evaluations,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::residual::{System, Weighting};

    /// `L(θ) = f(θ₀)` for a one-parameter θ: the search along `d = −1` sees `f(η)`.
    struct Along(fn(f64) -> f64);

    impl Objective for Along {
        fn n_params(&self) -> usize {
            1
        }
        fn loss(&self, theta: &[f64]) -> Result<f64> {
            Ok((self.0)(theta[0]))
        }
        fn loss_gradient(&self, _: &[f64]) -> Result<(f64, Vec<f64>)> {
            unreachable!("the grid search uses losses only")
        }
        fn system_into(&self, _: &[f64], _: Weighting, _: &mut System) -> Result<()> {
            unreachable!("the grid search uses losses only")
        }
    }

    fn quadratic(stride: usize) -> StepGrid {
        StepGrid::Quadratic {
            count: 101,
            exponent: 60.0,
            stride,
        }
    }

    /// On a loss with one minimum along the grid, every stride picks the
    /// exhaustive search's candidate, with the stated number of evaluations.
    #[test]
    fn coarse_to_fine_matches_exhaustive_on_one_minimum() {
        let grid = quadratic(1);
        let steps = grid.steps();
        // Minima at several places along the grid, including both ends.
        for target in [0usize, 1, 9, 10, 11, 37, 55, 99, 100] {
            let eta_star = steps[target];
            // Along d = −1/η*: L = ln(η/η*)², smallest at η*.
            let obj = Along(|x: f64| x.ln().powi(2));
            let theta = [0.0];
            let d = [-1.0 / eta_star];
            let full = grid_search(&obj, &theta, &d, &grid).unwrap();
            assert_eq!(full.evaluations, 101);
            assert_eq!(full.eta, eta_star, "exhaustive, target {target}");
            for m in [2, 3, 10, 20] {
                let pick = grid_search(&obj, &theta, &d, &quadratic(m)).unwrap();
                assert_eq!(pick.eta, full.eta, "stride {m}, target {target}");
                assert_eq!(pick.loss, full.loss);
                let coarse = 100 / m + 1 + usize::from(100 % m != 0);
                assert!(pick.evaluations <= coarse + 2 * (m - 1), "{pick:?}");
            }
        }
        // Stride 10 on 101 candidates: 11 coarse + at most 18 fine.
        let obj = Along(|x: f64| x.ln().powi(2));
        let pick = grid_search(&obj, &[0.0], &[-1.0 / steps[55]], &quadratic(10)).unwrap();
        assert_eq!(pick.evaluations, 11 + 18);
    }

    /// A dip narrower than the stride between two coarse candidates is
    /// missed: the coarse-to-fine search is a model of the loss, not a
    /// guarantee (the exhaustive search is the default).
    #[test]
    fn coarse_to_fine_can_miss_a_narrow_dip() {
        let grid = StepGrid::Halving {
            count: 31,
            stride: 5,
        };
        // Wide minimum at η = 2^-20, narrow deeper dip at η = 2^-7.
        let obj = Along(|x: f64| {
            let k = -x.log2();
            if (k - 7.0).abs() < 0.5 {
                -1.0
            } else {
                (k - 20.0).powi(2)
            }
        });
        let full = grid_search(&obj, &[0.0], &[-1.0], &StepGrid::default()).unwrap();
        assert_eq!(full.eta, 0.5f64.powi(7));
        let pick = grid_search(&obj, &[0.0], &[-1.0], &grid).unwrap();
        assert_eq!(pick.eta, 0.5f64.powi(20));
        assert!(pick.evaluations < 31);
    }

    /// Non-finite coarse candidates do not end the search: the others are
    /// tried, and only an all-non-finite grid is an error.
    #[test]
    fn non_finite_candidates_are_skipped() {
        // Finite only for 2^-30 < η < 2^-25: none of the coarse candidates
        // (0, 5, …, 30) is finite.
        let obj = Along(|x: f64| {
            if x < 0.5f64.powi(25) && x > 0.5f64.powi(30) {
                -x
            } else {
                f64::NAN
            }
        });
        let grid = StepGrid::Halving {
            count: 31,
            stride: 5,
        };
        let pick = grid_search(&obj, &[0.0], &[-1.0], &grid).unwrap();
        assert_eq!(pick.eta, 0.5f64.powi(26));
        let obj = Along(|_| f64::INFINITY);
        let e = grid_search(&obj, &[0.0], &[-1.0], &grid).unwrap_err();
        assert!(matches!(e, Error::NonFinite { .. }), "{e}");
        let e = grid_search(&Along(|_| f64::NAN), &[0.0], &[-1.0], &StepGrid::default());
        assert!(e.is_err());
    }

    /// Zero candidates or a zero stride are refused, naming the field.
    #[test]
    fn grid_validation_names_fields() {
        let e = StepGrid::Halving {
            count: 31,
            stride: 0,
        }
        .validate("optimizer.line_search")
        .unwrap_err();
        assert!(
            e.to_string().contains("optimizer.line_search.stride"),
            "{e}"
        );
        let e = quadratic(1)
            .validate("x")
            .and(
                StepGrid::Quadratic {
                    count: 0,
                    exponent: 60.0,
                    stride: 1,
                }
                .validate("optimizer.line_search"),
            )
            .unwrap_err();
        assert!(e.to_string().contains("optimizer.line_search.count"), "{e}");
        // Configs written before the stride existed still load, exhaustive.
        let g: StepGrid = serde_json::from_str(r#"{"kind":"halving","count":31}"#).unwrap();
        assert_eq!(g, StepGrid::default());
    }
}
