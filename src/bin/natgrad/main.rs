//! The `natgrad` command line: list the catalogue, solve a problem, bench,
//! compare optimisers, plot runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::{Parser, Subcommand};

use natgrad::linalg::{Compute, Device};
use natgrad::optim::{Cutoff, OPTIMIZERS, OptimizerConfig};
use natgrad::problems::{PROBLEMS, Preset};
use natgrad::residual::{ResampleMethod, Weighting};
use natgrad::train::{RunSpec, Termination};

#[derive(Parser)]
#[command(
    name = "natgrad",
    version,
    about = "PINNs trained by natural-gradient methods, to machine precision"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the catalogue's problems and the optimisers.
    List,
    /// Train a network on a catalogue problem and write the run directory.
    Solve(Box<SolveArgs>),
    /// Run (problem × optimiser × seed) cases and write `bench.md` and `bench.csv`.
    Bench(BenchArgs),
    /// Run several optimisers on one problem side by side: `compare.md`,
    /// `compare.csv` and error/loss vs time/iteration figures.
    Compare(CompareArgs),
    /// PNG figures from run directories: curves of all runs on one plot,
    /// spectra of natural-gradient steps, solution/reference/error maps.
    Plot(PlotArgs),
    /// Evaluate a trained model at points from a CSV file.
    Eval(EvalArgs),
}

