//! The kernels behind the natural gradient, for a model at a given θ.
//!
//! With the tangent features `∇u(y) = ∂u_θ(y)/∂θ ∈ ℝ^P` and, for a residual
//! block with operator `D`, the operator features `∇D(y) = ∂D[u_θ](y)/∂θ`
//! (the rows of the Jacobian `φ` at the points `y`):
//!
//! * the **NTK** is `K(x, y) = ∇u(x)·∇u(y)`;
//! * the **operator NTK** is `K_D(x, y) = ∇D(x)·∇D(y)`: `φφᵀ` on the
//!   collocation points, the kernel ANaGRAM's step interpolates with;
//! * the **discrete Green's function** of the natural gradient is
//!   `g(x, y) = ∇u(x)ᵀ G† ∇D(y)`, where `G = φ̃ᵀφ̃ = Σ_i w_i ∇r_i ∇r_iᵀ` is the
//!   Gram matrix of the (row-weighted) system on the training points and `G†`
//!   its pseudo-inverse truncated at a cutoff τ on the singular values of
//!   `φ̃` (ANaGRAM's cutoff). For a tangent function `v = Σ_p c_p ∂_p u_θ`
//!   with `c` in the kept span, `Σ_i w_i g(x, y_i) D_i[v](y_i) = v(x)`: the
//!   natural-gradient update at `x` is this quadrature of the residual.
//!
//! References: Jacot, Gabriel & Hongler, *Neural tangent kernel*, NeurIPS
//! 2018; Schwencke & Furtlehner, *ANaGRAM*, ICLR 2025 (the operator NTK and
//! the Green's function reading of the natural gradient).
//!
//! Features are assembled by the same code as the training system
//! ([`LeastSquares::assemble`]), through the problem's output transform when
//! it has one; `G†` comes from the SVD of `φ̃` (never from `G`, which would
//! square the condition number).

use crate::error::{Error, Result};
use crate::linalg::{Matrix, Par, Svd, View, dot};
use crate::pde::Dirichlet;
use crate::residual::{Block, LeastSquares, Weighting};

/// `∂u_θ(y_j)/∂θ` for the points `ys` (row-major, the network's input
/// dimension each): a `P × n` matrix, column `j` for point `j`.
pub fn tangent_features(ls: &LeastSquares, theta: &[f64], ys: &[f64]) -> Result<Matrix> {
    let d = ls.model().input_dim();
    // A block whose residual is u itself: its Jacobian rows are ∇u.
    let value = Block::new("value", d, ys.to_vec(), Dirichlet::zero());
    let mut probe = LeastSquares::new(ls.model().clone(), vec![value])?;
    if let Some(t) = ls.transform() {
        probe = probe.with_transform(t.clone())?;
    }
    Ok(probe.assemble(theta, Weighting::Uniform)?.jac_t)
}

/// `∂D_b[u_θ](y_j)/∂θ` for the operator of block `block` (an interior block:
/// one without normals) at the points `ys`: a `P × n` matrix.
pub fn operator_features(
    ls: &LeastSquares,
    theta: &[f64],
    block: usize,
    ys: &[f64],
) -> Result<Matrix> {
    let probe = ls.with_block_points(block, ys.to_vec())?;
    let sys = probe.assemble(theta, Weighting::Uniform)?;
    let range = sys.block_ranges[block].clone();
    let p = ls.n_params();
    Ok(Matrix::from_fn(p, range.len(), |i, j| {
        sys.jac_t.at(i, range.start + j)
    }))
}

/// `K(x, y_j) = ∇u(x)·∇u(y_j)` for every point of `ys`.
pub fn ntk(ls: &LeastSquares, theta: &[f64], x: &[f64], ys: &[f64]) -> Result<Vec<f64>> {
    check_point(ls, x)?;
    let fx = tangent_features(ls, theta, x)?;
    let fy = tangent_features(ls, theta, ys)?;
    Ok(inner(fx.col(0), &fy))
}

/// `K_D(x, y_j) = ∇D(x)·∇D(y_j)` for the operator of block `block`.
pub fn operator_ntk(
    ls: &LeastSquares,
    theta: &[f64],
    block: usize,
    x: &[f64],
    ys: &[f64],
) -> Result<Vec<f64>> {
    check_point(ls, x)?;
    let fx = operator_features(ls, theta, block, x)?;
    let fy = operator_features(ls, theta, block, ys)?;
    Ok(inner(fx.col(0), &fy))
}

/// The discrete Green's function of the natural gradient at one θ: the
/// truncated pseudo-inverse of the Gram matrix of the training system,
/// stored as `W = V_k Σ_k⁻¹` (`P × k`) so that
/// `g(x, y) = (Wᵀ∇u(x))·(Wᵀ∇D(y))`.
#[derive(Clone, Debug)]
pub struct Green {
    w: Matrix,
    /// Singular values of `φ̃`, descending (all of them).
    pub singular_values: Vec<f64>,
    /// The cutoff τ: singular values below it are dropped.
    pub cutoff: f64,
    /// How many are kept.
    pub kept: usize,
    /// The row weighting of the system (`w_i` of the quadrature).
    pub weighting: Weighting,
    /// Right singular vectors of the kept components (`P × kept`).
    pub basis: Matrix,
}

