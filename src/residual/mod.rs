//! Residual blocks, weighting, the loss, and assembly of `r` and `φ = ∂r/∂θ`.
//!
//! A problem is a list of [`Block`]s (the interior, each boundary piece, the
//! initial slice), each a set of points with one residual function. With
//! `S_b` points in block `b` and `S = Σ_b S_b`:
//!
//! * the **loss** is `L(θ) = Σ_b (1/S_b) Σ_{i∈b} r_i²` (per-block mean,
//!   summed over blocks, no ½);
//! * the **system** solved by the natural-gradient methods has rows
//!   `r̃_i = √w_i r_i`, `φ̃_i = √w_i ∂r_i/∂θ` with the [`Weighting`] `w`.

mod resample;

pub use resample::{ResampleMethod, ResampleState, Resampler, Resampling, rad_weights};

use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geometry::Domain;
use crate::linalg::Matrix;
use crate::model::{Channels, GradSink, JetTape, Mlp, OutputTransform, PointJets, TransformPlan};
use crate::pde::{Operator, Point, ResidualFn};

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

    /// The factor `√w_b` applied to the rows (residuals and Jacobian rows) of a block of `len` points.
    pub fn row_factor(self, len: usize) -> f64 {
        match self {
            Weighting::Uniform => 1.0,
            Weighting::BlockMean => (1.0 / len.max(1) as f64).sqrt(),
        }
    }
}

/// ChaCha8 stream of the held-out points (0: initialisation, 7: resampling).
const HELD_OUT_STREAM: u64 = 11;

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
}

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
        }
    }

    /// Say where the block's points lie, so that held-out points of the same
    /// kind can be drawn (a block without a region is held out with its own points).
    pub fn with_region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// The data term `f(x)` of the block's operator at one point.
    fn op_source(&self, x: &[f64]) -> f64 {
        self.op.source(x)
    }

    /// The data term `f(x_i)` at every point.
    pub fn sources(&self) -> &[f64] {
        &self.sources
    }

    /// Attach outward unit normals (row-major, one per point), e.g. for
    /// Neumann conditions; the data term is re-evaluated with them (a
    /// Neumann condition's `g(x, n)`). A length mismatch is reported by
    /// [`LeastSquares::new`].
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

    /// Number of points `S_b`.
    pub fn len(&self) -> usize {
        self.points.len() / self.dim.max(1)
    }

    /// Whether the block has no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