#[derive(clap::Args)]
struct EvalArgs {
    /// A `model.json` written by `natgrad solve`.
    model: PathBuf,
    /// CSV of points, one per line, as many columns as the network has inputs
    /// (a non-numeric first line is taken as a header).
    #[arg(long)]
    points: PathBuf,
    /// Also write ∂u/∂x_k for every k and the Laplacian.
    #[arg(long)]
    derivatives: bool,
    /// Output CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Points from a CSV file: `dim` numbers per line; a first line that does
/// not parse is a header.
fn read_points(path: &std::path::Path, dim: usize) -> anyhow::Result<Vec<f64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Result<Vec<f64>, _> = line.split(',').map(|c| c.trim().parse::<f64>()).collect();
        match cells {
            Ok(v) if v.len() == dim && v.iter().all(|x| x.is_finite()) => out.extend(v),
            Ok(v) if v.len() != dim => anyhow::bail!(
                "{} line {}: {} columns, the model has {dim} inputs",
                path.display(),
                k + 1,
                v.len()
            ),
            Ok(_) => anyhow::bail!("{} line {}: non-finite coordinate", path.display(), k + 1),
            Err(_) if k == 0 => {}
            Err(e) => anyhow::bail!("{} line {}: {e}", path.display(), k + 1),
        }
    }
    if out.is_empty() {
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let first: String = first.chars().take(60).collect();
        anyhow::bail!(
            "{}: no points; expected {dim} comma-separated numbers per line (after an optional \
             header line), the first line holds `{first}`",
            path.display()
        );
    }
    Ok(out)
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.model)
        .with_context(|| format!("reading {}", args.model.display()))?;
    let saved: natgrad::model::SavedModel = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a natgrad model", args.model.display()))?;
    let problem = saved.problem.clone();
    let (mlp, theta) = saved.into_parts()?;
    // Hard-constrained problems: the file holds N_θ, the transform comes from the problem.
    let transform = match &problem {
        Some(name) => match natgrad::problems::build(name) {
            Ok(pb) => pb.transform,
            // Problems declared in a config file have no output transform.
            Err(natgrad::Error::UnknownName { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let points = read_points(&args.points, mlp.input_dim())?;
    let ev = natgrad::model::evaluate(&mlp, &theta, transform.as_ref(), &points, args.derivatives)?;
    match &args.out {
        Some(p) => write_file(p, &ev.to_csv())?,
        None => print!("{}", ev.to_csv()),
    }
    Ok(())
}

/// Options shared by the commands that train.
#[derive(clap::Args)]
struct RunOptions {
    /// Print no progress lines, only one summary line per run; twice
    /// (`-qq`) nothing but errors.
    #[arg(short, long, action = clap::ArgAction::Count)]
    quiet: u8,
    /// Print nothing but errors (as `-qq`).
    #[arg(long)]
    silent: bool,
    /// Dense-kernel threads, used by large products and SVDs only (2 vs 1 on
    /// 2 cores: allen-cahn's decompositions 1.2× faster, smaller ones
    /// unchanged) [default: 2, or the config's / checkpoint's].
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Where ANaGRAM's and AMStraMGRAM's decompositions run: `cpu`, `cuda`
    /// (needs a build with `--features cuda`) or `auto` (the CUDA device for
    /// large systems when there is one) [default: auto, or the config's / checkpoint's].
    #[arg(long)]
    device: Option<String>,
}

/// The command line's compute defaults: 2 dense-kernel threads, device `auto`.
const CLI_COMPUTE: Compute = Compute {
    threads: 2,
    device: Device::Auto,
};

impl RunOptions {
    /// No progress lines (`--quiet` once or more, or `--silent`).
    fn quiet(&self) -> bool {
        self.quiet > 0 || self.silent
    }

    /// One summary line per run (`--quiet` once).
    fn summary_only(&self) -> bool {
        self.quiet == 1 && !self.silent
    }

    /// `base` with the flags given applied, checked.
    fn compute(&self, base: Compute) -> anyhow::Result<Compute> {
        let c = Compute {
            threads: self.threads.unwrap_or(base.threads),
            device: match &self.device {
                Some(d) => Device::parse(d)?,
                None => base.device,
            },
        };
        c.validate()?;
        Ok(c)
    }
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Problem name (see `natgrad list`).
    problem: String,
    /// Optimisers, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "amstramgram,anagram,engd,nystrom,lbfgs,adam,ssbroyden"
    )]
    optimizers: Vec<String>,
    /// Training-time budget of each run in seconds.
    #[arg(long, default_value_t = 60.0, allow_negative_numbers = true)]
    max_seconds: f64,
    /// Iteration budget of each run (default: none).
    #[arg(long, allow_negative_numbers = true)]
    max_iters: Option<usize>,
    /// Seeds, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    seeds: Vec<u64>,
    /// Also evaluate the error every K iterations (default 0: by time only, see --eval-points).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    eval_every: usize,
    /// Evaluate the error about this many times per run, evenly in training
    /// time (every max-seconds/N seconds), so that cheap and costly
    /// iterations get equally dense error curves; the times to 1e-4/1e-8 are
    /// read at these evaluations.
    #[arg(long, default_value_t = 300, allow_negative_numbers = true)]
    eval_points: usize,
    /// Output directory (default `runs/compare/<problem>`).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    run: RunOptions,
}

#[derive(clap::Args)]
struct PlotArgs {
    /// Run directories (each with `summary.json` and `history.csv`).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Iterations of the spectrum figures (default: first, middle and last logged).
    #[arg(long, value_delimiter = ',')]
    iters: Vec<usize>,
    /// Output directory (default: the run directory when there is one, else `runs/plots`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Which iterate the solution map shows: `final` (model.json, solution.png) or
    /// `best` (best_model.json, the lowest held-out loss; solution-best.png).
    #[arg(long, value_enum, default_value = "final")]
    model: ModelChoice,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModelChoice {
    Final,
    Best,
}

/// Run the cases one after the other, calling `report` with the rows so far
/// after each. SIGINT/SIGTERM stop the current case at the end of its step
/// (its folder keeps a checkpoint and a summary, so `solve --resume` continues
/// it); the cases done so far are reported and the interrupted one is
/// returned with its folder.
fn run_cases(
    cases: &[natgrad::report::BenchCase],
    runs_dir: &std::path::Path,
    eval_every: usize,
    run: &RunOptions,
    what: &str,
    eval_interval_s: Option<f64>,
    mut report: impl FnMut(&[natgrad::report::BenchRow]) -> anyhow::Result<()>,
) -> anyhow::Result<(Vec<natgrad::report::BenchRow>, Solved)> {
    let stop = stop_on_signals()?;
    let mut rows = Vec::new();
    let quiet = run.quiet();
    for (k, case) in cases.iter().enumerate() {
        if !quiet {
            eprintln!(
                "{what} [{}/{}] {} (budget {} s)",
                k + 1,
                cases.len(),
                case.label(),
                case.budget.max_seconds
            );
        }
        let row = natgrad::report::run_case(
            case,
            runs_dir,
            eval_every,
            eval_interval_s,
            (!quiet).then_some(100),
            Some(stop.clone()),
        )
        .with_context(|| format!("{what} case {}", case.label()))?;
        if !quiet || run.summary_only() {
            eprintln!(
                "{what} [{}/{}] {}: {} iterations, {:.1} s, loss {:.3e}, {} {:.3e}",
                k + 1,
                cases.len(),
                case.label(),
                row.iters,
                row.time_s,
                row.loss,
                row.metric.column(),
                row.error()
            );
        }
        let interrupted = stop.load(std::sync::atomic::Ordering::Relaxed).then(|| {
            (
                Termination::Interrupted {
                    iteration: row.iters,
                },
                row.run_dir.clone(),
            )
        });
        rows.push(row);
        // Reported after every case, so an interrupted run keeps its results.
        report(&rows)?;
        if interrupted.is_some() {
            return Ok((rows, interrupted));
        }
    }
    Ok((rows, None))
}

fn write_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn compare(args: CompareArgs) -> anyhow::Result<Solved> {
    use natgrad::report::{BenchCase, compare, csv};
    let compute = args.run.compute(CLI_COMPUTE)?;
    let mut cases = Vec::new();
    for o in &args.optimizers {
        for &seed in &args.seeds {
            let mut c = BenchCase::new(&args.problem, o, seed)?;
            c.budget.max_seconds = args.max_seconds;
            if let Some(n) = args.max_iters {
                c.budget.max_iters = n;
            }
            c.budget.validate()?;
            c.compute = compute;
            cases.push(c);
        }
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join("compare").join(&args.problem));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let command: Vec<String> = std::env::args().collect();
    let preamble = format!(
        "Command: `{}`. Each run: training-time budget {} s, one after the other in one process; \
         errors evaluated every {:.3} s of training time{}; dense-kernel threads: {}; device: {}.",
        command.join(" "),
        args.max_seconds,
        args.max_seconds / args.eval_points.max(1) as f64,
        if args.eval_every > 0 {
            format!(" and every {} iterations", args.eval_every)
        } else {
            String::new()
        },
        compute.threads,
        compute.resolve()?
    );
    let settings: Vec<_> = cases.iter().map(|c| c.optimizer.clone()).collect();
    let (rows, interrupted) = run_cases(
        &cases,
        &out.join("runs"),
        args.eval_every,
        &args.run,
        "compare",
        Some(args.max_seconds / args.eval_points.max(1) as f64),
        |rows| {
            write_file(
                &out.join("compare.md"),
                &compare::markdown(rows, &settings[..rows.len()], &preamble),
            )?;
            write_file(&out.join("compare.csv"), &csv(rows))
        },
    )?;
    let figs = compare::figures(&rows, &out)?;
    if !args.run.quiet() {
        eprintln!("wrote {}", out.join("compare.md").display());
        for f in figs {
            eprintln!("wrote {}", f.display());
        }
    }
    Ok(interrupted)
}

fn plot(args: PlotArgs) -> anyhow::Result<()> {
    use natgrad::report::RunData;
    use natgrad::report::figures::{curve_figures, solution_figure, spectrum_figures};
    let runs = args
        .dirs
        .iter()
        .map(|d| RunData::read(d).with_context(|| format!("reading run directory {}", d.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let out = args.out.clone().unwrap_or_else(|| {
        if runs.len() == 1 {
            runs[0].dir.clone()
        } else {
            PathBuf::from("runs").join("plots")
        }
    });
    // Every requested spectrum exists before anything is drawn.
    for r in &runs {
        natgrad::report::figures::check_spectrum_iterations(r, &args.iters)?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let metric = natgrad::problems::Benchmark::of(&runs[0].problem)
        .map(|b| b.metric.column())
        .unwrap_or("l2_abs");
    let title = if runs.iter().all(|r| r.problem == runs[0].problem) {
        runs[0].problem.clone()
    } else {
        "runs".into()
    };
    let mut written = curve_figures(&runs, &out, &title, metric)?;
    for r in &runs {
        // One run's figures go to `out`, several runs' to `out/<run dir name>`.
        let dest = if runs.len() == 1 {
            out.clone()
        } else {
            out.join(r.dir.file_name().unwrap_or(r.dir.as_os_str()))
        };
        std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        written.extend(spectrum_figures(r, &dest, &args.iters)?);
        let problem = r
            .problem()
            .with_context(|| format!("rebuilding the problem of {}", r.dir.display()))?;
        let which = match args.model {
            ModelChoice::Final => natgrad::report::figures::Iterate::Final,
            ModelChoice::Best => natgrad::report::figures::Iterate::Best,
        };
        match solution_figure(r, &problem, which, &dest)? {
            Some(f) => written.push(f),
            None => eprintln!(
                "{}: no solution.png (the problem has {} input dimensions; maps are drawn for 2)",
                r.dir.display(),
                problem.widths[0]
            ),
        }
    }
    for f in written {
        println!("wrote {}", f.display());
    }
    Ok(())
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Problems, comma-separated (default: the whole catalogue).
    #[arg(long, value_delimiter = ',')]
    problems: Vec<String>,
    /// Optimisers, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "amstramgram,anagram")]
    optimizers: Vec<String>,
    /// Seeds, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    seeds: Vec<u64>,
    /// Cap on each run's training time in seconds. A run's budget is the
    /// problem's time target (else its default budget),
    /// lowered to this cap.
    #[arg(long, allow_negative_numbers = true)]
    max_seconds: Option<f64>,
    /// Iteration budget of each run (default: none).
    #[arg(long, allow_negative_numbers = true)]
    max_iters: Option<usize>,
    /// Evaluate the error every K iterations (times to 1e-4/1e-8/1e-12 are read at these).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    eval_every: usize,
    /// Output directory: `bench.md`, `bench.csv`, and `runs/<case>/`
    /// (with `--profile`: `profile.md`, `profile.csv`).
    #[arg(long, default_value = "runs/bench")]
    out: PathBuf,
    /// Profile iterations instead of running to the budget: time, flops and
    /// memory of assembly, decomposition and line search (see `report::profile`).
    #[arg(long)]
    profile: bool,
    /// With `--profile`: measured iterations per case.
    #[arg(long, default_value_t = 5, requires = "profile")]
    profile_iters: usize,
    /// With `--profile`: unmeasured iterations first.
    #[arg(long, default_value_t = 2, requires = "profile")]
    warmup: usize,
    /// With `--profile`: decompositions to compare, comma-separated
    /// (`full`, `partial`; default: each optimiser's own setting).
    #[arg(long, value_delimiter = ',', requires = "profile")]
    svd: Vec<String>,
    /// Compare the partial SVD with the full one on Jacobians taken at these
    /// training iterations (AMStraMGRAM, seed 0) of each problem; writes `svd-check.md`.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "ITERS",
        conflicts_with = "profile"
    )]
    svd_check: Vec<usize>,
    /// With `--profile`: the problem (its network and optimiser) of a run
    /// config instead of `--problems`, e.g. a large network.
    #[arg(long, value_name = "FILE", requires = "profile")]
    config: Option<PathBuf>,
    #[command(flatten)]
    run: RunOptions,
}

fn profile(args: &BenchArgs, problems: &[String]) -> anyhow::Result<()> {
    use natgrad::report::profile::{
        ProfileCase, matmul_rate, profile_case, profile_csv, profile_markdown,
    };
    let devices: Vec<Compute> = match &args.run.device {
        // `--device cpu,cuda,auto`: each case once per device.
        Some(list) => list
            .split(',')
            .map(|d| {
                Ok(Compute {
                    device: Device::parse(d.trim())?,
                    threads: args.run.threads.unwrap_or(CLI_COMPUTE.threads),
                })
            })
            .collect::<anyhow::Result<_>>()?,
        None => vec![args.run.compute(CLI_COMPUTE)?],
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let rate = matmul_rate(devices[0].par());
    // The problems: catalogue names, or the one a `--config` file declares
    // (with its network and optimiser).
    let mut built = Vec::new();
    match &args.config {
        Some(path) => {
            let spec = natgrad::train::RunConfig::read(path)?.to_spec()?;
            built.push((spec.problem.clone(), spec.problem()?, Some(spec.optimizer)));
        }
        None => {
            for p in problems {
                built.push((p.clone(), natgrad::problems::build(p)?, None));
            }
        }
    }
    if !args.run.quiet() {
        eprintln!("matrix-product rate: {rate:.2} GFlop/s");
    }
    let svds: Vec<Option<&str>> = if args.svd.is_empty() {
        vec![None]
    } else {
        args.svd.iter().map(|s| Some(s.as_str())).collect()
    };
    let mut rows = Vec::new();
    for (p, pb, own) in &built {
        for o in &args.optimizers {
            for svd in &svds {
                for compute in &devices {
                    let mut config = match own {
                        Some(c) if c.name() == o => c.clone(),
                        Some(_) => OptimizerConfig::default_for(o)?,
                        None => natgrad::report::BenchCase::new(p, o, 0)?.optimizer,
                    };
                    if let Some(m) = svd {
                        config.set("svd", &format!("\"{m}\""))?;
                    }
                    let label = serde_json::to_value(&config)?
                        .get("svd")
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_else(|| "-".into());
                    let case = ProfileCase {
                        name: p,
                        problem: pb,
                        optimizer: &config,
                        svd_label: &label,
                        compute,
                    };
                    let row = profile_case(&case, args.warmup, args.profile_iters, rate)
                        .with_context(|| format!("profiling {p} with {o}"))?;
                    if !args.run.quiet() {
                        eprintln!(
                            "{p} {o} svd={label} device={} ({}): {:.3} s/iteration (assembly {:.3}, decomposition {:.3}, line search {:.3}), rank {}",
                            row.device,
                            row.ran_on,
                            row.step_s,
                            row.assembly_s,
                            row.decomposition_s,
                            row.line_search_s,
                            row.rank
                        );
                    }
                    rows.push(row);
                }
            }
        }
    }
    let command: Vec<String> = std::env::args().collect();
    let device_notes: Vec<String> = devices
        .iter()
        .map(|c| Ok(format!("`{}` = {}", c.device.name(), c.resolve()?)))
        .collect::<anyhow::Result<_>>()?;
    let preamble = format!(
        "Command: `{}`. Dense-kernel threads: {}; devices: {}. {} warm-up and {} measured iterations per case, from seed 0.",
        command.join(" "),
        devices[0].threads,
        device_notes.join("; "),
        args.warmup,
        args.profile_iters
    );
    write_file(
        &args.out.join("profile.md"),
        &profile_markdown(&rows, rate, &preamble),
    )?;
    write_file(&args.out.join("profile.csv"), &profile_csv(&rows))?;
    if !args.run.quiet() {
        eprintln!("wrote {}", args.out.join("profile.md").display());
    }
    Ok(())
}

fn svd_check(args: &BenchArgs, problems: &[String]) -> anyhow::Result<()> {
    use natgrad::report::profile::{svd_check, svd_check_markdown};
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let levels = [1e-4, 1e-6, 1e-8, 1e-12];
    let mut rows = Vec::new();
    for p in problems {
        let r = svd_check(p, &args.svd_check, &levels)
            .with_context(|| format!("checking the partial SVD on {p}"))?;
        if !args.run.quiet() {
            for x in &r {
                eprintln!(
                    "{p} iter {} level {:.0e}: {} above, {} returned, σ error {:.2} εσ₁, direction {:.1e}, {:.3} s vs {:.3} s",
                    x.iteration,
                    x.level,
                    x.above,
                    x.returned,
                    x.sigma_err_eps,
                    x.direction_rel,
                    x.partial_s,
                    x.full_s
                );
            }
        }
        rows.extend(r);
    }
    let command: Vec<String> = std::env::args().collect();
    let preamble = format!(
        "Command: `{}`. Snapshots: AMStraMGRAM (defaults: full SVD; seed 0) at the listed iterations; uniform-weight system. The partial SVD (defaults: one subspace iteration, ρ = 100) is asked to reach each level τ = level·σ₁ as ANaGRAM's cutoff test does; errors are over the full SVD's values ≥ τ, directions keep those components.",
        command.join(" ")
    );
    write_file(
        &args.out.join("svd-check.md"),
        &svd_check_markdown(&rows, &preamble),
    )?;
    if !args.run.quiet() {
        eprintln!("wrote {}", args.out.join("svd-check.md").display());
    }
    Ok(())
}

fn bench(args: BenchArgs) -> anyhow::Result<Solved> {
    use natgrad::report::{BenchCase, csv, markdown};
    let problems: Vec<String> = if args.problems.is_empty() {
        PROBLEMS.iter().map(|(n, _)| n.to_string()).collect()
    } else {
        args.problems.clone()
    };
    if args.profile {
        return profile(&args, &problems).map(|()| None);
    }
    if !args.svd_check.is_empty() {
        return svd_check(&args, &problems).map(|()| None);
    }
    let compute = args.run.compute(CLI_COMPUTE)?;
    let mut cases = Vec::new();
    for p in &problems {
        for o in &args.optimizers {
            for &seed in &args.seeds {
                let mut c = BenchCase::new(p, o, seed)?;
                if let Some(t) = args.max_seconds {
                    c.budget.max_seconds = if t.is_nan() {
                        t
                    } else {
                        c.budget.max_seconds.min(t)
                    };
                }
                if let Some(n) = args.max_iters {
                    c.budget.max_iters = n;
                }
                c.budget.validate()?;
                c.compute = compute;
                cases.push(c);
            }
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let command: Vec<String> = std::env::args().collect();
    let preamble = format!(
        "Command: `{}`. Dense-kernel threads: {}; device: {}. {} case(s).",
        command.join(" "),
        compute.threads,
        compute.resolve()?,
        cases.len()
    );
    let (_, interrupted) = run_cases(
        &cases,
        &args.out.join("runs"),
        args.eval_every,
        &args.run,
        "bench",
        None,
        |rows| {
            write_file(&args.out.join("bench.md"), &markdown(rows, &preamble))?;
            write_file(&args.out.join("bench.csv"), &csv(rows))
        },
    )?;
    if !args.run.quiet() {
        eprintln!("wrote {}", args.out.join("bench.md").display());
    }
    Ok(interrupted)
}

#[derive(clap::Args)]
struct SolveArgs {
    /// Problem name (see `natgrad list`); omit it with `--resume` or `--config`.
    #[arg(required_unless_present_any = ["resume", "config"], conflicts_with = "config")]
    problem: Option<String>,
    /// Read the run from a TOML file (`[problem]`, `[model]`, `[optimizer]`,
    /// `[budget]`, `[output]`, `seed`); the other flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the full effective configuration as TOML and exit without training.
    #[arg(long)]
    print_config: bool,
    /// Continue the run in DIR from its `checkpoint.json` (same settings;
    /// `--max-iters`/`--max-seconds`/`--target-loss` may extend the budget).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["problem", "config", "preset", "force", "optimizer", "cutoff", "weighting", "params", "seed", "out", "eval_every", "resample_every", "resample_points"])]
    resume: Option<PathBuf>,
    /// Write `checkpoint.json` every this many seconds of training time (and at the end) [default: 60].
    #[arg(long, allow_negative_numbers = true)]
    checkpoint_seconds: Option<f64>,
    /// Also write `checkpoint.json` every N iterations.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    checkpoint_every: Option<usize>,
    /// Optimiser (default: the problem's own; another optimiser gets the
    /// problem's settings of it where the problem has some).
    #[arg(long)]
    optimizer: Option<String>,
    /// `default` (natgrad's settings for the problem) or `paper` (its
    /// papers' settings, for comparison).
    #[arg(long, conflicts_with = "config")]
    preset: Option<String>,
    /// Maximum number of iterations (given alone: no time limit).
    #[arg(long, allow_negative_numbers = true)]
    max_iters: Option<usize>,
    /// Maximum training time in seconds (given alone: no iteration limit).
    #[arg(long, allow_negative_numbers = true)]
    max_seconds: Option<f64>,
    /// Stop when the loss reaches this value.
    #[arg(long, allow_negative_numbers = true)]
    target_loss: Option<f64>,
    /// Go on when the held-out loss exceeds 10⁴ × the training loss (by
    /// default the run stops there: the best iterate is in best_model.json).
    #[arg(long)]
    no_overfit_stop: bool,
    /// Seed of the initialisation [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,
    /// ANaGRAM cutoff: a number (absolute), `rel:X` (relative to σ₁) or `default` (√(εP)·σ₁).
    #[arg(long, allow_negative_numbers = true)]
    cutoff: Option<String>,
    /// Row weighting of the natural-gradient system: `uniform` or `block-mean`.
    #[arg(long)]
    weighting: Option<String>,
    /// Set an optimiser parameter, e.g. `--param precision=1e-10` (repeatable;
    /// the names are the fields of the optimiser's config, see the docs).
    #[arg(
        long = "param",
        value_name = "KEY=VALUE",
        allow_negative_numbers = true
    )]
    params: Vec<String>,
    /// Evaluate the error every K iterations [default: 10].
    #[arg(long, allow_negative_numbers = true)]
    eval_every: Option<usize>,
    /// Redraw the interior collocation points every N iterations (default: never).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    resample_every: Option<usize>,
    /// How to redraw them: `rad` (residual-based, the default) or `uniform`.
    #[arg(long, value_name = "METHOD", requires = "resample_every")]
    resample: Option<String>,
    /// Points per redraw (default: as many as the block has).
    #[arg(long, value_name = "N", requires = "resample_every")]
    resample_points: Option<usize>,
    /// Output directory (default `runs/<problem>-<optimizer>-<seed>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the run files of a folder that already holds a run (without
    /// it, such a folder is refused).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    run: RunOptions,
}

/// A flag set by SIGINT and SIGTERM: the run stops at the end of its current
/// step, writes its checkpoint, summary and history, and exits with code 4.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .with_context(|| format!("installing the handler of signal {sig}"))?;
    }
    Ok(flag)
}

/// A fresh run's budget from the flags: a limit given alone replaces the
/// catalogue's default limit of the other kind (`--max-seconds 300` runs
/// 300 s whatever the default iteration count), then [`budget_flags`].
fn fresh_budget_flags(args: &SolveArgs, budget: &mut natgrad::train::Budget) {
    match (args.max_iters, args.max_seconds) {
        (None, Some(_)) => budget.max_iters = usize::MAX,
        (Some(_), None) => budget.max_seconds = f64::INFINITY,
        _ => {}
    }
    budget_flags(args, budget);
}

/// `--max-iters`, `--max-seconds`, `--target-loss` applied to a budget.
fn budget_flags(args: &SolveArgs, budget: &mut natgrad::train::Budget) {
    if let Some(n) = args.max_iters {
        budget.max_iters = n;
    }
    if let Some(t) = args.max_seconds {
        budget.max_seconds = t;
    }
    if let Some(l) = args.target_loss {
        budget.target_loss = l;
    }
    if args.no_overfit_stop {
        budget.stop_on_overfit = false;
    }
}

fn resume(args: &SolveArgs, dir: &std::path::Path) -> anyhow::Result<Termination> {
    let device = args.run.device.as_deref().map(Device::parse).transpose()?;
    let outcome = RunSpec::resume(
        dir,
        |budget, compute| {
            budget_flags(args, budget);
            if let Some(t) = args.run.threads {
                compute.threads = t;
            }
            if let Some(d) = device {
                compute.device = d;
            }
        },
        (!args.run.quiet()).then_some(100),
        Some(stop_on_signals()?),
    )
    .with_context(|| format!("resuming {}", dir.display()))?;
    if !args.run.quiet() {
        eprintln!("wrote {}", dir.display());
    }
    Ok(outcome.termination)
}

/// A finished `solve`: how the run ended and where it was written.
type Solved = Option<(Termination, PathBuf)>;

fn solve(args: SolveArgs) -> anyhow::Result<Solved> {
    if let Some(dir) = &args.resume {
        return resume(&args, dir).map(|t| Some((t, dir.clone())));
    }
    // Whether a config file set [sampling] (then --optimizer keeps it).
    let mut sampling_given = false;
    let (mut spec, config_out) = match &args.config {
        Some(path) => {
            let cfg = natgrad::train::RunConfig::read(path)?;
            let mut spec = cfg.to_spec()?;
            // The command line's default threads where the file sets none.
            spec.compute.threads = cfg.compute.threads.unwrap_or(CLI_COMPUTE.threads);
            sampling_given = cfg.sampling.is_some();
            (spec, cfg.output.dir.clone())
        }
        None => {
            let problem = args
                .problem
                .clone()
                .expect("clap requires a problem without --resume or --config");
            let preset = match &args.preset {
                Some(p) => Preset::parse(p)?,
                None => Preset::Default,
            };
            let mut spec = RunSpec::with_preset(&problem, preset)?;
            spec.compute = CLI_COMPUTE;
            (spec, None)
        }
    };
    spec.compute = args.run.compute(spec.compute)?;
    if let Some(name) = &args.optimizer
        && name != spec.optimizer.name()
    {
        // A catalogue problem's own settings of that optimiser, if it has
        // some, with the resampling that goes with them.
        match &spec.custom {
            None => {
                let (o, s) = natgrad::problems::build(&spec.problem)?.setup_for(name)?;
                spec.optimizer = o;
                if !sampling_given {
                    spec.sampling = s;
                }
            }
            Some(_) => spec.optimizer = OptimizerConfig::default_for(name)?,
        }
    }
    if let Some(c) = &args.cutoff {
        let cutoff = Cutoff::parse(c)?;
        match &mut spec.optimizer {
            OptimizerConfig::Anagram(a) => a.cutoff = cutoff,
            other => anyhow::bail!("--cutoff applies to anagram, not to {}", other.name()),
        }
    }
    if let Some(w) = &args.weighting {
        let w = Weighting::parse(w)?;
        match &mut spec.optimizer {
            OptimizerConfig::Anagram(a) => a.weighting = w,
            other => anyhow::bail!("--weighting applies to anagram, not to {}", other.name()),
        }
    }
    for kv in &args.params {
        let Some((k, v)) = kv.split_once('=') else {
            anyhow::bail!("--param expects KEY=VALUE, got `{kv}`");
        };
        spec.optimizer.set(k.trim(), v.trim())?;
    }
    fresh_budget_flags(&args, &mut spec.budget);
    if let Some(seed) = args.seed {
        spec.seed = seed;
    }
    if let Some(k) = args.eval_every {
        spec.eval_every = k;
    }
    if let Some(n) = args.resample_every {
        spec.sampling.resample_every = n;
    }
    if let Some(n) = args.resample_points {
        spec.sampling.points = n;
    }
    if let Some(m) = &args.resample {
        spec.sampling.method = match m.as_str() {
            "rad" => ResampleMethod::Rad,
            "uniform" => ResampleMethod::Uniform,
            other => anyhow::bail!("--resample: unknown method `{other}`; known: rad, uniform"),
        };
    }
    spec.out = Some(
        args.out
            .clone()
            .or(config_out)
            .unwrap_or_else(|| spec.default_out()),
    );
    if let Some(t) = args.checkpoint_seconds {
        spec.checkpoint_every_s = t;
    }
    if args.checkpoint_every.is_some() {
        spec.checkpoint_every_iters = args.checkpoint_every;
    }
    if args.print_config {
        spec.validate()?;
        print!("{}", natgrad::train::RunConfig::from_spec(&spec)?.to_toml());
        return Ok(None);
    }
    spec.progress_every = (!args.run.quiet()).then_some(100);
    spec.stop = Some(stop_on_signals()?);
    spec.replace_existing = args.force;
    let out = spec.out.clone().expect("set above");
    let outcome = spec
        .run()
        .with_context(|| format!("solving `{}`", spec.problem))?;
    if !args.run.quiet() {
        eprintln!("wrote {}", out.display());
    } else if args.run.summary_only() {
        eprintln!("{}", summary_line(&spec.problem, &outcome, &out));
    }
    Ok(Some((outcome.termination, out)))
}

/// One line: what ended the run, its size, loss and errors, and where it went.
fn summary_line(problem: &str, o: &natgrad::train::Outcome, out: &std::path::Path) -> String {
    let errors = o
        .metrics
        .map(|m| format!(", l2_abs {:.3e}, l2_rel {:.3e}", m.l2_abs, m.l2_rel))
        .unwrap_or_default();
    let warning = o
        .heldout_loss
        .and_then(|h| natgrad::train::overfitting_warning(o.loss, h))
        .map(|w| format!("; warning: {w}"))
        .unwrap_or_default();
    format!(
        "{problem}: {} after {} iterations, {:.2} s; loss {:.3e}{errors}; wrote {}{warning}",
        o.termination,
        o.iters,
        o.time_s,
        o.loss,
        out.display()
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List => {
            println!("problems:");
            for (n, d) in PROBLEMS {
                println!("  {n:<12} {d}");
            }
            println!("optimizers:");
            for (n, d) in OPTIMIZERS {
                println!("  {n:<12} {d}");
            }
            Ok(None)
        }
        Command::Solve(args) => solve(*args),
        Command::Bench(args) => bench(args),
        Command::Compare(args) => compare(args),
        Command::Plot(args) => plot(args).map(|()| None),
        Command::Eval(args) => eval(args).map(|()| None),
    };
    match result {
        Ok(Some((Termination::NonFinite { .. } | Termination::LinearAlgebra { .. }, _))) => {
            ExitCode::from(3)
        }
        Ok(Some((Termination::Interrupted { iteration }, dir))) => {
            eprintln!(
                "interrupted after iteration {iteration}: checkpoint written; continue with `natgrad solve --resume {}`",
                dir.display()
            );
            ExitCode::from(4)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