impl Green {
    /// From the training system of `ls` at θ with row weighting
    /// `weighting`, keeping the singular values `σ ≥ τ`, where
    /// `τ = cutoff(σ₁)` (an absolute cutoff: `|_| τ`; ANaGRAM's relative
    /// ones: `|s1| f·s1`; τ must come out finite and ≥ 0).
    pub fn new(
        ls: &LeastSquares,
        theta: &[f64],
        weighting: Weighting,
        cutoff: impl Fn(f64) -> f64,
    ) -> Result<Self> {
        let sys = ls.assemble(theta, weighting)?;
        let (p, s) = (sys.jac_t.nrows(), sys.jac_t.ncols());
        // φ̃ is S × P; jac_t holds it transposed.
        let svd = Svd::compute(View::col_major(sys.jac_t.as_slice(), p, s).t(), Par::Seq)?;
        let cutoff = cutoff(svd.s.first().copied().unwrap_or(0.0));
        if !(cutoff.is_finite() && cutoff >= 0.0) {
            return Err(Error::config(
                "cutoff",
                format!("must be finite and ≥ 0, got {cutoff}"),
            ));
        }
        let kept = svd
            .s
            .iter()
            .take_while(|&&sv| sv >= cutoff && sv > 0.0)
            .count();
        let w = Matrix::from_fn(p, kept, |i, k| svd.v.at(i, k) / svd.s[k]);
        let basis = Matrix::from_fn(p, kept, |i, k| svd.v.at(i, k));
        Ok(Green {
            w,
            singular_values: svd.s,
            cutoff,
            kept,
            weighting,
            basis,
        })
    }

    /// `g(x, y_j)` from the features: `fx = ∇u(x)` (length P) and the
    /// columns of `fy` (`∇D(y_j)`, `P × n`).
    pub fn from_features(&self, fx: &[f64], fy: &Matrix) -> Vec<f64> {
        let a = self.w.tr_mul_vec(fx);
        (0..fy.ncols())
            .map(|j| dot(&a, &self.w.tr_mul_vec(fy.col(j))))
            .collect()
    }

    /// `g(x, y_j)` for the operator of block `block` (an interior block) at
    /// the points `ys`.
    pub fn eval(
        &self,
        ls: &LeastSquares,
        theta: &[f64],
        x: &[f64],
        block: usize,
        ys: &[f64],
    ) -> Result<Vec<f64>> {
        check_point(ls, x)?;
        let fx = tangent_features(ls, theta, x)?;
        let fy = operator_features(ls, theta, block, ys)?;
        Ok(self.from_features(fx.col(0), &fy))
    }
}

/// `f·F_j` for every column of `F`.
fn inner(f: &[f64], cols: &Matrix) -> Vec<f64> {
    (0..cols.ncols()).map(|j| dot(f, cols.col(j))).collect()
}

