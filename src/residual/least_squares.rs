//! Building a [`LeastSquares`], its blocks and points (replacement, held-out
//! sets), and its loss.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::geometry::Domain;
use crate::model::{JetTape, Mlp, OutputTransform};

use super::block::check_points;
use super::{Block, FORWARD_CHUNK, LeastSquares, Region, Transformed, Weighting};

/// ChaCha8 stream of the held-out points (0: initialisation, 7: resampling).
const HELD_OUT_STREAM: u64 = 11;

impl LeastSquares {
    /// Check the blocks against the network and resolve each block's jet channels.
    pub fn new(model: Mlp, blocks: Vec<Block>) -> Result<Self> {
        if blocks.is_empty() {
            return Err(Error::config(
                "blocks",
                "a problem needs at least one residual block",
            ));
        }
        let d = model.input_dim();
        let mut channels = Vec::with_capacity(blocks.len());
        for b in &blocks {
            if b.dim != d {
                return Err(Error::DimensionMismatch {
                    context: format!("point dimension of block `{}` vs network input", b.name),
                    expected: d,
                    got: b.dim,
                });
            }
            check_points(&b.name, d, &b.points)?;
            if !(b.system_weight.is_finite() && b.system_weight > 0.0) {
                return Err(Error::config(
                    format!("block `{}`", b.name),
                    format!(
                        "its system weight must be finite and > 0, got {}",
                        b.system_weight
                    ),
                ));
            }
            check_combination(b, b.len())?;
            if b.op.needs_normals() && b.normals.is_none() {
                return Err(Error::config(
                    format!("block `{}`", b.name),
                    "its condition reads outward normals (Neumann); attach them with \
                     `Block::with_normals`",
                ));
            }
            if let Some(n) = &b.normals
                && n.len() != b.points.len()
            {
                return Err(Error::DimensionMismatch {
                    context: format!("normals of block `{}`", b.name),
                    expected: b.points.len(),
                    got: n.len(),
                });
            }
            let ch = b.op.jet_spec().resolve(d)?;
            // Evaluate the residual once on a made-up jet: reading a channel
            // it did not declare is an error here, not NaN in training.
            crate::pde::take_undeclared_read();
            let jet = vec![0.5; ch.count() * model.output_dim()];
            let p = crate::pde::Point {
                x: &b.points[..d],
                normal: b.normals.as_ref().map(|n| &n[..d]),
            };
            b.op.eval(&p, &jet, &ch, model.output_dim());
            if b.combination.is_some() {
                // Combined rows skip the operator curvature: linear residuals only.
                let mut hess = vec![0.0; jet.len() * jet.len()];
                b.op.curvature(&p, &jet, &ch, model.output_dim(), &mut hess);
                if hess.iter().any(|v| *v != 0.0) {
                    return Err(Error::config(
                        format!("block `{}`", b.name),
                        "combines its points' residuals, so its residual must be linear in the jet",
                    ));
                }
            }
            if let Some(what) = crate::pde::take_undeclared_read() {
                return Err(Error::config(
                    format!("block `{}`", b.name),
                    format!("its residual reads {what}, which its JetSpec does not declare"),
                ));
            }
            channels.push(ch);
        }
        Ok(LeastSquares {
            model,
            blocks,
            channels,
            transform: None,
        })
    }

    /// Model the solution as `u = g + ψ·N_θ` (hard constraints, see
    /// [`OutputTransform`]): every block's residual then sees the jet of `u`.
    /// The network must have one output.
    pub fn with_transform(mut self, transform: OutputTransform) -> Result<Self> {
        if self.model.output_dim() != 1 {
            return Err(Error::config(
                "output transform",
                format!(
                    "needs a single-output network, this one has {} outputs",
                    self.model.output_dim()
                ),
            ));
        }
        let d = self.model.input_dim();
        let mut plans = Vec::with_capacity(self.blocks.len());
        let mut jets = Vec::with_capacity(self.blocks.len());
        for (b, blk) in self.blocks.iter().enumerate() {
            let ch = OutputTransform::augment(&self.channels[b]).resolve(d)?;
            plans.push(transform.plan(&ch)?);
            jets.push(
                blk.points
                    .chunks_exact(d)
                    .map(|x| transform.point_jets(x, &ch))
                    .collect(),
            );
            self.channels[b] = ch;
        }
        self.transform = Some(Arc::new(Transformed {
            transform,
            plans,
            jets,
        }));
        Ok(self)
    }

    /// The output transform, if any.
    pub fn transform(&self) -> Option<&OutputTransform> {
        self.transform.as_ref().map(|t| &t.transform)
    }

