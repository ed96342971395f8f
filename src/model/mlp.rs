//! The multilayer perceptron, its parameter layout, batched forward jets and
//! the batched reverse pass that yields per-point parameter gradients.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::jet::Channels;
use crate::error::{Error, Result};
use crate::linalg::{View, matmul_in_place};

/// Hidden-layer activation function σ (the output layer is linear).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `tanh(y)`; derivatives from `t = tanh y`: `1−t²`, `−2t(1−t²)`, `−2(1−t²)(1−3t²)`.
    #[default]
    Tanh,
    /// `sin(y)`.
    Sin,
}

impl Activation {
    /// `[σ(y), σ'(y), σ''(y), σ'''(y)]`.
    #[inline]
    pub fn derivatives(self, y: f64) -> [f64; 4] {
        match self {
            Activation::Tanh => {
                let t = y.tanh();
                let s1 = 1.0 - t * t;
                [t, s1, -2.0 * t * s1, -2.0 * s1 * (1.0 - 3.0 * t * t)]
            }
            Activation::Sin => {
                let (s, c) = y.sin_cos();
                [s, c, -s, -c]
            }
        }
    }

    /// Parse `"tanh"` or `"sin"`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "tanh" => Ok(Activation::Tanh),
            "sin" => Ok(Activation::Sin),
            _ => Err(Error::UnknownName {
                kind: "activation",
                name: name.into(),
                known: "tanh, sin".into(),
            }),
        }
    }
}

/// Parameter initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Init {
    /// Every weight and bias i.i.d. `N(0, std²)`; the reference codes use `std = 0.1`.
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// Glorot (Xavier) normal weights, `N(0, 2/(fan_in + fan_out))`, zero biases.
    Glorot,
}

impl Default for Init {
    fn default() -> Self {
        Init::Normal { std: 0.1 }
    }
}

/// A fully connected network `ℝ^{n_0} → ℝ^{n_L}` with widths `[n_0, …, n_L]`,
/// activation σ after every layer but the last.
///
/// **Parameter layout** of the flat vector θ: for each layer `l = 0..L−1` in
/// order, the weight matrix `W_l` (`n_{l+1} × n_l`) stored row-major
/// (entry `(o, j)` at `off_l + o·n_l + j`), followed by the bias `b_l`
/// (`n_{l+1}` entries). `P = Σ_l n_{l+1}(n_l + 1)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    widths: Vec<usize>,
    activation: Activation,
}

/// Offsets of one layer in θ.
#[derive(Clone, Copy, Debug)]
pub struct LayerSlot {
    /// Offset of `W_l`.
    pub w: usize,
    /// Offset of `b_l`.
    pub b: usize,
    /// Input width `n_l`.
    pub n_in: usize,
    /// Output width `n_{l+1}`.
    pub n_out: usize,
}

/// The stored forward pass of [`Mlp::forward_jets`]: every layer's input
/// channels and hidden pre-activations, needed by [`Mlp::backward`].
#[derive(Clone, Debug)]
pub struct JetTape {
    channels: Channels,
    s: usize,
    n_out: usize,
    zs: Vec<Vec<f64>>,
    ys: Vec<Vec<f64>>,
    out: Vec<f64>,
}

impl JetTape {
    /// The channel layout.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Number of points.
    pub fn n_points(&self) -> usize {
        self.s
    }

    /// Channel `c` of output `o` at point `i`.
    #[inline]
    pub fn at(&self, o: usize, c: usize, i: usize) -> f64 {
        self.out[(c * self.s + i) * self.n_out + o]
    }

    /// Copy the jet of point `i` into `buf` (`C · n_out` values, index `c·n_out + o`).
    pub fn point_jet_in_place(&self, i: usize, buf: &mut [f64]) {
        for c in 0..self.channels.count() {
            for o in 0..self.n_out {
                buf[c * self.n_out + o] = self.at(o, c, i);
            }
        }
    }
}

