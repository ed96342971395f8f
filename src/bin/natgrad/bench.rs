//! `natgrad bench`: benchmark cases, profiles and partial-SVD checks.

use std::path::PathBuf;

use anyhow::Context;
use natgrad::linalg::{Compute, Device};
use natgrad::optim::OptimizerConfig;
use natgrad::train::catalogue::{self, CATALOGUE};

use crate::{RunOptions, Solved, run_cases, write_file};
use natgrad::train::FRONT_END_COMPUTE;

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Problems, comma-separated (default: the whole catalogue).
    #[arg(long, value_delimiter = ',')]
    problems: Vec<String>,
    /// What to run on each problem, comma-separated: the presets `default`
    /// (natgrad's settings) and `paper` (the papers'), or optimiser names
    /// (the problem's own settings of that optimiser).
    #[arg(long, value_delimiter = ',', default_value = "default,paper")]
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

pub(crate) fn profile(args: &BenchArgs, problems: &[String]) -> anyhow::Result<()> {
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
                    threads: args.run.threads.unwrap_or(FRONT_END_COMPUTE.threads),
                })
            })
            .collect::<anyhow::Result<_>>()?,
        None => vec![args.run.compute(FRONT_END_COMPUTE)?],
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
                built.push((p.clone(), catalogue::build(p)?, None));
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
                        None => natgrad::report::case(p, o, 0)?.spec.optimizer,
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

pub(crate) fn svd_check(args: &BenchArgs, problems: &[String]) -> anyhow::Result<()> {
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

pub(crate) fn bench(args: BenchArgs) -> anyhow::Result<Solved> {
    use natgrad::report::{case, csv, markdown};
    let problems: Vec<String> = if args.problems.is_empty() {
        CATALOGUE.iter().map(|e| e.name.to_string()).collect()
    } else {
        args.problems.clone()
    };
    if args.profile {
        return profile(&args, &problems).map(|()| None);
    }
    if !args.svd_check.is_empty() {
        return svd_check(&args, &problems).map(|()| None);
    }
    let compute = args.run.compute(FRONT_END_COMPUTE)?;
    let mut cases = Vec::new();
    for p in &problems {
        for o in &args.optimizers {
            for &seed in &args.seeds {
                let mut c = case(p, o, seed)?;
                let budget = &mut c.spec.budget;
                if let Some(t) = args.max_seconds {
                    budget.max_seconds = if t.is_nan() {
                        t
                    } else {
                        budget.max_seconds.min(t)
                    };
                }
                if let Some(n) = args.max_iters {
                    budget.max_iters = n;
                }
                budget.validate()?;
                c.spec.compute = compute;
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
