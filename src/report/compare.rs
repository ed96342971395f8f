//! `natgrad compare`: several optimisers on one problem, side by side —
//! one Markdown table and the error/loss curves of every run on one plot.

use std::fmt::Write;
#[cfg(feature = "plots")]
use std::path::{Path, PathBuf};

use super::bench::{BenchRow, THRESHOLDS, sci, secs};
#[cfg(feature = "plots")]
use super::figures::{RunData, curve_figures};
#[cfg(feature = "plots")]
use crate::error::Result;
use crate::optim::OptimizerConfig;

/// The comparison table: one row per run (optimiser × seed) with the final
/// loss and errors, the training time at which the problem's metric first
/// reached 1e-4, 1e-8 and 1e-12, and below it the exact settings of each
/// case (`settings`: its [`BenchRow::setup`] label and optimiser).
/// `preamble` (the command, the machine) goes first.
pub fn markdown(
    rows: &[BenchRow],
    settings: &[(String, OptimizerConfig)],
    preamble: &str,
) -> String {
    let mut s = String::new();
    let problem = rows.first().map_or("", |r| r.problem.as_str());
    let _ = writeln!(s, "# natgrad compare: {problem}\n\n{preamble}\n");
    let metric = rows.first().map_or("l2_abs", |r| r.metric.column());
    let _ = writeln!(
        s,
        "Times are training time in seconds (error evaluation excluded) when {metric} first reached \
         the level, at the evaluated iterations; `–`: not reached. Sorted by final {metric}.\n"
    );
    let th: Vec<String> = THRESHOLDS.iter().map(|t| format!("t({t:.0e})")).collect();
    let _ = writeln!(
        s,
        "| optimizer | seed | iters | time_s | loss | l2_abs | l2_rel | {} | termination |",
        th.join(" | ")
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|{}---|",
        "---|".repeat(th.len())
    );
    let mut order: Vec<&BenchRow> = rows.iter().collect();
    order.sort_by(|a, b| a.error().total_cmp(&b.error()));
    for r in order {
        let times: Vec<String> = r.time_to.iter().map(|t| secs(*t)).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
            r.setup(),
            r.seed,
            r.iters,
            r.time_s,
            sci(r.loss),
            sci(r.l2_abs),
            sci(r.l2_rel),
            times.join(" | "),
            r.termination
        );
    }
    let _ = writeln!(
        s,
        "\n## Settings (a preset's optimiser; a named optimiser: the problem's presets' settings of it if one uses it, else its documented defaults)\n"
    );
    let mut listed: Vec<&str> = Vec::new();
    for (label, c) in settings {
        if listed.contains(&label.as_str()) {
            continue;
        }
        listed.push(label);
        let json = serde_json::to_string(c).expect("configs serialise");
        let _ = writeln!(s, "- `{label}`: `{json}`");
    }
    s
}

/// The four curve figures of a comparison (see [`curve_figures`]) for the
/// run directories of `rows`, written into `out` (feature `plots`).
#[cfg(feature = "plots")]
pub fn figures(rows: &[BenchRow], out: &Path) -> Result<Vec<PathBuf>> {
    let runs = rows
        .iter()
        .map(|r| RunData::read(&r.run_dir))
        .collect::<Result<Vec<_>>>()?;
    let Some(first) = rows.first() else {
        return Ok(vec![]);
    };
    curve_figures(&runs, out, &first.problem, first.metric.column())
}
