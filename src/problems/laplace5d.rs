//! `laplace5d`: −Δu = π² Σ_k sin(πx_k) on [0,1]⁵, u = Σ_k sin(πx_k) on the boundary.

use std::f64::consts::PI;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Problem, Reference};
use crate::geometry::{BoxDomain, uniform_faces, uniform_interior};
use crate::model::{Activation, Init};
use crate::pde::{Dirichlet, Jet, JetSpec, Operator, Point, Scalar};
use crate::residual::{Block, Region};

/// Dimension.
const DIM: usize = 5;

/// Seed of the training points (fixed: the problem is the same whatever the
/// training seed, which only draws θ₀).
const POINTS_SEED: u64 = 0x5d_0001;

/// Seed of the evaluation points (independent of the training points).
const EVAL_SEED: u64 = 0x5d_e7a1;

/// `−Δu = π² Σ_k sin(πx_k)`.
struct Poisson5d;

impl Operator for Poisson5d {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value().with_laplacian()
    }
    fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
        -u.laplacian()
    }
    fn source(&self, x: &[f64]) -> f64 {
        PI * PI * exact(x)
    }
}

/// Exact solution `Σ_k sin(πx_k)`.
pub fn exact(x: &[f64]) -> f64 {
    x.iter().map(|&xk| (PI * xk).sin()).sum()
}

/// Net [5, 64, 1] tanh (P = 449), N(0, 0.1²) initialisation. Training points,
/// drawn once with ChaCha8 from the fixed seed `POINTS_SEED` (so every
/// training seed sees the same problem): 4000 i.i.d. uniform interior points
/// and 500 boundary points (a uniform point with one uniformly chosen
/// coordinate set to 0 or 1, as in the ANaGRAM code). Evaluation: 40 000
/// uniform points from the independent seed `EVAL_SEED`.
///
/// Presets: [`crate::train::catalogue`].
pub fn build() -> Problem {
    let cube = BoxDomain::unit(DIM);
    let mut rng = ChaCha8Rng::seed_from_u64(POINTS_SEED);
    let interior = uniform_interior(&cube, 4000, &mut rng);
    let boundary = uniform_faces(&cube, 500, &mut rng);
    let mut eval_rng = ChaCha8Rng::seed_from_u64(EVAL_SEED);
    let eval = uniform_interior(&cube, 40_000, &mut eval_rng);
    Problem {
        name: "laplace5d",
        coordinates: &["x1", "x2", "x3", "x4", "x5"],
        widths: vec![DIM, 64, 1],
        activation: Activation::Tanh,
        init: Init::Normal { std: 0.1 },
        blocks: vec![
            Block::new("interior", DIM, interior, Poisson5d).with_region(Region::Interior),
            Block::new("boundary", DIM, boundary, Dirichlet::new(exact))
                .with_region(Region::Boundary),
        ],
        domain: Arc::new(cube),
        reference: Reference::from_fn(eval, DIM, exact),
        transform: None,
    }
}
