//! Differential operators and boundary conditions as residual functions of the jet.
//!
//! A residual is `r_i = F(x_i, J(x_i))`: a function of the point and the jet
//! of `u_θ` there. Users write `F` **once**, generic over a
//! dual-number scalar ([`Scalar`]); natgrad evaluates it with `f64` for the
//! loss and with first-order duals (num-dual's `Dual64`, one pass per jet
//! channel) to get every `a_c = ∂F/∂J_c`, which seed the batched reverse pass
//! that yields the rows of φ = ∂r/∂θ. Nonlinear operators need nothing more:
//! φ is then the Gauss–Newton linearisation.
//!
//! ```
//! use natgrad::pde::{Jet, JetSpec, Operator, Point, Scalar};
//!
//! /// −Δu + k²u = f (a screened Poisson / Helmholtz-type operator).
//! struct Screened { k: f64 }
//!
//! impl Operator for Screened {
//!     fn jet_spec(&self) -> JetSpec { JetSpec::value().with_laplacian() }
//!     fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
//!         -u.laplacian() + u.value() * (self.k * self.k)
//!     }
//!     fn source(&self, x: &[f64]) -> f64 { (x[0] * x[1]).sin() }
//! }
//! ```

mod conditions;
pub mod expr;
mod formula;

pub use crate::model::JetSpec;
pub use conditions::{Dirichlet, InitialCondition, Neumann, NormalSourceFn, SourceFn};
pub use formula::{Data, Formula};

use num_dual::{Dual64, DualNum, HyperDual64};

use crate::model::{Channels, JetTape};

thread_local! {
    static UNDECLARED: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// The channel (`u`, `a first derivative`, …) a residual read on this
/// thread without declaring it in its [`JetSpec`] since the last call, if any.
pub fn take_undeclared_read() -> Option<&'static str> {
    UNDECLARED.with(|u| u.take())
}

/// The scalar type residuals are written over: `f64` or a dual number.
pub trait Scalar: DualNum<Primitive = f64> + Copy {}
impl<T: DualNum<Primitive = f64> + Copy> Scalar for T {}

/// Where a residual is evaluated: the point and, on boundaries, the outward unit normal.
#[derive(Clone, Copy, Debug)]
pub struct Point<'a> {
    /// Coordinates (for space-time problems, time first).
    pub x: &'a [f64],
    /// Outward unit normal, when the point lies on a boundary piece that has one.
    pub normal: Option<&'a [f64]>,
}

/// The jet of `u_θ` at one point, in the scalar type of the evaluation.
///
/// Reading a channel the operator's [`JetSpec`] does not declare — a
/// contract violation in the operator's own definition — gives NaN and is
/// recorded ([`take_undeclared_read`]): building a problem evaluates every
/// block once and turns it into an error naming the block.
pub struct Jet<'a, D> {
    values: &'a [D],
    channels: &'a Channels,
    n_out: usize,
}

impl<'a, D: Scalar> Jet<'a, D> {
    /// Wrap channel values (`C · n_out`, index `c·n_out + o`).
    pub fn new(values: &'a [D], channels: &'a Channels, n_out: usize) -> Self {
        Jet {
            values,
            channels,
            n_out,
        }
    }

    fn get(&self, c: Option<usize>, o: usize, what: &'static str) -> D {
        match c {
            Some(c) if o < self.n_out => self.values[c * self.n_out + o],
            _ => {
                UNDECLARED.with(|u| u.set(Some(what)));
                self.values[0] * f64::NAN
            }
        }
    }

    /// `u` (output 0).
    pub fn value(&self) -> D {
        self.get(Some(0), 0, "u")
    }

    /// `∂_k u` (output 0).
    pub fn d(&self, k: usize) -> D {
        self.get(self.channels.first_index(k), 0, "a first derivative")
    }

    /// `∂_k ∂_l u` (output 0).
    pub fn d2(&self, k: usize, l: usize) -> D {
        self.get(self.channels.second_index(k, l), 0, "a second derivative")
    }

    /// `Δu` over all input axes (output 0).
    pub fn laplacian(&self) -> D {
        self.get(self.channels.laplacian_index(), 0, "the Laplacian")
    }

    /// Output component `o` of the value, for vector-valued networks.
    pub fn value_of(&self, o: usize) -> D {
        self.get(Some(0), o, "u")
    }

    /// `∂_k u_o` for vector-valued networks.
    pub fn d_of(&self, o: usize, k: usize) -> D {
        self.get(self.channels.first_index(k), o, "a first derivative")
    }
}

