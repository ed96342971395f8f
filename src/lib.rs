//! natgrad: physics-informed neural networks trained by natural-gradient methods.
pub mod error;
pub mod linalg;
pub mod model;

pub use error::{Error, Result};
pub mod pde;
pub mod geometry;
pub mod residual;
pub mod optim;
pub mod parallel;
pub mod problems;
pub mod train;
