//! `natgrad bench --profile`: where an iteration's time goes.
//!
//! For each case the optimiser takes `warmup` steps from the problem's
//! initialisation, then `iters` measured steps. Each step reports its phases
//! ([`crate::optim::Phases`]): assembling `(r̃, φ̃)`, decomposing it, and the
//! line search's loss evaluations; "rest" is the step's time minus these.
//! Per-phase seconds are medians over the measured steps; flops are means,
//! and the rate is mean flops over mean step time.
//!
//! Flop counts are models, stated so they can be checked:
//! * a forward pass over all points: [`LeastSquares::forward_flops`] (the
//!   layers' products, `Σ_b S_b C_b Σ_l 2 n_{l−1} n_l`);
//! * assembly: 3× a forward pass (forward jets, then the reverse pass:
//!   input adjoints and weight gradients, one product each);
//! * line search: one forward pass per candidate;
//! * decomposition: what the routine reports
//!   ([`crate::linalg::SystemSvd::flops`]).
//!
//! The matrix-product rate is measured here (square `n = 1024` products,
//! median of 5, the run's thread setting), and the step's rate (its flops
//! over its median time) is given as a fraction of it. Peak memory is the
//! process's peak resident set (`VmHWM`), reset before each case where the
//! kernel allows (`/proc/self/clear_refs`).

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::linalg::{Compute, Par, View, matmul_in_place};
use crate::optim::OptimizerConfig;
use crate::problems;
use crate::residual::LeastSquares;

/// One profiled case.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileRow {
    /// Problem.
    pub problem: String,
    /// Optimiser name.
    pub optimizer: String,
    /// Decomposition used (`full` or `partial`).
    pub svd: String,
    /// The `--device` setting of the case (`cpu`, `cuda`, `auto`).
    pub device: String,
    /// Where the measured steps' decompositions ran: `cpu`, `cuda`, or
    /// `mixed` when some ran on each.
    pub ran_on: String,
    /// Residual rows S.
    pub samples: usize,
    /// Parameters P.
    pub params: usize,
    /// Median number of singular triplets a decomposition returned (the
    /// partial SVD's subspace is larger by its reliability margin).
    pub rank: usize,
    /// Measured steps.
    pub iters: usize,
    /// Median step time, seconds.
    pub step_s: f64,
    /// Median assembly time per step.
    pub assembly_s: f64,
    /// Median decomposition time per step.
    pub decomposition_s: f64,
    /// Median line-search time per step.
    pub line_search_s: f64,
    /// Median remainder per step.
    pub rest_s: f64,
    /// Assembly flops per step (model), GFlop.
    pub assembly_gflop: f64,
    /// Decomposition flops per step (reported), GFlop.
    pub decomposition_gflop: f64,
    /// Line-search flops per step (model), GFlop.
    pub line_search_gflop: f64,
    /// The step's flop rate, GFlop/s: mean flops over mean time.
    pub gflops: f64,
    /// `gflops` over the measured matrix-product rate.
    pub matmul_fraction: f64,
    /// Peak resident memory of the case, MiB (`None` if unreadable).
    pub peak_mib: Option<f64>,
    /// Loss after the last measured step.
    pub loss: f64,
}

/// The machine's matrix-product rate in GFlop/s: median of five `n × n`
/// products, `n = 1024`, on `par` threads.
pub fn matmul_rate(par: Par) -> f64 {
    let n = 1024;
    let a: Vec<f64> = (0..n * n)
        .map(|i| ((i * 7919) % 1000) as f64 * 1e-3)
        .collect();
    let mut c = vec![0.0; n * n];
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            matmul_in_place(
                &mut c,
                View::col_major(&a, n, n),
                View::col_major(&a, n, n),
                false,
                par,
            );
            t.elapsed().as_secs_f64()
        })
        .collect();
    std::hint::black_box(&c);
    2.0 * (n as f64).powi(3) / median(&mut times) / 1e9
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// Reset the peak resident set (Linux ≥ 4.0); false where not possible.
fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set in MiB, from `/proc/self/status`.
fn peak_memory_mib() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// One case of [`profile_case`]: a problem, an optimiser and where it computes.
pub struct ProfileCase<'a> {
    /// The problem's name (for the table).
    pub name: &'a str,
    /// The problem, built.
    pub problem: &'a problems::Problem,
    /// The optimiser and its settings.
    pub optimizer: &'a OptimizerConfig,
    /// The decomposition's label (`full`, `partial`).
    pub svd_label: &'a str,
    /// Threads and device.
    pub compute: &'a Compute,
}