/// A residual `r = F(x, J) − f(x)` written once, generically over the scalar type.
///
/// Implement this for PDE operators and boundary conditions; natgrad derives
/// the linearisation automatically. The data term `f` is separate so that
/// each block evaluates it once per point, not once per loss evaluation (a
/// line search evaluates the loss dozens of times per iteration); `F` may
/// also depend on `x` directly (variable coefficients).
pub trait Operator: Send + Sync {
    /// The jet channels `F` reads.
    fn jet_spec(&self) -> JetSpec;
    /// `F(x, J)`.
    fn residual<D: Scalar>(&self, p: &Point<'_>, u: &Jet<'_, D>) -> D;
    /// The data term `f(x)` (default 0).
    fn source(&self, _x: &[f64]) -> f64 {
        0.0
    }
    /// The data term at a boundary point with its outward unit normal `n`
    /// (default: [`Operator::source`], the normal unused).
    fn source_with_normal(&self, x: &[f64], _n: &[f64]) -> f64 {
        self.source(x)
    }
    /// Whether the residual reads the points' outward normals (a block with
    /// such an operator must carry them; default false).
    fn needs_normals(&self) -> bool {
        false
    }
}

/// The object-safe form of [`Operator`] that residual blocks store.
pub trait ResidualFn: Send + Sync {
    /// The jet channels needed.
    fn jet_spec(&self) -> JetSpec;
    /// The data term `f(x)`.
    fn source(&self, x: &[f64]) -> f64;
    /// The data term at a point with its outward normal.
    fn source_with_normal(&self, x: &[f64], n: &[f64]) -> f64;
    /// Whether the residual reads outward normals.
    fn needs_normals(&self) -> bool;
    /// `F(x, J)` (without the data term).
    fn eval(&self, p: &Point<'_>, jet: &[f64], channels: &Channels, n_out: usize) -> f64;
    /// `F(x_i, J_i) − f_i` for the points of a forward pass (`tape` holds their
    /// jets; `points`/`normals` row-major with `dim` entries per point,
    /// `sources` the data term), appended to `out`. Monomorphised per
    /// operator, so the line search's many loss evaluations pay no dynamic
    /// dispatch per point.
    #[allow(clippy::too_many_arguments)]
    fn eval_chunk(
        &self,
        dim: usize,
        points: &[f64],
        normals: Option<&[f64]>,
        sources: &[f64],
        tape: &JetTape,
        out: &mut Vec<f64>,
    );
    /// `F(x, J)` and its partial derivatives `∂F/∂J_c` written into `grad`
    /// (same layout as `jet`).
    fn linearise(
        &self,
        p: &Point<'_>,
        jet: &[f64],
        channels: &Channels,
        n_out: usize,
        grad: &mut [f64],
    ) -> f64;
    /// The second partial derivatives `∂²F/∂J_c∂J_c'` written into `hess`
    /// (`n × n` row-major, `n = jet.len()`, symmetric), by hyper-dual numbers.
    /// Zero for an operator linear in the jet.
    fn curvature(
        &self,
        p: &Point<'_>,
        jet: &[f64],
        channels: &Channels,
        n_out: usize,
        hess: &mut [f64],
    );
}

impl<T: Operator> ResidualFn for T {
    fn jet_spec(&self) -> JetSpec {
        Operator::jet_spec(self)
    }

    fn source(&self, x: &[f64]) -> f64 {
        Operator::source(self, x)
    }

    fn source_with_normal(&self, x: &[f64], n: &[f64]) -> f64 {
        Operator::source_with_normal(self, x, n)
    }

    fn needs_normals(&self) -> bool {
        Operator::needs_normals(self)
    }

    fn eval(&self, p: &Point<'_>, jet: &[f64], channels: &Channels, n_out: usize) -> f64 {
        self.residual(p, &Jet::new(jet, channels, n_out))
    }

    fn eval_chunk(
        &self,
        dim: usize,
        points: &[f64],
        normals: Option<&[f64]>,
        sources: &[f64],
        tape: &JetTape,
        out: &mut Vec<f64>,
    ) {
        let channels = tape.channels();
        let n_out = tape.n_outputs();
        let mut jet = vec![0.0; channels.count() * n_out];
        for (k, f) in sources.iter().enumerate() {
            tape.point_jet_in_place(k, &mut jet);
            let p = Point {
                x: &points[k * dim..(k + 1) * dim],
                normal: normals.map(|n| &n[k * dim..(k + 1) * dim]),
            };
            out.push(self.residual(&p, &Jet::new(&jet, channels, n_out)) - f);
        }
    }

