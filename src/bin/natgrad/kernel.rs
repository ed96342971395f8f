//! `natgrad kernel`: NTK, operator-NTK and Green's-function maps of a run's model.

use std::path::PathBuf;

use anyhow::Context;
use natgrad::optim::Cutoff;
use natgrad::report::RunData;
use natgrad::report::figures::Iterate;
use natgrad::report::kernel_map::{KernelKind, KernelRequest, kernel_map};

use crate::write_file;

#[derive(clap::Args)]
pub(crate) struct KernelArgs {
    /// A run directory (`summary.json` and `model.json`).
    dir: PathBuf,
    /// `ntk`, `operator-ntk` (the interior operator's) or `green` (the
    /// natural gradient's Green's function on the run's training points).
    #[arg(long)]
    kind: String,
    /// The point x, comma-separated coordinates inside the domain, e.g. `0.5,0.5`.
    #[arg(
        long,
        value_delimiter = ',',
        allow_negative_numbers = true,
        required = true
    )]
    at: Vec<f64>,
    /// The two coordinate axes of the map (other coordinates are x's).
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    axes: Vec<usize>,
    /// Grid points per axis.
    #[arg(long, default_value_t = 80)]
    grid: usize,
    /// Cutoff of the Green's function: a number (absolute), `rel:X` or
    /// `default` [default: the run's ANaGRAM cutoff, else `default`].
    #[arg(long)]
    cutoff: Option<String>,
    /// Which iterate: `final` (model.json), `best` (best_model.json) or
    /// `iter:N` (model-N.json, saved by `solve --save-models-at`).
    #[arg(long, default_value = "final")]
    model: String,
    /// Output PNG [default: `kernel-<kind>.png` in the run directory].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the map as CSV (the two coordinates and the value per grid point).
    #[arg(long)]
    csv: Option<PathBuf>,
}

pub(crate) fn kernel(args: KernelArgs) -> anyhow::Result<()> {
    let kind = KernelKind::parse(&args.kind)?;
    let [a, b] = args.axes[..] else {
        anyhow::bail!("--axes takes two axes, e.g. `0,1`; got {:?}", args.axes);
    };
    let cutoff = args.cutoff.as_deref().map(Cutoff::parse).transpose()?;
    let run = RunData::read(&args.dir)
        .with_context(|| format!("reading run directory {}", args.dir.display()))?;
    let which = Iterate::parse(&args.model)?;
    let request = KernelRequest {
        kind,
        at: args.at.clone(),
        axes: (a, b),
        n: args.grid,
        cutoff,
    };
    let map = kernel_map(&run, which, request)?;
    let out = args
        .out
        .unwrap_or_else(|| args.dir.join(format!("kernel-{}.png", kind.name())));
    map.draw(&out, &map.title(&run, which))
        .with_context(|| format!("drawing {}", out.display()))?;
    println!("{}", out.display());
    if let Some(csv) = &args.csv {
        write_file(csv, &map.to_csv())?;
        println!("{}", csv.display());
    }
    Ok(())
}