/// Profile a case: `warmup` unmeasured steps from the problem's seed-0
/// initialisation, then `iters` measured ones.
pub fn profile_case(
    case: &ProfileCase<'_>,
    warmup: usize,
    iters: usize,
    matmul_gflops: f64,
) -> Result<ProfileRow> {
    let resettable = reset_peak_memory();
    let pb = case.problem;
    let ls: LeastSquares = pb.least_squares()?;
    let mut theta = pb.initial_theta(0)?;
    let mut opt = case.optimizer.build(case.compute)?;
    let mut loss = ls.loss(&theta)?;
    let fwd = ls.forward_flops();
    let mut cols: [Vec<f64>; 5] = Default::default();
    let (mut ranks, mut gflop) = (vec![], [0.0f64; 3]);
    let (mut on_device, mut decompositions) = (0, 0);
    for k in 0..warmup + iters {
        let t = Instant::now();
        let report = opt.step(&ls, &mut theta, loss)?;
        let step_s = t.elapsed().as_secs_f64();
        loss = report.loss;
        if k < warmup {
            continue;
        }
        let ph = report.phases.unwrap_or_default();
        let rest = step_s - ph.assembly_s - ph.decomposition_s - ph.line_search_s;
        for (c, v) in cols.iter_mut().zip([
            step_s,
            ph.assembly_s,
            ph.decomposition_s,
            ph.line_search_s,
            rest.max(0.0),
        ]) {
            c.push(v);
        }
        ranks.push(ph.computed_rank as f64);
        on_device += ph.device_decompositions;
        decompositions += ph.decompositions;
        gflop[0] += 3.0 * fwd * ph.assemblies as f64 / 1e9;
        gflop[1] += ph.decomposition_flops / 1e9;
        gflop[2] += fwd * ph.loss_evals as f64 / 1e9;
    }
    let n = iters.max(1) as f64;
    let [mut step, mut asm, mut dec, mut lsr, mut rest] = cols;
    // The rate from means (flops and time of the same iterations; a step
    // whose partial SVD had to grow costs more of both).
    let mean_step = step.iter().sum::<f64>() / n;
    let total_gflop = gflop.iter().sum::<f64>() / n;
    let gflops = total_gflop / mean_step;
    let step_s = median(&mut step);
    let ran_on = match on_device {
        0 => "cpu",
        n if n == decompositions => "cuda",
        _ => "mixed",
    };
    Ok(ProfileRow {
        problem: case.name.into(),
        optimizer: case.optimizer.name().into(),
        svd: case.svd_label.into(),
        device: case.compute.device.name().into(),
        ran_on: ran_on.into(),
        samples: ls.n_residuals(),
        params: ls.n_params(),
        rank: median(&mut ranks) as usize,
        iters,
        step_s,
        assembly_s: median(&mut asm),
        decomposition_s: median(&mut dec),
        line_search_s: median(&mut lsr),
        rest_s: median(&mut rest),
        assembly_gflop: gflop[0] / n,
        decomposition_gflop: gflop[1] / n,
        line_search_gflop: gflop[2] / n,
        gflops,
        matmul_fraction: gflops / matmul_gflops,
        peak_mib: if resettable { peak_memory_mib() } else { None },
        loss,
    })
}

