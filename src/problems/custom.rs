//! Problems declared in a run configuration instead of the catalogue:
//! Poisson's equation `−Δu = f` on a box, disk, polygon or the L-shape, with
//! a manufactured solution given as a formula — `f = −Δu*` (exact, by
//! hyper-dual numbers) and the Dirichlet data `g = u*` follow from it, and
//! u* is the reference.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Problem, Reference};
use crate::error::{Error, Result};
use crate::geometry::{
    Ball, BoxDomain, Domain, Interval, Polygon, sample_boundary, sample_interior,
};
use crate::model::{Activation, Init};
use crate::pde::expr::{Expr, laplacian};
use crate::pde::{Dirichlet, Jet, JetSpec, Operator, Point, Scalar};
use crate::residual::{Block, Region};

/// The domain of a custom problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DomainSpec {
    /// `Π [lo_k, hi_k]`.
    Box {
        /// Lower corner.
        lo: Vec<f64>,
        /// Upper corner.
        hi: Vec<f64>,
    },
    /// `|x − c| ≤ r`.
    Disk {
        /// Centre.
        center: Vec<f64>,
        /// Radius.
        radius: f64,
    },
    /// A simple polygon.
    Polygon {
        /// Vertices, in order.
        vertices: Vec<[f64; 2]>,
    },
    /// `[−1, 1]² \ (0, 1]×[−1, 0)`.
    LShape,
}

impl DomainSpec {
    fn build(&self) -> Result<Arc<dyn Domain>> {
        Ok(match self {
            DomainSpec::Box { lo, hi } => {
                if lo.len() != hi.len() || lo.is_empty() {
                    return Err(Error::config(
                        "problem.domain",
                        format!(
                            "lo and hi need the same, non-zero length, got {} and {}",
                            lo.len(),
                            hi.len()
                        ),
                    ));
                }
                let sides = lo
                    .iter()
                    .zip(hi)
                    .map(|(a, b)| Interval::new(*a, *b))
                    .collect::<Result<Vec<_>>>()
                    .map_err(|e| Error::config("problem.domain", e.to_string()))?;
                Arc::new(BoxDomain::new(sides)?)
            }
            DomainSpec::Disk { center, radius } => Arc::new(
                Ball::new(center.clone(), *radius)
                    .map_err(|e| Error::config("problem.domain", e.to_string()))?,
            ),
            DomainSpec::Polygon { vertices } => Arc::new(
                Polygon::new(vertices.clone())
                    .map_err(|e| Error::config("problem.domain", e.to_string()))?,
            ),
            DomainSpec::LShape => Arc::new(Polygon::l_shape()),
        })
    }
}

fn default_interior() -> usize {
    1200
}
fn default_boundary() -> usize {
    400
}
fn default_eval() -> usize {
    5000
}

/// A Poisson problem with a manufactured solution (see the module documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProblem {
    /// The PDE: `poisson` (−Δu = f).
    pub pde: String,
    /// The domain.
    pub domain: DomainSpec,
    /// The manufactured solution u*, a formula of `x1, x2, …` (`x, y, z` in dimension ≤ 3).
    pub solution: String,
    /// Interior collocation points (uniform, seeded).
    #[serde(default = "default_interior")]
    pub interior_points: usize,
    /// Boundary points (uniform in boundary measure, seeded).
    #[serde(default = "default_boundary")]
    pub boundary_points: usize,
    /// Evaluation points (uniform in the domain, another stream of the seed).
    #[serde(default = "default_eval")]
    pub eval_points: usize,
    /// Seed of the point sets.
    #[serde(default)]
    pub points_seed: u64,
}

/// `−Δu`, with the source computed from the manufactured solution.
struct ManufacturedPoisson {
    solution: Arc<Expr>,
}

impl Operator for ManufacturedPoisson {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value().with_laplacian()
    }
    fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
        -u.laplacian()
    }
    fn source(&self, x: &[f64]) -> f64 {
        -laplacian(&self.solution, x)
    }
}