    /// Replace the network jets in `tape` (points `start..` of block `b`)
    /// by the jets of `u = g + ψN`.
    /// `jet` and `scratch` are the caller's buffers, reused across chunks.
    pub(super) fn transform_tape(
        &self,
        b: usize,
        start: usize,
        tape: &mut JetTape,
        jet: &mut Vec<f64>,
        scratch: &mut Vec<f64>,
    ) {
        if let Some(t) = &self.transform {
            jet.resize(tape.channels().count(), 0.0);
            for k in 0..tape.n_points() {
                tape.point_jet_in_place(k, jet);
                t.plans[b].apply_in_place(&t.jets[b][start + k], jet, scratch);
                tape.set_point_jet(k, jet);
            }
        }
    }

    /// The network.
    pub fn model(&self) -> &Mlp {
        &self.model
    }

    /// The blocks.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Total number of points (at least the rows: the Jacobian is assembled
    /// one column per point before combined blocks are folded).
    pub fn n_points(&self) -> usize {
        self.blocks.iter().map(Block::len).sum()
    }

    /// A fingerprint of the training points: `"<n> points, <hash>"`, the
    /// count and a 64-bit FNV-1a hash of the block names and the bits of
    /// every coordinate. A checkpoint records it so that resuming onto other
    /// points (a problem whose set-up changed since) is refused instead of
    /// silently continuing on a different problem.
    pub fn points_digest(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for b in &self.blocks {
            eat(b.name().as_bytes());
            eat(&(b.len() as u64).to_le_bytes());
            for x in b.points() {
                eat(&x.to_bits().to_le_bytes());
            }
        }
        format!("{} points, {h:016x}", self.n_points())
    }

    /// Total number of residual rows `S`.
    pub fn n_residuals(&self) -> usize {
        self.blocks.iter().map(Block::rows).sum()
    }

    /// Floating-point operations of one forward pass over all points
    /// (the loss), counting the layers' matrix products only:
    /// `Σ_b S_b · C_b · Σ_l 2 n_{l−1} n_l` with `C_b` the jet channels of
    /// block b (value, first and second derivatives it needs). Activations
    /// and the jet recurrences are lower-order terms.
    pub fn forward_flops(&self) -> f64 {
        let w = self.model.widths();
        let per_channel: f64 = w.windows(2).map(|p| 2.0 * (p[0] * p[1]) as f64).sum();
        self.blocks
            .iter()
            .zip(&self.channels)
            .map(|(b, ch)| b.len() as f64 * ch.count() as f64 * per_channel)
            .sum()
    }

    /// Number of parameters `P`.
    pub fn n_params(&self) -> usize {
        self.model.n_params()
    }

    pub(super) fn non_finite(&self, b: usize, quantity: &'static str) -> Error {
        Error::NonFinite {
            quantity,
            block: self.blocks[b].name.clone(),
            iteration: None,
        }
    }

    /// Residuals of every block at θ (forward jets only).
    pub fn residuals(&self, theta: &[f64]) -> Result<Vec<Vec<f64>>> {
        (0..self.blocks.len())
            .map(|b| self.block_residuals(b, theta))
            .collect()
    }

    /// The residual rows of every block at θ as rows of the system weighted
    /// by `weighting` and the blocks' weights (`r̃`, concatenated), into `out`.
    pub fn weighted_residuals_into(
        &self,
        theta: &[f64],
        weighting: Weighting,
        out: &mut Vec<f64>,
    ) -> Result<()> {
        out.clear();
        for b in 0..self.blocks.len() {
            let r = self.block_residuals(b, theta)?;
            let w = self.row_factor(b, weighting);
            out.extend(r.iter().map(|v| v * w));
        }
        Ok(())
    }

    /// The factor `√w` on the system rows of block `b`: the weighting's
    /// factor for its row count times the square root of its own weight.
    pub fn row_factor(&self, b: usize, weighting: Weighting) -> f64 {
        let blk = &self.blocks[b];
        weighting.row_factor(blk.rows()) * blk.system_weight.sqrt()
    }

    /// Residual rows of block `b` at θ (forward jets only).
    pub fn block_residuals(&self, b: usize, theta: &[f64]) -> Result<Vec<f64>> {
        let q = self.point_residuals(b, theta)?;
        Ok(match self.blocks[b].combination {
            Some(c) => c.apply(&q),
            None => q,
        })
    }