/// One point of the network's input dimension.
fn check_point(ls: &LeastSquares, x: &[f64]) -> Result<()> {
    let d = ls.model().input_dim();
    if x.len() != d {
        return Err(Error::DimensionMismatch {
            context: "kernel point x vs the network's input".into(),
            expected: d,
            got: x.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::symmetric_eigen;
    use crate::optim::OptimizerConfig;
    use crate::problems;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn points(n: usize, d: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * d).map(|_| rng.random_range(0.05..0.95)).collect()
    }

    /// A laplace2d model after a few hundred SSBroyden steps.
    fn trained_laplace() -> (problems::Problem, LeastSquares, Vec<f64>) {
        let pb = problems::laplace2d();
        let ls = pb.least_squares().unwrap();
        let mut theta = pb.initial_theta(0).unwrap();
        let mut opt = OptimizerConfig::default_for("ssbroyden")
            .unwrap()
            .build(&Default::default())
            .unwrap();
        let mut loss = ls.loss(&theta).unwrap();
        for _ in 0..300 {
            loss = opt.step(&ls, &mut theta, loss).unwrap().loss;
        }
        assert!(loss < 1e-3, "loss {loss}");
        (pb, ls, theta)
    }

    /// ∇u matches central differences of u (through heat's plain network
    /// and burgers' output transform).
    #[test]
    fn tangent_features_match_finite_differences() {
        for pb in [problems::heat(), problems::burgers().unwrap()] {
            let ls = pb.least_squares().unwrap();
            let theta = pb.initial_theta(3).unwrap();
            let ys = points(4, 2, 1);
            let f = tangent_features(&ls, &theta, &ys).unwrap();
            for p in [0, 7, theta.len() / 2, theta.len() - 1] {
                let h = 1e-6;
                let (mut tp, mut tm) = (theta.clone(), theta.clone());
                tp[p] += h;
                tm[p] -= h;
                let (up, um) = (
                    pb.solution(&tp, &ys).unwrap(),
                    pb.solution(&tm, &ys).unwrap(),
                );
                for j in 0..4 {
                    let fd = (up[j] - um[j]) / (2.0 * h);
                    assert!(
                        (f.at(p, j) - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
                        "{} p={p}",
                        pb.name
                    );
                }
            }
        }
    }

    /// The NTK on a point set is symmetric and positive semi-definite.
    #[test]
    fn ntk_is_symmetric_and_psd() {
        let pb = problems::heat();
        let ls = pb.least_squares().unwrap();
        let theta = pb.initial_theta(1).unwrap();
        let ys = points(30, 2, 2);
        let n = 30;
        let k = Matrix::from_fn(n, n, |i, j| {
            ntk(&ls, &theta, &ys[2 * i..2 * i + 2], &ys[2 * j..2 * j + 2]).unwrap()[0]
        });
        let max = k.as_slice().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for i in 0..n {
            for j in 0..n {
                assert!((k.at(i, j) - k.at(j, i)).abs() <= 1e-13 * max);
            }
        }
        let (values, _) = symmetric_eigen(&k).unwrap();
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(
            min >= -1e-10 * max,
            "smallest eigenvalue {min:e}, max {max:e}"
        );
    }

    /// The operator NTK on the interior collocation points is φφᵀ of the
    /// assembled (unweighted) training system.
    #[test]
    fn operator_ntk_is_phi_phi_t() {
        let pb = problems::laplace2d();
        let ls = pb.least_squares().unwrap();
        let theta = pb.initial_theta(2).unwrap();
        let sys = ls.assemble(&theta, Weighting::Uniform).unwrap();
        let interior = ls.block_index("interior").unwrap();
        let pts = ls.blocks()[interior].points();
        let range = sys.block_ranges[interior].clone();
        for i in [0, 17, 400, 783] {
            let x = &pts[2 * i..2 * i + 2];
            let k = operator_ntk(&ls, &theta, interior, x, pts).unwrap();
            let row = sys.jac_t.col(range.start + i);
            for j in [0, 5, 391, 783] {
                let want = dot(row, sys.jac_t.col(range.start + j));
                assert!(
                    (k[j] - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "({i}, {j}): {} vs {want}",
                    k[j]
                );
            }
        }
    }

    /// The Green's function reproduces a tangent function from its operator
    /// values: Σ_b Σ_{i∈b} w_i g_b(x, y_i) D_b[v](y_i) = v(x) at 20 points
    /// for c in the kept span (D_b: each block's own operator, the boundary
    /// condition on the boundary block); outside it the part of c beyond the
    /// span is lost.
    #[test]
    fn green_function_reproduces_tangent_functions() {
        let (_pb, ls, theta) = trained_laplace();
        let weighting = Weighting::BlockMean;
        let cutoff = 1e-6;
        let green = Green::new(&ls, &theta, weighting, |_| cutoff).unwrap();
        assert!(green.kept > 0 && green.kept <= theta.len());
        let sys = ls.assemble(&theta, Weighting::Uniform).unwrap();
        let xs = points(20, 2, 9);
        let fx = tangent_features(&ls, &theta, &xs).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let a: Vec<f64> = (0..green.kept)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let inside = green.basis.mul_vec(&a);
        let quadrature = |c: &[f64]| -> Vec<f64> {
            (0..20)
                .map(|k| {
                    let g = green.from_features(fx.col(k), &sys.jac_t);
                    let mut sum = 0.0;
                    for (b, range) in sys.block_ranges.iter().enumerate() {
                        let w = weighting.row_factor(ls.blocks()[b].rows()).powi(2);
                        for i in range.clone() {
                            sum += w * g[i] * dot(sys.jac_t.col(i), c);
                        }
                    }
                    sum
                })
                .collect()
        };
        let v = |c: &[f64]| -> Vec<f64> { (0..20).map(|k| dot(fx.col(k), c)).collect() };
        let rel = |a: &[f64], b: &[f64]| {
            let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
            crate::linalg::norm2(&d) / crate::linalg::norm2(b)
        };
        let err_in = rel(&quadrature(&inside), &v(&inside));
        eprintln!(
            "green: {} of {} components kept (cutoff {cutoff:e}); kept span: relative error {err_in:e}",
            green.kept,
            theta.len()
        );
        assert!(err_in <= 1e-8, "kept span: relative error {err_in:e}");
        // A direction outside the kept span is lost entirely: the quadrature
        // gives 0 where v does not vanish.
        assert!(green.kept < theta.len(), "the cutoff drops nothing here");
        {
            let mut outside = vec![0.0; theta.len()];
            let mut x = ChaCha8Rng::seed_from_u64(5);
            for o in outside.iter_mut() {
                *o = x.random_range(-1.0..1.0);
            }
            // Remove the kept component.
            let coeff = green.basis.tr_mul_vec(&outside);
            let proj = green.basis.mul_vec(&coeff);
            for (o, p) in outside.iter_mut().zip(&proj) {
                *o -= p;
            }
            let lost = rel(&quadrature(&outside), &v(&outside));
            assert!((lost - 1.0).abs() <= 1e-6, "relative error {lost:e}");
        }
        assert!(Green::new(&ls, &theta, weighting, |_| -1.0).is_err());
        assert!(ntk(&ls, &theta, &[0.5], &xs).is_err());
    }
}
