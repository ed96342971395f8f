//! `natgrad eval`: a saved model at points from a CSV file.

use std::path::PathBuf;

use anyhow::Context;

use crate::write_file;

#[derive(clap::Args)]
pub(crate) struct EvalArgs {
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
pub(crate) fn read_points(path: &std::path::Path, dim: usize) -> anyhow::Result<Vec<f64>> {
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

pub(crate) fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let model = natgrad::train::TrainedModel::load(&args.model)?;
    let points = read_points(&args.points, model.input_dim())?;
    let ev = model.evaluate(&points, args.derivatives)?;
    match &args.out {
        Some(p) => write_file(p, &ev.to_csv())?,
        None => print!("{}", ev.to_csv()),
    }
    Ok(())
}
