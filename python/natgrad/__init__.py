"""natgrad: physics-informed neural networks trained by natural-gradient methods.

The Python face of the natgrad Rust library. It mirrors the ``natgrad``
command line and its TOML configuration::

    import natgrad
    r = natgrad.solve("laplace2d", max_seconds=20)      # a catalogue problem
    r.summary["loss"], r.summary["l2_abs"]               # summary.json as a dict
    r.history["loss"]                                    # history.csv, column by column
    u = r.model(x)                                       # x: (N, d) float64 array
    u, grad, lap = r.model.derivatives(x)
    r.save("my-run")                                     # the run files, copied
    r2 = natgrad.load("my-run")

    natgrad.solve(config={"problem": {...}, ...})        # a problem of your own
    natgrad.solve(config="run.toml")                     # the same from a TOML file

Every keyword option of :func:`solve` is a command-line flag with ``_`` for
``-`` (``max_seconds`` is ``--max-seconds``), checked by the library with the
same one-line errors, raised as :class:`ConfigError` (a ``ValueError``).

Training runs with the interpreter released. Ctrl-C stops the run at the end
of its current step, writes its checkpoint and raises ``KeyboardInterrupt``;
:func:`resume` continues it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

import numpy as np

from . import _natgrad
from ._natgrad import ConfigError, Model, NatgradError

__all__ = [
    "ConfigError",
    "Model",
    "effective_config",
    "NatgradError",
    "Result",
    "load",
    "optimizers",
    "problem_summaries",
    "problems",
    "resume",
    "solve",
]

#: The files of a run directory that :meth:`Result.save` copies (with the
#: ``model-<iter>.json`` snapshots).
RUN_FILES = (
    "summary.json",
    "history.csv",
    "spectra.csv",
    "model.json",
    "best_model.json",
    "checkpoint.json",
)

Observer = Callable[[int, float, np.ndarray], Any]


def problems() -> List[str]:
    """The catalogue's problem names (``natgrad list`` describes them)."""
    return list(_natgrad.problems())


def problem_summaries() -> Dict[str, str]:
    """One line per catalogue problem: equation, domain, network, points."""
    return dict(_natgrad.problem_summaries())


def optimizers() -> List[str]:
    """The optimiser names accepted by ``optimizer=``."""
    return [name for name, _ in _natgrad.optimizers()]


def solve(
    problem: Optional[str] = None,
    *,
    config: Union[None, str, os.PathLike, Mapping[str, Any]] = None,
    preset: Optional[str] = None,
    out: Union[None, str, os.PathLike] = None,
    progress: bool = True,
    observer: Optional[Observer] = None,
    observer_every: int = 1,
    **options: Any,
) -> "Result":
    """Train a PINN and return its :class:`Result`.

    Parameters
    ----------
    problem:
        A catalogue problem (:func:`problems`), trained with natgrad's
        settings for it, or its papers' with ``preset="paper"``.
    config:
        Instead of ``problem``: a run description in the TOML schema of
        ``natgrad solve --config``, as a dict (``{"problem": {"name": ...,
        "pde": "poisson", ...}, "budget": {...}}``) or the path of a TOML file.
    out:
        The run directory (``history.csv``, ``summary.json``, ``model.json``,
        ``checkpoint.json``). Default: the config's ``[output] dir`` if it has
        one, else a new temporary folder (:attr:`Result.dir`; keep it with
        :meth:`Result.save`). A folder that already holds a run is refused
        unless ``force=True``.
    progress:
        Show progress: a tqdm bar when tqdm is installed (in Jupyter too),
        else natgrad's status line on the terminal, or a line every few
        seconds where standard error is not the process's own (notebooks).
    observer:
        ``observer(iter, loss, theta)``, called every ``observer_every``
        iterations (``theta`` a fresh float64 array). An exception it
        raises stops the run (checkpoint written) and is raised here.
    options:
        The command line's options: ``optimizer``, ``params`` (dict of
        optimiser parameters, ``--param``), ``cutoff``, ``weighting``,
        ``system_weights`` (dict of block name to system weight, ``--system-weight``),
        ``max_iters``, ``max_seconds``, ``target_loss``, ``overfit_stop``,
        ``restarts`` (``False``: no restarts from other initialisations,
        ``--no-restarts``), ``seed``, ``eval_every``, ``resample_every``, ``resample``,
        ``resample_points``, ``save_models_at``, ``checkpoint_seconds``,
        ``checkpoint_every``, ``threads`` (default 2), ``device``, ``force``.

    Raises
    ------
    ConfigError
        An unknown problem, option or value (the message names it).
    NatgradError
        A failure while training (device, memory, linear algebra).
    KeyboardInterrupt
        Ctrl-C: the run stopped with its checkpoint; :func:`resume` continues it.
    """
    if observer_every < 1:
        raise ConfigError(f"invalid value for `observer_every`: must be at least 1, got {observer_every}")
    config_path, config_json = _config_argument(config)
    if out is not None:
        options["out"] = os.fspath(out)
    # Used only when neither `out` nor the configuration names a directory.
    name = problem if problem is not None else "run"
    fallback = tempfile.mkdtemp(prefix=f"natgrad-{name}-")
    try:
        run = _natgrad.prepare(problem, preset, config_path, config_json, _options_json(options), fallback)
    except BaseException:
        os.rmdir(fallback)
        raise
    if os.path.abspath(run.out) != os.path.abspath(fallback):
        os.rmdir(fallback)
    _train(run.run, run, progress, observer, observer_every, run.out)
    return Result(run.out)


