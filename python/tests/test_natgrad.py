"""The Python package against the library and the command line.

Run from the repository root after `pip install ./python`:
    NATGRAD_BIN=target/release/natgrad python -m pytest python/tests
(`NATGRAD_BIN` names the command-line binary that the evaluation is compared
with; without it the test looks in target/release and skips if it is absent.)
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import natgrad

REPO = Path(__file__).resolve().parents[2]


def history_column(result, name):
    h = result.history
    col = h[name]
    return np.asarray(col, dtype=np.float64)


@pytest.fixture(scope="module")
def laplace(tmp_path_factory):
    """laplace2d, 50 iterations of its default optimiser (AMStraMGRAM)."""
    out = tmp_path_factory.mktemp("laplace") / "run"
    return natgrad.solve("laplace2d", max_iters=50, seed=0, out=out, progress=False)


def test_lists():
    assert "laplace2d" in natgrad.problems()
    assert "burgers" in natgrad.problems()
    assert {"amstramgram", "anagram", "ssbroyden", "adam"} <= set(natgrad.optimizers())
    assert "2π²" in natgrad.problem_summaries()["laplace2d"]


def test_solve_laplace2d_short(laplace):
    s = laplace.summary
    assert s["problem"] == "laplace2d" and s["optimizer"] == "amstramgram"
    assert s["iters"] == 50
    loss = history_column(laplace, "loss")
    iters = history_column(laplace, "iter")
    assert loss.dtype == np.float64 and loss.shape == (51,)
    np.testing.assert_array_equal(iters, np.arange(51))
    assert loss[-1] < 1e-3 * loss[0], (loss[0], loss[-1])
    assert s["loss"] == loss[-1]
    # Errors are evaluated every 10 iterations; NaN in between.
    l2 = history_column(laplace, "l2_abs")
    assert np.isfinite(l2[::10]).all() and np.isnan(l2[1])
    x = np.random.default_rng(0).random((7, 2))
    u = laplace.model(x)
    assert u.shape == (7,) and u.dtype == np.float64
    u2, grad, lap = laplace.model.derivatives(x)
    np.testing.assert_array_equal(u, u2)
    assert grad.shape == (7, 2) and lap.shape == (7,)
    assert laplace.model.input_dim == 2 and laplace.model.widths == [2, 32, 1]
    assert laplace.model.theta.shape == (129,)
    assert laplace.best_model is not None


def test_derivatives_match_finite_differences(laplace):
    x = np.random.default_rng(1).random((5, 2)) * 0.8 + 0.1
    _, grad, lap = laplace.model.derivatives(x)
    h = 1e-4
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        up, um, u0 = laplace.model(x + e), laplace.model(x - e), laplace.model(x)
        np.testing.assert_allclose(grad[:, k], (up - um) / (2 * h), rtol=0, atol=1e-7)
    fd_lap = sum(
        (laplace.model(x + h * np.eye(2)[k]) - 2 * laplace.model(x) + laplace.model(x - h * np.eye(2)[k])) / h**2
        for k in range(2)
    )
    np.testing.assert_allclose(lap, fd_lap, rtol=0, atol=1e-4)


def natgrad_bin():
    given = os.environ.get("NATGRAD_BIN")
    if given:
        assert Path(given).is_file(), f"NATGRAD_BIN={given} does not exist"
        return given
    default = REPO / "target" / "release" / "natgrad"
    if not default.is_file():
        pytest.skip("no natgrad binary (build it with `cargo build --release` or set NATGRAD_BIN)")
    return str(default)


def test_model_matches_natgrad_eval(laplace, tmp_path):
    x = np.random.default_rng(2).random((40, 2))
    pts = tmp_path / "points.csv"
    np.savetxt(pts, x, delimiter=",", header="x,y", comments="", fmt="%.17g")
    out = subprocess.run(
        [natgrad_bin(), "eval", str(laplace.dir / "model.json"), "--points", str(pts), "--derivatives"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    table = np.loadtxt(out.splitlines()[1:], delimiter=",")
    np.testing.assert_array_equal(table[:, :2], x)
    u, grad, lap = laplace.model.derivatives(x)
    np.testing.assert_allclose(laplace.model(x), table[:, 2], rtol=1e-15, atol=0)
    np.testing.assert_allclose(grad, table[:, 3:5], rtol=1e-15, atol=0)
    np.testing.assert_allclose(lap, table[:, 5], rtol=1e-15, atol=0)


def test_hard_constrained_model_uses_its_transform(tmp_path):
    # burgers embeds its initial and boundary data: u = g + ψ·N_θ. At t = 0
    # the model must give -sin(πx) whatever N_θ is; points are (t, x).
    r = natgrad.solve("burgers", max_iters=2, out=tmp_path / "b", progress=False)
    assert r.model.has_output_transform
    x = np.column_stack([np.zeros(5), np.linspace(-0.9, 0.9, 5)])
    np.testing.assert_allclose(r.model(x), -np.sin(np.pi * x[:, 1]), atol=1e-14)


def test_save_and_load_round_trip(laplace, tmp_path):
    dest = laplace.save(tmp_path / "copy")
    r = natgrad.load(dest)
    assert r.summary == laplace.summary
    for name in ("iter", "loss", "l2_abs"):
        np.testing.assert_array_equal(history_column(r, name), history_column(laplace, name))
    x = np.random.default_rng(3).random((11, 2))
    np.testing.assert_array_equal(r.model(x), laplace.model(x))
    np.testing.assert_array_equal(r.model.theta, laplace.model.theta)
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        p.name for p in laplace.dir.iterdir() if p.name in natgrad.RUN_FILES
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_second=3), "max_second"),
        (dict(optimizer="sgd"), "unknown optimizer `sgd`"),
        (dict(params={"precison": 1e-9}), "optimizer.precison"),
        (dict(max_iters="many"), "max_iters"),
        (dict(max_seconds=-1), "budget.max_seconds"),
        (dict(cutoff="abc"), "`abc` is not a cutoff"),
        (dict(resample_every=10, resample="sobol"), "unknown resampling method `sobol`"),
        (dict(threads=0), "compute.threads"),
        (dict(preset="best"), "preset"),
        (dict(system_weights={"walls": 2}), "system_weights.walls"),
        (dict(system_weights={"boundary": -1}), "system_weights.boundary"),
        (dict(system_weights=[("boundary", 2)]), "system_weights"),
    ],
)
def test_bad_options_name_the_field(kwargs, message, tmp_path):
    with pytest.raises(natgrad.ConfigError) as e:
        natgrad.solve("laplace2d", out=tmp_path / "r", progress=False, **kwargs)
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)


def test_bad_inputs_are_errors_not_crashes(laplace, tmp_path):
    with pytest.raises(natgrad.ConfigError, match="unknown problem `nope`"):
        natgrad.solve("nope", progress=False)
    with pytest.raises(natgrad.ConfigError, match="problem.domain"):
        natgrad.solve(config={"problem": {"name": "p", "pde": "poisson", "domain": {"kind": "cube"}, "solution": "x"}})
    with pytest.raises(natgrad.ConfigError, match="no file"):
        natgrad.solve(config=tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="2 coordinates per point"):
        laplace.model(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="not finite"):
        laplace.model(np.array([[0.5, np.nan]]))
    with pytest.raises(natgrad.ConfigError, match="holds no natgrad run"):
        natgrad.load(tmp_path)
    # A folder that holds a run is refused without force=True.
    with pytest.raises(natgrad.ConfigError, match="force"):
        natgrad.solve("laplace2d", max_iters=1, out=laplace.dir, progress=False)


POISSON_DISK = {
    "problem": {
        "name": "poisson-disk",
        "pde": "poisson",
        "domain": {"kind": "disk", "center": [0.0, 0.0], "radius": 1.0},
        "solution": "exp(x)*sin(y)",
        "interior_points": 400,
        "boundary_points": 100,
        "eval_points": 1000,
    },
    "model": {"widths": [2, 16, 1]},
    "optimizer": {"name": "ssbroyden"},
    "budget": {"max_iters": 300},
}


def test_custom_problem_from_a_dict(tmp_path):
    r = natgrad.solve(config=POISSON_DISK, out=tmp_path / "disk", progress=False)
    s = r.summary
    assert s["problem"] == "poisson-disk" and s["iters"] == 300
    # A harmonic solution learnt to a few digits, measured off the training points.
    assert s["l2_rel"] < 1e-3, s["l2_rel"]
    theta = np.linspace(0, 2 * np.pi, 50)
    x = 0.7 * np.column_stack([np.cos(theta), np.sin(theta)])
    np.testing.assert_allclose(r.model(x), np.exp(x[:, 0]) * np.sin(x[:, 1]), atol=1e-2)
    # The same run from a TOML file gives the same loss, bit for bit.
    toml = tmp_path / "disk.toml"
    toml.write_text(
        """
