//! `allen-cahn`: u_t − 1e-3 u_xx = 5(u − u³), t ∈ [0,1], x ∈ [−1,1],
//! u(t, ±1) = −1, u(0, x) = x² cos(πx); reference computed by natgrad.
//!
//! **Reference solver.** With `w = u + 1` the walls become homogeneous,
//! `w_t = D w_xx + F(t, x, w)` with `F = 5((w − 1) − (w − 1)³)`. Space:
//! Chebyshev collocation on the Gauss–Lobatto points `x_j = cos(jπ/N)`; the
//! interior block of the second-derivative matrix `D²` (wall rows and
//! columns dropped, which imposes `w = 0` there) gives `L = D·D²`. `L` is
//! diagonalisable with real negative eigenvalues, `L = V Λ V⁻¹`, so time
//! stepping runs in its eigenbasis, where every matrix function is diagonal.
//! Time: ETDRK4 (Cox & Matthews 2002) with the φ-functions of `z = λh`
//! evaluated per eigenvalue, by Taylor series for `|z| < 1` and by the
//! recurrence `φ_{k+1} = (φ_k − 1/k!)/z` otherwise (no cancellation, which is
//! the problem Kassam & Trefethen's contour integrals address for matrix
//! arguments). Output by barycentric interpolation in x at each output time.
//! Default resolution N = 384, h = 2.5e-4 (converged to ~1e-6; checked by a
//! two-resolution test). The reference is cached on disk
//! (see [`cached_reference`]).

use std::f64::consts::PI;
use std::path::PathBuf;

use super::{Problem, Reference};
use crate::error::{Error, Result};
use crate::geometry::{Ends, linspace, tensor_grid};
use crate::linalg::{Matrix, Par, RealEigen, View, gemv_in_place, matmul_in_place};
use crate::model::{Activation, Init};
use crate::pde::{Dirichlet, InitialCondition, Jet, JetSpec, Operator, Point, Scalar};
use crate::residual::{Block, Region};

/// Diffusion coefficient.
pub const DIFFUSION: f64 = 1e-3;
/// Reaction rate.
pub const RATE: f64 = 5.0;
/// Chebyshev degree of the reference.
pub const REFERENCE_N: usize = 384;
/// Time step of the reference.
pub const REFERENCE_H: f64 = 2.5e-4;

/// `u_t − D u_xx − 5(u − u³)` (time is axis 0).
struct AllenCahn;

impl Operator for AllenCahn {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value().with_first(0).with_second(1, 1)
    }
    fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
        let v = u.value();
        u.d(0) - u.d2(1, 1) * DIFFUSION - (v - v.powi(3)) * RATE
    }
}

/// Initial condition `x² cos(πx)`.
pub fn initial(x: f64) -> f64 {
    x * x * (PI * x).cos()
}

/// The Chebyshev–Gauss–Lobatto points `cos(jπ/N)`, j = 0..N, and the
/// first-derivative matrix (Trefethen, *Spectral Methods in MATLAB*, with
/// the negative-sum trick for the diagonal).
pub fn chebyshev(n: usize) -> (Vec<f64>, Matrix) {
    let x: Vec<f64> = (0..=n).map(|j| (PI * j as f64 / n as f64).cos()).collect();
    let c = |i: usize| {
        let e = if i == 0 || i == n { 2.0 } else { 1.0 };
        if i.is_multiple_of(2) { e } else { -e }
    };
    let mut d = Matrix::from_fn(n + 1, n + 1, |i, j| {
        if i == j {
            0.0
        } else {
            c(i) / c(j) / (x[i] - x[j])
        }
    });
    for i in 0..=n {
        let s: f64 = (0..=n).filter(|&j| j != i).map(|j| d.at(i, j)).sum();
        *d.at_mut(i, i) = -s;
    }
    (x, d)
}

/// `φ_1(z), φ_2(z), φ_3(z)` with `φ_k(z) = Σ_j z^j/(j+k)!`: the series for
/// `|z| < 1`, the recurrence otherwise.
fn phi123(z: f64) -> (f64, f64, f64) {
    if z.abs() < 1.0 {
        phi_series(z)
    } else {
        phi_recurrence(z)
    }
}