/// Where [`Mlp::backward`] writes parameter gradients.
pub enum GradSink<'a> {
    /// One gradient per point: column `i` of a column-major `P × S` buffer
    /// receives `∂(Σ_c seed_ic J_c(x_i))/∂θ` (overwritten).
    PerPoint(&'a mut [f64]),
    /// The sum over points, added into a length-`P` buffer.
    Sum(&'a mut [f64]),
}

impl Mlp {
    /// A network with the given widths (input first, output last).
    ///
    /// Errors if there are fewer than two widths or a width is zero.
    pub fn new(widths: Vec<usize>, activation: Activation) -> Result<Self> {
        if widths.len() < 2 {
            return Err(Error::config(
                "model.widths",
                format!("needs at least an input and an output width, got {widths:?}"),
            ));
        }
        if let Some(p) = widths.iter().position(|&w| w == 0) {
            return Err(Error::config(
                "model.widths",
                format!("width {p} is zero in {widths:?}; every layer needs at least one unit"),
            ));
        }
        Ok(Mlp { widths, activation })
    }

    /// The widths `[n_0, …, n_L]`.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Input dimension `n_0`.
    pub fn input_dim(&self) -> usize {
        self.widths[0]
    }

    /// Output dimension `n_L`.
    pub fn output_dim(&self) -> usize {
        *self.widths.last().unwrap()
    }

    /// Number of parameters `P`.
    pub fn n_params(&self) -> usize {
        self.widths.windows(2).map(|w| w[1] * (w[0] + 1)).sum()
    }

    /// Offsets of every layer in θ.
    pub fn layers(&self) -> Vec<LayerSlot> {
        let mut off = 0;
        self.widths
            .windows(2)
            .map(|w| {
                let slot = LayerSlot {
                    w: off,
                    b: off + w[0] * w[1],
                    n_in: w[0],
                    n_out: w[1],
                };
                off += w[1] * (w[0] + 1);
                slot
            })
            .collect()
    }

    /// Draw θ from `init` with the explicit `seed` (ChaCha8; the same seed gives the same θ).
    pub fn init(&self, init: Init, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut theta = vec![0.0; self.n_params()];
        for slot in self.layers() {
            let (std_w, std_b) = match init {
                Init::Normal { std } => (std, std),
                Init::Glorot => ((2.0 / (slot.n_in + slot.n_out) as f64).sqrt(), 0.0),
            };
            let nw = Normal::new(0.0, std_w).expect("finite std");
            for v in &mut theta[slot.w..slot.b] {
                *v = nw.sample(&mut rng);
            }
            if std_b > 0.0 {
                let nb = Normal::new(0.0, std_b).expect("finite std");
                for v in &mut theta[slot.b..slot.b + slot.n_out] {
                    *v = nb.sample(&mut rng);
                }
            }
        }
        theta
    }

    fn check(&self, theta: &[f64], points: &[f64]) -> Result<usize> {
        if theta.len() != self.n_params() {
            return Err(Error::DimensionMismatch {
                context: "parameter vector θ".into(),
                expected: self.n_params(),
                got: theta.len(),
            });
        }
        let d = self.input_dim();
        if points.len() % d != 0 {
            return Err(Error::DimensionMismatch {
                context: format!("point buffer (row-major, {d} coordinates per point)"),
                expected: d * points.len().div_ceil(d),
                got: points.len(),
            });
        }
        Ok(points.len() / d)
    }

    /// Forward jets at `S` points (`points` row-major `S × n_0`).
    ///
    /// Every channel of every point goes through each layer in **one** matrix
    /// product `W · [Z | ∂_1 Z | … | ΔZ]`; the bias enters the value channel
    /// only. Through the activation `h = σ(y)`:
    /// `∂_k h = σ'∂_k y`, `∂_kl h = σ'∂_kl y + σ''∂_k y ∂_l y`,
    /// `Δh = σ'Δy + σ''Σ_k(∂_k y)²`. Cost `O(S·P·C)`.
    pub fn forward_jets(&self, theta: &[f64], points: &[f64], channels: &Channels) -> Result<JetTape> {
        let s = self.check(theta, points)?;
        let d = self.input_dim();
        if channels.dim() != d {
            return Err(Error::DimensionMismatch {
                context: "jet channels vs network input dimension".into(),
                expected: d,
                got: channels.dim(),
            });
        }
        let nc = channels.count();
        let cs = nc * s;
        // Input channels: value x_i, ∂_k x = e_k, higher channels 0.
        let mut z0 = vec![0.0; d * cs];
        for i in 0..s {
            z0[i * d..(i + 1) * d].copy_from_slice(&points[i * d..(i + 1) * d]);
        }
        for (p, &k) in channels.first_axes().iter().enumerate() {
            let c = 1 + p;
            for i in 0..s {
                z0[(c * s + i) * d + k] = 1.0;
            }
        }
        let layers = self.layers();
        let nl = layers.len();
        let mut zs = Vec::with_capacity(nl);
        let mut ys = Vec::with_capacity(nl - 1);
        zs.push(z0);
        let parents = channels.second_parents();
        let first_lo = 1;
        let first_hi = 1 + channels.first_axes().len();
        let lap = channels.laplacian_index();
        let mut out = Vec::new();
        for (l, slot) in layers.iter().enumerate() {
            let w = View::row_major(&theta[slot.w..slot.b], slot.n_out, slot.n_in);
            let mut y = vec![0.0; slot.n_out * cs];
            matmul_in_place(&mut y, w, View::col_major(&zs[l], slot.n_in, cs), false);
            let b = &theta[slot.b..slot.b + slot.n_out];
            for i in 0..s {
                for (yo, bo) in y[i * slot.n_out..(i + 1) * slot.n_out].iter_mut().zip(b) {
                    *yo += bo;
                }
            }
            if l + 1 == nl {
                out = y;
                break;
            }
            let n = slot.n_out;
            let mut h = vec![0.0; n * cs];
            for i in 0..s {
                for j in 0..n {
                    let at = |c: usize| (c * s + i) * n + j;
                    let [s0, s1, s2, _] = self.activation.derivatives(y[at(0)]);
                    h[at(0)] = s0;
                    for c in first_lo..first_hi {
                        h[at(c)] = s1 * y[at(c)];
                    }
                    for (q, &(a, bb)) in parents.iter().enumerate() {
                        let c = first_hi + q;
                        h[at(c)] = s1 * y[at(c)] + s2 * y[at(a)] * y[at(bb)];
                    }
                    if let Some(c) = lap {
                        let q: f64 = (first_lo..first_hi).map(|f| y[at(f)] * y[at(f)]).sum();
                        h[at(c)] = s1 * y[at(c)] + s2 * q;
                    }
                }
            }
            ys.push(y);
            zs.push(h);
        }
        Ok(JetTape {
            channels: channels.clone(),
            s,
            n_out: self.output_dim(),
            zs,
            ys,
            out,
        })
    }

    /// Network outputs at `S` points (row-major `S × n_L`), in chunks to bound memory.
    pub fn values(&self, theta: &[f64], points: &[f64]) -> Result<Vec<f64>> {
        let s = self.check(theta, points)?;
        let d = self.input_dim();
        let ch = Channels::value(d);
        let mut out = Vec::with_capacity(s * self.output_dim());
        const CHUNK: usize = 8192;
        for start in (0..s).step_by(CHUNK) {
            let end = (start + CHUNK).min(s);
            let tape = self.forward_jets(theta, &points[start * d..end * d], &ch)?;
            out.extend_from_slice(&tape.out);
        }
        Ok(out)
    }

    /// Batched reverse pass through a [`JetTape`].
    ///
    /// `seed` has the layout of the tape's output (`n_L × C·S`, index
    /// `(c·S + i)·n_L + o`) and holds the cotangent `a_ic = ∂F_i/∂J_c` of each
    /// output channel. The pass propagates all points and channels at once
    /// (`Z̄ = Wᵀ Ȳ`, one product per layer) and reverses the activation's
    /// channel mixing (σ'', σ''' terms). Per-sample gradients of a dense layer
    /// are `Σ_c ȳ_c(i) z_c(i)ᵀ` for W and `ȳ_value(i)` for b.
    pub fn backward(&self, theta: &[f64], tape: &JetTape, seed: Vec<f64>, sink: GradSink<'_>) -> Result<()> {
        let p = self.n_params();
        let s = tape.s;
        let nc = tape.channels.count();
        let cs = nc * s;
        if seed.len() != self.output_dim() * cs {
            return Err(Error::DimensionMismatch {
                context: "reverse-pass seed".into(),
                expected: self.output_dim() * cs,
                got: seed.len(),
            });
        }
        let mut sink = sink;
        match &mut sink {
            GradSink::PerPoint(buf) => {
                if buf.len() != p * s {
                    return Err(Error::DimensionMismatch {
                        context: "per-point gradient buffer (P × S)".into(),
                        expected: p * s,
                        got: buf.len(),
                    });
                }
                buf.fill(0.0);
            }
            GradSink::Sum(buf) => {
                if buf.len() != p {
                    return Err(Error::DimensionMismatch {
                        context: "gradient buffer".into(),
                        expected: p,
                        got: buf.len(),
                    });
                }
            }
        }
        let parents = tape.channels.second_parents();
        let first_lo = 1;
        let first_hi = 1 + tape.channels.first_axes().len();
        let lap = tape.channels.laplacian_index();
        let layers = self.layers();
        let mut ybar = seed;
        for l in (0..layers.len()).rev() {
            let slot = layers[l];
            let z = &tape.zs[l];
            let (n_in, n_out) = (slot.n_in, slot.n_out);
            match &mut sink {
                GradSink::PerPoint(buf) => {
                    for i in 0..s {
                        let col = &mut buf[i * p..(i + 1) * p];
                        for c in 0..nc {
                            let zc = &z[(c * s + i) * n_in..(c * s + i + 1) * n_in];
                            let yc = &ybar[(c * s + i) * n_out..(c * s + i + 1) * n_out];
                            for (o, &a) in yc.iter().enumerate() {
                                if a != 0.0 {
                                    let row = &mut col[slot.w + o * n_in..slot.w + (o + 1) * n_in];
                                    for (r, zz) in row.iter_mut().zip(zc) {
                                        *r += a * zz;
                                    }
                                }
                            }
                        }
                        col[slot.b..slot.b + n_out].copy_from_slice(&ybar[i * n_out..(i + 1) * n_out]);
                    }
                }
                GradSink::Sum(buf) => {
                    // W gradient (row-major n_out × n_in) = Ȳ Zᵀ, written as the
                    // column-major n_in × n_out product Z Ȳᵀ.
                    matmul_in_place(
                        &mut buf[slot.w..slot.b],
                        View::col_major(z, n_in, cs),
                        View::col_major(&ybar, n_out, cs).t(),
                        true,
                    );
                    for i in 0..s {
                        for o in 0..n_out {
                            buf[slot.b + o] += ybar[i * n_out + o];
                        }
                    }
                }
            }
            if l == 0 {
                break;
            }
            // Z̄ = Wᵀ Ȳ for all channels and points at once.
            let w = View::row_major(&theta[slot.w..slot.b], n_out, n_in);
            let mut hbar = vec![0.0; n_in * cs];
            matmul_in_place(&mut hbar, w.t(), View::col_major(&ybar, n_out, cs), false);
            // Through the activation of layer l−1 (pre-activation ys[l−1], width n_in).
            let y = &tape.ys[l - 1];
            let n = n_in;
            let mut yb = vec![0.0; n * cs];
            for i in 0..s {
                for j in 0..n {
                    let at = |c: usize| (c * s + i) * n + j;
                    let [_, s1, s2, s3] = self.activation.derivatives(y[at(0)]);
                    for c in 0..nc {
                        yb[at(c)] = s1 * hbar[at(c)];
                    }
                    let mut v0 = 0.0;
                    for c in first_lo..first_hi {
                        v0 += s2 * y[at(c)] * hbar[at(c)];
                    }
                    for (q, &(a, b)) in parents.iter().enumerate() {
                        let c = first_hi + q;
                        let hb = hbar[at(c)];
                        v0 += (s2 * y[at(c)] + s3 * y[at(a)] * y[at(b)]) * hb;
                        yb[at(a)] += s2 * y[at(b)] * hb;
                        yb[at(b)] += s2 * y[at(a)] * hb;
                    }
                    if let Some(c) = lap {
                        let hb = hbar[at(c)];
                        let mut q = 0.0;
                        for f in first_lo..first_hi {
                            let yf = y[at(f)];
                            q += yf * yf;
                            yb[at(f)] += 2.0 * s2 * yf * hb;
                        }
                        v0 += (s2 * y[at(c)] + s3 * q) * hb;
                    }
                    yb[at(0)] += v0;
                }
            }
            ybar = yb;
        }
        Ok(())
    }
}