[problem]
name = "poisson-disk"
pde = "poisson"
domain = { kind = "disk", center = [0.0, 0.0], radius = 1.0 }
solution = "exp(x)*sin(y)"
interior_points = 400
boundary_points = 100
eval_points = 1000

[model]
widths = [2, 16, 1]

[optimizer]
name = "ssbroyden"

[budget]
max_iters = 300
"""
    )
    r2 = natgrad.solve(config=toml, out=tmp_path / "disk-toml", progress=False)
    assert r2.summary["loss"] == s["loss"]


WAVE = {
    "problem": {
        "name": "wave",
        "domain": {"kind": "box", "lo": [0], "hi": [1]},
        "time": [0, 1],
        "equation": "u_tt - c^2*u_xx = 0",
        "exact": "sin(pi*x)*(cos(c*pi*t) + sin(c*pi*t))",
        "params": {"c": 0.5},
        "interior_points": 400,
        "interior_method": "grid",
    },
    "condition": [
        {"kind": "initial", "value": "sin(pi*x)", "u_t": "c*pi*sin(pi*x)", "points": 30},
        {"kind": "dirichlet", "on": "boundary", "value": "0", "points": 40},
    ],
    "budget": {"max_iters": 300},
}


def test_equation_and_conditions_from_a_dict(tmp_path):
    r = natgrad.solve(config=WAVE, out=tmp_path / "wave", progress=False)
    s = r.summary
    # A second-order-in-time equation: the initial condition makes two blocks.
    assert s["iters"] == 300 and s["l2_rel"] < 1e-2, s
    assert r.model.input_dim == 2
    # The effective config writes the conditions back as [[condition]] tables.
    text = natgrad.effective_config(config=WAVE)
    assert text.count("[[condition]]") == 2 and 'u_t = "c*pi*sin(pi*x)"' in text
    bad = dict(WAVE, condition=[WAVE["condition"][1]])
    with pytest.raises(natgrad.ConfigError, match="no condition has kind"):
        natgrad.solve(config=bad, out=tmp_path / "bad", progress=False)
    bad = dict(WAVE, problem=dict(WAVE["problem"], equation="u_tt - lap(v) = 0"))
    with pytest.raises(natgrad.ConfigError, match="problem.equation.*lap"):
        natgrad.solve(config=bad, out=tmp_path / "bad2", progress=False)


def test_observer_sees_theta_and_can_stop_the_run(tmp_path):
    seen = []

    def watch(it, loss, theta):
        seen.append((it, loss, theta.copy()))

    r = natgrad.solve("laplace2d", optimizer="ssbroyden", max_iters=40, out=tmp_path / "o",
                      observer=watch, observer_every=10, progress=False)
    assert [s[0] for s in seen] == [0, 10, 20, 30, 40]
    loss = history_column(r, "loss")
    assert [s[1] for s in seen] == [loss[i] for i in (0, 10, 20, 30, 40)]
    assert all(s[2].shape == (129,) and s[2].dtype == np.float64 for s in seen)
    np.testing.assert_array_equal(seen[-1][2], r.model.theta)

    class Enough(Exception):
        pass

    def stop_at_15(it, loss, theta):
        if it >= 15:
            raise Enough(it)

    with pytest.raises(Enough):
        natgrad.solve("laplace2d", optimizer="ssbroyden", max_iters=1000, out=tmp_path / "s",
                      observer=stop_at_15, observer_every=5, progress=False)
    ck = json.loads((tmp_path / "s" / "checkpoint.json").read_text())
    assert ck["state"]["iter"] == 15


def test_ctrl_c_interrupts_with_a_checkpoint_and_resume_continues(tmp_path):
    out = tmp_path / "interrupted"
    # A signal that acts as Ctrl-C (the SIGINT handler) arrives 50 ms after
    # the 50th iteration, while the run is inside a step with the interpreter
    # released: the kernel's timer delivers it, so no other Python thread has
    # to get the interpreter in time, however loaded the machine is. The run
    # cannot end by itself within 50 ms (a stall takes 1000 iterations).
    armed = []

    def watch(it, loss, theta):
        if it >= 50 and not armed:
            armed.append(it)
            signal.setitimer(signal.ITIMER_REAL, 0.05)

    previous = signal.signal(signal.SIGALRM, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            natgrad.solve(
                "laplace2d",
                optimizer="amstramgram",
                max_seconds=600,
                overfit_stop=False,
                out=out,
                progress=False,
                observer=watch,
                observer_every=10,
            )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert armed
    ck = json.loads((out / "checkpoint.json").read_text())
    done = ck["state"]["iter"]
    assert done > 0
    summary = json.loads((out / "summary.json").read_text())
    assert "interrupted" in summary["termination_message"]
    r = natgrad.resume(out, max_iters=done + 20, progress=False)
    assert r.summary["iters"] == done + 20
    iters = history_column(r, "iter")
    np.testing.assert_array_equal(iters, np.arange(done + 21))


def test_block_weights_reach_the_run(tmp_path):
    r = natgrad.solve("laplace2d", system_weights={"boundary": 10}, max_iters=2, out=tmp_path / "w", progress=False)
    assert r.summary["config"]["system_weights"] == {"boundary": 10.0}
    text = natgrad.effective_config("laplace2d", system_weights={"boundary": 10})
    assert "[system_weights]\nboundary = 10.0\ninterior = 1.0\n" in text


def test_resume_rejects_settings_of_the_run(laplace):
    with pytest.raises(natgrad.ConfigError, match="resume takes only"):
        natgrad.resume(laplace.dir, optimizer="adam")


def test_default_output_is_a_fresh_folder():
    r = natgrad.solve("laplace2d", max_iters=3, progress=False)
    assert r.dir.is_dir() and r.dir.name.startswith("natgrad-laplace2d-")
    assert (r.dir / "checkpoint.json").is_file()


def test_the_configs_output_dir_and_presets(tmp_path):
    config = dict(POISSON_DISK, budget={"max_iters": 3}, output={"dir": str(tmp_path / "from-config")})
    r = natgrad.solve(config=config, progress=False)
    assert r.dir == tmp_path / "from-config" and (r.dir / "model.json").is_file()
    # out= comes before the configuration's directory.
    r = natgrad.solve(config=config, out=tmp_path / "given", progress=False)
    assert r.dir == tmp_path / "given"
    r = natgrad.solve("laplace2d", preset="paper", max_iters=2, out=tmp_path / "paper", progress=False)
    assert r.summary["optimizer"] == "anagram"


def test_effective_config_round_trips(tmp_path):
    text = natgrad.effective_config("heat", optimizer="ssbroyden", seed=3, max_iters=77)
    assert "seed = 3" in text and 'name = "ssbroyden"' in text and "max_iters = 77" in text
    path = tmp_path / "heat.toml"
    path.write_text(text)
    assert natgrad.effective_config(config=path) == text
    with pytest.raises(natgrad.ConfigError, match="`seed`"):
        natgrad.effective_config("heat", seed=-1)


def test_python_example_runs(tmp_path):
    env = dict(os.environ, NATGRAD_EXAMPLE_SECONDS="3")
    p = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / "poisson_lshape.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "l2_rel" in p.stdout and "max |u - u*|" in p.stdout