/// 30 terms of the Taylor series (truncation < 1e-32 for |z| ≤ 1).
fn phi_series(z: f64) -> (f64, f64, f64) {
    let series = |k: usize| {
        let (mut term, mut sum) = (1.0, 0.0);
        let mut fact = (1..=k).map(|i| i as f64).product::<f64>();
        for j in 0..30 {
            sum += term / fact;
            term *= z;
            fact *= (j + k + 1) as f64;
        }
        sum
    };
    (series(1), series(2), series(3))
}

/// `φ_1 = (e^z − 1)/z`, `φ_{k+1} = (φ_k − 1/k!)/z` (accurate for |z| ≥ 1).
fn phi_recurrence(z: f64) -> (f64, f64, f64) {
    let p1 = z.exp_m1() / z;
    let p2 = (p1 - 1.0) / z;
    let p3 = (p2 - 0.5) / z;
    (p1, p2, p3)
}

/// `w_t = ν w_xx + F(t, x, w)` on [−1, 1] with `w(±1) = 0`, Chebyshev
/// collocation of degree `n` and ETDRK4 with step `h` (see the module docs).
pub struct Etdrk4 {
    /// Interior collocation points.
    pub x: Vec<f64>,
    h: f64,
    v: Matrix,
    v_inv: Matrix,
    e: Vec<f64>,
    e2: Vec<f64>,
    q: Vec<f64>,
    f1: Vec<f64>,
    f2: Vec<f64>,
    f3: Vec<f64>,
}

impl Etdrk4 {
    /// Set up the operator and the ETDRK4 coefficients.
    pub fn new(n: usize, nu: f64, h: f64) -> Result<Self> {
        if n < 4 || h.is_nan() || h <= 0.0 || nu.is_nan() || nu <= 0.0 {
            return Err(Error::config(
                "reference solver",
                format!("needs n ≥ 4, h > 0, ν > 0 (got n = {n}, h = {h}, ν = {nu})"),
            ));
        }
        let (x, d) = chebyshev(n);
        let m = n - 1;
        let mut d2 = Matrix::zeros(n + 1, n + 1);
        matmul_in_place(
            d2.as_mut_slice(),
            View::col_major(d.as_slice(), n + 1, n + 1),
            View::col_major(d.as_slice(), n + 1, n + 1),
            false,
            Par::Seq,
        );
        let l = Matrix::from_fn(m, m, |i, j| nu * d2.at(i + 1, j + 1));
        let eig = RealEigen::compute(&l)?;
        if let Some(bad) = eig.values.iter().find(|&&v| v >= 0.0) {
            return Err(Error::LinearAlgebra(format!(
                "the diffusion operator has a non-negative eigenvalue {bad}"
            )));
        }
        let mut s = Etdrk4 {
            x: x[1..n].to_vec(),
            h,
            v: eig.vectors,
            v_inv: eig.inverse,
            e: vec![],
            e2: vec![],
            q: vec![],
            f1: vec![],
            f2: vec![],
            f3: vec![],
        };
        for &lam in &eig.values {
            let z = lam * h;
            let (p1, p2, p3) = phi123(z);
            let (p1h, _, _) = phi123(z / 2.0);
            s.e.push(z.exp());
            s.e2.push((z / 2.0).exp());
            s.q.push(0.5 * h * p1h);
            s.f1.push(h * (p1 - 3.0 * p2 + 4.0 * p3));
            s.f2.push(h * (p2 - 2.0 * p3));
            s.f3.push(h * (4.0 * p3 - p2));
        }
        Ok(s)
    }

