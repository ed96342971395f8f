//! `laplace2d`: −Δu = 2π² sin(πx) sin(πy) on [0,1]², u = 0 on the boundary.

use std::f64::consts::PI;
use std::sync::Arc;

use super::{Problem, Reference};
use crate::geometry::{BoxDomain, Ends, linspace, tensor_grid};
use crate::model::{Activation, Init};
use crate::pde::{Dirichlet, Jet, JetSpec, Operator, Point, Scalar};
use crate::residual::{Block, Region};

/// `−Δu = 2π² sin(πx) sin(πy)`.
struct Poisson;

impl Operator for Poisson {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value().with_laplacian()
    }
    fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
        -u.laplacian()
    }
    fn source(&self, x: &[f64]) -> f64 {
        2.0 * PI * PI * (PI * x[0]).sin() * (PI * x[1]).sin()
    }
}

/// Exact solution `sin(πx) sin(πy)`.
pub fn exact(x: &[f64]) -> f64 {
    (PI * x[0]).sin() * (PI * x[1]).sin()
}

/// Net [2, 32, 1] tanh (P = 129), N(0, 0.1²) initialisation. Training points:
/// the 28×28 interior grid {i/29 : i = 1..28}² (784) and the boundary loop
/// of 29 points per side, counter-clockwise from (0, 0), corners once (116,
/// one block). Evaluation: the 198×198 interior grid {i/199 : i = 1..198}².
/// Presets: [`crate::train::catalogue`].
pub fn build() -> Problem {
    let sq = BoxDomain::unit(2);
    let g = linspace(0.0, 1.0, 30, Ends::Neither);
    let interior = tensor_grid(&[g.clone(), g]);
    let (boundary, normals) = sq.boundary_loop_2d(30).expect("2-D box");
    let e = linspace(0.0, 1.0, 200, Ends::Neither);
    Problem {
        name: "laplace2d",
        coordinates: &["x", "y"],
        widths: vec![2, 32, 1],
        activation: Activation::Tanh,
        init: Init::Normal { std: 0.1 },
        blocks: vec![
            Block::new("interior", 2, interior, Poisson).with_region(Region::Interior),
            Block::new("boundary", 2, boundary, Dirichlet::zero())
                .with_normals(normals)
                .with_region(Region::Boundary),
        ],
        domain: Arc::new(sq),
        reference: Reference::from_fn(tensor_grid(&[e.clone(), e]), 2, exact),
        transform: None,
    }
}
