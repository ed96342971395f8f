//! Observers of the training loop: progress on stderr, `history.csv`,
//! `summary.json` and `model.json`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{IterRecord, Outcome, Termination};
use crate::error::{Error, Result};
use crate::model::{Mlp, SavedModel};

/// Something that watches a run.
pub trait Observer {
    /// Called once before the first record, with the optimiser's extra column names.
    fn start(&mut self, _extra_columns: &[&str]) -> Result<()> {
        Ok(())
    }
    /// Called for the initial θ (iteration 0) and after every step.
    fn iteration(&mut self, record: &IterRecord) -> Result<()>;
    /// Called right after [`Observer::iteration`] with θ at that iteration
    /// (for observers that keep parameters, e.g. [`ModelSnapshots`]).
    fn parameters(&mut self, _iter: usize, _theta: &[f64]) -> Result<()> {
        Ok(())
    }
    /// Called once when the run ends.
    fn finish(&mut self, _outcome: &Outcome) -> Result<()> {
        Ok(())
    }
    /// Push buffered output to disk (before a checkpoint is written).
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    /// The collocation points were redrawn after iteration `iter`; `loss` is
    /// the loss at the same θ on the new points.
    fn resampled(&mut self, _iter: usize, _loss: f64) -> Result<()> {
        Ok(())
    }
    /// The run restarted after iteration `iter` ([`super::Restarts`]): try
    /// number `attempt` (2 for the first restart) starts from a fresh
    /// initialisation whose loss is `loss`.
    fn restarted(&mut self, _iter: usize, _attempt: usize, _loss: f64) -> Result<()> {
        Ok(())
    }
}

/// A borrowed observer observes too, so that the caller keeps what it
/// collected: `trainer.observe(&mut my_log)`.
impl<O: Observer + ?Sized> Observer for &mut O {
    fn start(&mut self, extra_columns: &[&str]) -> Result<()> {
        (**self).start(extra_columns)
    }
    fn iteration(&mut self, record: &IterRecord) -> Result<()> {
        (**self).iteration(record)
    }
    fn parameters(&mut self, iter: usize, theta: &[f64]) -> Result<()> {
        (**self).parameters(iter, theta)
    }
    fn finish(&mut self, outcome: &Outcome) -> Result<()> {
        (**self).finish(outcome)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn resampled(&mut self, iter: usize, loss: f64) -> Result<()> {
        (**self).resampled(iter, loss)
    }
    fn restarted(&mut self, iter: usize, attempt: usize, loss: f64) -> Result<()> {
        (**self).restarted(iter, attempt, loss)
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3e}")).unwrap_or_else(|| "-".into())
}

/// Progress on stderr. On a terminal: one live status line, redrawn at most
/// ten times a second, with a bar of the budget used (the larger of the
/// iteration and time fractions, see [`Progress::with_budget`]). Otherwise
/// (a file, a pipe, CI): a plain line every `every` iterations and at least
/// every two seconds. Either way a summary table at the end: termination,
/// iterations, training time, loss and errors.
pub struct Progress {
    every: usize,
    last: Option<Instant>,
    started: Instant,
    last_l2: Option<f64>,
    live: bool,
    budget: Option<(usize, f64)>,
    /// Consecutive steps of size zero (or without a loss decrease), and the last loss.
    idle: usize,
    last_loss: Option<f64>,
}

impl Progress {
    /// Print every `every` iterations (and at least every 2 s); live on a terminal.
    pub fn new(every: usize) -> Self {
        use std::io::IsTerminal;
        Progress {
            every: every.max(1),
            last: None,
            started: Instant::now(),
            last_l2: None,
            live: std::io::stderr().is_terminal(),
            budget: None,
            idle: 0,
            last_loss: None,
        }
    }

    /// Show the fraction of this budget used in the live bar.
    pub fn with_budget(mut self, max_iters: usize, max_seconds: f64) -> Self {
        self.budget = Some((max_iters, max_seconds));
        self
    }

    /// Force plain lines (`false`) or the live line (`true`).
    pub fn live(mut self, live: bool) -> Self {
        self.live = live;
        self
    }

