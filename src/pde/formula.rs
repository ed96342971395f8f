//! Residuals written as formulas: `r = s·(F(x, J) − f(x))` with `F` an
//! [`Expr`] over the coordinates and the jet of `u` (`u_t - 0.25*lap(u) +
//! u^3 - u`, `u_n + 2*u`), the data term `f` a formula of the coordinates
//! or derived from a manufactured solution, and `s = √weight`.
//!
//! The linearisation `∂F/∂J` is exact: the formula is evaluated over the
//! dual numbers of [`Operator`] like any hand-written residual.

use std::sync::Arc;

use super::expr::{self, Deriv, Env, Expr, Scope};
use super::{Jet, JetSpec, Operator, Point, Scalar};

/// The data term `f(x)` of a formula residual.
#[derive(Clone, Debug)]
pub enum Data {
    /// `f = 0`.
    Zero,
    /// `f` given as a formula of the coordinates.
    Formula(Arc<Expr>),
    /// `f = F(x, J[u*](x))`: the residual's own `F` applied to the jet of a
    /// manufactured solution `u*` (exact derivatives by hyper-dual
    /// numbers), so that `u*` satisfies `F = f` by construction.
    Manufactured(Arc<Expr>),
}

/// A residual given as a formula (see the module documentation).
#[derive(Clone, Debug)]
pub struct Formula {
    expr: Arc<Expr>,
    data: Data,
    spatial: std::ops::Range<usize>,
    time: bool,
    scale: f64,
    spec: JetSpec,
    normals: bool,
}

impl Formula {
    /// `F = expr` (parsed in `scope`) with data term `data`, weight 1.
    pub fn new(expr: Expr, data: Data, scope: &Scope) -> Self {
        let spatial = scope.spatial_axes();
        let mut spec = JetSpec::value();
        let mut normals = false;
        for d in expr.derivs() {
            spec = match d {
                Deriv::Value => spec,
                Deriv::First(k) => spec.with_first(k),
                Deriv::Second(k, l) => spec.with_second(k, l),
                Deriv::Laplacian if scope.time => {
                    spatial.clone().fold(spec, |s, k| s.with_second(k, k))
                }
                Deriv::Laplacian => spec.with_laplacian(),
                Deriv::Normal => {
                    normals = true;
                    spatial.clone().fold(spec, |s, k| s.with_first(k))
                }
            };
        }
        Formula {
            expr: Arc::new(expr),
            data,
            spatial,
            time: scope.time,
            scale: 1.0,
            spec,
            normals,
        }
    }

    /// Weight the residual: `r = √w·(F − f)`, so its block's loss term is
    /// `w` times the mean squared residual.
    pub fn with_weight(mut self, weight: f64) -> Self {
        self.scale = weight.sqrt();
        self
    }

    /// The unscaled data term at `x` (outward normal `n` where the point has one).
    fn data(&self, x: &[f64], n: Option<&[f64]>) -> f64 {
        match &self.data {
            Data::Zero => 0.0,
            Data::Formula(f) => f.eval(x),
            Data::Manufactured(u) => self.expr.eval_in(&Solution { x, n, u, f: self }),
        }
    }
}

/// The names of a formula bound to the network's jet at one point.
struct Network<'a, 'j, D> {
    x: &'a [f64],
    n: Option<&'a [f64]>,
    u: &'a Jet<'j, D>,
    f: &'a Formula,
}

impl<D: Scalar> Env<D> for Network<'_, '_, D> {
    fn coord(&self, k: usize) -> D {
        D::from(self.x[k])
    }
    fn jet(&self, d: Deriv) -> D {
        let u = self.u;
        match d {
            Deriv::Value => u.value(),
            Deriv::First(k) => u.d(k),
            Deriv::Second(k, l) => u.d2(k, l),
            Deriv::Laplacian if self.f.time => self
                .f
                .spatial
                .clone()
                .fold(u.value() * 0.0, |acc, k| acc + u.d2(k, k)),
            Deriv::Laplacian => u.laplacian(),
            Deriv::Normal => match self.n {
                Some(n) => self
                    .f
                    .spatial
                    .clone()
                    .fold(u.value() * 0.0, |acc, k| acc + u.d(k) * n[k]),
                None => u.value() * f64::NAN,
            },
        }
    }
    fn source(&self) -> D {
        D::from(f64::NAN)
    }
}

/// The names of a formula bound to a manufactured solution's exact jet.
struct Solution<'a> {
    x: &'a [f64],
    n: Option<&'a [f64]>,
    u: &'a Expr,
    f: &'a Formula,
}