    /// Integrate from `w0` (values at [`Etdrk4::x`]) at time `t0` over
    /// `steps` steps; `f(t, x, w, out)` writes `F` at every interior point.
    pub fn integrate(
        &self,
        w0: &[f64],
        t0: f64,
        steps: usize,
        f: &impl Fn(f64, &[f64], &[f64], &mut [f64]),
    ) -> Vec<f64> {
        let m = self.x.len();
        let h = self.h;
        let to_hat = |v: &[f64], out: &mut Vec<f64>| {
            out.resize(m, 0.0);
            gemv_in_place(out, &self.v_inv, v, false);
        };
        let to_phys = |v: &[f64], out: &mut Vec<f64>| {
            out.resize(m, 0.0);
            gemv_in_place(out, &self.v, v, false);
        };
        let nl = |t: f64, w: &[f64], buf: &mut Vec<f64>, out: &mut Vec<f64>| {
            buf.resize(m, 0.0);
            f(t, &self.x, w, buf);
            to_hat(buf, out);
        };
        let mut w = w0.to_vec();
        let mut wh = Vec::new();
        to_hat(&w, &mut wh);
        let (mut buf, mut nn, mut na, mut nb, mut nc) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut ah, mut bh, mut ch, mut phys) = (vec![0.0; m], vec![0.0; m], vec![0.0; m], vec![]);
        for k in 0..steps {
            let t = t0 + k as f64 * h;
            nl(t, &w, &mut buf, &mut nn);
            for i in 0..m {
                ah[i] = self.e2[i] * wh[i] + self.q[i] * nn[i];
            }
            to_phys(&ah, &mut phys);
            nl(t + h / 2.0, &phys, &mut buf, &mut na);
            for i in 0..m {
                bh[i] = self.e2[i] * wh[i] + self.q[i] * na[i];
            }
            to_phys(&bh, &mut phys);
            nl(t + h / 2.0, &phys, &mut buf, &mut nb);
            for i in 0..m {
                ch[i] = self.e2[i] * ah[i] + self.q[i] * (2.0 * nb[i] - nn[i]);
            }
            to_phys(&ch, &mut phys);
            nl(t + h, &phys, &mut buf, &mut nc);
            for i in 0..m {
                wh[i] = self.e[i] * wh[i]
                    + self.f1[i] * nn[i]
                    + 2.0 * self.f2[i] * (na[i] + nb[i])
                    + self.f3[i] * nc[i];
            }
            to_phys(&wh, &mut w);
        }
        w
    }
}

/// Barycentric interpolation of the values `f` at the Gauss–Lobatto points
/// `x` (all N + 1, walls included) at the point `y`.
pub fn barycentric(x: &[f64], f: &[f64], y: f64) -> f64 {
    let n = x.len() - 1;
    let (mut num, mut den) = (0.0, 0.0);
    for j in 0..=n {
        let d = y - x[j];
        if d == 0.0 {
            return f[j];
        }
        let mut wj = if j.is_multiple_of(2) { 1.0 } else { -1.0 };
        if j == 0 || j == n {
            wj *= 0.5;
        }
        num += wj * f[j] / d;
        den += wj / d;
    }
    num / den
}

/// The Allen–Cahn solution `u` on the grid `times × xs` (row-major, time
/// first), computed with Chebyshev degree `n` and step `h`. Every output
/// time must be a multiple of `h`.
pub fn solve(n: usize, h: f64, times: &[f64], xs: &[f64]) -> Result<Vec<f64>> {
    let solver = Etdrk4::new(n, DIFFUSION, h)?;
    let f = |_t: f64, _x: &[f64], w: &[f64], out: &mut [f64]| {
        for (o, &wi) in out.iter_mut().zip(w) {
            let u = wi - 1.0;
            *o = RATE * (u - u * u * u);
        }
    };
    let mut w: Vec<f64> = solver.x.iter().map(|&x| initial(x) + 1.0).collect();
    let mut t = 0.0;
    let (nodes, _) = chebyshev(n);
    let mut out = Vec::with_capacity(times.len() * xs.len());
    for &target in times {
        let steps = ((target - t) / h).round();
        if steps < 0.0 || ((target - t) - steps * h).abs() > 1e-9 * h.max(target) {
            return Err(Error::config(
                "reference solver",
                format!("output time {target} is not a multiple of the step {h} after {t}"),
            ));
        }
        w = solver.integrate(&w, t, steps as usize, &f);
        t = target;
        let mut full = Vec::with_capacity(n + 1);
        full.push(0.0);
        full.extend_from_slice(&w);
        full.push(0.0);
        out.extend(xs.iter().map(|&y| barycentric(&nodes, &full, y) - 1.0));
    }
    Ok(out)
}

/// The evaluation grid: t ∈ {i/100 : i = 0..100}, x ∈ linspace(−1, 1, 201).
fn eval_axes() -> (Vec<f64>, Vec<f64>) {
    (
        (0..=100).map(|i| i as f64 / 100.0).collect(),
        linspace(-1.0, 1.0, 201, Ends::Both),
    )
}

