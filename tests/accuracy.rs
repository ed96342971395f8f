//! Smoke version of the catalogue's accuracy recipe (the full runs are
//! `natgrad bench`, docs/accuracy.md): laplace2d with its default settings
//! (AMStraMGRAM at the fixed precision level 1e-10), seed 0, settles at
//! loss ≈ 1.2e-20 and l2_abs ≈ 4e-12 within ~480 iterations.

use natgrad::train::RunSpec;

#[test]
fn laplace2d_default_reaches_the_accuracy_target() {
    let mut spec = RunSpec::defaults("laplace2d").unwrap();
    spec.out = None;
    spec.progress_every = None;
    spec.budget.max_iters = 700;
    spec.budget.max_seconds = 1e9;
    let outcome = spec.run().unwrap();
    let m = outcome.metrics.unwrap();
    assert!(outcome.loss <= 1e-18, "loss {:e}", outcome.loss);
    assert!(m.l2_abs <= 1e-10, "l2_abs {:e}", m.l2_abs);
    // Right between the points too: no overfitting warning.
    let held = outcome.heldout_loss.unwrap();
    assert!(
        outcome.overfitting().is_none(),
        "held-out {held:e} vs loss {:e}",
        outcome.loss
    );
}
