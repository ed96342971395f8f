//! The benchmark problems: each with its network, training points,
//! evaluation set and reference solution. What they are trained with (natgrad's
//! and the papers' optimiser presets) and their accuracy targets live in
//! [`crate::train::catalogue`], which also maps names to these constructors.
//!
//! Each problem follows the paper it comes from (named in its module docs);
//! every point convention is stated on the problem's constructor.

mod allen_cahn;
mod burgers;
mod custom;
mod heat;
mod laplace2d;
mod laplace5d;
mod nonlinear_poisson;

use std::sync::Arc;

use crate::error::Result;
use crate::geometry::{BoxDomain, Domain, Interval};
use crate::model::{Activation, Init, Metrics, Mlp, OutputTransform};
use crate::residual::{Block, LeastSquares};

/// The space-time box `[t₀, t₁] × [x₀, x₁]` of a 1+1-D evolution problem
/// (time is axis 0).
fn space_time_1d(t: (f64, f64), x: (f64, f64)) -> Result<Arc<dyn Domain>> {
    Ok(Arc::new(BoxDomain::space_time(
        Interval::new(t.0, t.1)?,
        &BoxDomain::new(vec![Interval::new(x.0, x.1)?])?,
    )))
}

/// Points where the error is measured, with the exact (or reference) solution there.
#[derive(Clone, Debug)]
pub struct Reference {
    /// Evaluation points, row-major.
    pub points: Vec<f64>,
    /// `u*` at the points.
    pub values: Vec<f64>,
}

impl Reference {
    /// No reference: a problem without a known solution (errors are not
    /// measured; the held-out residual is the accuracy signal).
    pub fn none() -> Self {
        Reference {
            points: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Whether there is no reference.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Evaluate `exact` at every point.
    pub fn from_fn(points: Vec<f64>, dim: usize, exact: impl Fn(&[f64]) -> f64) -> Self {
        let values = points.chunks(dim).map(exact).collect();
        Reference { points, values }
    }

    /// Errors of the network (output 0) with parameters θ.
    pub fn metrics(&self, mlp: &Mlp, theta: &[f64]) -> Result<Metrics> {
        let u = mlp.values(theta, &self.points)?;
        let k = mlp.output_dim();
        Ok(self.metrics_of(&u.iter().step_by(k).copied().collect::<Vec<_>>()))
    }

    /// Errors of predicted values `u` (one per evaluation point).
    pub fn metrics_of(&self, u: &[f64]) -> Metrics {
        let (mut se, mut su, mut mx) = (0.0, 0.0, 0.0_f64);
        for (i, &ref_v) in self.values.iter().enumerate() {
            let e = u[i] - ref_v;
            se += e * e;
            su += ref_v * ref_v;
            mx = mx.max(e.abs());
        }
        let n = self.values.len().max(1) as f64;
        Metrics {
            l2_abs: (se / n).sqrt(),
            l2_rel: (se / su).sqrt(),
            linf: if se.is_finite() { mx } else { f64::NAN },
        }
    }
}

/// A catalogue problem, fully built.
#[derive(Clone)]
pub struct Problem {
    /// Catalogue name.
    pub name: &'static str,
    /// Names of the input coordinates, in order (e.g. `["t", "x"]`), for
    /// figures and tables.
    pub coordinates: &'static [&'static str],
    /// Network widths.
    pub widths: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Parameter initialisation.
    pub init: Init,
    /// Residual blocks with their training points.
    pub blocks: Vec<Block>,
    /// The domain of the `interior` block (space-time for evolution
    /// problems): where [`crate::train::Resampler`] draws new points.
    pub domain: Arc<dyn Domain>,
    /// Evaluation points and reference values.
    pub reference: Reference,
    /// Hard constraints `u = g + ψ·N_θ`, if the problem uses them.
    pub transform: Option<OutputTransform>,
}

impl Problem {
    /// The network.
    pub fn mlp(&self) -> Result<Mlp> {
        Mlp::new(self.widths.clone(), self.activation)
    }

    /// The system weight of every block, by name
    /// ([`Block::with_system_weight`]).
    pub fn system_weights(&self) -> std::collections::BTreeMap<String, f64> {
        self.blocks
            .iter()
            .map(|b| (b.name().to_string(), b.system_weight()))
            .collect()
    }

    /// The least-squares problem (network + blocks).
    pub fn least_squares(&self) -> Result<LeastSquares> {
        let ls = LeastSquares::new(self.mlp()?, self.blocks.clone())?;
        match &self.transform {
            Some(t) => ls.with_transform(t.clone()),
            None => Ok(ls),
        }
    }

    /// The solution `u` at `points` (the network output, through the output
    /// transform if there is one).
    pub fn solution(&self, theta: &[f64], points: &[f64]) -> Result<Vec<f64>> {
        let mlp = self.mlp()?;
        let n = mlp.values(theta, points)?;
        let k = mlp.output_dim();
        let d = mlp.input_dim();
        Ok(match &self.transform {
            Some(t) => points
                .chunks_exact(d)
                .zip(n.iter().step_by(k))
                .map(|(x, &v)| t.value(x, v))
                .collect(),
            None => n.iter().step_by(k).copied().collect(),
        })
    }

