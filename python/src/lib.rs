//! `natgrad._natgrad`: the compiled half of the Python package.
//!
//! The Python half (`python/natgrad/__init__.py`) turns keyword arguments
//! into JSON, draws the progress bar and reads the run directory back; this
//! half builds the run with the library's own option handling
//! ([`natgrad::train::Overrides`], so errors read as on the command line),
//! trains with the interpreter released, and evaluates saved models.
//!
//! While a run trains, the calling thread checks for signals (Ctrl-C) at
//! every iteration; a signal, or an exception raised by the callback, stops
//! the run at the end of its step with its checkpoint written, and is then
//! raised to the caller.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use natgrad::train::{
    FRONT_END_COMPUTE, IterRecord, Observer, Outcome, Overrides, Preset, RunConfig, RunSpec,
    TrainedModel,
};

create_exception!(
    natgrad,
    ConfigError,
    PyValueError,
    "A run description, an option or an input that natgrad cannot accept (the message names it)."
);
create_exception!(
    natgrad,
    NatgradError,
    PyRuntimeError,
    "A failure inside natgrad (linear algebra, device, memory)."
);

/// The library's error as the Python exception of its kind.
fn py_err(e: natgrad::Error) -> PyErr {
    use natgrad::Error as E;
    let msg = e.to_string();
    match e {
        E::InvalidConfig { .. } | E::UnknownName { .. } | E::Parse { .. } => {
            ConfigError::new_err(msg)
        }
        E::DimensionMismatch { .. } => PyValueError::new_err(msg),
        E::Io { .. } => PyOSError::new_err(msg),
        _ => NatgradError::new_err(msg),
    }
}

/// The catalogue's problem names.
#[pyfunction]
fn problems() -> Vec<&'static str> {
    natgrad::train::catalogue::CATALOGUE
        .iter()
        .map(|e| e.name)
        .collect()
}

/// One-line description of each catalogue problem, by name.
#[pyfunction]
fn problem_summaries() -> Vec<(&'static str, &'static str)> {
    natgrad::train::catalogue::CATALOGUE
        .iter()
        .map(|e| (e.name, e.summary))
        .collect()
}

/// The optimiser names, with a one-line description each.
#[pyfunction]
fn optimizers() -> Vec<(&'static str, &'static str)> {
    natgrad::optim::OPTIMIZERS.to_vec()
}

/// A checked run description, ready to train.
#[pyclass(module = "natgrad._natgrad")]
struct Run {
    spec: RunSpec,
}

/// Build a run: a catalogue `problem` (with `preset`), a TOML file
/// `config_path`, or a configuration given as JSON text (`config_json`,
/// the same schema); `options_json` holds the options
/// ([`Overrides`], the command line's flags). The run directory is the
/// options' `out`, else the configuration's, else `fallback_out`, else
/// the command line's default (`runs/<problem>-<optimizer>-<seed>`).
#[pyfunction]
#[pyo3(signature = (problem, preset, config_path, config_json, options_json, fallback_out))]
fn prepare(
    problem: Option<String>,
    preset: Option<String>,
    config_path: Option<PathBuf>,
    config_json: Option<String>,
    options_json: &str,
    fallback_out: Option<PathBuf>,
) -> PyResult<Run> {
    let options = Overrides::from_json(options_json).map_err(py_err)?;
    let config = match (config_path, config_json) {
        (Some(path), None) => Some(RunConfig::read(&path).map_err(py_err)?),
        (None, Some(json)) => Some(RunConfig::from_json(&json, "the config dict").map_err(py_err)?),
        (None, None) => None,
        (Some(_), Some(_)) => unreachable!("the Python side passes one of them"),
    };
    let dir_given =
        options.out.is_some() || config.as_ref().is_some_and(|c| c.output.dir.is_some());
    let mut spec = match (config, problem) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new_err(
                "give a problem name or a config, not both",
            ));
        }
        (Some(_), None) if preset.is_some() => {
            return Err(ConfigError::new_err(
                "`preset` applies to catalogue problems; a config sets its optimiser itself",
            ));
        }
        (Some(cfg), None) => options.config_run(&cfg, FRONT_END_COMPUTE),
        (None, Some(name)) => {
            let preset = match preset {
                Some(p) => Preset::parse(&p).map_err(py_err)?,
                None => Preset::Default,
            };
            options.catalogue_run(&name, preset, FRONT_END_COMPUTE)
        }
        (None, None) => {
            return Err(ConfigError::new_err(
                "give a problem name (see natgrad.problems()) or config=…",
            ));
        }
    }
    .map_err(py_err)?;
    if !dir_given && fallback_out.is_some() {
        spec.out = fallback_out;
    }
    Ok(Run { spec })
}

#[pymethods]
impl Run {
    /// The run directory.
    #[getter]
    fn out(&self) -> Option<PathBuf> {
        self.spec.out.clone()
    }

    /// The iteration limit (None: none).
    #[getter]
    fn max_iters(&self) -> Option<usize> {
        (self.spec.budget.max_iters != usize::MAX).then_some(self.spec.budget.max_iters)
    }