    fn line(&self, r: &IterRecord) -> String {
        let idle = if self.idle >= 10 {
            format!("  (no progress for {} iterations)", self.idle)
        } else {
            String::new()
        };
        format!(
            "iter {:>6}  loss {:.3e}  l2_abs {:>9}  rank {:>5}  step {:>9}  train {:>7.2}s  wall {:>7.2}s{idle}",
            r.iter,
            r.loss,
            fmt_opt(self.last_l2),
            r.rank.map(|k| k.to_string()).unwrap_or_else(|| "-".into()),
            fmt_opt(r.step_size),
            r.time_s,
            self.started.elapsed().as_secs_f64()
        )
    }

    /// `[#####.....]  42%` of the budget, or nothing without one.
    fn bar(&self, r: &IterRecord) -> String {
        let Some((iters, secs)) = self.budget else {
            return String::new();
        };
        let by_iters = if iters == usize::MAX {
            0.0
        } else {
            r.iter as f64 / iters.max(1) as f64
        };
        let f = by_iters.max(r.time_s / secs).clamp(0.0, 1.0);
        let n = (f * 20.0).round() as usize;
        format!(
            "[{}{}] {:>3.0}%  ",
            "#".repeat(n),
            ".".repeat(20 - n),
            100.0 * f
        )
    }
}

impl Observer for Progress {
    fn iteration(&mut self, r: &IterRecord) -> Result<()> {
        if let Some(m) = r.metrics {
            self.last_l2 = Some(m.l2_abs);
        }
        let progress = r.step_size != Some(0.0) && self.last_loss.is_none_or(|l| r.loss < l);
        self.idle = if progress || r.iter == 0 {
            0
        } else {
            self.idle + 1
        };
        self.last_loss = Some(r.loss);
        let since = self.last.map(|t| t.elapsed().as_secs_f64());
        if self.live {
            if since.is_none_or(|s| s >= 0.1) {
                eprint!("\r{}{}\x1b[K", self.bar(r), self.line(r));
                self.last = Some(Instant::now());
            }
        } else if r.iter.is_multiple_of(self.every) || since.is_none_or(|s| s >= 2.0) {
            eprintln!("{}", self.line(r));
            self.last = Some(Instant::now());
        }
        Ok(())
    }

    fn resampled(&mut self, iter: usize, loss: f64) -> Result<()> {
        let clear = if self.live { "\r\x1b[K" } else { "" };
        eprintln!(
            "{clear}iter {iter}: collocation points redrawn, loss on the new points {loss:.3e}"
        );
        Ok(())
    }

    fn restarted(&mut self, iter: usize, attempt: usize, loss: f64) -> Result<()> {
        let clear = if self.live { "\r\x1b[K" } else { "" };
        eprintln!(
            "{clear}iter {iter}: not converged; try {attempt} starts from a fresh initialisation (loss {loss:.3e})"
        );
        Ok(())
    }

    fn finish(&mut self, o: &Outcome) -> Result<()> {
        if self.live {
            eprintln!();
        }
        let m = o.metrics;
        eprintln!("done: {}", o.termination);
        for (k, v) in [
            ("iterations", o.iters.to_string()),
            ("training time", format!("{:.2} s", o.time_s)),
            (
                "wall time",
                format!("{:.2} s", self.started.elapsed().as_secs_f64()),
            ),
            ("loss", format!("{:.3e}", o.loss)),
            ("held-out loss", fmt_opt(o.heldout_loss)),
            ("l2_abs", fmt_opt(m.map(|m| m.l2_abs))),
            ("l2_rel", fmt_opt(m.map(|m| m.l2_rel))),
            ("linf", fmt_opt(m.map(|m| m.linf))),
        ] {
            eprintln!("  {k:<14} {v}");
        }
        if !o.restarts.is_empty() {
            let at: Vec<String> = o.restarts.iter().map(|i| i.to_string()).collect();
            eprintln!("  restarted      after iteration {}", at.join(", "));
        }
        if let Some(b) = o.best.as_ref().filter(|b| b.iter != o.iters) {
            eprintln!(
                "  best iterate   {} (held-out loss {:.3e}, l2_abs {}): best_model.json",
                b.iter,
                b.heldout_loss,
                fmt_opt(b.l2_abs)
            );
        }
        if let Some(w) = o.overfitting() {
            eprintln!("warning: {w}");
        }
        Ok(())
    }
}

/// Writes `history.csv`: `iter,time_s,loss,l2_abs,l2_rel,linf,rank,step_size,heldout_loss`
/// followed by the optimiser's extra columns; error and held-out columns are
/// empty on iterations where they were not evaluated.
pub struct HistoryCsv {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    append: bool,
}

/// Open `path` for appending (a resumed run), or create it.
fn open_append(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

impl HistoryCsv {
    /// Write to `path` (created or truncated at the start of the run).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        HistoryCsv {
            path: path.into(),
            out: None,
            append: false,
        }
    }

