//! `natgrad plot`: figures from run directories.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub(crate) struct PlotArgs {
    /// Run directories (each with `summary.json` and `history.csv`).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Iterations of the spectrum figures (default: first, middle and last logged).
    #[arg(long, value_delimiter = ',')]
    iters: Vec<usize>,
    /// Output directory (default: the run directory when there is one, else `runs/plots`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Which iterate the solution map shows: `final` (model.json, solution.png),
    /// `best` (best_model.json, the lowest held-out loss; solution-best.png) or
    /// `iter:N` (model-N.json of `solve --save-models-at`; solution-iterN.png).
    #[arg(long, default_value = "final")]
    model: String,
}

pub(crate) fn plot(args: PlotArgs) -> anyhow::Result<()> {
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
    let metric = natgrad::train::Benchmark::of(&runs[0].problem)
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
        let which = natgrad::report::figures::Iterate::parse(&args.model)?;
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