def effective_config(
    problem: Optional[str] = None,
    *,
    config: Union[None, str, os.PathLike, Mapping[str, Any]] = None,
    preset: Optional[str] = None,
    **options: Any,
) -> str:
    """The full configuration :func:`solve` would run with these arguments,
    every field written out, as TOML (``natgrad solve --print-config``);
    nothing is trained or written. Without ``out`` the directory shown is
    the command line's default. The text is a valid ``config=`` file."""
    config_path, config_json = _config_argument(config)
    run = _natgrad.prepare(problem, preset, config_path, config_json, _options_json(options), None)
    return run.config_toml()


def resume(
    dir: Union[str, os.PathLike],
    *,
    progress: bool = True,
    observer: Optional[Observer] = None,
    observer_every: int = 1,
    **options: Any,
) -> "Result":
    """Continue the run in ``dir`` from its checkpoint.

    ``options`` may extend the budget (``max_iters``, ``max_seconds``,
    ``target_loss``, ``overfit_stop``) or change ``threads`` and
    ``device``; everything else is the run's own. With the same budget
    the resumed run ends where an uninterrupted one would (bit for bit).
    """
    if observer_every < 1:
        raise ConfigError(f"invalid value for `observer_every`: must be at least 1, got {observer_every}")
    dir = os.fspath(dir)
    options_json = _options_json(options)

    def start(callback, theta_every, lines):
        return _natgrad.resume(dir, options_json, callback, theta_every, lines)

    _train(start, None, progress, observer, observer_every, dir)
    return Result(dir)


def load(dir: Union[str, os.PathLike]) -> "Result":
    """The run in ``dir`` (written by :func:`solve`, :meth:`Result.save` or
    ``natgrad solve``)."""
    return Result(dir)


class Result:
    """A run directory read back: summary, history and models.

    Attributes
    ----------
    dir:
        The run directory.
    summary:
        ``summary.json`` as a dict: ``loss``, ``l2_abs``, ``l2_rel``,
        ``linf`` (with a reference solution), ``heldout_loss``,
        ``termination``, ``best`` (the iterate with the lowest held-out
        loss), ``config`` (the whole run description), …
    history:
        ``history.csv``: a pandas DataFrame when pandas is installed, else a
        dict of float64 arrays, one per column (``iter``, ``time_s``,
        ``loss``, ``l2_abs``, ``heldout_loss``, …; NaN where a column has no
        value at that iteration, e.g. errors between evaluations).
    model:
        The final network (:class:`Model`): ``model(x)`` and
        ``model.derivatives(x)``.
    best_model:
        The evaluated iterate with the lowest held-out loss (``None`` when
        the run kept none). Prefer it when ``summary["overfitting"]`` holds
        a warning (the held-out loss far above the training loss: the
        network fits its points, not the PDE); otherwise take the final
        model.
    """

    def __init__(self, dir: Union[str, os.PathLike]):
        self.dir = Path(dir)
        summary = self.dir / "summary.json"
        if not summary.is_file():
            raise ConfigError(f"`{self.dir}` holds no natgrad run (no summary.json)")
        with open(summary, encoding="utf-8") as f:
            self.summary: Dict[str, Any] = json.load(f)
        self.history = _read_history(self.dir / "history.csv")
        self.model = Model.load(os.fspath(self.dir / "model.json"))
        best = self.dir / "best_model.json"
        self.best_model: Optional[Model] = Model.load(os.fspath(best)) if best.is_file() else None

    def save(self, dir: Union[str, os.PathLike]) -> Path:
        """Copy the run files into ``dir`` (created; existing run files
        there are replaced). Returns the path."""
        dest = Path(dir)
        dest.mkdir(parents=True, exist_ok=True)
        if dest.resolve() == self.dir.resolve():
            return dest
        for p in self.dir.iterdir():
            if p.name in RUN_FILES or (p.name.startswith("model-") and p.suffix == ".json"):
                shutil.copy2(p, dest / p.name)
        return dest

    def __repr__(self) -> str:
        s = self.summary
        errors = ""
        if s.get("l2_abs") is not None:
            errors = f", l2_abs {s['l2_abs']:.3e}, l2_rel {s['l2_rel']:.3e}"
        return (
            f"<natgrad.Result {s.get('problem')} {s.get('optimizer')}: {s.get('termination_message')} "
            f"after {s.get('iters')} iterations, loss {s.get('loss'):.3e}{errors}; {self.dir}>"
        )


