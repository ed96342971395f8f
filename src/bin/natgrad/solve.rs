//! `natgrad solve`: one run, fresh or resumed, with signal handling.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use natgrad::linalg::Device;
use natgrad::train::{FRONT_END_COMPUTE, Overrides, Preset, RunConfig, RunSpec, Termination};

use crate::{RunOptions, Solved};

#[derive(clap::Args)]
pub(crate) struct SolveArgs {
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
    #[arg(long, value_name = "DIR", conflicts_with_all = ["problem", "config", "preset", "force", "optimizer", "cutoff", "weighting", "system_weights", "params", "seed", "out", "eval_every", "resample_every", "resample_points", "save_models_at"])]
    resume: Option<PathBuf>,
    /// Write `checkpoint.json` every this many seconds of training time (and at the end) [default: 60].
    #[arg(long, allow_negative_numbers = true)]
    checkpoint_seconds: Option<f64>,
    /// Also write `checkpoint.json` every N iterations.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    checkpoint_every: Option<usize>,
    /// Save the model at these iterations as `model-<iter>.json` in the run
    /// directory, e.g. `0,50,200` (for `natgrad kernel --model iter:N`).
    #[arg(long, value_name = "ITERS", value_delimiter = ',')]
    save_models_at: Vec<usize>,
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
    /// Never restart from another initialisation (the default preset of
    /// laplace2d restarts a run not converged after 2200 iterations; `[restarts]`)
    #[arg(long)]
    no_restarts: bool,
    /// Seed of the initialisation [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,
    /// ANaGRAM's cutoff (`--param cutoff=…` in short): a number (absolute),
    /// `rel:X` (relative to σ₁) or `default` (√(εP)·σ₁).
    #[arg(long, allow_negative_numbers = true)]
    cutoff: Option<String>,
    /// Row weighting of the natural-gradient system, `uniform` or
    /// `block-mean` (`--param weighting=…` in short: anagram, amstramgram,
    /// engd, nystrom).
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
    /// Weight a block's rows in the natural-gradient system, e.g.
    /// `--system-weight boundary=100` (repeatable; the loss is unchanged; block
    /// names: `natgrad solve P --print-config`, `[system_weights]`).
    #[arg(long = "system-weight", value_name = "BLOCK=W")]
    system_weights: Vec<String>,
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
pub(crate) fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .with_context(|| format!("installing the handler of signal {sig}"))?;
    }
    Ok(flag)
}

/// `NAME=VALUE` items of a repeatable flag as trimmed pairs; `form` (e.g.
/// `--param KEY=VALUE`) names the flag in the error.
fn pairs(items: &[String], form: &str) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
            None => anyhow::bail!("{form} expected, got `{kv}`"),
        })
        .collect()
}

/// The run's options from the flags (the library applies and checks them).
fn overrides(args: &SolveArgs) -> anyhow::Result<Overrides> {
    let params = pairs(&args.params, "--param KEY=VALUE")?;
    let system_weights = pairs(&args.system_weights, "--system-weight BLOCK=WEIGHT")?;
    Ok(Overrides {
        system_weights,
        optimizer: args.optimizer.clone(),
        params,
        cutoff: args.cutoff.clone(),
        weighting: args.weighting.clone(),
        max_iters: args.max_iters,
        max_seconds: args.max_seconds,
        target_loss: args.target_loss,
        overfit_stop: args.no_overfit_stop.then_some(false),
        restarts: args.no_restarts.then_some(false),
        seed: args.seed,
        eval_every: args.eval_every,
        resample_every: args.resample_every,
        resample: args.resample.clone(),
        resample_points: args.resample_points,
        save_models_at: (!args.save_models_at.is_empty()).then(|| args.save_models_at.clone()),
        checkpoint_seconds: args.checkpoint_seconds,
        checkpoint_every: args.checkpoint_every,
        threads: args.run.threads,
        device: args.run.device.clone(),
        out: args.out.clone(),
        force: args.force,
    })
}

pub(crate) fn resume(args: &SolveArgs, dir: &std::path::Path) -> anyhow::Result<Termination> {
    let device = args.run.device.as_deref().map(Device::parse).transpose()?;
    let options = overrides(args)?;
    let outcome = RunSpec::resume(
        dir,
        |budget, compute| {
            options.apply_budget(budget);
            if let Some(t) = args.run.threads {
                compute.threads = t;
            }
            if let Some(d) = device {
                compute.device = d;
            }
        },
        (!args.run.quiet()).then_some(100),
        Some(stop_on_signals()?),
        None,
    )
    .with_context(|| format!("resuming {}", dir.display()))?;
    if !args.run.quiet() {
        eprintln!("wrote {}", dir.display());
    }
    Ok(outcome.termination)
}

pub(crate) fn solve(args: SolveArgs) -> anyhow::Result<Solved> {
    if let Some(dir) = &args.resume {
        return resume(&args, dir).map(|t| Some((t, dir.clone())));
    }
    let options = overrides(&args)?;
    let mut spec = match &args.config {
        Some(path) => options.config_run(&RunConfig::read(path)?, FRONT_END_COMPUTE)?,
        None => {
            let problem = args
                .problem
                .clone()
                .expect("clap requires a problem without --resume or --config");
            let preset = match &args.preset {
                Some(p) => Preset::parse(p)?,
                None => Preset::Default,
            };
            options.catalogue_run(&problem, preset, FRONT_END_COMPUTE)?
        }
    };
    if args.print_config {
        print!("{}", RunConfig::from_spec(&spec)?.to_toml());
        return Ok(None);
    }
    spec.progress_every = (!args.run.quiet()).then_some(100);
    spec.stop = Some(stop_on_signals()?);
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
pub(crate) fn summary_line(
    problem: &str,
    o: &natgrad::train::Outcome,
    out: &std::path::Path,
) -> String {
    let errors = o
        .metrics
        .map(|m| format!(", l2_abs {:.3e}, l2_rel {:.3e}", m.l2_abs, m.l2_rel))
        .unwrap_or_default();
    let warning = o
        .overfitting()
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
