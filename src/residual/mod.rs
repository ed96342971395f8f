//! Residual blocks, weighting, the loss, and assembly of `r` and `φ = ∂r/∂θ`.
//!
//! A problem is a list of [`Block`]s (the interior, each boundary piece, the
//! initial slice), each a set of points with one residual function. With
//! `S_b` points in block `b` and `S = Σ_b S_b`:
//!
//! * the **loss** is `L(θ) = Σ_b (1/S_b) Σ_{i∈b} r_i²` (per-block mean,
//!   summed over blocks, no ½);
//! * the **system** solved by the natural-gradient methods has rows
//!   `r̃_i = √w_i r_i`, `φ̃_i = √w_i ∂r_i/∂θ`, where `w_i` is the
//!   [`Weighting`]'s factor for point i's block times that block's own
//!   system weight ([`Block::with_system_weight`], 1 unless set). System
//!   weights change what a natural-gradient step resolves first; they never
//!   change the loss.

mod assembly;
mod block;
mod curvature;
mod least_squares;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::linalg::Matrix;
use crate::model::{Channels, Mlp, OutputTransform, PointJets, TransformPlan};
use crate::pde::ResidualFn;

/// Points per forward pass when only residuals are needed: small enough that
/// the channel buffers stay in a core's L2 cache, large enough that each
/// layer is still one sizeable matrix product.
const FORWARD_CHUNK: usize = 64;

/// Points per task when assembling `φ`: several tasks per block, so two
/// workers share the work, each task's buffers cache-sized.
const ASSEMBLY_CHUNK: usize = 128;

/// Row weights of the least-squares system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Weighting {
    /// `w = 1` for every row: the reference ANaGRAM/AMStraMGRAM system
    /// (their absolute cutoffs are calibrated for it).
    #[default]
    Uniform,
    /// `w_b = 1/S_b`: then `‖r̃‖² = L(θ)` and the step is Gauss–Newton on the loss.
    BlockMean,
}

impl Weighting {
    /// Parse `uniform` or `block-mean`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "uniform" => Ok(Weighting::Uniform),
            "block-mean" => Ok(Weighting::BlockMean),
            _ => Err(Error::UnknownName {
                kind: "weighting",
                name: name.into(),
                known: "uniform, block-mean".into(),
            }),
        }
    }

    /// The factor `√w_b` applied to the rows (residuals and Jacobian rows) of
    /// a block of `len` points (before the block's own weight).
    pub fn row_factor(self, len: usize) -> f64 {
        match self {
            Weighting::Uniform => 1.0,
            Weighting::BlockMean => (1.0 / len.max(1) as f64).sqrt(),
        }
    }
}

/// Where a block's points lie, so that fresh points of the same kind can
/// be drawn ([`LeastSquares::held_out`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// The interior of the problem's domain (uniform).
    Interior,
    /// The boundary of the problem's domain (uniform in its measure, with
    /// outward normals).
    Boundary,
    /// The face `x_axis = lo` (or `hi` when `upper`) of the domain's bounding
    /// box — an initial slice, a wall — uniform, with its outward normal.
    Face {
        /// The axis held fixed.
        axis: usize,
        /// Whether it is the upper end of the axis.
        upper: bool,
    },
    /// Pairs of points on the faces `x_axis = lo` and `x_axis = hi`, equal
    /// in every other coordinate (a [`Combination::Pairs`] block: lower
    /// points first), no normals.
    Opposite {
        /// The periodic axis.
        axis: usize,
    },
}

/// How a block's residual rows are made from its point residuals
/// `q_j = F(x_j, J_j) − f_j`, for conditions that tie several points
/// together. The point residual must be linear in the jet (E-NGD's
/// operator curvature skips these blocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combination {
    /// The points come in two halves `a_1 … a_m, b_1 … b_m`; row `k` is
    /// `q(a_k) − q(b_k)` (periodicity: `u` or `∂u` equal on opposite sides).
    Pairs,
    /// One row, the mean `(1/S) Σ_j q_j` (a mean-value constraint).
    Mean,
}

impl Combination {
    /// Rows made from `n` points.
    pub fn rows(self, n: usize) -> usize {
        match self {
            Combination::Pairs => n / 2,
            Combination::Mean => 1,
        }
    }

    /// Row `k`'s coefficients: `(point, coefficient)` pairs.
    pub(crate) fn terms(self, n: usize, k: usize) -> Vec<(usize, f64)> {
        match self {
            Combination::Pairs => vec![(k, 1.0), (k + n / 2, -1.0)],
            Combination::Mean => (0..n).map(|j| (j, 1.0 / n as f64)).collect(),
        }
    }

    /// The rows from the point values `q`.
    pub fn apply(self, q: &[f64]) -> Vec<f64> {
        let n = q.len();
        (0..self.rows(n))
            .map(|k| self.terms(n, k).iter().map(|&(j, c)| c * q[j]).sum())
            .collect()
    }

    /// `Cᵀ y`: the rows' values `y` spread back onto the `n` points.
    pub fn transpose_apply(self, y: &[f64], n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n];
        for (k, yk) in y.iter().enumerate() {
            for (j, c) in self.terms(n, k) {
                out[j] += c * yk;
            }
        }
        out
    }
}

/// A set of collocation points sharing one residual function.
#[derive(Clone)]
pub struct Block {
    name: String,
    dim: usize,
    points: Vec<f64>,
    normals: Option<Vec<f64>>,
    sources: Vec<f64>,
    op: Arc<dyn ResidualFn>,
    region: Option<Region>,
    combination: Option<Combination>,
    system_weight: f64,
}

/// The assembled least-squares system at one θ.
#[derive(Clone, Debug, Default)]
pub struct System {
    /// Weighted residuals `r̃` (length S).
    pub r: Vec<f64>,
    /// Weighted Jacobian, **transposed**: `P × S`, column `i` is `√w_i ∂r_i/∂θ`.
    pub jac_t: Matrix,
    /// The loss `L(θ)` (unweighted by the system's weighting; see the module docs).
    pub loss: f64,
    /// `(1/S_b) Σ_{i∈b} r_i²` for each block.
    pub block_losses: Vec<f64>,
    /// Row range of each block in `r`.
    pub block_ranges: Vec<Range<usize>>,
}

/// A network plus residual blocks: everything needed to evaluate `r`, `φ` and `L`.
#[derive(Clone)]
pub struct LeastSquares {
    model: Mlp,
    blocks: Vec<Block>,
    channels: Vec<Channels>,
    transform: Option<Arc<Transformed>>,
}

/// An output transform with, per block, its product-rule plan and the jets
/// of `g` and `ψ` at every point.
#[derive(Clone)]
struct Transformed {
    transform: OutputTransform,
    plans: Vec<TransformPlan>,
    jets: Vec<Vec<PointJets>>,
}
