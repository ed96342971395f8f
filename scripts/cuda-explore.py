"""Routes to the SVD of the P x P factor R on a CUDA device, timed and checked
with CuPy (the measurement behind docs/cuda.md; run on the GPU machine:
`python3 scripts/cuda-explore.py`, writes $OUT/explore.json when OUT is set).

gesvd: cuSOLVER's SVD. aug: the symmetric eigenproblem of [[0, R^T], [R, 0]]
followed by two QRs (natgrad's CUDA route). polar: QDWH polar factor, then the
eigenproblem of H, then the same QR finish."""
import json
import os
import time

import cupy as cp
import cupyx.scipy.linalg as csl
import numpy as np

eps = np.finfo(float).eps


def sync():
    cp.cuda.Device().synchronize()


def timeit(f, reps=5):
    f()
    sync()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        sync()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def rand_orth(rng, n, k):
    q, r = np.linalg.qr(rng.standard_normal((n, k)))
    return q * np.sign(np.diag(r))


def with_spectrum(m, n, sig, seed):
    rng = np.random.default_rng(seed)
    k = min(m, n)
    return (rand_orth(rng, m, k) * sig) @ rand_orth(rng, n, k).T


def finish(R, X):
    qv, _ = cp.linalg.qr(X)
    qu, t = cp.linalg.qr(R @ qv)
    d = cp.diag(t)
    U = qu * cp.where(d < 0, -1.0, 1.0)
    s = cp.abs(d)
    order = cp.argsort(-s)
    return U[:, order], s[order], qv[:, order]


def aug_svd(R):
    n = R.shape[0]
    A = cp.zeros((2 * n, 2 * n))
    A[:n, n:] = R.T
    A[n:, :n] = R
    _, Z = cp.linalg.eigh(A)
    return finish(R, Z[:n, n:][:, ::-1])


def qdwh(A):
    X = A / cp.linalg.norm(A)
    l, n, I = 1e-20, A.shape[1], cp.eye(A.shape[1])
    for _ in range(12):
        L2 = l * l
        dd = (4 * (1 - L2) / (L2 * L2)) ** (1 / 3)
        sqd = np.sqrt(1 + dd)
        a = sqd + 0.5 * np.sqrt(8 - 4 * dd + 8 * (2 - L2) / (L2 * sqd))
        b = (a - 1) ** 2 / 4
        c = a + b - 1
        if c > 100:
            q, _ = cp.linalg.qr(cp.vstack([np.sqrt(c) * X, I]))
            X = (b / c) * X + (a - b / c) / np.sqrt(c) * (q[:n] @ q[n:].T)
        else:
            Lc = cp.linalg.cholesky(I + c * X.T @ X)
            Y = csl.solve_triangular(Lc, X.T, lower=True)
            Y = csl.solve_triangular(Lc.T, Y, lower=False).T
            X = (b / c) * X + (a - b / c) * Y
        l = l * (a + b * L2) / (1 + c * L2)
        if abs(1 - l) < 10 * eps:
            break
    return X


def polar_svd(R):
    H = qdwh(R).T @ R
    _, V = cp.linalg.eigh((H + H.T) / 2)
    return finish(R, V[:, ::-1])


def gesvd(R):
    u, s, vt = cp.linalg.svd(R, full_matrices=False)
    return u, s, vt.T


def check(name, fn, R, sig):
    U, s, V = fn(R)
    n = R.shape[0]
    rec = float(cp.linalg.norm((U * s) @ V.T - R) / cp.linalg.norm(R))
    oU = float(cp.abs(U.T @ U - cp.eye(n)).max())
    oV = float(cp.abs(V.T @ V - cp.eye(n)).max())
    err = float(np.abs(cp.asnumpy(s) - sig).max() / (eps * sig[0]))
    print(f"  {name:6s} rec={rec:.2e} |UtU-I|={oU:.1e} |VtV-I|={oV:.1e} sigma err/(eps s1)={err:.1f}")
    return dict(rec=rec, oU=oU, oV=oV, err=err)


out = {"accuracy": {}, "timing_s": {}}
for m, n, lo in [(1000, 200, -15), (1200, 400, -30)]:
    sig = 10.0 ** np.linspace(0, lo, n)
    R = cp.asarray(np.linalg.qr(with_spectrum(m, n, sig, 7), mode="r"))
    print(f"graded {m}x{n} to 1e{lo}")
    for name, fn in [("gesvd", gesvd), ("aug", aug_svd), ("polar", polar_svd)]:
        out["accuracy"][f"{m}x{n}:{name}"] = check(name, fn, R, sig)
rng = np.random.default_rng(1)
for P, S in [(129, 900), (449, 4500), (697, 1860), (921, 1723), (1051, 1760), (2000, 10000), (4417, 20000)]:
    sig = 10.0 ** np.linspace(0, -18, P)
    if P <= 1051:
        R = cp.linalg.qr(cp.asarray(with_spectrum(min(S, 3 * P), P, sig, 2)), mode="r")
    else:
        R = cp.triu(cp.asarray(rng.standard_normal((P, P)))) * cp.asarray(sig)[None, :]
    phi = cp.asarray(rng.standard_normal((S, P)))
    row = {"tall_qr_r": timeit(lambda: cp.linalg.qr(phi, mode="r"), 3)}
    A2 = cp.zeros((2 * P, 2 * P))
    A2[:P, P:] = R.T
    A2[P:, :P] = R
    row["eigh_2P"] = timeit(lambda: cp.linalg.eigh(A2), 3)
    row["aug_svd"] = timeit(lambda: aug_svd(R), 3)
    row["polar_svd"] = timeit(lambda: polar_svd(R), 3)
    if P <= 2000:
        row["gesvd"] = timeit(lambda: gesvd(R), 3)
    out["timing_s"][f"{S}x{P}"] = row
    print(f"S={S} P={P} " + " ".join(f"{k}={v * 1e3:.1f}ms" for k, v in row.items()))
with open(os.path.join(os.environ.get("OUT", "."), "explore.json"), "w") as f:
    json.dump(out, f, indent=1)
