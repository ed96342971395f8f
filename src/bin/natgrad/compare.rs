//! `natgrad compare`: several optimisers on one problem, side by side.

use std::path::PathBuf;

use anyhow::Context;

use crate::{RunOptions, Solved, run_cases, write_file};
use natgrad::train::FRONT_END_COMPUTE;

#[derive(clap::Args)]
pub(crate) struct CompareArgs {
    /// Problem name (see `natgrad list`).
    problem: String,
    /// Optimisers, comma-separated (the problem's own settings of each), or
    /// the presets `default` and `paper`.
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

pub(crate) fn compare(args: CompareArgs) -> anyhow::Result<Solved> {
    use natgrad::report::{case, compare, csv};
    let compute = args.run.compute(FRONT_END_COMPUTE)?;
    let mut cases = Vec::new();
    for o in &args.optimizers {
        for &seed in &args.seeds {
            let mut c = case(&args.problem, o, seed)?;
            c.spec.budget.max_seconds = args.max_seconds;
            if let Some(n) = args.max_iters {
                c.spec.budget.max_iters = n;
            }
            c.spec.budget.validate()?;
            c.spec.compute = compute;
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
    let settings: Vec<_> = cases
        .iter()
        .map(|c| (c.setup(), c.spec.optimizer.clone()))
        .collect();
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