    /// Append to the existing `path` without a header (a resumed run).
    pub fn append(path: impl Into<PathBuf>) -> Self {
        HistoryCsv {
            append: true,
            ..Self::new(path)
        }
    }

    fn write(&mut self, line: String) -> Result<()> {
        let out = self.out.as_mut().expect("started");
        writeln!(out, "{line}").map_err(|e| Error::io(&self.path, e))
    }
}

fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x:e}")).unwrap_or_default()
}

impl Observer for HistoryCsv {
    fn start(&mut self, extra: &[&str]) -> Result<()> {
        if self.append {
            self.out = Some(BufWriter::new(open_append(&self.path)?));
            return Ok(());
        }
        let f = File::create(&self.path).map_err(|e| Error::io(&self.path, e))?;
        self.out = Some(BufWriter::new(f));
        let mut header =
            "iter,time_s,loss,l2_abs,l2_rel,linf,rank,step_size,heldout_loss".to_string();
        for c in extra {
            header.push(',');
            header.push_str(c);
        }
        self.write(header)
    }

    fn iteration(&mut self, r: &IterRecord) -> Result<()> {
        let mut line = format!(
            "{},{:e},{:e},{},{},{},{},{},{}",
            r.iter,
            r.time_s,
            r.loss,
            cell(r.metrics.map(|m| m.l2_abs)),
            cell(r.metrics.map(|m| m.l2_rel)),
            cell(r.metrics.map(|m| m.linf)),
            r.rank.map(|k| k.to_string()).unwrap_or_default(),
            cell(r.step_size),
            cell(r.heldout_loss),
        );
        for v in &r.extra {
            line.push(',');
            if v.is_finite() {
                line.push_str(&format!("{v:e}"));
            }
        }
        self.write(line)
    }

    fn finish(&mut self, _o: &Outcome) -> Result<()> {
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(out) = self.out.as_mut() {
            out.flush().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}

/// Writes `spectra.csv` (only for methods that report a spectrum), one row per singular value at every iteration
/// whose record carries a [`Spectrum`](crate::optim::Spectrum) (the logged
/// iterations): `iter,n,sigma,rce,sqrt_loss,kept,kept_wide,rank1,rank2,precision`.
/// Row `n = 0` has an empty `sigma` and `rce` = RMS of the whole residual;
/// row `n ≥ 1` has σ_n and the RCE after n components. The per-iteration
/// columns repeat on each row, so the file is ready for plotting tools.
pub struct SpectraCsv {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    append: bool,
}

impl SpectraCsv {
    /// Write to `path` (created or truncated at the start of the run).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SpectraCsv {
            path: path.into(),
            out: None,
            append: false,
        }
    }

    /// Append to `path` if it exists (a resumed run), else create it.
    pub fn append(path: impl Into<PathBuf>) -> Self {
        SpectraCsv {
            append: true,
            ..Self::new(path)
        }
    }
}

