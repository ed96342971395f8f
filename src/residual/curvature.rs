//! The operator's curvature term (E-NGD) and the loss gradient, by reverse
//! passes without forming `φ`.

use crate::error::{Error, Result};
use crate::linalg::Matrix;
use crate::model::{GradSink, JetTape};

use super::{LeastSquares, Weighting};

impl LeastSquares {
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
            if blk.combination.is_some() {
                // Combining blocks are linear in the jet: no curvature.
                continue;
            }
            let ch = &self.channels[b];
            let n = ch.count() * n_out;
            let s = range.len();
            let w = self.row_factor(b, weighting).powi(2);
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
        // A combining block's rows y = C q: its points carry Cᵀy.
        let mut spread: Vec<Option<Vec<f64>>> = vec![None; self.blocks.len()];
        for (b, blk) in self.blocks.iter().enumerate() {
            if let Some(c) = blk.combination {
                let y = c.apply(&self.point_residuals(b, theta)?);
                block_sq[b] = y.iter().map(|v| v * v).sum::<f64>();
                spread[b] = Some(c.transpose_apply(&y, blk.len()));
            }
        }
        for (b, range) in self.chunks() {
            let sb = self.blocks[b].rows() as f64;
            let s = range.len();
            let start = range.start;
            let (r, mut seed) = self.linearise_chunk(b, range, theta, &mut tape)?;
            let weight = |k: usize| match &spread[b] {
                Some(w) => w[start + k],
                None => r[k],
            };
            // seed layout (c·s + k)·n_out + o: scale point k's entries by 2 r_k / S_b.
            for (idx, v) in seed.iter_mut().enumerate() {
                let k = (idx / n_out) % s;
                *v *= 2.0 * weight(k) / sb;
            }
            self.model
                .backward(theta, &tape, &seed, GradSink::Sum(&mut g))?;
            if spread[b].is_none() {
                block_sq[b] += r.iter().map(|v| v * v).sum::<f64>();
            }
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
            .map(|(q, b)| q / b.rows() as f64)
            .sum();
        Ok((loss, g))
    }
}
