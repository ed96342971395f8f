//! `heat`: u_t − ¼u_xx = 0 on (t, x) ∈ [0,1]², u(0, x) = sin(πx), u = 0 at x ∈ {0, 1}.

use std::f64::consts::PI;
use std::sync::Arc;

use super::{Problem, Reference};
use crate::geometry::{BoxDomain, Ends, Interval, linspace, tensor_grid};
use crate::model::{Activation, Init};
use crate::pde::{Dirichlet, InitialCondition, Jet, JetSpec, Operator, Point, Scalar};
use crate::residual::{Block, Region};

/// `u_t − ¼ u_xx` (time is axis 0).
struct Heat;

impl Operator for Heat {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value().with_first(0).with_second(1, 1)
    }
    fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
        u.d(0) - u.d2(1, 1) * 0.25
    }
}

/// Exact solution `e^{−π²t/4} sin(πx)`.
pub fn exact(x: &[f64]) -> f64 {
    (-PI * PI * x[0] / 4.0).exp() * (PI * x[1]).sin()
}

/// Net [2, 64, 1] tanh (P = 257), N(0, 0.1²) initialisation. Points, with
/// `k/29`-spaced coordinates: the 28×28 interior grid (784); the initial line
/// t = 0 at x = k/29, k = 0..28 (29); the walls x = 0 and x = 1 at
/// t = k/29, k = 1..29 (29 each). Evaluation: the 298×298 interior grid
/// {i/299}². Presets:
/// [`crate::train::catalogue`].
pub fn build() -> Problem {
    let domain = BoxDomain::space_time(Interval { lo: 0.0, hi: 1.0 }, &BoxDomain::unit(1));
    let g = linspace(0.0, 1.0, 30, Ends::Neither);
    let interior = tensor_grid(&[g.clone(), g]);
    let initial = domain
        .face_points(
            &domain.face(0, false),
            &[linspace(0.0, 1.0, 30, Ends::Lower)],
        )
        .expect("2-D face");
    let walls_t = linspace(0.0, 1.0, 30, Ends::Upper);
    let left = domain.face(1, false);
    let right = domain.face(1, true);
    let left_pts = domain
        .face_points(&left, std::slice::from_ref(&walls_t))
        .expect("2-D face");
    let right_pts = domain.face_points(&right, &[walls_t]).expect("2-D face");
    let n_wall = left_pts.len() / 2;
    let e = linspace(0.0, 1.0, 300, Ends::Neither);
    Problem {
        name: "heat",
        coordinates: &["t", "x"],
        widths: vec![2, 64, 1],
        activation: Activation::Tanh,
        init: Init::Normal { std: 0.1 },
        blocks: vec![
            Block::new("interior", 2, interior, Heat).with_region(Region::Interior),
            Block::new(
                "initial",
                2,
                initial,
                InitialCondition::new(|x| (PI * x[1]).sin()),
            )
            .with_region(Region::Face {
                axis: 0,
                upper: false,
            }),
            Block::new("x=0", 2, left_pts, Dirichlet::zero())
                .with_normals(left.normal.repeat(n_wall))
                .with_region(Region::Face {
                    axis: 1,
                    upper: false,
                }),
            Block::new("x=1", 2, right_pts, Dirichlet::zero())
                .with_normals(right.normal.repeat(n_wall))
                .with_region(Region::Face {
                    axis: 1,
                    upper: true,
                }),
        ],
        domain: Arc::new(domain),
        reference: Reference::from_fn(tensor_grid(&[e.clone(), e]), 2, exact),
        transform: None,
    }
}