impl Observer for SpectraCsv {
    fn iteration(&mut self, r: &IterRecord) -> Result<()> {
        let Some(sp) = &r.spectrum else {
            return Ok(());
        };
        if self.out.is_none() && self.append && self.path.exists() {
            self.out = Some(BufWriter::new(open_append(&self.path)?));
        }
        if self.out.is_none() {
            // Created on the first spectrum: methods without one write no file.
            let f = File::create(&self.path).map_err(|e| Error::io(&self.path, e))?;
            let mut out = BufWriter::new(f);
            writeln!(
                out,
                "iter,n,sigma,rce,sqrt_loss,kept,kept_wide,rank1,rank2,precision"
            )
            .map_err(|e| Error::io(&self.path, e))?;
            self.out = Some(out);
        }
        let out = self.out.as_mut().expect("opened above");
        let opt = |v: Option<usize>| v.map(|k| k.to_string()).unwrap_or_default();
        let tail = format!(
            "{:e},{},{},{},{},{}",
            sp.sqrt_loss,
            sp.kept,
            opt(sp.kept_wide),
            opt(sp.rank1),
            opt(sp.rank2),
            cell(sp.precision)
        );
        for (n, rce) in sp.rce.iter().enumerate() {
            let sigma = if n == 0 {
                String::new()
            } else {
                format!("{:e}", sp.singular_values[n - 1])
            };
            writeln!(out, "{},{n},{sigma},{rce:e},{tail}", r.iter)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    fn finish(&mut self, _o: &Outcome) -> Result<()> {
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(out) = self.out.as_mut() {
            out.flush().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}

/// What a run was: recorded in `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    /// Problem name.
    pub problem: String,
    /// Optimiser name.
    pub optimizer: String,
    /// Seed of the initialisation.
    pub seed: u64,
    /// Number of parameters P.
    pub params: usize,
    /// Number of residual rows S.
    pub samples: usize,
    /// The full effective configuration (optimiser settings, budget, …).
    pub config: serde_json::Value,
    /// The hard-constraint output transform `u = g + ψ·N_θ`, if the problem has one.
    pub output_transform: Option<String>,
}

#[derive(Serialize)]
struct Summary<'a> {
    problem: &'a str,
    optimizer: &'a str,
    seed: u64,
    params: usize,
    samples: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_transform: Option<&'a str>,
    iters: usize,
    time_s: f64,
    loss: f64,
    l2_abs: Option<f64>,
    l2_rel: Option<f64>,
    linf: Option<f64>,
    termination: &'a Termination,
    termination_message: String,
    heldout_loss: Option<f64>,
    /// Held-out over training loss.
    heldout_ratio: Option<f64>,
    /// The held-out loss of the initial θ.
    initial_heldout_loss: Option<f64>,
    /// Set when the ratio is above [`super::OVERFIT_RATIO`] and the held-out
    /// loss above [`super::OVERFIT_FLOOR`] × the initial one.
    #[serde(skip_serializing_if = "Option::is_none")]
    overfitting: Option<String>,
    /// The evaluated iterate with the lowest held-out loss (`best_model.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    best: Option<BestSummary>,
    /// The iterations after which the run restarted ([`super::Restarts`]).
    #[serde(skip_serializing_if = "<[usize]>::is_empty")]
    restarts: &'a [usize],
    config: &'a serde_json::Value,
}

/// [`super::BestIterate`] without θ.
#[derive(Serialize)]
struct BestSummary {
    iter: usize,
    loss: f64,
    heldout_loss: f64,
    l2_abs: Option<f64>,
    l2_rel: Option<f64>,
    linf: Option<f64>,
}

/// Writes `summary.json` and `model.json` into a run directory when the run ends.
pub struct RunFiles {
    dir: PathBuf,
    info: RunInfo,
    mlp: Mlp,
}

impl RunFiles {
    /// Write into `dir` (which must exist).
    pub fn new(dir: impl AsRef<Path>, info: RunInfo, mlp: Mlp) -> Self {
        RunFiles {
            dir: dir.as_ref().to_path_buf(),
            info,
            mlp,
        }
    }
}

impl Observer for RunFiles {
    fn iteration(&mut self, _r: &IterRecord) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self, o: &Outcome) -> Result<()> {
        let finite = |v: f64| v.is_finite().then_some(v);
        let s = Summary {
            problem: &self.info.problem,
            optimizer: &self.info.optimizer,
            seed: self.info.seed,
            params: self.info.params,
            samples: self.info.samples,
            output_transform: self.info.output_transform.as_deref(),
            iters: o.iters,
            time_s: o.time_s,
            loss: o.loss,
            l2_abs: o.metrics.and_then(|m| finite(m.l2_abs)),
            l2_rel: o.metrics.and_then(|m| finite(m.l2_rel)),
            linf: o.metrics.and_then(|m| finite(m.linf)),
            termination: &o.termination,
            termination_message: o.termination.to_string(),
            heldout_loss: o.heldout_loss.and_then(finite),
            heldout_ratio: o.heldout_loss.map(|h| h / o.loss.max(f64::MIN_POSITIVE)),
            initial_heldout_loss: o.initial_heldout_loss.and_then(finite),
            overfitting: o.overfitting(),
            best: o.best.as_ref().map(|b| BestSummary {
                iter: b.iter,
                loss: b.loss,
                heldout_loss: b.heldout_loss,
                l2_abs: b.l2_abs.and_then(finite),
                l2_rel: b.l2_rel.and_then(finite),
                linf: b.linf.and_then(finite),
            }),
            restarts: &o.restarts,
            config: &self.info.config,
        };
        let path = self.dir.join("summary.json");
        let text = serde_json::to_string_pretty(&s).expect("summary serialises");
        std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))?;
        let save = |theta: &[f64], file: &str| {
            let mut model = SavedModel::new(&self.mlp, theta);
            model.output_transform = self.info.output_transform.clone();
            model.problem = Some(self.info.problem.clone());
            model.save(self.dir.join(file))
        };
        if let Some(b) = &o.best {
            save(&b.theta, "best_model.json")?;
        }
        save(&o.theta, "model.json")
    }
}

