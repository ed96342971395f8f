//! `nonlinear-poisson`: Δu − eᵘ = f on [0,1]², u = u* on the boundary, with
//! the closed-form solution u* = 1 + sin(kπx) cos(kπy), k = 4 (the SSBroyden
//! paper's NLP problem, here with soft boundary conditions).

use std::f64::consts::PI;
use std::sync::Arc;

use super::{Problem, Reference};
use crate::geometry::{BoxDomain, Ends, linspace, midpoints, tensor_grid};
use crate::model::{Activation, Init};
use crate::pde::{Dirichlet, Jet, JetSpec, Operator, Point, Scalar};
use crate::residual::{Block, Region};

/// Wave number k.
const K: f64 = 4.0;

/// `Δu − eᵘ = f` with `f = −2k²π² sin(kπx) cos(kπy) − exp(1 + sin(kπx) cos(kπy))`.
struct NonlinearPoisson;

impl Operator for NonlinearPoisson {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value().with_laplacian()
    }
    fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
        u.laplacian() - u.value().exp()
    }
    fn source(&self, x: &[f64]) -> f64 {
        let s = (K * PI * x[0]).sin() * (K * PI * x[1]).cos();
        -2.0 * K * K * PI * PI * s - (1.0 + s).exp()
    }
}

/// Exact solution `1 + sin(kπx) cos(kπy)`.
pub fn exact(x: &[f64]) -> f64 {
    1.0 + (K * PI * x[0]).sin() * (K * PI * x[1]).cos()
}

/// Net [2, 30, 30, 1] tanh (P = 1051, the AMStraMGRAM paper's), N(0, 0.1²)
/// initialisation. Training points (natgrad's choice, fixed): the 41×41
/// grid of cell midpoints {(i + ½)/41 : i = 0..40}² (1681; 10 points per
/// period of the k = 4 solution, and no more than half a spacing, 1/82,
/// between the boundary and the nearest row) and the boundary loop of 40
/// points per side, counter-clockwise from (0, 0), corners once (160, one
/// Dirichlet block): S = 1841 > P, so the system stays overdetermined. Evaluation: the
/// 250×250 grid {i/249 : i = 0..249}² including the boundary (a documented
/// subset of the paper's 1000×1000 grid; metric l2_rel). Presets:
/// [`crate::train::catalogue`].
pub fn build() -> Problem {
    let sq = BoxDomain::unit(2);
    let g = midpoints(0.0, 1.0, 41);
    let interior = tensor_grid(&[g.clone(), g]);
    let (boundary, normals) = sq.boundary_loop_2d(41).expect("2-D box");
    let e = linspace(0.0, 1.0, 250, Ends::Both);
    Problem {
        name: "nonlinear-poisson",
        coordinates: &["x", "y"],
        widths: vec![2, 30, 30, 1],
        activation: Activation::Tanh,
        init: Init::Normal { std: 0.1 },
        blocks: vec![
            Block::new("interior", 2, interior, NonlinearPoisson).with_region(Region::Interior),
            Block::new("boundary", 2, boundary, Dirichlet::new(exact))
                .with_normals(normals)
                .with_region(Region::Boundary),
        ],
        domain: Arc::new(sq),
        reference: Reference::from_fn(tensor_grid(&[e.clone(), e]), 2, exact),
        transform: None,
    }
}