impl Env<f64> for Solution<'_> {
    fn coord(&self, k: usize) -> f64 {
        self.x[k]
    }
    fn jet(&self, d: Deriv) -> f64 {
        let (u, x) = (self.u, self.x);
        match d {
            Deriv::Value => u.eval(x),
            Deriv::First(k) => expr::first(u, x, k),
            Deriv::Second(k, l) => expr::second(u, x, k, l),
            Deriv::Laplacian => self
                .f
                .spatial
                .clone()
                .map(|k| expr::second(u, x, k, k))
                .sum(),
            Deriv::Normal => match self.n {
                Some(n) => self
                    .f
                    .spatial
                    .clone()
                    .map(|k| n[k] * expr::first(u, x, k))
                    .sum(),
                None => f64::NAN,
            },
        }
    }
    fn source(&self) -> f64 {
        f64::NAN
    }
}

impl Operator for Formula {
    fn jet_spec(&self) -> JetSpec {
        self.spec.clone()
    }
    fn residual<D: Scalar>(&self, p: &Point<'_>, u: &Jet<'_, D>) -> D {
        self.expr.eval_in(&Network {
            x: p.x,
            n: p.normal,
            u,
            f: self,
        }) * self.scale
    }
    fn source(&self, x: &[f64]) -> f64 {
        self.data(x, None) * self.scale
    }
    fn source_with_normal(&self, x: &[f64], n: &[f64]) -> f64 {
        self.data(x, Some(n)) * self.scale
    }
    fn needs_normals(&self) -> bool {
        self.normals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pde::ResidualFn;

    fn scope(time: bool, normal: bool) -> Scope {
        Scope {
            dim: 2,
            time,
            params: vec![("k".into(), 3.0)],
            unknown: true,
            normal,
            source: false,
            what: "test".into(),
        }
    }

    /// The formula's dual-number linearisation against central differences
    /// of its value in every jet channel, on a non-linear space-time residual
    /// with mixed derivatives, and the spatial Laplacian as a sum of the
    /// spatial second derivatives.
    #[test]
    fn linearisation_matches_finite_differences() {
        let sc = scope(true, false);
        let e = Expr::parse_in("u_t - k*lap(u) + u^3*exp(u_x) + u_tx*t - sin(x*y)", &sc).unwrap();
        let f = Formula::new(e, Data::Zero, &sc).with_weight(4.0);
        let ch = Operator::jet_spec(&f).resolve(3).unwrap();
        let p = Point {
            x: &[0.2, 0.3, -0.4],
            normal: None,
        };
        let jet: Vec<f64> = (0..ch.count()).map(|c| 0.3 + 0.17 * c as f64).collect();
        let mut grad = vec![0.0; jet.len()];
        let r = ResidualFn::linearise(&f, &p, &jet, &ch, 1, &mut grad);
        // The closed form, with the jet's channels read by name.
        let (u, ut, ux) = (
            jet[0],
            jet[ch.first_index(0).unwrap()],
            jet[ch.first_index(1).unwrap()],
        );
        let lap = jet[ch.second_index(1, 1).unwrap()] + jet[ch.second_index(2, 2).unwrap()];
        let utx = jet[ch.second_index(0, 1).unwrap()];
        let expect =
            2.0 * (ut - 3.0 * lap + u.powi(3) * ux.exp() + utx * 0.2 - (0.3f64 * -0.4).sin());
        assert!((r - expect).abs() < 1e-13, "{r} vs {expect}");
        let h = 1e-6;
        for c in 0..jet.len() {
            let (mut jp, mut jm) = (jet.clone(), jet.clone());
            jp[c] += h;
            jm[c] -= h;
            let fd = (ResidualFn::eval(&f, &p, &jp, &ch, 1)
                - ResidualFn::eval(&f, &p, &jm, &ch, 1))
                / (2.0 * h);
            assert!(
                (fd - grad[c]).abs() < 1e-7,
                "channel {c}: {fd} vs {}",
                grad[c]
            );
        }
    }

    /// A manufactured solution satisfies its own residual: the data term is
    /// F applied to the solution's exact jet, the normal derivative included.
    #[test]
    fn manufactured_data_is_the_solutions_residual() {
        let sc = scope(false, true);
        let sol = Arc::new(Expr::parse_in("sin(x)*exp(y) + x*y^2", &Scope::space(2)).unwrap());
        let e = Expr::parse_in("u_n + k*u - lap(u)", &sc).unwrap();
        let f = Formula::new(e, Data::Manufactured(sol), &sc);
        assert!(Operator::needs_normals(&f));
        let (x, n): ([f64; 2], [f64; 2]) = ([0.4, 0.7], [0.6, 0.8]);
        let (s, c, ey) = (x[0].sin(), x[0].cos(), x[1].exp());
        let u = s * ey + x[0] * x[1] * x[1];
        let grad = [c * ey + x[1] * x[1], s * ey + 2.0 * x[0] * x[1]];
        let lap = -s * ey + s * ey + 2.0 * x[0];
        let expect = grad[0] * n[0] + grad[1] * n[1] + 3.0 * u - lap;
        let got = Operator::source_with_normal(&f, &x, &n);
        assert!((got - expect).abs() < 1e-13, "{got} vs {expect}");
        assert!(Operator::source(&f, &x).is_nan());
    }
}
