//! A block's constructors, accessors and point checks.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::pde::{Operator, Point, ResidualFn};

use super::{Block, Combination, Region};

impl Block {
    /// A block of `points` (row-major, `dim` coordinates each) with residual `op`.
    /// The data term `f(x_i)` of every point is evaluated here, once.
    pub fn new(
        name: impl Into<String>,
        dim: usize,
        points: Vec<f64>,
        op: impl Operator + 'static,
    ) -> Self {
        let sources = if dim == 0 {
            vec![]
        } else {
            points.chunks(dim).map(|x| op.source(x)).collect()
        };
        Block {
            name: name.into(),
            dim,
            points,
            normals: None,
            sources,
            op: Arc::new(op),
            region: None,
            combination: None,
            system_weight: 1.0,
        }
    }

    /// Make the block's rows linear combinations of its point residuals
    /// (see [`Combination`]; a [`Combination::Pairs`] block needs an even
    /// number of points, checked by [`super::LeastSquares::new`]).
    pub fn with_combination(mut self, combination: Combination) -> Self {
        self.combination = Some(combination);
        self
    }

    /// Weight the block's rows by `weight` in the least-squares system of
    /// the natural-gradient methods: its rows are multiplied by `√weight`
    /// (on top of the [`super::Weighting`]), so that a step resolves this
    /// block's residual `√weight` times more finely than before. Unlike a
    /// loss weight (a residual scaled inside its operator), the loss is
    /// unchanged. Default 1. A weight that is not finite and > 0 is
    /// reported by [`super::LeastSquares::new`].
    pub fn with_system_weight(mut self, weight: f64) -> Self {
        self.system_weight = weight;
        self
    }

    /// The block's weight in the system (see [`Block::with_system_weight`]).
    pub fn system_weight(&self) -> f64 {
        self.system_weight
    }

    /// Where the block's points lie, if it says.
    pub fn region(&self) -> Option<Region> {
        self.region
    }

    /// How the rows are made from the point residuals, if not one row per point.
    pub fn combination(&self) -> Option<Combination> {
        self.combination
    }

    /// Number of residual rows `S_b` (the number of points unless the
    /// block combines them).
    pub fn rows(&self) -> usize {
        match self.combination {
            Some(c) => c.rows(self.len()),
            None => self.len(),
        }
    }

    /// Say where the block's points lie, so that held-out points of the same
    /// kind can be drawn (a block without a region is held out with its own points).
    pub fn with_region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// The data term `f(x)` of the block's operator at one point.
    pub(super) fn op_source(&self, x: &[f64]) -> f64 {
        self.op.source(x)
    }

    /// The data term `f(x_i)` at every point.
    pub fn sources(&self) -> &[f64] {
        &self.sources
    }

    /// Attach outward unit normals (row-major, one per point), e.g. for
    /// Neumann conditions; the data term is re-evaluated with them (a
    /// Neumann condition's `g(x, n)`). A length mismatch is reported by
    /// [`super::LeastSquares::new`].
    pub fn with_normals(mut self, normals: Vec<f64>) -> Self {
        if self.dim > 0 && normals.len() == self.points.len() {
            self.sources = self
                .points
                .chunks(self.dim)
                .zip(normals.chunks(self.dim))
                .map(|(x, n)| self.op.source_with_normal(x, n))
                .collect();
        }
        self.normals = Some(normals);
        self
    }

    /// The block's name (used in logs and error messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len() / self.dim.max(1)
    }

    /// Whether the block has no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Outward unit normals, row-major like the points (boundary pieces
    /// only; `None` for interior blocks).
    pub fn normals(&self) -> Option<&[f64]> {
        self.normals.as_deref()
    }

    /// The points, row-major.
    pub fn points(&self) -> &[f64] {
        &self.points
    }

    /// The residual function.
    pub fn residual_fn(&self) -> &dyn ResidualFn {
        &*self.op
    }

    /// Point `i` with its normal, if any.
    pub fn point(&self, i: usize) -> Point<'_> {
        let d = self.dim;
        Point {
            x: &self.points[i * d..(i + 1) * d],
            normal: self.normals.as_ref().map(|n| &n[i * d..(i + 1) * d]),
        }
    }
}

/// A block's points: non-empty, row-major with `d` coordinates each, finite.
pub(super) fn check_points(name: &str, d: usize, points: &[f64]) -> Result<()> {
    if points.is_empty() || !points.len().is_multiple_of(d) {
        return Err(Error::config(
            format!("block `{name}`"),
            format!("needs a non-empty row-major point list with {d} coordinates per point"),
        ));
    }
    if let Some(i) = points.iter().position(|v| !v.is_finite()) {
        return Err(Error::config(
            format!("block `{name}`"),
            format!("coordinate {i} is not finite"),
        ));
    }
    Ok(())
}
