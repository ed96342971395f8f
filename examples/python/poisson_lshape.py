"""Poisson's equation on the L-shaped domain, from a dict config, in Python.

    -Δu = f  on  Ω = [-1, 1]² minus (0, 1] × [-1, 0),   u = u* on ∂Ω,

with the manufactured solution u*(x, y) = sin(πx) sin(πy) + x y: natgrad
derives f = -Δu* and the boundary data from the formula, and measures the
error against u* on evaluation points that are not the training points.

Run it after `pip install ./python` (from the repository root):

    python examples/python/poisson_lshape.py            # 20 s of training
    NATGRAD_EXAMPLE_SECONDS=5 python examples/python/poisson_lshape.py

With matplotlib installed it also writes `poisson_lshape_error.png`, the
pointwise error of the trained network on a grid over the L-shape.
"""

import os

import numpy as np

import natgrad

seconds = float(os.environ.get("NATGRAD_EXAMPLE_SECONDS", "20"))

# The same schema as a TOML file for `natgrad solve --config`.
config = {
    "problem": {
        "name": "poisson-lshape",
        "pde": "poisson",
        "domain": {"kind": "l-shape"},
        "solution": "sin(pi*x)*sin(pi*y) + x*y",
        "interior_points": 1200,
        "boundary_points": 400,
    },
    "model": {"widths": [2, 32, 1]},
    "optimizer": {"name": "ssbroyden"},
    "budget": {"max_seconds": seconds},
}

result = natgrad.solve(config=config, seed=0)
s = result.summary
print(f"{s['termination']} after {s['iters']} iterations: loss {s['loss']:.3e}, "
      f"held-out loss {s['heldout_loss']:.3e}, l2_abs {s['l2_abs']:.3e}, l2_rel {s['l2_rel']:.3e}")

# The trained network on a grid over the square; points outside Ω masked.
n = 201
xs = np.linspace(-1.0, 1.0, n)
X, Y = np.meshgrid(xs, xs)
inside = ~((X > 0) & (Y < 0))
points = np.column_stack([X[inside], Y[inside]])
u = result.model(points)
exact = np.sin(np.pi * points[:, 0]) * np.sin(np.pi * points[:, 1]) + points[:, 0] * points[:, 1]
error = np.abs(u - exact)
print(f"grid of {len(points)} points in Ω: max |u - u*| = {error.max():.3e}, "
      f"RMS = {np.sqrt(np.mean(error ** 2)):.3e}")

# ∇u and Δu come from exact forward jets: check -Δu against f = 2π² sin(πx) sin(πy).
u, grad, lap = result.model.derivatives(points[:1000])
f = 2 * np.pi ** 2 * np.sin(np.pi * points[:1000, 0]) * np.sin(np.pi * points[:1000, 1])
print(f"residual -Δu - f on 1000 grid points: RMS {np.sqrt(np.mean((-lap - f) ** 2)):.3e}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no figure")
else:
    E = np.full(X.shape, np.nan)
    E[inside] = error
    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.pcolormesh(X, Y, E, shading="auto", cmap="viridis")
    fig.colorbar(im, ax=ax, label="|u - u*|")
    ax.set_title(f"Poisson on the L-shape, SSBroyden {seconds:g} s")
    ax.set_aspect("equal")
    fig.savefig("poisson_lshape_error.png", dpi=120, bbox_inches="tight")
    print("wrote poisson_lshape_error.png")