    /// The time limit in seconds (None: none).
    #[getter]
    fn max_seconds(&self) -> Option<f64> {
        self.spec
            .budget
            .max_seconds
            .is_finite()
            .then_some(self.spec.budget.max_seconds)
    }

    /// The problem's name.
    #[getter]
    fn problem(&self) -> String {
        self.spec.problem.clone()
    }

    /// The optimiser's name.
    #[getter]
    fn optimizer(&self) -> String {
        self.spec.optimizer.name().to_string()
    }

    /// The full effective configuration as TOML (what `natgrad solve
    /// --print-config` prints).
    fn config_toml(&self) -> PyResult<String> {
        Ok(RunConfig::from_spec(&self.spec).map_err(py_err)?.to_toml())
    }

    /// Train, writing the run directory. `callback(iter, time_s, loss,
    /// theta)` is called every `theta_every` iterations with θ and at most
    /// every 0.1 s without it (None); `progress_lines` prints the library's
    /// status line on standard error. Returns what ended the run.
    #[pyo3(signature = (callback, theta_every, progress_lines))]
    fn run(
        &self,
        py: Python<'_>,
        callback: Option<Py<PyAny>>,
        theta_every: usize,
        progress_lines: bool,
    ) -> PyResult<String> {
        let mut spec = self.spec.clone();
        let stop = Arc::new(AtomicBool::new(false));
        spec.stop = Some(stop.clone());
        spec.progress_every = progress_lines.then_some(100);
        let mut hook = Hook::new(callback, theta_every, stop);
        let outcome = py.detach(|| spec.run_observed(&mut hook));
        hook.finish_run(outcome)
    }
}

/// Continue the run in `dir` from its checkpoint; `options_json` may
/// change the budget, threads and device (other options are the run's own).
#[pyfunction]
#[pyo3(signature = (dir, options_json, callback, theta_every, progress_lines))]
fn resume(
    py: Python<'_>,
    dir: PathBuf,
    options_json: &str,
    callback: Option<Py<PyAny>>,
    theta_every: usize,
    progress_lines: bool,
) -> PyResult<String> {
    let options = Overrides::from_json(options_json).map_err(py_err)?;
    let unchangeable = Overrides {
        max_iters: None,
        max_seconds: None,
        target_loss: None,
        overfit_stop: None,
        threads: None,
        device: None,
        ..options.clone()
    };
    if unchangeable != Overrides::default() {
        return Err(ConfigError::new_err(
            "resume takes only max_iters, max_seconds, target_loss, overfit_stop, threads and \
             device: the other settings are the run's own",
        ));
    }
    let device = options
        .device
        .as_deref()
        .map(natgrad::linalg::Device::parse)
        .transpose()
        .map_err(py_err)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut hook = Hook::new(callback, theta_every, stop.clone());
    let outcome = py.detach(|| {
        RunSpec::resume(
            &dir,
            |budget, compute| {
                options.apply_budget(budget);
                if let Some(t) = options.threads {
                    compute.threads = t;
                }
                if let Some(d) = device {
                    compute.device = d;
                }
            },
            progress_lines.then_some(100),
            Some(stop),
            Some(&mut hook),
        )
    });
    hook.finish_run(outcome)
}

/// The observer that connects a run to the interpreter: signal checks at
/// every iteration, the callback, and the first Python error, which stops
/// the run.
struct Hook {
    callback: Option<Py<PyAny>>,
    theta_every: usize,
    stop: Arc<AtomicBool>,
    error: Option<PyErr>,
    last_call: Option<Instant>,
    /// The record of the iteration whose θ comes next (`parameters`).
    pending: Option<(usize, f64, f64)>,
}

/// Least time between two callbacks without θ.
const CALLBACK_INTERVAL: Duration = Duration::from_millis(100);

impl Hook {
    fn new(callback: Option<Py<PyAny>>, theta_every: usize, stop: Arc<AtomicBool>) -> Self {
        Hook {
            callback,
            theta_every,
            stop,
            error: None,
            last_call: None,
            pending: None,
        }
    }

    /// Keep the first error and stop the run.
    fn fail(&mut self, e: PyErr) {
        if self.error.is_none() {
            self.error = Some(e);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    fn call(&mut self, iter: usize, time_s: f64, loss: f64, theta: Option<&[f64]>) {
        let Some(cb) = &self.callback else { return };
        let result = Python::attach(|py| {
            let theta = theta.map(|t| PyArray1::from_slice(py, t));
            cb.call1(py, (iter, time_s, loss, theta)).map(|_| ())
        });
        self.last_call = Some(Instant::now());
        if let Err(e) = result {
            self.fail(e);
        }
    }

    /// The run's result, or the error that stopped it.
    fn finish_run(self, outcome: natgrad::Result<Outcome>) -> PyResult<String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(outcome.map_err(py_err)?.termination.to_string())
    }
}

impl Observer for Hook {
    fn iteration(&mut self, r: &IterRecord) -> natgrad::Result<()> {
        if self.error.is_some() {
            return Ok(());
        }
        if let Err(e) = Python::attach(|py| py.check_signals()) {
            self.fail(e);
            return Ok(());
        }
        let with_theta = self.theta_every > 0 && r.iter.is_multiple_of(self.theta_every);
        if with_theta {
            self.pending = Some((r.iter, r.time_s, r.loss));
        } else if self
            .last_call
            .is_none_or(|t| t.elapsed() >= CALLBACK_INTERVAL)
        {
            self.call(r.iter, r.time_s, r.loss, None);
        }
        Ok(())
    }