impl CustomProblem {
    /// Build the problem called `name` (a name not in the catalogue).
    pub fn build(&self, name: &str) -> Result<Problem> {
        if self.pde != "poisson" {
            return Err(Error::config(
                "problem.pde",
                format!("unknown PDE `{}`; known: poisson", self.pde),
            ));
        }
        for (field, n) in [
            ("problem.interior_points", self.interior_points),
            ("problem.boundary_points", self.boundary_points),
            ("problem.eval_points", self.eval_points),
        ] {
            if n == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        let domain = self.domain.build()?;
        let d = domain.dim();
        let solution = Arc::new(
            Expr::parse(&self.solution, d)
                .map_err(|e| Error::config("problem.solution", e.to_string()))?,
        );
        let mut rng = ChaCha8Rng::seed_from_u64(self.points_seed);
        let interior = sample_interior(domain.as_ref(), self.interior_points, &mut rng);
        let (boundary, normals) = sample_boundary(domain.as_ref(), self.boundary_points, &mut rng);
        let mut eval_rng = ChaCha8Rng::seed_from_u64(self.points_seed ^ 0xe7a1);
        let eval = sample_interior(domain.as_ref(), self.eval_points, &mut eval_rng);
        let exact = {
            let s = solution.clone();
            move |x: &[f64]| s.eval(x)
        };
        let reference = Reference::from_fn(eval, d, &exact);
        if reference.values.iter().any(|v| !v.is_finite()) {
            return Err(Error::config(
                "problem.solution",
                "the solution is not finite everywhere in the domain",
            ));
        }
        const NAMES: [&[&str]; 3] = [&["x"], &["x", "y"], &["x", "y", "z"]];
        Ok(Problem {
            // A configured problem lives for the whole process.
            name: Box::leak(name.to_string().into_boxed_str()),
            coordinates: NAMES.get(d - 1).copied().unwrap_or(&[]),
            widths: vec![d, 32, 1],
            activation: Activation::Tanh,
            init: Init::Normal { std: 0.1 },
            blocks: vec![
                Block::new(
                    "interior",
                    d,
                    interior,
                    ManufacturedPoisson {
                        solution: solution.clone(),
                    },
                )
                .with_region(Region::Interior),
                Block::new("boundary", d, boundary, Dirichlet::new(exact))
                    .with_normals(normals)
                    .with_region(Region::Boundary),
            ],
            domain: domain.clone(),
            reference,
            transform: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The residual of the exact solution's interpolant is tiny: the source is
    /// −Δu* (checked through the operator at a point), and bad fields are named.
    #[test]
    fn builds_and_names_bad_fields() {
        let c = CustomProblem {
            pde: "poisson".into(),
            domain: DomainSpec::LShape,
            solution: "sin(pi*x)*sin(pi*y) + x*y".into(),
            interior_points: 50,
            boundary_points: 20,
            eval_points: 30,
            points_seed: 0,
        };
        let pb = c.build("mine").unwrap();
        assert_eq!(pb.blocks.len(), 2);
        let pi = std::f64::consts::PI;
        let f = ManufacturedPoisson {
            solution: Arc::new(Expr::parse(&c.solution, 2).unwrap()),
        };
        let x = [-0.3, 0.6];
        assert!(
            (f.source(&x) - 2.0 * pi * pi * (pi * x[0]).sin() * (pi * x[1]).sin()).abs() < 1e-12
        );
        for (bad, field) in [
            (
                CustomProblem {
                    pde: "heat".into(),
                    ..c.clone()
                },
                "problem.pde",
            ),
            (
                CustomProblem {
                    solution: "sin(".into(),
                    ..c.clone()
                },
                "problem.solution",
            ),
            (
                CustomProblem {
                    solution: "z".into(),
                    ..c.clone()
                },
                "problem.solution",
            ),
            (
                CustomProblem {
                    interior_points: 0,
                    ..c.clone()
                },
                "problem.interior_points",
            ),
            (
                CustomProblem {
                    domain: DomainSpec::Disk {
                        center: vec![0.0, 0.0],
                        radius: -1.0,
                    },
                    ..c.clone()
                },
                "problem.domain",
            ),
            (
                CustomProblem {
                    domain: DomainSpec::Box {
                        lo: vec![0.0],
                        hi: vec![1.0, 2.0],
                    },
                    ..c.clone()
                },
                "problem.domain",
            ),
        ] {
            let e = bad.build("x").err().expect("an error").to_string();
            assert!(e.contains(field), "{e}");
        }
    }
}