    /// The residual at each point of block `b` at θ, before any
    /// [`super::Combination`] (forward jets only).
    pub fn point_residuals(&self, b: usize, theta: &[f64]) -> Result<Vec<f64>> {
        thread_local! {
            // One reusable forward tape per thread: the line search evaluates
            // the loss dozens of times per iteration.
            static TAPE: std::cell::RefCell<JetTape> = std::cell::RefCell::new(JetTape::default());
        }
        TAPE.with_borrow_mut(|tape| {
            let (mut jet, mut scratch) = (Vec::new(), Vec::new());
            let blk = &self.blocks[b];
            let ch = &self.channels[b];
            let d = blk.dim;
            let mut r = Vec::with_capacity(blk.len());
            // Chunks of points keep the forward pass's buffers in cache.
            for start in (0..blk.len()).step_by(FORWARD_CHUNK) {
                let end = (start + FORWARD_CHUNK).min(blk.len());
                let pts = &blk.points[start * d..end * d];
                self.model.forward_jets_into(theta, pts, ch, tape)?;
                self.transform_tape(b, start, tape, &mut jet, &mut scratch);
                let normals = blk.normals.as_ref().map(|n| &n[start * d..end * d]);
                blk.op
                    .eval_chunk(d, pts, normals, &blk.sources[start..end], tape, &mut r);
            }
            if r.iter().any(|v| !v.is_finite()) {
                return Err(self.non_finite(b, "residual"));
            }
            Ok(r)
        })
    }