fn check_points(name: &str, d: usize, points: &[f64]) -> Result<()> {
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
    fn transform_tape(
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

    /// Total number of residual rows `S`.
    pub fn n_residuals(&self) -> usize {
        self.blocks.iter().map(Block::len).sum()
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

    fn non_finite(&self, b: usize, quantity: &'static str) -> Error {
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

    /// Residuals of block `b` at θ (forward jets only).
    pub fn block_residuals(&self, b: usize, theta: &[f64]) -> Result<Vec<f64>> {
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
        let blk = &self.blocks[b];
        if blk.normals.is_some() {
            return Err(Error::config(
                format!("block `{}`", blk.name),
                "has normals (a boundary piece); only interior blocks can be resampled",
            ));
        }
        self.clone().replace_block_points(b, points, None)
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
                    let p = crate::geometry::uniform_face(&bb, &face, n, &mut rng);
                    (p, Some(face.normal.repeat(n)))
                }
            };
            out = out.replace_block_points(b, points, normals)?;
        }
        Ok(out)
    }

    /// Block `b` with new points (and normals), its data terms and transform
    /// jets recomputed.
    fn replace_block_points(
        mut self,
        b: usize,
        points: Vec<f64>,
        normals: Option<Vec<f64>>,
    ) -> Result<LeastSquares> {
        let d = self.blocks[b].dim;
        check_points(&self.blocks[b].name, d, &points)?;
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
        if let Some(t) = &self.transform {
            let mut t = (**t).clone();
            let ch = &self.channels[b];
            t.jets[b] = self.blocks[b]
                .points
                .chunks_exact(d)
                .map(|x| t.transform.point_jets(x, ch))
                .collect();
            self.transform = Some(Arc::new(t));
        }
        Ok(self)
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

    /// Residuals and linearisation seeds of points `range` of block `b`,
    /// with their forward pass left in `tape`.
    fn linearise_chunk(
        &self,
        b: usize,
        range: Range<usize>,
        theta: &[f64],
        tape: &mut JetTape,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let blk = &self.blocks[b];
        let ch = &self.channels[b];
        let d = blk.dim;
        let n_out = self.model.output_dim();
        let s = range.len();
        let nc = ch.count();
        self.model.forward_jets_into(
            theta,
            &blk.points[range.start * d..range.end * d],
            ch,
            tape,
        )?;
        let mut jet = vec![0.0; nc * n_out];
        let mut grad = vec![0.0; nc * n_out];
        let mut seed = vec![0.0; nc * n_out * s];
        let mut r = vec![0.0; s];
        let transform = self.transform.as_deref();
        let mut scratch = Vec::new();
        for (k, i) in range.enumerate() {
            tape.point_jet_in_place(k, &mut jet);
            if let Some(t) = transform {
                t.plans[b].apply_in_place(&t.jets[b][i], &mut jet, &mut scratch);
            }
            r[k] = blk.op.linearise(&blk.point(i), &jet, ch, n_out, &mut grad) - blk.sources[i];
            if let Some(t) = transform {
                t.plans[b].pull_back_in_place(&t.jets[b][i], &mut grad, &mut scratch);
            }
            for c in 0..nc {
                for o in 0..n_out {
                    seed[(c * s + k) * n_out + o] = grad[c * n_out + o];
                }
            }
        }
        if r.iter().any(|v| !v.is_finite()) {
            return Err(self.non_finite(b, "residual"));
        }
        if seed.iter().any(|v| !v.is_finite()) {
            return Err(self.non_finite(b, "residual linearisation ∂F/∂J"));
        }
        Ok((r, seed))
    }

    /// Every block cut into chunks of at most [`ASSEMBLY_CHUNK`] points, in row order.
    fn chunks(&self) -> Vec<(usize, Range<usize>)> {
        let mut out = Vec::new();
        for (b, blk) in self.blocks.iter().enumerate() {
            for start in (0..blk.len()).step_by(ASSEMBLY_CHUNK) {
                out.push((b, start..(start + ASSEMBLY_CHUNK).min(blk.len())));
            }
        }
        out
    }

    /// Assemble `r̃` and `φ̃ᵀ` at θ: one forward and one batched reverse pass
    /// per chunk of points, chunks spread over the worker threads, each
    /// writing its own columns of `φ̃ᵀ`.
    pub fn assemble(&self, theta: &[f64], weighting: Weighting) -> Result<System> {
        let mut sys = System::default();
        self.assemble_into(theta, weighting, &mut sys)?;
        Ok(sys)
    }

    /// [`LeastSquares::assemble`] into an existing system, reusing its buffers.
    pub fn assemble_into(
        &self,
        theta: &[f64],
        weighting: Weighting,
        sys: &mut System,
    ) -> Result<()> {
        thread_local! {
            static TAPE: std::cell::RefCell<JetTape> = std::cell::RefCell::new(JetTape::default());
        }
        let p = self.n_params();
        let s_total = self.n_residuals();
        let jac_t = &mut sys.jac_t;
        jac_t.resize(p, s_total);
        let chunks = self.chunks();
        let mut tasks = Vec::with_capacity(chunks.len());
        let mut rest = jac_t.as_mut_slice();
        for (b, range) in chunks {
            let (cols, tail) = rest.split_at_mut(range.len() * p);
            rest = tail;
            tasks.push((b, range, cols));
        }
        let results: Vec<Result<Vec<f64>>> =
            crate::parallel::map_groups(tasks, |(b, range, cols)| {
                TAPE.with_borrow_mut(|tape| {
                    let (r, seed) = self.linearise_chunk(b, range, theta, tape)?;
                    self.model
                        .backward(theta, tape, &seed, GradSink::PerPoint(cols))?;
                    if cols.iter().any(|v| !v.is_finite()) {
                        return Err(self.non_finite(b, "Jacobian"));
                    }
                    Ok(r)
                })
            });
        let r_all = &mut sys.r;
        r_all.clear();
        for r in results {
            r_all.extend(r?);
        }
        let block_losses = &mut sys.block_losses;
        let ranges = &mut sys.block_ranges;
        block_losses.clear();
        ranges.clear();
        let mut off = 0;
        for blk in &self.blocks {
            let s = blk.len();
            let r = &mut r_all[off..off + s];
            block_losses.push(r.iter().map(|v| v * v).sum::<f64>() / s as f64);
            if weighting != Weighting::Uniform {
                let sw = weighting.row_factor(s);
                r.iter_mut().for_each(|v| *v *= sw);
                jac_t.as_mut_slice()[off * p..(off + s) * p]
                    .iter_mut()
                    .for_each(|v| *v *= sw);
            }
            ranges.push(off..off + s);
            off += s;
        }
        sys.loss = block_losses.iter().sum();
        Ok(())
    }

    /// The operator-curvature part of the Hessian of the loss, in the units
    /// of the system weighted by `weighting`:
    /// `C = Σ_i w_i r_i Σ_{c,c'} ∂²F/∂J_c∂J_{c'}(x_i) ∇_θJ_c(x_i) ∇_θJ_{c'}(x_i)ᵀ`
    /// (`P × P`, symmetric, in general indefinite), `w_i` the squared row
    /// factor of point i's block. `φ̃ᵀφ̃ + C` is the Hessian of `½‖r̃‖²` without
    /// the network's own curvature — E-NGD's energy Gram matrix for nonlinear
    /// PDEs (Müller & Zeinhofer 2023). Zero for operators linear in the jet.
    /// The per-channel jet gradients `∇_θJ_c` come from one batched reverse
    /// pass per channel on which `F` is nonlinear (through the output
    /// transform, when there is one).
    pub fn operator_curvature(&self, theta: &[f64], weighting: Weighting) -> Result<Matrix> {
        let p = self.n_params();
        let n_out = self.model.output_dim();
        let mut out = Matrix::zeros(p, p);
        let mut tape = JetTape::default();
        let mut scratch = Vec::new();
        for (b, range) in self.chunks() {
            let blk = &self.blocks[b];
            let ch = &self.channels[b];
            let n = ch.count() * n_out;
            let s = range.len();
            let w = weighting.row_factor(blk.len()).powi(2);
            let (r, _) = self.linearise_chunk(b, range.clone(), theta, &mut tape)?;
            let transform = self.transform.as_deref();
            // m[k] = w r_k ∂²F/∂J∂J at point k (n × n).
            let mut m = vec![0.0; s * n * n];
            let mut jet = vec![0.0; n];
            for (k, i) in range.clone().enumerate() {
                tape.point_jet_in_place(k, &mut jet);
                if let Some(t) = transform {
                    t.plans[b].apply_in_place(&t.jets[b][i], &mut jet, &mut scratch);
                }
                let mk = &mut m[k * n * n..(k + 1) * n * n];
                blk.op.curvature(&blk.point(i), &jet, ch, n_out, mk);
                mk.iter_mut().for_each(|v| *v *= w * r[k]);
            }
            if m.iter().any(|v| !v.is_finite()) {
                return Err(self.non_finite(b, "operator curvature ∂²F/∂J²"));
            }
            let active: Vec<usize> = (0..n)
                .filter(|&c| {
                    (0..s).any(|k| {
                        m[k * n * n + c * n..k * n * n + (c + 1) * n]
                            .iter()
                            .any(|v| *v != 0.0)
                    })
                })
                .collect();
            if active.is_empty() {
                continue;
            }
            // grads[a]: P × s, column k = ∇_θ J_c(x_k) for c = active[a].
            let mut grads = Vec::with_capacity(active.len());
            let mut seed = vec![0.0; n * s];
            let mut unit = vec![0.0; n];
            for &c in &active {
                for (k, i) in range.clone().enumerate() {
                    unit.fill(0.0);
                    unit[c] = 1.0;
                    if let Some(t) = transform {
                        t.plans[b].pull_back_in_place(&t.jets[b][i], &mut unit, &mut scratch);
                    }
                    for (cc, v) in unit.iter().enumerate() {
                        // Seed layout (channel·s + point)·n_out + output; n = channels·n_out.
                        let (chan, o) = (cc / n_out, cc % n_out);
                        seed[(chan * s + k) * n_out + o] = *v;
                    }
                }
                let mut g = Matrix::zeros(p, s);
                self.model
                    .backward(theta, &tape, &seed, GradSink::PerPoint(g.as_mut_slice()))?;
                grads.push(g);
            }
            // C += Σ_a G_a Y_aᵀ with Y_a's column k = Σ_{a'} m_k[c_a][c_a'] ∇J_{c_a'}(x_k).
            let mut y = Matrix::zeros(p, s);
            for (a, &c) in active.iter().enumerate() {
                y.as_mut_slice().fill(0.0);
                for k in 0..s {
                    let col = y.col_mut(k);
                    for (a2, &c2) in active.iter().enumerate() {
                        let coef = m[k * n * n + c * n + c2];
                        if coef != 0.0 {
                            col.iter_mut()
                                .zip(grads[a2].col(k))
                                .for_each(|(yv, gv)| *yv += coef * gv);
                        }
                    }
                }
                crate::linalg::matmul_in_place(
                    out.as_mut_slice(),
                    crate::linalg::View::col_major(grads[a].as_slice(), p, s),
                    crate::linalg::View::col_major(y.as_slice(), p, s).t(),
                    true,
                    crate::linalg::Par::Seq,
                );
            }
        }
        Ok(out)
    }

    /// `L(θ)` and `∇L = 2 Σ_b (1/S_b) φ_bᵀ r_b`, by one reverse pass per block without forming φ.
    pub fn loss_gradient(&self, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
        let p = self.n_params();
        let n_out = self.model.output_dim();
        let mut g = vec![0.0; p];
        let mut block_sq = vec![0.0; self.blocks.len()];
        let mut tape = JetTape::default();
        for (b, range) in self.chunks() {
            let sb = self.blocks[b].len() as f64;
            let s = range.len();
            let (r, mut seed) = self.linearise_chunk(b, range, theta, &mut tape)?;
            // seed layout (c·s + k)·n_out + o: scale point k's entries by 2 r_k / S_b.
            for (idx, v) in seed.iter_mut().enumerate() {
                let k = (idx / n_out) % s;
                *v *= 2.0 * r[k] / sb;
            }
            self.model
                .backward(theta, &tape, &seed, GradSink::Sum(&mut g))?;
            block_sq[b] += r.iter().map(|v| v * v).sum::<f64>();
        }
        if g.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                quantity: "loss gradient",
                block: "-".into(),
                iteration: None,
            });
        }
        let loss = block_sq
            .iter()
            .zip(&self.blocks)
            .map(|(q, b)| q / b.len() as f64)
            .sum();
        Ok((loss, g))
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::model::{Activation, Init};
    use crate::pde::{Dirichlet, InitialCondition, Jet, JetSpec, Neumann, Operator, Point, Scalar};
    use num_dual::DualNum;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    struct AllenCahnLike;
    impl Operator for AllenCahnLike {
        fn jet_spec(&self) -> JetSpec {
            JetSpec::value().with_first(0).with_second(1, 1)
        }
        fn residual<D: Scalar>(&self, p: &Point<'_>, u: &Jet<'_, D>) -> D {
            u.d(0) - u.d2(1, 1) * 1e-3 - (u.value() - u.value().powi(3)) * 5.0 - p.x[1].sin()
        }
    }

    struct Poisson;
    impl Operator for Poisson {
        fn jet_spec(&self) -> JetSpec {
            JetSpec::value().with_laplacian()
        }
        fn residual<D: Scalar>(&self, p: &Point<'_>, u: &Jet<'_, D>) -> D {
            -u.laplacian() - p.x[0] * p.x[1]
        }
    }

    struct MixedSecond;
    impl Operator for MixedSecond {
        fn jet_spec(&self) -> JetSpec {
            JetSpec::value().with_second(0, 1).with_gradient()
        }
        fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
            u.d2(0, 1) + u.d(0) * u.d(1) + u.value().exp()
        }
    }

    fn test_problem(act: Activation) -> (LeastSquares, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let mut pts =
            |n: usize| -> Vec<f64> { (0..2 * n).map(|_| rng.random_range(0.0..1.0)).collect() };
        let mlp = Mlp::new(vec![2, 6, 5, 1], act).unwrap();
        let theta = mlp.init(Init::Normal { std: 0.5 }, 4);
        let nb = vec![1.0, 0.0, 0.6, 0.8, 0.0, -1.0];
        let blocks = vec![
            Block::new("poisson", 2, pts(4), Poisson),
            Block::new("allen-cahn", 2, pts(3), AllenCahnLike),
            Block::new("mixed", 2, pts(3), MixedSecond),
            Block::new("dirichlet", 2, pts(2), Dirichlet::new(|x| x[0] - x[1])),
            Block::new("neumann", 2, pts(3), Neumann::new(vec![0, 1], |x| x[0])).with_normals(nb),
            Block::new(
                "initial",
                2,
                pts(2),
                InitialCondition::new(|x| (3.0 * x[1]).sin()),
            ),
        ];
        (LeastSquares::new(mlp, blocks).unwrap(), theta)
    }

    /// Held-out points: fresh points of each block's region (faces keep
    /// their coordinate and get its normal), as many as the block has up to
    /// the cap, the same for the same seed; a block without a region keeps
    /// its points.
    #[test]
    fn held_out_points_are_fresh_points_of_the_same_regions() {
        use crate::geometry::BoxDomain;
        let mlp = Mlp::new(vec![2, 4, 1], Activation::Tanh).unwrap();
        let interior: Vec<f64> = (0..20).map(|i| 0.05 * (i % 10) as f64 + 0.02).collect();
        let blocks = vec![
            Block::new("interior", 2, interior.clone(), Poisson).with_region(Region::Interior),
            Block::new(
                "x=1",
                2,
                vec![1.0, 0.3, 1.0, 0.6, 1.0, 0.9],
                Dirichlet::zero(),
            )
            .with_region(Region::Face {
                axis: 0,
                upper: true,
            }),
            Block::new("pinned", 2, vec![0.5, 0.5], Dirichlet::zero()),
        ];
        let ls = LeastSquares::new(mlp, blocks).unwrap();
        let dom = BoxDomain::unit(2);
        let ho = ls.held_out(&dom, 3, 1000).unwrap();
        assert_eq!(ho.blocks[0].len(), 10);
        assert_ne!(ho.blocks[0].points, interior);
        assert!(ho.blocks[0].points.iter().all(|v| (0.0..=1.0).contains(v)));
        let face = &ho.blocks[1];
        assert_eq!(face.len(), 3);
        assert!(face.points.chunks(2).all(|p| p[0] == 1.0));
        assert_eq!(
            face.normals.as_deref(),
            Some(&[1.0, 0.0, 1.0, 0.0, 1.0, 0.0][..])
        );
        assert_eq!(ho.blocks[2].points, vec![0.5, 0.5]);
        assert_eq!(
            ls.held_out(&dom, 3, 1000).unwrap().blocks[0].points,
            ho.blocks[0].points
        );
        assert_ne!(
            ls.held_out(&dom, 4, 1000).unwrap().blocks[0].points,
            ho.blocks[0].points
        );
        assert_eq!(ls.held_out(&dom, 3, 4).unwrap().blocks[0].len(), 4);
    }

    /// A residual reading a jet channel it did not declare is refused when
    /// the problem is built (it used to panic at the first loss).
    #[test]
    fn undeclared_jet_channels_are_errors() {
        struct Sloppy;
        impl Operator for Sloppy {
            fn jet_spec(&self) -> JetSpec {
                JetSpec::value()
            }
            fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
                u.value() + u.laplacian()
            }
        }
        let mlp = Mlp::new(vec![2, 3, 1], Activation::Tanh).unwrap();
        let blk = Block::new("pde", 2, vec![0.2, 0.3], Sloppy);
        let e = match LeastSquares::new(mlp, vec![blk]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("an undeclared channel was accepted"),
        };
        assert!(
            e.contains("block `pde`") && e.contains("the Laplacian"),
            "{e}"
        );
    }

    /// A Neumann block without normals is refused when the problem is built
    /// (not a panic at the first loss); its data may read the normal.
    #[test]
    fn neumann_needs_normals_and_its_data_sees_them() {
        let mlp = Mlp::new(vec![2, 3, 1], Activation::Tanh).unwrap();
        let pts = vec![0.0, 0.5, 1.0, 0.5];
        let bare = Block::new("wall", 2, pts.clone(), Neumann::new(vec![0, 1], |_| 0.0));
        let e = match LeastSquares::new(mlp.clone(), vec![bare]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a Neumann block without normals was accepted"),
        };
        assert!(
            e.contains("block `wall`") && e.contains("with_normals"),
            "{e}"
        );
        let normals = vec![-1.0, 0.0, 1.0, 0.0];
        let g = |x: &[f64], n: &[f64]| 10.0 * n[0] + x[1];
        let blk = Block::new("wall", 2, pts, Neumann::with_normal_data(vec![0, 1], g))
            .with_normals(normals);
        assert_eq!(blk.sources(), &[-10.0 + 0.5, 10.0 + 0.5]);
        assert!(LeastSquares::new(mlp, vec![blk]).is_ok());
    }

    fn flat(r: Vec<Vec<f64>>) -> Vec<f64> {
        r.into_iter().flatten().collect()
    }

    /// The jets of `u` (through the transform, if any) at every point of block `b`.
    fn u_jets(ls: &LeastSquares, b: usize, theta: &[f64]) -> Vec<Vec<f64>> {
        let blk = &ls.blocks[b];
        let ch = &ls.channels[b];
        let n = ch.count() * ls.model.output_dim();
        let mut tape = JetTape::default();
        ls.model
            .forward_jets_into(theta, &blk.points, ch, &mut tape)
            .unwrap();
        let mut scratch = Vec::new();
        (0..blk.len())
            .map(|i| {
                let mut jet = vec![0.0; n];
                tape.point_jet_in_place(i, &mut jet);
                if let Some(t) = ls.transform.as_deref() {
                    t.plans[b].apply_in_place(&t.jets[b][i], &mut jet, &mut scratch);
                }
                jet
            })
            .collect()
    }

    /// `vᵀ C v` of the operator curvature against `Σ_i w_i r_i δJᵢᵀ F''ᵢ δJᵢ`
    /// with the jet variations δJᵢ from central differences of the jets along
    /// v (u³, e^u and u_x·u_y terms; with and without an output transform);
    /// C is symmetric.
    #[test]
    fn operator_curvature_matches_finite_differences() {
        for (ls, theta) in [
            test_problem(Activation::Tanh),
            hard_constrained(Activation::Tanh),
        ] {
            let c = ls.operator_curvature(&theta, Weighting::BlockMean).unwrap();
            let p = ls.n_params();
            for i in 0..p {
                for j in 0..p {
                    assert!((c.at(i, j) - c.at(j, i)).abs() <= 1e-12 * (1.0 + c.at(i, j).abs()));
                }
            }
            let r = ls.residuals(&theta).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            for _ in 0..3 {
                let v: Vec<f64> = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
                let cv = c.mul_vec(&v);
                let lhs = crate::linalg::dot(&v, &cv);
                let h = 1e-5;
                let tp: Vec<f64> = theta.iter().zip(&v).map(|(t, d)| t + h * d).collect();
                let tm: Vec<f64> = theta.iter().zip(&v).map(|(t, d)| t - h * d).collect();
                let mut rhs = 0.0;
                for b in 0..ls.blocks.len() {
                    let blk = &ls.blocks[b];
                    let w = Weighting::BlockMean.row_factor(blk.len()).powi(2);
                    let (j0, jp, jm) = (
                        u_jets(&ls, b, &theta),
                        u_jets(&ls, b, &tp),
                        u_jets(&ls, b, &tm),
                    );
                    let n = j0[0].len();
                    let mut hess = vec![0.0; n * n];
                    for i in 0..blk.len() {
                        blk.op
                            .curvature(&blk.point(i), &j0[i], &ls.channels[b], 1, &mut hess);
                        let dj: Vec<f64> =
                            (0..n).map(|c| (jp[i][c] - jm[i][c]) / (2.0 * h)).collect();
                        let quad: f64 = (0..n)
                            .map(|c| {
                                (0..n)
                                    .map(|c2| dj[c] * hess[c * n + c2] * dj[c2])
                                    .sum::<f64>()
                            })
                            .sum();
                        rhs += w * r[b][i] * quad;
                    }
                }
                assert!(lhs.abs() > 1e-6, "curvature vanishes: {lhs}");
                assert!(
                    (lhs - rhs).abs() < 1e-7 * (1.0 + rhs.abs()),
                    "vᵀCv {lhs} vs finite differences {rhs}"
                );
            }
        }
    }

    /// Every row of φ, for linear and nonlinear operators and each boundary
    /// kind, against central finite differences of the residual in θ.
    #[test]
    fn jacobian_rows_match_finite_differences() {
        for act in [Activation::Tanh, Activation::Sin] {
            let (ls, theta) = test_problem(act);
            check_jacobian(&ls, &theta, &format!("{act:?}"));
        }
    }

    /// Every row of φ against central differences of the residuals in θ.
    fn check_jacobian(ls: &LeastSquares, theta: &[f64], label: &str) {
        let theta = theta.to_vec();
        let sys = ls.assemble(&theta, Weighting::Uniform).unwrap();
        let p = ls.n_params();
        let s = ls.n_residuals();
        assert_eq!(sys.r, flat(ls.residuals(&theta).unwrap()));
        let h = 1e-6;
        for q in 0..p {
            let mut tp = theta.clone();
            let mut tm = theta.clone();
            tp[q] += h;
            tm[q] -= h;
            let rp = flat(ls.residuals(&tp).unwrap());
            let rm = flat(ls.residuals(&tm).unwrap());
            for i in 0..s {
                let fd = (rp[i] - rm[i]) / (2.0 * h);
                let an = sys.jac_t.at(q, i);
                assert!(
                    (fd - an).abs() < 2e-7 * (1.0 + an.abs()),
                    "{label} row {i} (block {}), param {q}: fd {fd} vs {an}",
                    sys.block_ranges
                        .iter()
                        .zip(ls.blocks())
                        .find(|(r, _)| r.contains(&i))
                        .unwrap()
                        .1
                        .name()
                );
            }
        }
    }

    fn hard_constrained(act: Activation) -> (LeastSquares, Vec<f64>) {
        let (ls, theta) = test_problem(act);
        let t = OutputTransform::new(
            "u = sin(x)·y + x(1 − x)·y·N",
            |x| x[0].sin() * x[1],
            |x| x[0] * (x[0] * -1.0 + 1.0) * x[1],
        );
        (ls.with_transform(t).unwrap(), theta)
    }

    /// With an output transform, φ still matches finite differences in θ
    /// (the pull-back is the transpose of the product rule).
    #[test]
    fn transformed_jacobian_matches_finite_differences() {
        for act in [Activation::Tanh, Activation::Sin] {
            let (ls, theta) = hard_constrained(act);
            check_jacobian(&ls, &theta, &format!("transformed {act:?}"));
        }
    }

    /// With an output transform, each residual equals the operator applied to
    /// a finite-difference jet (in x) of `u = g + ψ·N_θ` built from values
    /// only: this checks the product rule and the hyper-dual jets of g, ψ.
    #[test]
    fn transformed_residuals_match_finite_difference_jets() {
        let (ls, theta) = hard_constrained(Activation::Tanh);
        let t = ls.transform().unwrap().clone();
        let mlp = ls.model().clone();
        let u = |x: &[f64]| t.value(x, mlp.values(&theta, x).unwrap()[0]);
        let r = ls.residuals(&theta).unwrap();
        for (b, blk) in ls.blocks().iter().enumerate() {
            let ch = &ls.channels[b];
            for i in 0..blk.len() {
                let p = blk.point(i);
                let at = |dk: &[(usize, f64)]| {
                    let mut y = p.x.to_vec();
                    for &(k, d) in dk {
                        y[k] += d;
                    }
                    u(&y)
                };
                let h = 1e-4;
                let d1 = |k: usize| (at(&[(k, h)]) - at(&[(k, -h)])) / (2.0 * h);
                let d2 = |k: usize, l: usize| {
                    if k == l {
                        (at(&[(k, h)]) - 2.0 * u(p.x) + at(&[(k, -h)])) / (h * h)
                    } else {
                        (at(&[(k, h), (l, h)]) - at(&[(k, h), (l, -h)]) - at(&[(k, -h), (l, h)])
                            + at(&[(k, -h), (l, -h)]))
                            / (4.0 * h * h)
                    }
                };
                let mut jet = vec![u(p.x)];
                jet.extend(ch.first_axes().iter().map(|&k| d1(k)));
                jet.extend(ch.second_pairs().iter().map(|&(k, l)| d2(k, l)));
                if ch.has_laplacian() {
                    jet.push(d2(0, 0) + d2(1, 1));
                }
                let fd = blk.residual_fn().eval(&p, &jet, ch, 1) - blk.sources()[i];
                assert!(
                    (fd - r[b][i]).abs() < 1e-5 * (1.0 + fd.abs()),
                    "block {} point {i}: transformed {} vs finite differences {fd}",
                    blk.name(),
                    r[b][i]
                );
            }
        }
        // The constraint holds exactly where ψ vanishes: x = 0.
        let x = [0.0, 0.7];
        assert_eq!(u(&x), x[0].sin() * x[1]);
    }

    #[test]
    fn gradient_matches_finite_differences_and_jacobian() {
        let (ls, theta) = test_problem(Activation::Tanh);
        let (loss, g) = ls.loss_gradient(&theta).unwrap();
        assert!((loss - ls.loss(&theta).unwrap()).abs() < 1e-14 * loss.max(1.0));
        let h = 1e-6;
        for q in 0..ls.n_params() {
            let mut tp = theta.clone();
            let mut tm = theta.clone();
            tp[q] += h;
            tm[q] -= h;
            let fd = (ls.loss(&tp).unwrap() - ls.loss(&tm).unwrap()) / (2.0 * h);
            assert!(
                (fd - g[q]).abs() < 1e-6 * (1.0 + g[q].abs()),
                "param {q}: fd {fd} vs {}",
                g[q]
            );
        }
        // With block-mean weights, 2 φ̃ᵀ r̃ is the gradient and ‖r̃‖² the loss.
        let sys = ls.assemble(&theta, Weighting::BlockMean).unwrap();
        let jr = sys.jac_t.mul_vec(&sys.r);
        for q in 0..ls.n_params() {
            assert!((2.0 * jr[q] - g[q]).abs() < 1e-12 * (1.0 + g[q].abs()));
        }
        let rr: f64 = sys.r.iter().map(|v| v * v).sum();
        assert!((rr - loss).abs() < 1e-12 * loss);
    }

    #[test]
    fn bad_blocks_are_rejected() {
        let mlp = Mlp::new(vec![2, 3, 1], Activation::Tanh).unwrap();
        let wrong_dim = Block::new("b", 3, vec![0.0; 6], Dirichlet::zero());
        assert!(matches!(
            LeastSquares::new(mlp.clone(), vec![wrong_dim]),
            Err(Error::DimensionMismatch { .. })
        ));
        let nan = Block::new("b", 2, vec![0.0, f64::NAN], Dirichlet::zero());
        assert!(LeastSquares::new(mlp.clone(), vec![nan]).is_err());
        assert!(LeastSquares::new(mlp, vec![]).is_err());
    }

    #[test]
    fn non_finite_residual_names_the_block() {
        struct Blowup;
        impl Operator for Blowup {
            fn jet_spec(&self) -> JetSpec {
                JetSpec::value()
            }
            fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
                u.value().ln() * f64::INFINITY
            }
        }
        let mlp = Mlp::new(vec![1, 3, 1], Activation::Tanh).unwrap();
        let theta = mlp.init(Init::default(), 0);
        let ls = LeastSquares::new(mlp, vec![Block::new("wall", 1, vec![0.5], Blowup)]).unwrap();
        let e = ls.assemble(&theta, Weighting::Uniform).unwrap_err();
        assert!(e.to_string().contains("wall"), "{e}");
    }
}