    /// Errors of the solution against the problem's reference.
    pub fn metrics(&self, theta: &[f64]) -> Result<Metrics> {
        Ok(self
            .reference
            .metrics_of(&self.solution(theta, &self.reference.points)?))
    }

    /// Initial parameters for `seed`.
    pub fn initial_theta(&self, seed: u64) -> Result<Vec<f64>> {
        Ok(self.mlp()?.init(self.init, seed))
    }
}

pub use custom::{
    ConditionKind, ConditionSpec, CustomProblem, DomainSpec, PointMethod, TransformSpec,
};

pub use allen_cahn::build as allen_cahn;
pub use burgers::build as burgers;
pub use heat::build as heat;
pub use laplace2d::build as laplace2d;
pub use laplace5d::build as laplace5d;
pub use nonlinear_poisson::build as nonlinear_poisson;

/// Test support: a block's own residual evaluated on a reference solution.
#[cfg(test)]
pub(crate) mod testing {
    use crate::pde::Point;
    use crate::residual::Block;

    /// `F(x, J) − f(x)` of `block` at `x`, with the jet `J` of a reference
    /// solution given by its value `u`, first derivatives `d1(k)` and
    /// second derivatives `d2(k, l)` (axis 0 is time for space-time
    /// problems); the Laplacian, when the operator reads it, is Σ_k d2(k, k).
    pub fn reference_residual(
        block: &Block,
        x: &[f64],
        u: f64,
        d1: impl Fn(usize) -> f64,
        d2: impl Fn(usize, usize) -> f64,
    ) -> f64 {
        let f = block.residual_fn();
        let ch = f.jet_spec().resolve(x.len()).unwrap();
        let mut jet = vec![u];
        jet.extend(ch.first_axes().iter().map(|&k| d1(k)));
        jet.extend(ch.second_pairs().iter().map(|&(k, l)| d2(k, l)));
        if ch.has_laplacian() {
            jet.push((0..x.len()).map(|k| d2(k, k)).sum());
        }
        let p = Point { x, normal: None };
        f.eval(&p, &jet, &ch, 1) - f.source(x)
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::train::catalogue::build;

    /// The closed-form solutions satisfy every block's residual: the jet of
    /// u* is built by finite differences of the closed form and fed to each
    /// block's own residual function (this catches sign errors in sources).
    #[test]
    fn exact_solutions_satisfy_the_residuals() {
        type Exact = fn(&[f64]) -> f64;
        let cases: [(&str, Exact); 4] = [
            ("laplace2d", laplace2d::exact),
            ("heat", heat::exact),
            ("laplace5d", laplace5d::exact),
            ("nonlinear-poisson", nonlinear_poisson::exact),
        ];
        for (name, u) in cases {
            let pb = build(name).unwrap();
            for blk in &pb.blocks {
                let ch = blk.residual_fn().jet_spec().resolve(2).unwrap();
                for i in (0..blk.len()).step_by(7) {
                    let p = blk.point(i);
                    let shift = |k: usize, d: f64| {
                        let mut y = p.x.to_vec();
                        y[k] += d;
                        y
                    };
                    // Central differences with one Richardson step (O(h⁴)):
                    // accurate to ~1e-8 even for nonlinear-poisson's k = 4 waves.
                    let c1 = |k: usize, h: f64| (u(&shift(k, h)) - u(&shift(k, -h))) / (2.0 * h);
                    let c2 = |k: usize, h: f64| {
                        (u(&shift(k, h)) - 2.0 * u(p.x) + u(&shift(k, -h))) / (h * h)
                    };
                    let h = 1e-3;
                    let d1 = |k: usize| (4.0 * c1(k, h / 2.0) - c1(k, h)) / 3.0;
                    let d2 = |k: usize| (4.0 * c2(k, h / 2.0) - c2(k, h)) / 3.0;
                    let mut jet = vec![u(p.x)];
                    jet.extend(ch.first_axes().iter().map(|&k| d1(k)));
                    for &(k, l) in ch.second_pairs() {
                        assert_eq!(k, l, "mixed derivatives not used by these problems");
                        jet.push(d2(k));
                    }
                    if ch.has_laplacian() {
                        jet.push((0..p.x.len()).map(d2).sum());
                    }
                    let r = blk.residual_fn().eval(&p, &jet, &ch, 1) - blk.sources()[i];
                    assert!(
                        r.abs() < 1e-6,
                        "{name} block {} point {i}: residual {r:e}",
                        blk.name()
                    );
                }
            }
        }
        let pb = build("heat").unwrap();
        let r = &pb.reference;
        for i in [0, 1000, 50_000] {
            assert_eq!(r.values[i], heat::exact(&r.points[2 * i..2 * i + 2]));
        }
    }
}