/// The profile table as Markdown.
pub fn profile_markdown(rows: &[ProfileRow], matmul_gflops: f64, preamble: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# natgrad bench --profile\n\n{preamble}\n");
    let _ = writeln!(
        s,
        "Matrix-product rate measured on this machine: {matmul_gflops:.2} GFlop/s \
         (1024² products, median of 5). Times are medians per iteration in seconds, \
         flops means per iteration in GFlop (models: see `report::profile`); the rate is \
         mean flops over mean time. \
         `rank`: singular triplets returned per decomposition (median; the partial SVD's subspace is larger by its reliability margin).\n"
    );
    let _ = writeln!(
        s,
        "| problem | optimizer | svd | device (ran on) | S | P | rank | step s | assembly s (GF) | decomposition s (GF) | line search s (GF) | rest s | GFlop/s | of matmul rate | peak MiB | loss after |"
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let pct = |x: f64| 100.0 * x / r.step_s;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} ({}) | {} | {} | {} | {:.3} | {:.3} ({:.0}%, {:.2}) | {:.3} ({:.0}%, {:.2}) | {:.3} ({:.0}%, {:.2}) | {:.3} | {:.2} | {:.0}% | {} | {:.3e} |",
            r.problem,
            r.optimizer,
            r.svd,
            r.device,
            r.ran_on,
            r.samples,
            r.params,
            r.rank,
            r.step_s,
            r.assembly_s,
            pct(r.assembly_s),
            r.assembly_gflop,
            r.decomposition_s,
            pct(r.decomposition_s),
            r.decomposition_gflop,
            r.line_search_s,
            pct(r.line_search_s),
            r.line_search_gflop,
            r.rest_s,
            r.gflops,
            100.0 * r.matmul_fraction,
            r.peak_mib
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "–".into()),
            r.loss,
        );
    }
    s
}

/// The profile rows as CSV (one header line, the fields of [`ProfileRow`]).
pub fn profile_csv(rows: &[ProfileRow]) -> String {
    let mut s = String::from(
        "problem,optimizer,svd,device,ran_on,samples,params,rank,iters,step_s,assembly_s,decomposition_s,\
         line_search_s,rest_s,assembly_gflop,decomposition_gflop,line_search_gflop,gflops,\
         matmul_fraction,peak_mib,loss\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.problem,
            r.optimizer,
            r.svd,
            r.device,
            r.ran_on,
            r.samples,
            r.params,
            r.rank,
            r.iters,
            r.step_s,
            r.assembly_s,
            r.decomposition_s,
            r.line_search_s,
            r.rest_s,
            r.assembly_gflop,
            r.decomposition_gflop,
            r.line_search_gflop,
            r.gflops,
            r.matmul_fraction,
            r.peak_mib.map(|m| m.to_string()).unwrap_or_default(),
            r.loss
        );
    }
    s
}

/// One comparison of the partial SVD with the full one on a real `φ`.
#[derive(Clone, Debug, Serialize)]
pub struct SvdCheckRow {
    /// Problem.
    pub problem: String,
    /// Training iteration of the snapshot (AMStraMGRAM from seed 0).
    pub iteration: usize,
    /// `S × P`.
    pub shape: (usize, usize),
    /// The level `τ/σ₁` the partial SVD was asked to reach.
    pub level: f64,
    /// Triplets the partial SVD returned (`min(S, P)` if it used the full SVD).
    pub returned: usize,
    /// Singular values of the full SVD at or above the level.
    pub above: usize,
    /// `max |σ_partial − σ_full| / (ε σ₁)` over those values.
    pub sigma_err_eps: f64,
    /// Relative difference of the truncated directions `Σ_{σ ≥ τ} V c/σ`.
    pub direction_rel: f64,
    /// Seconds of the full and the partial decomposition.
    pub full_s: f64,
    /// See `full_s`.
    pub partial_s: f64,
}

