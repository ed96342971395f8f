//! Assembly of the residuals `r` and the Jacobian `φ = ∂r/∂θ` (weighted,
//! transposed) in cache-sized chunks shared among the workers.

use std::ops::Range;

use crate::error::Result;
use crate::model::{GradSink, JetTape};

use super::{ASSEMBLY_CHUNK, LeastSquares, System, Weighting};

impl LeastSquares {
    /// Residuals and linearisation seeds of points `range` of block `b`,
    /// with their forward pass left in `tape`.
    pub(super) fn linearise_chunk(
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
    pub(super) fn chunks(&self) -> Vec<(usize, Range<usize>)> {
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
        // One column per point first; combining blocks are folded below.
        let s_total = self.n_points();
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
        let rows = self.fold_combinations(r_all, jac_t);
        let mut off = 0;
        for (b, &s) in rows.iter().enumerate() {
            let r = &mut r_all[off..off + s];
            block_losses.push(r.iter().map(|v| v * v).sum::<f64>() / s as f64);
            let sw = self.row_factor(b, weighting);
            if sw != 1.0 {
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

    /// Turn the per-point residuals and Jacobian columns of every block into
    /// its rows, in place ([`super::Combination`]: a row's column is the
    /// combination of its points' columns), and drop the spare columns.
    /// Returns each block's row count. Rows never land after the points
    /// they are made of, so a left-to-right pass is safe.
    fn fold_combinations(&self, r: &mut Vec<f64>, jac_t: &mut crate::linalg::Matrix) -> Vec<usize> {
        let p = jac_t.nrows();
        let (mut from, mut to) = (0, 0);
        let mut rows = Vec::with_capacity(self.blocks.len());
        for blk in &self.blocks {
            let n = blk.len();
            let m = blk.rows();
            match blk.combination {
                Some(c) => {
                    let values = c.apply(&r[from..from + n]);
                    for (k, v) in values.into_iter().enumerate() {
                        let mut col = vec![0.0; p];
                        for (j, cj) in c.terms(n, k) {
                            for (a, b) in col.iter_mut().zip(jac_t.col(from + j)) {
                                *a += cj * b;
                            }
                        }
                        jac_t.col_mut(to + k).copy_from_slice(&col);
                        r[to + k] = v;
                    }
                }
                None if from != to => {
                    r.copy_within(from..from + n, to);
                    jac_t
                        .as_mut_slice()
                        .copy_within(from * p..(from + n) * p, to * p);
                }
                None => {}
            }
            rows.push(m);
            from += n;
            to += m;
        }
        r.truncate(to);
        jac_t.truncate_cols(to);
        rows
    }
}
