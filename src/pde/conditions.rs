//! Boundary and initial conditions as residuals.

use std::sync::Arc;

use super::{Jet, JetSpec, Operator, Point, Scalar};

/// A data function `g(x)` (boundary values, initial values, source terms).
pub type SourceFn = Arc<dyn Fn(&[f64]) -> f64 + Send + Sync>;

/// Dirichlet condition `r = u(x) − g(x)`.
#[derive(Clone)]
pub struct Dirichlet {
    g: SourceFn,
}

impl Dirichlet {
    /// `u = g` on the block's points.
    pub fn new(g: impl Fn(&[f64]) -> f64 + Send + Sync + 'static) -> Self {
        Dirichlet { g: Arc::new(g) }
    }

    /// Homogeneous condition `u = 0`.
    pub fn zero() -> Self {
        Self::new(|_| 0.0)
    }
}

impl Operator for Dirichlet {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value()
    }
    fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
        u.value()
    }
    fn source(&self, x: &[f64]) -> f64 {
        (self.g)(x)
    }
}

/// Initial condition `r = u(t₀, x) − g(x)` on points of the initial slice:
/// the same residual as [`Dirichlet`], placed on the `t = t₀` face (`g`
/// receives the full point `(t₀, x)`).
pub type InitialCondition = Dirichlet;

/// Neumann condition `r = ∂_n u − g = Σ_k n_k ∂_k u − g` with the block's outward normals.
///
/// The normal has one entry per input axis; `spatial_axes` restricts the sum to
/// the given axes (for space-time problems, leave out time).
#[derive(Clone)]
pub struct Neumann {
    g: SourceFn,
    axes: Vec<usize>,
}

impl Neumann {
    /// `∂_n u = g` on a boundary whose points carry normals, over the given axes.
    pub fn new(axes: Vec<usize>, g: impl Fn(&[f64]) -> f64 + Send + Sync + 'static) -> Self {
        Neumann {
            g: Arc::new(g),
            axes,
        }
    }
}

impl Operator for Neumann {
    fn jet_spec(&self) -> JetSpec {
        self.axes
            .iter()
            .fold(JetSpec::value(), |s, &k| s.with_first(k))
    }
    fn residual<D: Scalar>(&self, p: &Point<'_>, u: &Jet<'_, D>) -> D {
        let n = p
            .normal
            .expect("Neumann condition evaluated on a block without outward normals");
        let mut acc = u.value() * 0.0;
        for &k in &self.axes {
            acc += u.d(k) * n[k];
        }
        acc
    }
    fn source(&self, x: &[f64]) -> f64 {
        (self.g)(x)
    }
}
