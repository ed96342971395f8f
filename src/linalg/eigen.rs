//! Eigendecompositions (symmetric, and real-spectrum general), Cholesky
//! and triangular solves.

use super::{Matrix, norm2};
use crate::error::{Error, Result};

/// Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a
/// symmetric matrix (only the lower triangle is read).
pub fn symmetric_eigen(a: &Matrix) -> Result<(Vec<f64>, Matrix)> {
    if a.nrows != a.ncols {
        return Err(Error::DimensionMismatch {
            context: "symmetric_eigen needs a square matrix".into(),
            expected: a.nrows,
            got: a.ncols,
        });
    }
    let evd = a
        .as_ref()
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::LinearAlgebra(format!("symmetric eigendecomposition: {e:?}")))?;
    let n = a.nrows;
    let values = (0..n).map(|i| evd.S()[i]).collect();
    let u = evd.U();
    Ok((values, Matrix::from_fn(n, n, |i, j| u[(i, j)])))
}

/// `A = V Λ V⁻¹` for a real matrix whose eigenvalues are all real.
#[derive(Clone, Debug)]
pub struct RealEigen {
    /// Eigenvalues Λ (in the order of the columns of `vectors`).
    pub values: Vec<f64>,
    /// Eigenvectors V (columns, each of unit 2-norm).
    pub vectors: Matrix,
    /// V⁻¹.
    pub inverse: Matrix,
}

impl RealEigen {
    /// Eigendecomposition of `a`; an error if an eigenvalue has an imaginary
    /// part above `1e-8·max|λ|` (the matrix is then not of the assumed kind).
    pub fn compute(a: &Matrix) -> Result<Self> {
        use faer::linalg::solvers::DenseSolveCore;
        let n = a.nrows;
        if n != a.ncols {
            return Err(Error::DimensionMismatch {
                context: "RealEigen needs a square matrix".into(),
                expected: n,
                got: a.ncols,
            });
        }
        let evd = a
            .as_ref()
            .eigen()
            .map_err(|e| Error::LinearAlgebra(format!("eigendecomposition: {e:?}")))?;
        let (s, u) = (evd.S(), evd.U());
        let scale = (0..n).map(|i| s[i].re.hypot(s[i].im)).fold(0.0, f64::max);
        let mut values = Vec::with_capacity(n);
        let mut vectors = Matrix::zeros(n, n);
        for j in 0..n {
            if s[j].im.abs() > 1e-8 * scale {
                return Err(Error::LinearAlgebra(format!(
                    "eigenvalue {j} = {} + {}i is not real",
                    s[j].re, s[j].im
                )));
            }
            values.push(s[j].re);
            // A real eigenvector up to a complex phase: rotate the largest
            // entry onto the positive real axis, then keep the real part.
            let big = (0..n)
                .max_by(|&a, &b| {
                    let m = |i: usize| u[(i, j)].re.hypot(u[(i, j)].im);
                    m(a).total_cmp(&m(b))
                })
                .unwrap_or(0);
            let (pr, pi) = (u[(big, j)].re, u[(big, j)].im);
            let m = pr.hypot(pi);
            let col = vectors.col_mut(j);
            for (i, v) in col.iter_mut().enumerate() {
                *v = (u[(i, j)].re * pr + u[(i, j)].im * pi) / m;
            }
            let nrm = norm2(col);
            col.iter_mut().for_each(|v| *v /= nrm);
        }
        let inv = vectors.as_ref().partial_piv_lu().inverse();
        let inverse = Matrix::from_fn(n, n, |i, j| inv[(i, j)]);
        Ok(RealEigen {
            values,
            vectors,
            inverse,
        })
    }
}
/// The lower Cholesky factor `L` of a symmetric positive-definite matrix
/// (`A = L Lᵀ`); [`Error::LinearAlgebra`] if `a` is not numerically
/// positive definite.
pub fn cholesky(a: &Matrix) -> Result<Matrix> {
    if a.nrows != a.ncols {
        return Err(Error::DimensionMismatch {
            context: "cholesky needs a square matrix".into(),
            expected: a.nrows,
            got: a.ncols,
        });
    }
    if a.data.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            quantity: "matrix given to the Cholesky factorisation",
            block: "-".into(),
            iteration: None,
        });
    }
    let llt = a
        .as_ref()
        .llt(faer::Side::Lower)
        .map_err(|e| Error::LinearAlgebra(format!("Cholesky factorisation: {e:?}")))?;
    let l = llt.L();
    Ok(Matrix::from_fn(a.nrows, a.nrows, |i, j| {
        if i >= j { l[(i, j)] } else { 0.0 }
    }))
}

/// Solve `L x = b` in place for a lower-triangular `l` (forward substitution).
pub fn solve_lower_in_place(l: &Matrix, b: &mut [f64]) {
    let n = l.nrows;
    assert_eq!(b.len(), n, "solve_lower: vector length");
    for j in 0..n {
        b[j] /= l.at(j, j);
        let bj = b[j];
        let col = l.col(j);
        for i in j + 1..n {
            b[i] -= col[i] * bj;
        }
    }
}

/// Solve `Lᵀ x = b` in place for a lower-triangular `l` (back substitution).
pub fn solve_lower_transposed_in_place(l: &Matrix, b: &mut [f64]) {
    let n = l.nrows;
    assert_eq!(b.len(), n, "solve_lower_transposed: vector length");
    for j in (0..n).rev() {
        let col = l.col(j);
        let s: f64 = (j + 1..n).map(|i| col[i] * b[i]).sum();
        b[j] = (b[j] - s) / col[j];
    }
}