    /// Index of the block called `name`.
    pub fn block_index(&self, name: &str) -> Result<usize> {
        self.blocks
            .iter()
            .position(|b| b.name == name)
            .ok_or_else(|| {
                Error::config(
                    "block",
                    format!(
                        "no block `{name}`; this problem has {}",
                        self.blocks
                            .iter()
                            .map(|b| format!("`{}`", b.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    /// The same system with the points of block `b` replaced by `points`
    /// (row-major; any number of them): data terms and output-transform jets
    /// are recomputed, normals dropped (so only blocks without normals, such
    /// as an interior, can be moved).
    pub fn with_block_points(&self, b: usize, points: Vec<f64>) -> Result<LeastSquares> {
        let mut out = self.clone();
        out.set_block_points(b, points)?;
        Ok(out)
    }

    /// [`LeastSquares::with_block_points`] in place: no copy of the other
    /// blocks (what a redraw of the collocation points uses). On an error
    /// the system is unchanged.
    pub fn set_block_points(&mut self, b: usize, points: Vec<f64>) -> Result<()> {
        let blk = &self.blocks[b];
        if blk.normals.is_some() {
            return Err(Error::config(
                format!("block `{}`", blk.name),
                "has normals (a boundary piece); only interior blocks can be resampled",
            ));
        }
        self.replace_block_points_in_place(b, points, None)
    }

    /// The same problem on fresh points: for every block with a
    /// [`Region`], `min(S_b, cap)` new points of that region of `domain`
    /// (seeded: the same `seed` gives the same points), with data terms,
    /// normals and output-transform jets recomputed; blocks without one keep
    /// their points. Its loss at θ is the held-out residual: the training
    /// loss measured where the optimiser never looked.
    pub fn held_out(&self, domain: &dyn Domain, seed: u64, cap: usize) -> Result<LeastSquares> {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(HELD_OUT_STREAM);
        let mut out = self.clone();
        for b in 0..self.blocks.len() {
            let blk = &self.blocks[b];
            let Some(region) = blk.region else { continue };
            let (d, n) = (blk.dim, blk.len().min(cap.max(1)));
            if d != domain.dim() {
                return Err(Error::DimensionMismatch {
                    context: format!("held-out points of block `{}` vs the domain", blk.name),
                    expected: d,
                    got: domain.dim(),
                });
            }
            let (points, normals) = match region {
                Region::Interior => (crate::geometry::sample_interior(domain, n, &mut rng), None),
                Region::Opposite { axis } => {
                    let m = blk.rows().min(cap.max(1));
                    (opposite_pairs(domain, axis, m, &mut rng, &blk.name)?, None)
                }
                Region::Boundary => {
                    let (p, nrm) = crate::geometry::sample_boundary(domain, n, &mut rng);
                    (p, Some(nrm))
                }
                Region::Face { axis, upper } => {
                    let bb = domain.bounds();
                    if axis >= d {
                        return Err(Error::config(
                            format!("block `{}`", blk.name),
                            format!("face axis {axis} in dimension {d}"),
                        ));
                    }
                    let face = bb.face(axis, upper);
                    let p = crate::geometry::sample_face(domain, &face, n, &mut rng, |_| true)
                        .ok_or_else(|| {
                            Error::config(
                                format!("block `{}`", blk.name),
                                "its face of the bounding box hardly meets the domain: no held-out points",
                            )
                        })?;
                    (p, Some(face.normal.repeat(n)))
                }
            };
            out = out.replace_block_points(b, points, normals)?;
        }
        Ok(out)
    }

    /// Block `b` with new points (and normals, row-major like the points;
    /// required where its residual reads them), its data terms and
    /// transform jets recomputed: for comparing two definitions of one
    /// problem on the same points.
    pub fn replace_block_points(
        mut self,
        b: usize,
        points: Vec<f64>,
        normals: Option<Vec<f64>>,
    ) -> Result<LeastSquares> {
        self.replace_block_points_in_place(b, points, normals)?;
        Ok(self)
    }

    /// The points (and normals) of block `b` replaced, its data terms and
    /// output-transform jets recomputed; unchanged on an error.
    fn replace_block_points_in_place(
        &mut self,
        b: usize,
        points: Vec<f64>,
        normals: Option<Vec<f64>>,
    ) -> Result<()> {
        let d = self.blocks[b].dim;
        check_points(&self.blocks[b].name, d, &points)?;
        check_combination(&self.blocks[b], points.len() / d)?;
        let name = &self.blocks[b].name;
        match &normals {
            None if self.blocks[b].op.needs_normals() => {
                return Err(Error::config(
                    format!("block `{name}`"),
                    "its condition reads outward normals; give them with the points",
                ));
            }
            Some(n) if n.len() != points.len() => {
                return Err(Error::DimensionMismatch {
                    context: format!("normals of block `{name}`"),
                    expected: points.len(),
                    got: n.len(),
                });
            }
            _ => {}
        }
        let blk = &mut self.blocks[b];
        blk.sources = match &normals {
            Some(nrm) => points
                .chunks(d)
                .zip(nrm.chunks(d))
                .map(|(x, n)| blk.op.source_with_normal(x, n))
                .collect(),
            None => points.chunks(d).map(|x| blk.op_source(x)).collect(),
        };
        blk.points = points;
        blk.normals = normals;
        if let Some(t) = &mut self.transform {
            // Shared with the systems this one was cloned from: copied on write.
            let t = Arc::make_mut(t);
            let ch = &self.channels[b];
            t.jets[b] = self.blocks[b]
                .points
                .chunks_exact(d)
                .map(|x| t.transform.point_jets(x, ch))
                .collect();
        }
        Ok(())
    }

    /// Per-block mean squared residuals.
    pub fn block_losses(&self, theta: &[f64]) -> Result<Vec<f64>> {
        Ok(self
            .residuals(theta)?
            .iter()
            .map(|r| r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64)
            .collect())
    }

    /// The loss `L(θ) = Σ_b mean_{i∈b} r_i²`.
    pub fn loss(&self, theta: &[f64]) -> Result<f64> {
        Ok(self.block_losses(theta)?.iter().sum())
    }
}

/// A combining block's point count: even for pairs.
fn check_combination(b: &Block, n: usize) -> Result<()> {
    if b.combination == Some(super::Combination::Pairs) && (n < 2 || !n.is_multiple_of(2)) {
        return Err(Error::config(
            format!("block `{}`", b.name),
            format!("pairs its points (two halves), so it needs an even number of them, got {n}"),
        ));
    }
    Ok(())
}

/// `m` points uniform on the face `x_axis = lo` of the domain's bounding
/// box (kept where they lie in the domain), followed by their partners on
/// `x_axis = hi`.
fn opposite_pairs(
    domain: &dyn Domain,
    axis: usize,
    m: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
    name: &str,
) -> Result<Vec<f64>> {
    let bb = domain.bounds();
    let d = bb.dim();
    if axis >= d {
        return Err(Error::config(
            format!("block `{name}`"),
            format!("periodic axis {axis} in dimension {d}"),
        ));
    }
    let face = bb.face(axis, false);
    let hi = bb.side(axis).hi;
    let partner = |x: &[f64]| {
        let mut y = x.to_vec();
        y[axis] = hi;
        crate::geometry::contains_near(domain, &y)
    };
    let mut lower =
        crate::geometry::sample_face(domain, &face, m, rng, partner).ok_or_else(|| {
            Error::config(
                format!("block `{name}`"),
                "its opposite faces hardly meet the domain: no points",
            )
        })?;
    let mut upper = lower.clone();
    for x in upper.chunks_exact_mut(d) {
        x[axis] = hi;
    }
    lower.extend(upper);
    Ok(lower)
}
