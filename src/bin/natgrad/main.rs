//! The `natgrad` command line: list the catalogue, solve a problem, bench,
//! compare optimisers, plot runs.

mod bench;
mod compare;
mod eval;
mod kernel;
mod plot;
mod solve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use natgrad::linalg::{Compute, Device};
use natgrad::optim::OPTIMIZERS;
use natgrad::train::Termination;
use natgrad::train::catalogue::CATALOGUE;

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
    Solve(Box<solve::SolveArgs>),
    /// Run (problem × optimiser × seed) cases and write `bench.md` and `bench.csv`.
    Bench(bench::BenchArgs),
    /// Run several optimisers on one problem side by side: `compare.md`,
    /// `compare.csv` and error/loss vs time/iteration figures.
    Compare(compare::CompareArgs),
    /// PNG figures from run directories: curves of all runs on one plot,
    /// spectra of natural-gradient steps, solution/reference/error maps.
    Plot(plot::PlotArgs),
    /// Evaluate a trained model at points from a CSV file.
    Eval(eval::EvalArgs),
    /// Map a run's NTK, operator NTK or natural-gradient Green's function
    /// around a point (PNG, optionally CSV).
    Kernel(kernel::KernelArgs),
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

/// Run the cases one after the other, calling `report` with the rows so far
/// after each. SIGINT/SIGTERM stop the current case at the end of its step
/// (its folder keeps a checkpoint and a summary, so `solve --resume` continues
/// it); the cases done so far are reported and the interrupted one is
/// returned with its folder.
fn run_cases(
    cases: &[natgrad::report::Case],
    runs_dir: &std::path::Path,
    eval_every: usize,
    run: &RunOptions,
    what: &str,
    eval_interval_s: Option<f64>,
    mut report: impl FnMut(&[natgrad::report::BenchRow]) -> anyhow::Result<()>,
) -> anyhow::Result<(Vec<natgrad::report::BenchRow>, Solved)> {
    let stop = solve::stop_on_signals()?;
    let mut rows = Vec::new();
    let quiet = run.quiet();
    for (k, case) in cases.iter().enumerate() {
        if !quiet {
            eprintln!(
                "{what} [{}/{}] {} (budget {} s)",
                k + 1,
                cases.len(),
                case.label(),
                case.spec.budget.max_seconds
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

/// A finished `solve`: how the run ended and where it was written.
type Solved = Option<(Termination, PathBuf)>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List => {
            println!("problems:");
            for e in CATALOGUE {
                println!("  {:<12} {}", e.name, e.summary);
            }
            println!("optimizers:");
            for (n, d) in OPTIMIZERS {
                println!("  {n:<12} {d}");
            }
            Ok(None)
        }
        Command::Solve(args) => solve::solve(*args),
        Command::Bench(args) => bench::bench(args),
        Command::Compare(args) => compare::compare(args),
        Command::Plot(args) => plot::plot(args).map(|()| None),
        Command::Eval(args) => eval::eval(args).map(|()| None),
        Command::Kernel(args) => kernel::kernel(args).map(|()| None),
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
