//! Loading a trained model and evaluating it: train laplace2d briefly (SSBroyden)
//! into a temporary run directory, load `model.json`,
//! evaluate u, ∇u and Δu at chosen points (`natgrad::model::evaluate`, the
//! library side of `natgrad eval`) and compare with the exact solution.
//!
//! Run with `cargo run --release --example load_and_eval`.

use std::f64::consts::PI;

use natgrad::model::{SavedModel, evaluate};
use natgrad::train::RunSpec;

/// Train `iters` iterations, reload the model, and return the largest error
/// of u and of Δu (against −2π² u*, the PDE) at a few points.
pub fn run(iters: usize) -> natgrad::Result<(f64, f64)> {
    let dir = std::env::temp_dir().join(format!("natgrad-load-eval-{}", std::process::id()));
    let mut spec = RunSpec::defaults("laplace2d")?;
    spec.optimizer = natgrad::optim::OptimizerConfig::default_for("ssbroyden")?;
    spec.budget.max_iters = iters;
    spec.out = Some(dir.clone());
    spec.progress_every = None;
    spec.run()?;

    let (mlp, theta) = SavedModel::load(dir.join("model.json"))?;
    let points = [0.25, 0.25, 0.5, 0.5, 0.1, 0.8, 0.9, 0.3];
    let ev = evaluate(&mlp, &theta, None, &points, true)?;
    println!("{}", ev.columns.join("  "));
    let (mut err_u, mut err_lap) = (0.0f64, 0.0f64);
    for row in &ev.rows {
        let exact = (PI * row[0]).sin() * (PI * row[1]).sin();
        err_u = err_u.max((row[2] - exact).abs());
        err_lap = err_lap.max((row[5] + 2.0 * PI * PI * exact).abs());
        let cells: Vec<String> = row.iter().map(|v| format!("{v:+.6e}")).collect();
        println!("{}", cells.join("  "));
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok((err_u, err_lap))
}

fn main() -> natgrad::Result<()> {
    let (eu, el) = run(2000)?;
    println!("max |u − u*| = {eu:.3e}, max |Δu − Δu*| = {el:.3e} at these points");
    Ok(())
}

/// The reloaded model reproduces the solution after a short training.
#[test]
fn reloaded_model_evaluates() {
    let (eu, el) = run(1000).unwrap();
    assert!(eu < 1e-3 && el < 1e-1, "{eu:e}, {el:e}");
}
