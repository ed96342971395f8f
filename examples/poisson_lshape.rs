//! Poisson's equation on an L-shaped domain with a manufactured solution:
//! geometry beyond boxes (`natgrad::geometry::Polygon`), seeded interior and
//! boundary sampling, a custom operator, and SSBroyden — the fastest
//! optimiser of natgrad's laplace2d/heat comparison (COMPARE-RESULTS.md).
//!
//! −Δu = f on Ω = [−1, 1]² \ (0, 1]×[−1, 0), u = u* on ∂Ω, with
//! u*(x, y) = sin(πx) sin(πy) + x y and f = 2π² sin(πx) sin(πy).
//!
//! Run with `cargo run --release --example poisson_lshape` (30 s; measured here: 22 438
//! iterations, l2_abs 4.5e-9, l2_rel 6.0e-9).

use std::f64::consts::PI;

use natgrad::geometry::{Polygon, sample_boundary, sample_interior};
use natgrad::model::{Activation, Init, Mlp};
use natgrad::optim::{SsBroyden, SsBroydenConfig};
use natgrad::pde::{Dirichlet, Jet, JetSpec, Operator, Point, Scalar};
use natgrad::problems::Reference;
use natgrad::residual::{Block, LeastSquares};
use natgrad::train::{Budget, Outcome, Progress, Trainer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn exact(x: &[f64]) -> f64 {
    (PI * x[0]).sin() * (PI * x[1]).sin() + x[0] * x[1]
}

/// −Δu with f = 2π² sin(πx) sin(πy) (the bilinear term is harmonic).
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

/// Train within `max_seconds` of training time; returns the outcome (errors against u*).
pub fn run(max_seconds: f64, verbose: bool) -> natgrad::Result<Outcome> {
    let domain = Polygon::l_shape();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let interior = sample_interior(&domain, 1200, &mut rng);
    let (boundary, _normals) = sample_boundary(&domain, 400, &mut rng);
    let eval = sample_interior(&domain, 5000, &mut rng);
    let mlp = Mlp::new(vec![2, 32, 1], Activation::Tanh)?;
    let problem = LeastSquares::new(
        mlp.clone(),
        vec![
            Block::new("interior", 2, interior, Poisson),
            Block::new("boundary", 2, boundary, Dirichlet::new(exact)),
        ],
    )?;
    let reference = Reference::from_fn(eval, 2, exact);
    let theta = mlp.init(Init::default(), 0);
    let mut trainer = Trainer::new(Budget {
        max_iters: usize::MAX,
        max_seconds,
        ..Default::default()
    })
    .eval_every(100)
    .evaluator(|th| reference.metrics(&mlp, th));
    if verbose {
        trainer = trainer.observe(Progress::new(1000));
    }
    let mut opt = SsBroyden::new(SsBroydenConfig::default());
    trainer.run(&problem, &mut opt, theta)
}

fn main() -> natgrad::Result<()> {
    let out = run(30.0, true)?;
    let m = out.metrics.expect("evaluator set");
    println!(
        "l2_abs {:.3e}, l2_rel {:.3e} after {} iterations, {:.1} s",
        m.l2_abs, m.l2_rel, out.iters, out.time_s
    );
    Ok(())
}

/// A short run: 3 s of training reach l2_abs ≈ 3e-5 here (2000 iterations;
/// 30 s reach l2_rel 6.0e-9); the test asks for l2_rel < 1e-3, reached by
/// iteration ~700, so that a loaded CI machine passes too.
#[test]
fn lshape_poisson_trains() {
    let out = run(3.0, false).unwrap();
    let m = out.metrics.unwrap();
    assert!(m.l2_rel < 1e-3, "l2_rel {:e}", m.l2_rel);
}
