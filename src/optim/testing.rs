//! Small objectives with known behaviour, shared by the optimisers' unit tests.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Objective;
use crate::error::Result;
use crate::linalg::Matrix;
use crate::residual::{System, Weighting};

/// `r(θ) = Aθ − b`, loss `mean r²`: a problem linear in θ (the weighting is ignored).
pub(crate) struct Linear {
    pub a: Matrix,
    pub b: Vec<f64>,
}

impl Linear {
    /// Entries of `A`, `b` and a starting θ uniform in [−1, 1) from a seeded stream.
    pub fn random(seed: u64, s: usize, p: usize) -> (Self, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a = Matrix::from_fn(s, p, |_, _| rng.random_range(-1.0..1.0));
        let b = (0..s).map(|_| rng.random_range(-1.0..1.0)).collect();
        let theta0 = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
        (Linear { a, b }, theta0)
    }

    pub fn residual(&self, theta: &[f64]) -> Vec<f64> {
        self.a
            .mul_vec(theta)
            .iter()
            .zip(&self.b)
            .map(|(x, y)| x - y)
            .collect()
    }
}

impl Objective for Linear {
    fn n_params(&self) -> usize {
        self.a.ncols()
    }
    fn loss(&self, theta: &[f64]) -> Result<f64> {
        let r = self.residual(theta);
        Ok(r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64)
    }
    fn loss_gradient(&self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        let r = self.residual(theta);
        let s = r.len() as f64;
        let g = self.a.tr_mul_vec(&r).iter().map(|v| 2.0 * v / s).collect();
        Ok((self.loss(theta)?, g))
    }
    fn system_into(&self, theta: &[f64], _w: Weighting, sys: &mut System) -> Result<()> {
        let r = self.residual(theta);
        let loss = self.loss(theta)?;
        *sys = System {
            block_ranges: std::iter::once(0..r.len()).collect(),
            block_losses: vec![loss],
            loss,
            r,
            jac_t: self.a.transpose(),
        };
        Ok(())
    }
}

/// The Rosenbrock function `(1 − x)² + 100 (y − x²)²`, minimum 0 at (1, 1).
pub(crate) struct Rosenbrock;

impl Objective for Rosenbrock {
    fn n_params(&self) -> usize {
        2
    }
    fn loss(&self, t: &[f64]) -> Result<f64> {
        Ok((1.0 - t[0]).powi(2) + 100.0 * (t[1] - t[0] * t[0]).powi(2))
    }
    fn loss_gradient(&self, t: &[f64]) -> Result<(f64, Vec<f64>)> {
        let g0 = -2.0 * (1.0 - t[0]) - 400.0 * t[0] * (t[1] - t[0] * t[0]);
        let g1 = 200.0 * (t[1] - t[0] * t[0]);
        Ok((self.loss(t)?, vec![g0, g1]))
    }
    fn system_into(&self, _t: &[f64], _w: Weighting, _s: &mut System) -> Result<()> {
        unreachable!("Rosenbrock is used by gradient methods only")
    }
}

/// The extended Rosenbrock function in `n` (even) dimensions:
/// `Σ_i (1 − x_{2i})² + 100 (x_{2i+1} − x_{2i}²)²`.
pub(crate) struct ExtendedRosenbrock(pub usize);

impl Objective for ExtendedRosenbrock {
    fn n_params(&self) -> usize {
        self.0
    }
    fn loss(&self, t: &[f64]) -> Result<f64> {
        Ok(t.chunks(2)
            .map(|c| Rosenbrock.loss(c).expect("closed form"))
            .sum())
    }
    fn loss_gradient(&self, t: &[f64]) -> Result<(f64, Vec<f64>)> {
        let mut g = Vec::with_capacity(t.len());
        for c in t.chunks(2) {
            g.extend(Rosenbrock.loss_gradient(c)?.1);
        }
        Ok((self.loss(t)?, g))
    }
    fn system_into(&self, _t: &[f64], _w: Weighting, _s: &mut System) -> Result<()> {
        unreachable!("Rosenbrock is used by gradient methods only")
    }
}
