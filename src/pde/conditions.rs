//! Boundary and initial conditions as residuals.

use std::sync::Arc;

use super::{Jet, JetSpec, Operator, Point, Scalar};

/// A data function `g(x)` (boundary values, initial values, source terms).
pub type SourceFn = Arc<dyn Fn(&[f64]) -> f64 + Send + Sync>;

/// A data function `g(x, n)` of a boundary point and its outward normal.
pub type NormalSourceFn = Arc<dyn Fn(&[f64], &[f64]) -> f64 + Send + Sync>;

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

/// Neumann condition `r = ∂_n u − g = Σ_k n_k ∂_k u − g` with the block's
/// outward normals (a block with this condition must carry normals:
/// [`crate::residual::LeastSquares::new`] refuses one without).
///
/// The normal has one entry per input axis; `spatial_axes` restricts the sum to
/// the given axes (for space-time problems, leave out time). The data `g`
/// receives the point, or with [`Neumann::with_normal_data`] the point and
/// its outward normal.
#[derive(Clone)]
pub struct Neumann {
    g: NeumannData,
    axes: Vec<usize>,
}

/// `g(x)` or `g(x, n)`.
#[derive(Clone)]
enum NeumannData {
    Point(SourceFn),
    PointNormal(NormalSourceFn),
}

impl Neumann {
    /// `∂_n u = g(x)` on a boundary whose points carry normals, over the given axes.
    pub fn new(axes: Vec<usize>, g: impl Fn(&[f64]) -> f64 + Send + Sync + 'static) -> Self {
        Neumann {
            g: NeumannData::Point(Arc::new(g)),
            axes,
        }
    }

    /// `∂_n u = g(x, n)`, the data a function of the point and its outward
    /// unit normal (e.g. `∇u*·n` for a manufactured solution u*).
    pub fn with_normal_data(
        axes: Vec<usize>,
        g: impl Fn(&[f64], &[f64]) -> f64 + Send + Sync + 'static,
    ) -> Self {
        Neumann {
            g: NeumannData::PointNormal(Arc::new(g)),
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
        // Blocks without normals are refused when the problem is built; a
        // direct call without one gives NaN (a non-finite residual error).
        let Some(n) = p.normal else {
            return u.value() * f64::NAN;
        };
        let mut acc = u.value() * 0.0;
        for &k in &self.axes {
            acc += u.d(k) * n[k];
        }
        acc
    }
    fn source(&self, x: &[f64]) -> f64 {
        match &self.g {
            NeumannData::Point(g) => g(x),
            // Not known without the normal: set when the normals are attached.
            NeumannData::PointNormal(_) => f64::NAN,
        }
    }
    fn source_with_normal(&self, x: &[f64], n: &[f64]) -> f64 {
        match &self.g {
            NeumannData::Point(g) => g(x),
            NeumannData::PointNormal(g) => g(x, n),
        }
    }
    fn needs_normals(&self) -> bool {
        true
    }
}
