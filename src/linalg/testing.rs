//! Test matrices shared by the linear-algebra tests (and the CUDA checks):
//! random orthonormal factors and prescribed spectra.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Matrix, Par, Svd, View, dot, matmul_in_place, norm2};

pub(crate) fn random_orthonormal(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Matrix {
    // Modified Gram–Schmidt, twice, on Gaussian columns.
    let mut q = Matrix::from_fn(n, k, |_, _| {
        rng.sample::<f64, _>(rand_distr::StandardNormal)
    });
    for _pass in 0..2 {
        for j in 0..k {
            for i in 0..j {
                let d = dot(q.col(i), q.col(j));
                let qi = q.col(i).to_vec();
                for (x, y) in q.col_mut(j).iter_mut().zip(&qi) {
                    *x -= d * y;
                }
            }
            let nrm = norm2(q.col(j));
            q.col_mut(j).iter_mut().for_each(|x| *x /= nrm);
        }
    }
    q
}

/// `U diag(σ) Vᵀ` (`m × n`) with random orthonormal factors.
pub(crate) fn with_spectrum(m: usize, n: usize, sig: &[f64], seed: u64) -> Matrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = m.min(n);
    let u0 = random_orthonormal(&mut rng, m, k);
    let v0 = random_orthonormal(&mut rng, n, k);
    let mut us = u0.clone();
    for (j, &sj) in sig.iter().enumerate() {
        us.col_mut(j).iter_mut().for_each(|x| *x *= sj);
    }
    let mut a = Matrix::zeros(m, n);
    matmul_in_place(
        a.as_mut_slice(),
        View::col_major(us.as_slice(), m, k),
        View::col_major(v0.as_slice(), n, k).t(),
        false,
        Par::Seq,
    );
    a
}

/// A tall or wide `m × n` matrix with singular values logspace(0, −15).
pub(crate) fn graded(m: usize, n: usize, seed: u64) -> (Matrix, Vec<f64>) {
    let k = m.min(n);
    let sig: Vec<f64> = (0..k)
        .map(|i| 10f64.powf(-15.0 * i as f64 / (k - 1) as f64))
        .collect();
    (with_spectrum(m, n, &sig, seed), sig)
}

/// `‖U diag(σ) Vᵀ − A‖_F / ‖A‖_F`.
pub(crate) fn reconstruction(a: &Matrix, svd: &Svd) -> f64 {
    let (m, n) = (a.nrows(), a.ncols());
    let k = svd.s.len();
    let mut us = svd.u.clone();
    for (j, &sj) in svd.s.iter().enumerate() {
        us.col_mut(j).iter_mut().for_each(|x| *x *= sj);
    }
    let mut rec = Matrix::zeros(m, n);
    matmul_in_place(
        rec.as_mut_slice(),
        View::col_major(us.as_slice(), m, k),
        View::col_major(svd.v.as_slice(), n, k).t(),
        false,
        Par::Seq,
    );
    let diff: Vec<f64> = rec
        .as_slice()
        .iter()
        .zip(a.as_slice())
        .map(|(x, y)| x - y)
        .collect();
    norm2(&diff) / norm2(a.as_slice())
}

/// `max |UᵀU − I|` over the entries.
pub(crate) fn orthogonality(u: &Matrix) -> f64 {
    let n = u.ncols();
    let mut g = Matrix::zeros(n, n);
    let uv = View::col_major(u.as_slice(), u.nrows(), n);
    matmul_in_place(g.as_mut_slice(), uv.t(), uv, false, Par::Seq);
    (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| (g.at(i, j) - if i == j { 1.0 } else { 0.0 }).abs())
        .fold(0.0, f64::max)
}