    fn parameters(&mut self, iter: usize, theta: &[f64]) -> natgrad::Result<()> {
        if let Some((i, time_s, loss)) = self.pending.take()
            && i == iter
            && self.error.is_none()
        {
            self.call(i, time_s, loss, Some(theta));
        }
        Ok(())
    }

    fn finish(&mut self, o: &Outcome) -> natgrad::Result<()> {
        if self.error.is_none() {
            self.call(o.iters, o.time_s, o.loss, None);
        }
        Ok(())
    }
}

/// A trained network read from a model file, with its problem's output
/// transform: `model(x)` gives u at the rows of x.
#[pyclass(module = "natgrad._natgrad")]
struct Model {
    inner: TrainedModel,
}

impl Model {
    /// The points of an (N, d) array, row-major, checked.
    fn points(&self, x: &PyReadonlyArray2<'_, f64>) -> PyResult<Vec<f64>> {
        let a = x.as_array();
        let d = self.inner.input_dim();
        if a.ncols() != d {
            return Err(PyValueError::new_err(format!(
                "points: the model takes {d} coordinates per point, got an array of shape ({}, {})",
                a.nrows(),
                a.ncols()
            )));
        }
        if let Some((i, _)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "points: entry ({}, {}) is not finite",
                i.0, i.1
            )));
        }
        Ok(a.iter().copied().collect())
    }
}

#[pymethods]
impl Model {
    /// Read a `model.json` (or `best_model.json`, `model-<iter>.json`).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Model> {
        Ok(Model {
            inner: TrainedModel::load(&path).map_err(py_err)?,
        })
    }

    /// u at the rows of `x` ((N, d) float64), as an (N,) array.
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let points = self.points(&x)?;
        let ev = py
            .detach(|| self.inner.evaluate(&points, false))
            .map_err(py_err)?;
        let d = self.inner.input_dim();
        let u: Vec<f64> = ev.rows.iter().map(|r| r[d]).collect();
        Ok(u.into_pyarray(py))
    }

    /// u, ∇u ((N, d)) and Δu at the rows of `x`, from exact forward jets.
    #[allow(clippy::type_complexity)]
    fn derivatives<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<(
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray1<f64>>,
    )> {
        let points = self.points(&x)?;
        let ev = py
            .detach(|| self.inner.evaluate(&points, true))
            .map_err(py_err)?;
        let d = self.inner.input_dim();
        let n = ev.rows.len();
        let u: Vec<f64> = ev.rows.iter().map(|r| r[d]).collect();
        let grad: Vec<f64> = ev
            .rows
            .iter()
            .flat_map(|r| r[d + 1..2 * d + 1].iter().copied())
            .collect();
        let lap: Vec<f64> = ev.rows.iter().map(|r| r[2 * d + 1]).collect();
        let grad = Array2::from_shape_vec((n, d), grad).expect("n rows of d derivatives");
        Ok((
            u.into_pyarray(py),
            grad.into_pyarray(py),
            lap.into_pyarray(py),
        ))
    }

    /// Number of coordinates per point.
    #[getter]
    fn input_dim(&self) -> usize {
        self.inner.input_dim()
    }

    /// Layer widths, input first.
    #[getter]
    fn widths(&self) -> Vec<usize> {
        self.inner.mlp.widths().to_vec()
    }

    /// The parameters θ (a copy).
    #[getter]
    fn theta<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.theta)
    }

    /// The problem the model was trained on, if the file names one.
    #[getter]
    fn problem(&self) -> Option<String> {
        self.inner.problem.clone()
    }

    /// Whether u = g + ψ·N_θ (a hard-constrained problem) rather than N_θ.
    #[getter]
    fn has_output_transform(&self) -> bool {
        self.inner.transform.is_some()
    }
}

/// The compiled module.
#[pymodule]
fn _natgrad(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(problems, m)?)?;
    m.add_function(wrap_pyfunction!(problem_summaries, m)?)?;
    m.add_function(wrap_pyfunction!(optimizers, m)?)?;
    m.add_function(wrap_pyfunction!(prepare, m)?)?;
    m.add_function(wrap_pyfunction!(resume, m)?)?;
    m.add_class::<Run>()?;
    m.add_class::<Model>()?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("NatgradError", py.get_type::<NatgradError>())?;
    Ok(())
}
