//! # natgrad
//!
//! Physics-informed neural networks trained by natural-gradient methods.
//!
//! A PINN models the solution `u` of `D[u] = f in Ω, B[u] = g on ∂Ω` by a
//! network `u_θ`. natgrad stacks the residuals of every collocation block
//! into `r ∈ ℝ^S` and their Jacobian `φ = ∂r/∂θ ∈ ℝ^{S×P}` — computed exactly
//! with batched forward jets and one batched reverse pass ([`model`],
//! [`residual`]) — and steps with ANaGRAM, the truncated-SVD natural gradient
//! `θ ← θ − η φ⁺_τ r` ([`optim`]).
//!
//! The data flow of one step:
//!
//! * [`problems`] — the benchmark problems: network, blocks of points with
//!   their residual functions ([`pde`]), evaluation set and reference;
//! * [`residual::LeastSquares`] — `r`, `φ` and the loss `L = Σ_b mean_b r²`;
//! * [`linalg`] — the only module that calls faer: accurate SVD, QR, RCE;
//! * [`optim`] — ANaGRAM, AMStraMGRAM, E-NGD, Nyström-PCG natural gradient,
//!   SSBroyden, L-BFGS and Adam behind [`optim::Optimizer`];
//! * [`train::Trainer`] — budgets, observers, typed termination reasons;
//!   [`train::catalogue`] — the one table from a problem's name to its
//!   constructor, its optimiser presets and its accuracy targets;
//! * [`report`] — benchmark and comparison tables, PNG figures.
//!
//! ## Quickstart
//!
//! A catalogue problem with its paper's network and points, trained for a
//! few hundred iterations in memory (this example runs as a test):
//!
//! ```
//! # fn main() -> natgrad::Result<()> {
//! use natgrad::optim::OptimizerConfig;
//! use natgrad::train::RunSpec;
//!
//! let mut spec = RunSpec::defaults("laplace2d")?; // network, points, budget, optimiser
//! spec.optimizer = OptimizerConfig::default_for("ssbroyden")?;
//! spec.budget.max_iters = 300;
//! spec.out = None; // write no run directory
//! spec.progress_every = None; // quiet
//! let outcome = spec.run()?;
//! let errors = outcome.metrics.expect("the catalogue has a reference");
//! assert!(errors.l2_rel < 1e-2, "l2_rel {:e}", errors.l2_rel);
//! # Ok(()) }
//! ```
//!
//! From there: [`train::RunConfig`] reads the same from a TOML file,
//! [`train::Trainer`] drives any [`optim::Optimizer`] on any
//! [`optim::Objective`] with observers, [`pde::Operator`] defines a new
//! PDE, [`geometry`] samples domains beyond boxes, and
//! [`model::evaluate`] evaluates a trained network. The README lists the
//! command line, and `examples/` has complete programs.
#![warn(missing_docs)]

pub mod error;
pub mod geometry;
pub mod kernel;
pub mod linalg;
pub mod model;
pub mod optim;
pub mod parallel;
pub mod pde;
pub mod problems;
pub mod report;
pub mod residual;
pub mod train;

pub use error::{Error, Result};