/// Saves the model at chosen iterations as `model-<iter>.json` in a run
/// directory (the format of `model.json`), so that kernels and spectra can be
/// drawn along the way (`natgrad kernel --model iter:N`).
pub struct ModelSnapshots {
    dir: PathBuf,
    mlp: Mlp,
    at: Vec<usize>,
}

impl ModelSnapshots {
    /// Snapshots of `mlp` at the iterations `at` into `dir`.
    pub fn new(dir: impl Into<PathBuf>, mlp: Mlp, at: Vec<usize>) -> Self {
        ModelSnapshots {
            dir: dir.into(),
            mlp,
            at,
        }
    }

    /// The file of the snapshot at `iter`.
    pub fn file(iter: usize) -> String {
        format!("model-{iter}.json")
    }
}

impl Observer for ModelSnapshots {
    fn iteration(&mut self, _record: &IterRecord) -> Result<()> {
        Ok(())
    }
    fn parameters(&mut self, iter: usize, theta: &[f64]) -> Result<()> {
        if self.at.contains(&iter) {
            SavedModel::new(&self.mlp, theta).save(self.dir.join(Self::file(iter)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The live bar shows the larger of the iteration and time fractions.
    #[test]
    fn progress_bar_fraction() {
        let p = Progress::new(1).live(true).with_budget(100, 10.0);
        let r = |iter, time_s| IterRecord {
            iter,
            time_s,
            loss: 1.0,
            metrics: None,
            rank: None,
            step_size: None,
            extra: vec![],
            spectrum: None,
            heldout_loss: None,
        };
        assert_eq!(p.bar(&r(50, 1.0)), "[##########..........]  50%  ");
        assert_eq!(p.bar(&r(10, 7.5)), "[###############.....]  75%  ");
        assert_eq!(p.bar(&r(500, 1.0)), "[####################] 100%  ");
        let unlimited = Progress::new(1).with_budget(usize::MAX, 4.0);
        assert_eq!(
            unlimited.bar(&r(10_000, 1.0)),
            "[#####...............]  25%  "
        );
        assert_eq!(Progress::new(1).bar(&r(1, 1.0)), "");
    }

    /// After ten iterations without a loss decrease (or with zero steps) the
    /// progress line says so.
    #[test]
    fn progress_line_flags_idle_iterations() {
        let mut p = Progress::new(1000).live(false);
        let rec = |iter: usize, loss: f64, step: f64| IterRecord {
            iter,
            time_s: 0.0,
            loss,
            metrics: None,
            rank: None,
            step_size: Some(step),
            extra: vec![],
            spectrum: None,
            heldout_loss: None,
        };
        p.iteration(&rec(0, 1.0, 0.0)).unwrap();
        p.iteration(&rec(1, 0.5, 1.0)).unwrap();
        for k in 2..14 {
            p.iteration(&rec(k, 0.5, 0.0)).unwrap();
        }
        assert!(
            p.line(&rec(14, 0.5, 0.0))
                .contains("(no progress for 12 iterations)")
        );
        p.iteration(&rec(14, 0.4, 1.0)).unwrap();
        assert!(!p.line(&rec(15, 0.4, 1.0)).contains("no progress"));
    }
}