/// Compare the partial and the full SVD on `φ` snapshots of `problem`
/// taken at the training iterations `at` (AMStraMGRAM, defaults (full SVD), seed 0),
/// for each level `τ/σ₁` in `levels` (the partial SVD grows until its
/// smallest returned value is below τ, as ANaGRAM's test does).
pub fn svd_check(problem: &str, at: &[usize], levels: &[f64]) -> Result<Vec<SvdCheckRow>> {
    use crate::linalg::{PartialSvdConfig, SystemSvd, SystemSvdWorkspace, norm2};
    use crate::optim::AmstramgramConfig;
    use crate::residual::Weighting;
    let pb = crate::train::catalogue::build(problem)?;
    let ls = pb.least_squares()?;
    let mut theta = pb.initial_theta(0)?;
    let mut opt =
        OptimizerConfig::Amstramgram(AmstramgramConfig::default()).build(&Compute::default())?;
    let mut loss = ls.loss(&theta)?;
    let mut rows = Vec::new();
    let mut iter = 0;
    let last = at.iter().copied().max().unwrap_or(0);
    loop {
        if at.contains(&iter) {
            let sys = crate::optim::Objective::system(&ls, &theta, Weighting::Uniform)?;
            let t = Instant::now();
            let full = SystemSvd::compute(&sys.jac_t, &sys.r)?;
            let full_s = t.elapsed().as_secs_f64();
            let sigma1 = full.s[0];
            for &level in levels {
                let tau = level * sigma1;
                let enough = |s: &[f64], _: &[f64]| s.last().is_some_and(|&x| x < tau);
                let mut ws = SystemSvdWorkspace::default();
                let t = Instant::now();
                let (part, info) = SystemSvd::compute_partial(
                    &sys.jac_t,
                    &sys.r,
                    &mut ws,
                    0,
                    &PartialSvdConfig::default(),
                    &enough,
                )?;
                let partial_s = t.elapsed().as_secs_f64();
                let above = full.rank_above(tau);
                let sigma_err = (0..above.min(part.s.len()))
                    .map(|j| (part.s[j] - full.s[j]).abs())
                    .fold(0.0, f64::max)
                    / (f64::EPSILON * sigma1);
                let keep = above.min(part.s.len());
                let (dp, df) = (part.truncated_solve(keep), full.truncated_solve(keep));
                let diff: Vec<f64> = dp.iter().zip(&df).map(|(a, b)| a - b).collect();
                rows.push(SvdCheckRow {
                    problem: problem.into(),
                    iteration: iter,
                    shape: (ls.n_residuals(), ls.n_params()),
                    level,
                    returned: if info.full {
                        full.s.len()
                    } else {
                        part.s.len()
                    },
                    above,
                    sigma_err_eps: if part.s.len() < above {
                        f64::INFINITY
                    } else {
                        sigma_err
                    },
                    direction_rel: norm2(&diff) / norm2(&df),
                    full_s,
                    partial_s,
                });
            }
        }
        if iter >= last {
            break;
        }
        loss = opt.step(&ls, &mut theta, loss)?.loss;
        iter += 1;
    }
    Ok(rows)
}

/// The checks as Markdown.
pub fn svd_check_markdown(rows: &[SvdCheckRow], preamble: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Partial vs full SVD on real Jacobians\n\n{preamble}\n");
    let _ = writeln!(
        s,
        "| problem | iteration | S × P | level τ/σ₁ | full σ ≥ τ | partial returned | max σ error (ε σ₁) | direction rel. diff | full s | partial s |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} × {} | {:.0e} | {} | {} | {:.2} | {:.1e} | {:.3} | {:.3} |",
            r.problem,
            r.iteration,
            r.shape.0,
            r.shape.1,
            r.level,
            r.above,
            r.returned,
            r.sigma_err_eps,
            r.direction_rel,
            r.full_s,
            r.partial_s
        );
    }
    s
}