    fn linearise(
        &self,
        p: &Point<'_>,
        jet: &[f64],
        channels: &Channels,
        n_out: usize,
        grad: &mut [f64],
    ) -> f64 {
        // One forward-mode pass per channel with a scalar dual: no allocation,
        // and F is a handful of flops next to the network's matrix products.
        let mut duals: Vec<Dual64> = jet.iter().map(|&v| Dual64::from(v)).collect();
        let mut value = f64::NAN;
        for c in 0..jet.len() {
            duals[c].eps = 1.0;
            let r = self.residual(p, &Jet::new(&duals, channels, n_out));
            duals[c].eps = 0.0;
            grad[c] = r.eps;
            value = r.re;
        }
        if jet.is_empty() {
            value = self.eval(p, jet, channels, n_out);
        }
        value
    }

    fn curvature(
        &self,
        p: &Point<'_>,
        jet: &[f64],
        channels: &Channels,
        n_out: usize,
        hess: &mut [f64],
    ) {
        let n = jet.len();
        let mut duals: Vec<HyperDual64> = jet.iter().map(|&v| HyperDual64::from(v)).collect();
        for c in 0..n {
            for c2 in c..n {
                duals[c].eps1 = 1.0;
                duals[c2].eps2 = 1.0;
                let r = self.residual(p, &Jet::new(&duals, channels, n_out));
                duals[c].eps1 = 0.0;
                duals[c2].eps2 = 0.0;
                hess[c * n + c2] = r.eps1eps2;
                hess[c2 * n + c] = r.eps1eps2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nonlinear;
    impl Operator for Nonlinear {
        fn jet_spec(&self) -> JetSpec {
            JetSpec::value().with_first(0).with_second(1, 1)
        }
        fn residual<D: Scalar>(&self, p: &Point<'_>, u: &Jet<'_, D>) -> D {
            u.d(0) - u.d2(1, 1) * 1e-3 - (u.value() - u.value().powi(3)) * 5.0 - p.x[0]
        }
    }

    /// The dual-number linearisation against central differences of `F` in each channel.
    #[test]
    fn linearisation_matches_finite_differences() {
        let ch = Operator::jet_spec(&Nonlinear).resolve(2).unwrap();
        let jet = vec![0.3, -0.7, 1.1, 0.4];
        assert_eq!(jet.len(), ch.count());
        let p = Point {
            x: &[0.25, 0.5],
            normal: None,
        };
        let mut grad = vec![0.0; jet.len()];
        let r = ResidualFn::linearise(&Nonlinear, &p, &jet, &ch, 1, &mut grad);
        assert!((r - ResidualFn::eval(&Nonlinear, &p, &jet, &ch, 1)).abs() < 1e-15);
        let h = 1e-6;
        for c in 0..jet.len() {
            let (mut jp, mut jm) = (jet.clone(), jet.clone());
            jp[c] += h;
            jm[c] -= h;
            let fd = (ResidualFn::eval(&Nonlinear, &p, &jp, &ch, 1)
                - ResidualFn::eval(&Nonlinear, &p, &jm, &ch, 1))
                / (2.0 * h);
            assert!(
                (fd - grad[c]).abs() < 1e-8,
                "channel {c}: fd {fd} vs {}",
                grad[c]
            );
        }
    }

    /// The hyper-dual curvature against central differences of the dual
    /// linearisation, and its exact value for this operator: only
    /// `∂²F/∂u² = 30u` is non-zero.
    #[test]
    fn curvature_matches_finite_differences() {
        let ch = Operator::jet_spec(&Nonlinear).resolve(2).unwrap();
        let jet = vec![0.3, -0.7, 1.1, 0.4];
        let n = jet.len();
        let p = Point {
            x: &[0.25, 0.5],
            normal: None,
        };
        let mut hess = vec![0.0; n * n];
        ResidualFn::curvature(&Nonlinear, &p, &jet, &ch, 1, &mut hess);
        let h = 1e-5;
        let (mut gp, mut gm) = (vec![0.0; n], vec![0.0; n]);
        for c in 0..n {
            let (mut jp, mut jm) = (jet.clone(), jet.clone());
            jp[c] += h;
            jm[c] -= h;
            ResidualFn::linearise(&Nonlinear, &p, &jp, &ch, 1, &mut gp);
            ResidualFn::linearise(&Nonlinear, &p, &jm, &ch, 1, &mut gm);
            for c2 in 0..n {
                let fd = (gp[c2] - gm[c2]) / (2.0 * h);
                assert!(
                    (fd - hess[c * n + c2]).abs() < 1e-7,
                    "({c}, {c2}): fd {fd} vs {}",
                    hess[c * n + c2]
                );
            }
        }
        let value = 0; // the value channel comes first
        for c in 0..n {
            for c2 in 0..n {
                let exact = if c == value && c2 == value {
                    30.0 * jet[value]
                } else {
                    0.0
                };
                assert!((hess[c * n + c2] - exact).abs() < 1e-13);
            }
        }
    }
}