/// Where the reference is cached: `$NATGRAD_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/natgrad`, else `~/.cache/natgrad`, else the system's
/// temporary folder.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("NATGRAD_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("natgrad");
    }
    if let Some(d) = std::env::var_os("HOME") {
        return PathBuf::from(d).join(".cache").join("natgrad");
    }
    std::env::temp_dir().join("natgrad")
}

/// The reference on the evaluation grid, read from the cache when a valid
/// file is there, else computed (a few seconds) and written. The file name
/// carries the solver settings and a format version; a file of the wrong
/// size or with a non-finite value is ignored and rewritten. A cache that
/// cannot be written only costs the recomputation next time.
pub fn cached_reference() -> Result<Vec<f64>> {
    let (ts, xs) = eval_axes();
    let len = ts.len() * xs.len();
    let path = cache_dir().join(format!(
        "allen-cahn-v1-N{REFERENCE_N}-h{REFERENCE_H:e}-{}x{}.f64",
        ts.len(),
        xs.len()
    ));
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() == 8 * len
    {
        let v: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        if v.iter().all(|x| x.is_finite()) {
            return Ok(v);
        }
    }
    let v = solve(REFERENCE_N, REFERENCE_H, &ts, &xs)?;
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok(v)
}

/// Net [2, 20, 20, 20, 1] tanh (P = 921), N(0, 0.1²) initialisation. Points
/// (the ANaGRAM code's): the 28×58 interior grid t ∈ {i/29 : i = 1..28},
/// x ∈ {−1 + 2j/59 : j = 1..58} (1624); the initial line t = 0 at
/// x = linspace(−1, 1, 41); each wall x = ±1 at t = linspace(0, 1, 29).
/// Evaluation: the 101×201 grid t ∈ {i/100}, x ∈ linspace(−1, 1, 201) against
/// natgrad's Chebyshev/ETDRK4 reference (computed once and cached). Presets:
/// [`crate::train::catalogue`].
pub fn build() -> Result<Problem> {
    let ti = linspace(0.0, 1.0, 30, Ends::Neither);
    let xi = linspace(-1.0, 1.0, 60, Ends::Neither);
    let interior = tensor_grid(&[ti, xi]);
    let initial_pts = tensor_grid(&[vec![0.0], linspace(-1.0, 1.0, 41, Ends::Both)]);
    let tw = linspace(0.0, 1.0, 29, Ends::Both);
    let left = tensor_grid(&[tw.clone(), vec![-1.0]]);
    let right = tensor_grid(&[tw, vec![1.0]]);
    let (ts, xs) = eval_axes();
    let reference = Reference {
        points: tensor_grid(&[ts, xs]),
        values: cached_reference()?,
    };
    Ok(Problem {
        name: "allen-cahn",
        coordinates: &["t", "x"],
        widths: vec![2, 20, 20, 20, 1],
        activation: Activation::Tanh,
        init: Init::Normal { std: 0.1 },
        blocks: vec![
            Block::new("interior", 2, interior, AllenCahn).with_region(Region::Interior),
            Block::new(
                "initial",
                2,
                initial_pts,
                InitialCondition::new(|x| initial(x[1])),
            )
            .with_region(Region::Face {
                axis: 0,
                upper: false,
            }),
            Block::new("x=-1", 2, left, Dirichlet::new(|_| -1.0)).with_region(Region::Face {
                axis: 1,
                upper: false,
            }),
            Block::new("x=1", 2, right, Dirichlet::new(|_| -1.0)).with_region(Region::Face {
                axis: 1,
                upper: true,
            }),
        ],
        domain: super::space_time_1d((0.0, 1.0), (-1.0, 1.0))?,
        reference,
        transform: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problem's own residual operators vanish on the reference: at
    /// interior Chebyshev nodes (|x| ≤ 0.9) at t = 0.3 and 0.8, with u_xx
    /// from the reference's Chebyshev differentiation and u_t from the
    /// fourth-order central difference of its ETDRK4 steps, the interior
    /// residual is ≤ 1e-6 of the size of its terms; the initial and wall
    /// blocks vanish on the reference's initial state and wall values. A PDE,
    /// coefficient or condition that differed between the reference solver
    /// and the training problem would fail here.
    #[test]
    fn reference_satisfies_the_problems_residuals() {
        use crate::problems::testing::reference_residual;
        let pb = build().unwrap();
        let block = |name: &str| pb.blocks.iter().find(|b| b.name() == name).unwrap();
        let (n, h) = (REFERENCE_N, REFERENCE_H);
        let solver = Etdrk4::new(n, DIFFUSION, h).unwrap();
        let (nodes, d) = chebyshev(n);
        let f = |_t: f64, _x: &[f64], w: &[f64], out: &mut [f64]| {
            for (o, &wi) in out.iter_mut().zip(w) {
                let u = wi - 1.0;
                *o = RATE * (u - u * u * u);
            }
        };
        // u on all N + 1 nodes (walls included) from the interior w.
        let full = |w: &[f64]| -> Vec<f64> {
            let mut u = vec![-1.0];
            u.extend(w.iter().map(|wi| wi - 1.0));
            u.push(-1.0);
            u
        };
        let deriv = |u: &[f64]| -> Vec<f64> {
            (0..=n)
                .map(|i| (0..=n).map(|j| d.at(i, j) * u[j]).sum())
                .collect()
        };
        let w0: Vec<f64> = solver.x.iter().map(|&x| initial(x) + 1.0).collect();
        let u0 = full(&w0);
        let init = block("initial");
        for j in (1..n).step_by(23) {
            let r =
                reference_residual(init, &[0.0, nodes[j]], u0[j], |_| f64::NAN, |_, _| f64::NAN);
            assert!(r.abs() < 1e-14, "initial block at x = {}: {r:e}", nodes[j]);
        }
        for (name, x) in [("x=-1", -1.0), ("x=1", 1.0)] {
            for t in [0.3, 0.8] {
                let r =
                    reference_residual(block(name), &[t, x], -1.0, |_| f64::NAN, |_, _| f64::NAN);
                assert!(r.abs() < 1e-14, "{name} at t = {t}: {r:e}");
            }
        }
        let interior = block("interior");
        let (mut w, mut t) = (w0, 0.0);
        let mut worst: f64 = 0.0;
        for tc in [0.3, 0.8] {
            // States at tc − 2h … tc + 2h.
            let start = ((tc - 2.0 * h - t) / h).round() as usize;
            w = solver.integrate(&w, t, start, &f);
            t += start as f64 * h;
            let mut states = vec![full(&w)];
            for _ in 0..4 {
                w = solver.integrate(&w, t, 1, &f);
                t += h;
                states.push(full(&w));
            }
            let u = &states[2];
            let ux = deriv(u);
            let uxx = deriv(&ux);
            for j in (1..n).filter(|&j| nodes[j].abs() <= 0.9).step_by(11) {
                let ut = (-states[4][j] + 8.0 * states[3][j] - 8.0 * states[1][j] + states[0][j])
                    / (12.0 * h);
                let d1 = |k: usize| if k == 0 { ut } else { ux[j] };
                let d2 = |k: usize, l: usize| {
                    assert_eq!((k, l), (1, 1), "allen-cahn reads u_xx only");
                    uxx[j]
                };
                let r = reference_residual(interior, &[tc, nodes[j]], u[j], d1, d2);
                let scale =
                    ut.abs() + DIFFUSION * uxx[j].abs() + RATE * (u[j] - u[j].powi(3)).abs();
                assert!(
                    r.abs() <= 1e-6 * scale,
                    "t = {tc}, x = {}: residual {r:e}, terms {scale:e}",
                    nodes[j]
                );
                worst = worst.max(r.abs() / scale);
            }
        }
        eprintln!("allen-cahn reference: largest residual / terms {worst:e}");
    }

    /// The φ-functions: series and recurrence agree where they meet
    /// (|z| = 1, and a little beyond), and φ_k(0) = 1/k!.
    #[test]
    fn phi_functions_are_continuous() {
        let (a, b, c) = phi123(0.0);
        assert_eq!((a, b), (1.0, 0.5));
        assert!((c - 1.0 / 6.0).abs() < 1e-16);
        for z in [-1.5_f64, -1.0, 1.0, 1.5] {
            let (s, r) = (phi_series(z), phi_recurrence(z));
            assert!((s.0 - r.0).abs() < 1e-15, "{z}: {s:?} vs {r:?}");
            assert!((s.1 - r.1).abs() < 1e-15, "{z}: {s:?} vs {r:?}");
            assert!((s.2 - r.2).abs() < 1e-14, "{z}: {s:?} vs {r:?}");
        }
    }

    /// Fourth order in time on a manufactured solution with a nonlinear,
    /// time-dependent right-hand side: w* = cos(t) sin(πx),
    /// F = 5(w − w³) + (w*_t − ν w*_xx − 5(w* − w*³)).
    #[test]
    fn etdrk4_is_fourth_order_on_a_known_solution() {
        let nu = 0.05;
        let exact = |t: f64, x: f64| t.cos() * (PI * x).sin();
        let f = |t: f64, x: &[f64], w: &[f64], out: &mut [f64]| {
            for ((o, &xi), &wi) in out.iter_mut().zip(x).zip(w) {
                let ws = exact(t, xi);
                let wt = -t.sin() * (PI * xi).sin();
                let wxx = -PI * PI * ws;
                *o = 5.0 * (wi - wi.powi(3)) + wt - nu * wxx - 5.0 * (ws - ws.powi(3));
            }
        };
        let mut errs = vec![];
        for steps in [10, 20, 40] {
            let h = 1.0 / steps as f64;
            let s = Etdrk4::new(24, nu, h).unwrap();
            let w0: Vec<f64> = s.x.iter().map(|&x| exact(0.0, x)).collect();
            let w = s.integrate(&w0, 0.0, steps, &f);
            let e =
                s.x.iter()
                    .zip(&w)
                    .map(|(&x, &v)| (v - exact(1.0, x)).abs())
                    .fold(0.0, f64::max);
            errs.push(e);
        }
        for k in 0..2 {
            let ratio = errs[k] / errs[k + 1];
            assert!(ratio > 12.0 && ratio < 20.0, "errors {errs:?}");
        }
        assert!(errs[2] < 1e-7, "errors {errs:?}");
    }

    /// The reference is converged: N = 384, h = 2.5e-4 (the reference
    /// settings) against N = 512, h = 1e-4 on a subgrid of the evaluation
    /// grid, and the solution has the expected shape (±1 phases, u = −1 at
    /// the walls).
    #[test]
    fn reference_agrees_across_resolutions() {
        let ts = [0.25, 0.5, 1.0];
        let xs = linspace(-1.0, 1.0, 101, Ends::Both);
        let coarse = solve(REFERENCE_N, REFERENCE_H, &ts, &xs).unwrap();
        let fine = solve(512, 1e-4, &ts, &xs).unwrap();
        let diff = coarse
            .iter()
            .zip(&fine)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!("allen-cahn reference N=384 h=2.5e-4 vs N=512 h=1e-4: max difference {diff:e}");
        assert!(diff < 2e-6, "max difference {diff:e}");
        let at_1 = &coarse[2 * xs.len()..];
        assert!((at_1[0] + 1.0).abs() < 1e-12 && (at_1[100] + 1.0).abs() < 1e-12);
        assert!(at_1.iter().all(|u| u.abs() < 1.0 + 1e-6));
        // Index j is x = −1 + 0.02j: a +1 phase around |x| ≈ 0.3, the −1
        // phase beyond |x| ≈ 0.5, and the centre still rising at t = 1.
        assert!(
            at_1[35] > 0.9 && at_1[65] > 0.9,
            "{} {}",
            at_1[35],
            at_1[65]
        );
        assert!(at_1[10] < -0.99 && at_1[90] < -0.99);
        assert!(at_1[50] > 0.0 && at_1[50] < 0.5, "{}", at_1[50]);
    }

    /// Chebyshev differentiation and barycentric interpolation are spectrally
    /// accurate on a smooth function.
    #[test]
    fn chebyshev_differentiation_and_interpolation() {
        let n = 32;
        let (x, d) = chebyshev(n);
        let f: Vec<f64> = x.iter().map(|&v| (2.0 * v).sin()).collect();
        let df = d.mul_vec(&f);
        for (i, &xi) in x.iter().enumerate() {
            assert!((df[i] - 2.0 * (2.0 * xi).cos()).abs() < 1e-11, "node {i}");
        }
        for y in [-0.93, -0.1, 0.0, 0.37, 0.999] {
            assert!((barycentric(&x, &f, y) - (2.0 * y).sin()).abs() < 1e-13);
        }
    }
}
