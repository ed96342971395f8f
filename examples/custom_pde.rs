//! Defining a new PDE through the public API: a nonlinear reaction–diffusion
//! problem with a manufactured solution, trained with ANaGRAM.
//!
//! −Δu + u³ = f on [0,1]², u = 0 on the boundary, with f chosen so that
//! u*(x, y) = sin(πx) sin(2πy).
//!
//! Run with `cargo run --release --example custom_pde`.

use std::f64::consts::PI;

use natgrad::geometry::{BoxDomain, Ends, linspace, tensor_grid};
use natgrad::model::{Activation, Init, Mlp};
use natgrad::optim::{Anagram, AnagramConfig};
use natgrad::pde::{Dirichlet, Jet, JetSpec, Operator, Point, Scalar};
use natgrad::problems::Reference;
use natgrad::residual::{Block, LeastSquares};
use natgrad::train::{Budget, Outcome, Progress, Trainer};

fn exact(x: &[f64]) -> f64 {
    (PI * x[0]).sin() * (2.0 * PI * x[1]).sin()
}

/// −Δu + u³, with the manufactured data f = 5π² u* + u*³.
struct ReactionDiffusion;

impl Operator for ReactionDiffusion {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value().with_laplacian()
    }
    fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
        -u.laplacian() + u.value().powi(3)
    }
    fn source(&self, x: &[f64]) -> f64 {
        let u = exact(x);
        5.0 * PI * PI * u + u * u * u
    }
}

/// Train for at most `max_iters` iterations; returns the outcome (errors against u*).
pub fn run(max_iters: usize, verbose: bool) -> natgrad::Result<Outcome> {
    let g = linspace(0.0, 1.0, 22, Ends::Neither);
    let interior = tensor_grid(&[g.clone(), g]);
    let (boundary, _) = BoxDomain::unit(2).boundary_loop_2d(22)?;
    let mlp = Mlp::new(vec![2, 24, 1], Activation::Tanh)?;
    let problem = LeastSquares::new(
        mlp.clone(),
        vec![
            Block::new("interior", 2, interior, ReactionDiffusion),
            Block::new("boundary", 2, boundary, Dirichlet::zero()),
        ],
    )?;
    let e = linspace(0.0, 1.0, 60, Ends::Neither);
    let reference = Reference::from_fn(tensor_grid(&[e.clone(), e]), 2, exact);
    let theta = mlp.init(Init::default(), 0);
    let mut trainer = Trainer::new(Budget {
        max_iters,
        max_seconds: 120.0,
        ..Default::default()
    })
    .evaluator(|th| reference.metrics(&mlp, th));
    if verbose {
        trainer = trainer.observe(Progress::new(25));
    }
    let mut opt = Anagram::new(AnagramConfig::default());
    trainer.run(&problem, &mut opt, theta)
}

fn main() -> natgrad::Result<()> {
    let out = run(600, true)?;
    let m = out.metrics.expect("evaluator set");
    println!(
        "l2_abs {:.3e}, l2_rel {:.3e} after {} iterations",
        m.l2_abs, m.l2_rel, out.iters
    );
    Ok(())
}

/// Seed 0 reaches l2_rel ≈ 1.6e-5 by iteration 350 (measured), where the
/// fixed default cutoff makes ANaGRAM stall; the test asks for 1e-4.
#[test]
fn custom_pde_trains_to_small_error() {
    let out = run(350, false).unwrap();
    let m = out.metrics.unwrap();
    assert!(m.l2_rel < 1e-4, "l2_rel {:e}", m.l2_rel);
}