# ---------------------------------------------------------------- internals


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    raise ConfigError(f"cannot pass a value of type {type(v).__name__} to natgrad: {v!r}")


def _options_json(options: Mapping[str, Any]) -> str:
    """Keyword options as the JSON of the library's ``Overrides``."""
    opts = dict(options)
    params = opts.get("params")
    if params is not None:
        if not isinstance(params, Mapping):
            raise ConfigError("invalid value for `params`: expected a dict of optimiser parameters")
        opts["params"] = [
            [str(k), v if isinstance(v, str) else json.dumps(v, default=_json_default)]
            for k, v in params.items()
        ]
    system_weights = opts.get("system_weights")
    if system_weights is not None:
        if not isinstance(system_weights, Mapping):
            raise ConfigError("invalid value for `system_weights`: expected a dict of block names to weights")
        opts["system_weights"] = [[str(k), json.dumps(v, default=_json_default)] for k, v in system_weights.items()]
    if opts.get("save_models_at") is not None:
        opts["save_models_at"] = [int(i) for i in opts["save_models_at"]]
    opts = {k: v for k, v in opts.items() if v is not None}
    return json.dumps(opts, default=_json_default)


def _config_argument(config: Any):
    """(TOML path, JSON text) from ``config=``."""
    if config is None:
        return None, None
    if isinstance(config, Mapping):
        return None, json.dumps(config, default=_json_default)
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if not os.path.isfile(path):
            raise ConfigError(f"config: no file `{path}` (give a dict or the path of a TOML file)")
        return path, None
    raise ConfigError(f"config: expected a dict or the path of a TOML file, got {type(config).__name__}")


class _Lines:
    """Progress without tqdm where natgrad's own status line cannot be seen
    (notebooks): one line every few seconds on ``sys.stderr``."""

    def __init__(self, every_s: float = 5.0):
        self.every_s = every_s
        self.last = -np.inf

    def update(self, it: int, t: float, loss: float) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            print(f"natgrad: iteration {it}, {t:.1f} s, loss {loss:.3e}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _Bar:
    """A tqdm bar over the run's budget: time when it has a time limit,
    else iterations."""

    def __init__(self, tqdm, run):
        by_time = run is None or run.max_seconds is not None or run.max_iters is None
        self.by_time = by_time
        if run is None:
            total, desc = None, "natgrad (resumed)"
        else:
            total = run.max_seconds if by_time else run.max_iters
            desc = f"{run.problem} · {run.optimizer}"
        fmt = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.0f} s{postfix}"
        self.bar = tqdm(
            total=total,
            desc=desc,
            unit="s" if by_time else "it",
            bar_format=fmt if (by_time and total is not None) else None,
            leave=True,
        )

    def update(self, it: int, t: float, loss: float) -> None:
        n = t if self.by_time else it
        if self.bar.total is not None:
            n = min(n, self.bar.total)
        self.bar.n = n
        self.bar.set_postfix_str(f"iter {it}, loss {loss:.3e}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _progress(run, progress: bool):
    """(display object or None, whether natgrad prints its own status line)."""
    if not progress:
        return None, False
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        return _Bar(tqdm, run), False
    try:
        own_stderr = sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        own_stderr = False
    if own_stderr:
        return None, True
    return _Lines(), False


def _train(start, run, progress, observer, observer_every, out) -> str:
    display, lines = _progress(run, progress)

    def callback(it, t, loss, theta):
        if display is not None:
            display.update(it, t, loss)
        if theta is not None and observer is not None:
            observer(it, loss, theta)

    wanted = display is not None or observer is not None
    try:
        return start(
            callback if wanted else None,
            observer_every if observer is not None else 0,
            lines,
        )
    except KeyboardInterrupt:
        print(
            f"natgrad: interrupted; {out} holds the checkpoint, "
            f"natgrad.resume({os.fspath(out)!r}) continues the run",
            file=sys.stderr,
        )
        raise
    finally:
        if display is not None:
            display.close()


def _read_history(path: Path):
    """history.csv as a pandas DataFrame, or a dict of float64 arrays."""
    if not path.is_file():
        raise ConfigError(f"`{path.parent}` holds no history.csv")
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        return pd.read_csv(path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    cols = {}
    for j, name in enumerate(header):
        cols[name] = np.array([float(r[j]) if j < len(r) and r[j] != "" else np.nan for r in body], dtype=np.float64)
    return cols
