//! The multilayer perceptron, its parameter layout, batched forward jets and
//! the batched reverse pass that yields per-point parameter gradients.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::jet::Channels;
use crate::error::{Error, Result};
use crate::linalg::{Par, View, matmul_in_place};

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
            Activation::Tanh => tanh_derivatives(tanh(y)),
            Activation::Sin => {
                let (s, c) = y.sin_cos();
                [s, c, -s, -c]
            }
        }
    }

    /// `[σ, σ', σ'', σ''']` given the pre-activation `y` and the stored output `h = σ(y)`
    /// (tanh's derivatives are polynomials in `h`, so no transcendental is recomputed).
    #[inline]
    pub fn derivatives_given(self, y: f64, h: f64) -> [f64; 4] {
        match self {
            Activation::Tanh => tanh_derivatives(h),
            Activation::Sin => self.derivatives(y),
        }
    }

    /// `σ'`, `σ''`, `σ'''` elementwise, given the pre-activations `y` and outputs `h = σ(y)`.
    pub fn derivatives_in_place(
        self,
        y: &[f64],
        h: &[f64],
        d1: &mut [f64],
        d2: &mut [f64],
        d3: &mut [f64],
    ) {
        for k in 0..y.len() {
            let [_, a, b, c] = self.derivatives_given(y[k], h[k]);
            d1[k] = a;
            d2[k] = b;
            d3[k] = c;
        }
    }
}

#[inline]
fn tanh_derivatives(t: f64) -> [f64; 4] {
    let s1 = 1.0 - t * t;
    [t, s1, -2.0 * t * s1, -2.0 * s1 * (1.0 - 3.0 * t * t)]
}

/// `tanh(y)`, within 2ε absolute and 4ε relative of the correctly rounded value (see the activation kernels).
#[inline]
pub fn tanh(y: f64) -> f64 {
    super::simd::tanh_kernel(y)
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

impl Init {
    /// Check the settings (a normal's standard deviation finite and > 0);
    /// an error names `field`.
    pub fn validate(&self, field: &str) -> Result<()> {
        match *self {
            Init::Normal { std } if !(std.is_finite() && std > 0.0) => Err(Error::config(
                field,
                format!("the standard deviation must be finite and > 0, got {std}"),
            )),
            _ => Ok(()),
        }
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
    s1: Vec<f64>,
    s2: Vec<f64>,
}

impl Default for JetTape {
    fn default() -> Self {
        JetTape {
            channels: Channels::value(0),
            s: 0,
            n_out: 0,
            zs: vec![],
            ys: vec![],
            out: vec![],
            s1: vec![],
            s2: vec![],
        }
    }
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

    /// Number of network outputs.
    pub fn n_outputs(&self) -> usize {
        self.n_out
    }

    /// Channel `c` of output `o` at point `i`.
    #[inline]
    pub fn at(&self, o: usize, c: usize, i: usize) -> f64 {
        self.out[(c * self.s + i) * self.n_out + o]
    }

    /// Overwrite the jet of point `i` from `buf` (layout of [`JetTape::point_jet_in_place`]);
    /// used by output transforms, which rewrite the output jets after the
    /// forward pass (the reverse pass never reads them).
    pub fn set_point_jet(&mut self, i: usize, buf: &[f64]) {
        for c in 0..self.channels.count() {
            for o in 0..self.n_out {
                self.out[(c * self.s + i) * self.n_out + o] = buf[c * self.n_out + o];
            }
        }
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
    /// receives `∂(Σ_c seed_ic J_c(x_i))/∂θ` (every entry overwritten).
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
        if !points.len().is_multiple_of(d) {
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
    pub fn forward_jets(
        &self,
        theta: &[f64],
        points: &[f64],
        channels: &Channels,
    ) -> Result<JetTape> {
        let mut tape = JetTape::default();
        self.forward_jets_into(theta, points, channels, &mut tape)?;
        Ok(tape)
    }

    /// [`Mlp::forward_jets`] into a caller-owned tape whose buffers are reused
    /// (no allocation once they are large enough).
    pub fn forward_jets_into(
        &self,
        theta: &[f64],
        points: &[f64],
        channels: &Channels,
        tape: &mut JetTape,
    ) -> Result<()> {
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
        let layers = self.layers();
        let nl = layers.len();
        tape.zs.resize_with(nl, Vec::new);
        tape.ys.resize_with(nl - 1, Vec::new);
        if tape.channels != *channels {
            tape.channels = channels.clone();
        }
        tape.s = s;
        tape.n_out = self.output_dim();
        // Input channels: value x_i, ∂_k x = e_k, higher channels 0.
        let z0 = &mut tape.zs[0];
        z0.clear();
        z0.resize(d * cs, 0.0);
        z0[..s * d].copy_from_slice(&points[..s * d]);
        for (p, &k) in channels.first_axes().iter().enumerate() {
            let c = 1 + p;
            for i in 0..s {
                z0[(c * s + i) * d + k] = 1.0;
            }
        }
        let parents = channels.second_parents();
        let first_lo = 1;
        let first_hi = 1 + channels.first_axes().len();
        let lap = channels.laplacian_index();
        for (l, slot) in layers.iter().enumerate() {
            let w = View::row_major(&theta[slot.w..slot.b], slot.n_out, slot.n_in);
            let last = l + 1 == nl;
            let mut y = if last {
                std::mem::take(&mut tape.out)
            } else {
                std::mem::take(&mut tape.ys[l])
            };
            grow(&mut y, slot.n_out * cs);
            matmul_in_place(
                &mut y[..slot.n_out * cs],
                w,
                View::col_major(&tape.zs[l][..slot.n_in * cs], slot.n_in, cs),
                false,
                Par::Seq,
            );
            let b = &theta[slot.b..slot.b + slot.n_out];
            for yi in y[..s * slot.n_out].chunks_exact_mut(slot.n_out) {
                for (yo, bo) in yi.iter_mut().zip(b) {
                    *yo += bo;
                }
            }
            if last {
                tape.out = y;
                break;
            }
            let n = slot.n_out;
            // Channel c of all points is the contiguous range c·s·n..(c+1)·s·n,
            // indexed like the value channel, so every update is a slice op.
            let h = &mut tape.zs[l + 1];
            grow(h, n * cs);
            let sn = s * n;
            let (s1, s2) = (&mut tape.s1, &mut tape.s2);
            grow(s1, sn);
            grow(s2, sn);
            super::simd::activation_channels(
                self.activation,
                &y[..n * cs],
                &mut h[..n * cs],
                &mut s1[..sn],
                &mut s2[..sn],
                sn,
                first_lo..first_hi,
                &parents,
                lap,
            );
            tape.ys[l] = y;
        }
        Ok(())
    }

    /// Network outputs at `S` points (row-major `S × n_L`), in chunks to bound memory.
    pub fn values(&self, theta: &[f64], points: &[f64]) -> Result<Vec<f64>> {
        let s = self.check(theta, points)?;
        let d = self.input_dim();
        let ch = Channels::value(d);
        let mut out = Vec::with_capacity(s * self.output_dim());
        const CHUNK: usize = 8192;
        let mut tape = JetTape::default();
        for start in (0..s).step_by(CHUNK) {
            let end = (start + CHUNK).min(s);
            self.forward_jets_into(theta, &points[start * d..end * d], &ch, &mut tape)?;
            out.extend_from_slice(&tape.out[..(end - start) * self.output_dim()]);
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
    pub fn backward(
        &self,
        theta: &[f64],
        tape: &JetTape,
        seed: &[f64],
        sink: GradSink<'_>,
    ) -> Result<()> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<BackwardScratch> = std::cell::RefCell::new(BackwardScratch::default());
        }
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
        let expected = match &sink {
            GradSink::PerPoint(buf) => (p * s, buf.len(), "per-point gradient buffer (P × S)"),
            GradSink::Sum(buf) => (p, buf.len(), "gradient buffer"),
        };
        if expected.0 != expected.1 {
            return Err(Error::DimensionMismatch {
                context: expected.2.into(),
                expected: expected.0,
                got: expected.1,
            });
        }
        SCRATCH.with_borrow_mut(|sc| {
            sc.ybar.clear();
            sc.ybar.extend_from_slice(seed);
            self.backward_with(theta, tape, sink, sc);
        });
        Ok(())
    }

    fn backward_with(
        &self,
        theta: &[f64],
        tape: &JetTape,
        mut sink: GradSink<'_>,
        sc: &mut BackwardScratch,
    ) {
        let p = self.n_params();
        let s = tape.s;
        let nc = tape.channels.count();
        let cs = nc * s;
        let parents = tape.channels.second_parents();
        let first_lo = 1;
        let first_hi = 1 + tape.channels.first_axes().len();
        let lap = tape.channels.laplacian_index();
        let layers = self.layers();
        for l in (0..layers.len()).rev() {
            let slot = layers[l];
            let z = &tape.zs[l];
            let (n_in, n_out) = (slot.n_in, slot.n_out);
            let ybar = &sc.ybar;
            match &mut sink {
                GradSink::PerPoint(buf) => {
                    // Row block of φ for W at point i: Σ_c ȳ_c(i) z_c(i)ᵀ, each
                    // entry written once from the point's gathered channels.
                    grow(&mut sc.zi, nc * n_in);
                    grow(&mut sc.yi, nc * n_out);
                    for i in 0..s {
                        for c in 0..nc {
                            sc.zi[c * n_in..(c + 1) * n_in]
                                .copy_from_slice(&z[(c * s + i) * n_in..(c * s + i + 1) * n_in]);
                            sc.yi[c * n_out..(c + 1) * n_out].copy_from_slice(
                                &ybar[(c * s + i) * n_out..(c * s + i + 1) * n_out],
                            );
                        }
                        let col = &mut buf[i * p..(i + 1) * p];
                        let wblock = &mut col[slot.w..slot.b];
                        for o in 0..n_out {
                            let row = &mut wblock[o * n_in..(o + 1) * n_in];
                            let a0 = sc.yi[o];
                            for (r, zz) in row.iter_mut().zip(&sc.zi[..n_in]) {
                                *r = a0 * zz;
                            }
                            for c in 1..nc {
                                let a = sc.yi[c * n_out + o];
                                if a != 0.0 {
                                    for (r, zz) in
                                        row.iter_mut().zip(&sc.zi[c * n_in..(c + 1) * n_in])
                                    {
                                        *r += a * zz;
                                    }
                                }
                            }
                        }
                        col[slot.b..slot.b + n_out].copy_from_slice(&sc.yi[..n_out]);
                    }
                }
                GradSink::Sum(buf) => {
                    // W gradient (row-major n_out × n_in) = Ȳ Zᵀ, written as the
                    // column-major n_in × n_out product Z Ȳᵀ.
                    matmul_in_place(
                        &mut buf[slot.w..slot.b],
                        View::col_major(&z[..n_in * cs], n_in, cs),
                        View::col_major(&ybar[..n_out * cs], n_out, cs).t(),
                        true,
                        Par::Seq,
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
            grow(&mut sc.hbar, n_in * cs);
            matmul_in_place(
                &mut sc.hbar[..n_in * cs],
                w.t(),
                View::col_major(&ybar[..n_out * cs], n_out, cs),
                false,
                Par::Seq,
            );
            // Through the activation of layer l−1 (pre-activation ys[l−1], width n_in).
            let y = &tape.ys[l - 1];
            let hval = &tape.zs[l];
            let hbar = &sc.hbar;
            let sn = s * n_in;
            let ch = |c: usize| c * sn..(c + 1) * sn;
            for v in [&mut sc.d1, &mut sc.d2, &mut sc.d3] {
                grow(v, sn);
            }
            self.activation.derivatives_in_place(
                &y[..sn],
                &hval[..sn],
                &mut sc.d1[..sn],
                &mut sc.d2[..sn],
                &mut sc.d3[..sn],
            );
            let (d1, d2, d3) = (&sc.d1[..sn], &sc.d2[..sn], &sc.d3[..sn]);
            grow(&mut sc.yb, n_in * cs);
            let yb = &mut sc.yb[..n_in * cs];
            for c in 0..nc {
                for ((o, hb), a) in yb[ch(c)].iter_mut().zip(&hbar[ch(c)]).zip(d1) {
                    *o = a * hb;
                }
            }
            let (yb0, yb_rest) = yb.split_at_mut(sn);
            let rest = |c: usize| (c - 1) * sn..c * sn;
            for f in first_lo..first_hi {
                let (yf, hf) = (&y[ch(f)], &hbar[ch(f)]);
                for k in 0..sn {
                    yb0[k] += d2[k] * yf[k] * hf[k];
                }
            }
            for (q, &(a, b)) in parents.iter().enumerate() {
                let c = first_hi + q;
                let (ya, yb_, yc, hc) = (&y[ch(a)], &y[ch(b)], &y[ch(c)], &hbar[ch(c)]);
                for k in 0..sn {
                    yb0[k] += (d2[k] * yc[k] + d3[k] * ya[k] * yb_[k]) * hc[k];
                }
                for k in 0..sn {
                    yb_rest[rest(a)][k] += d2[k] * yb_[k] * hc[k];
                }
                for k in 0..sn {
                    yb_rest[rest(b)][k] += d2[k] * ya[k] * hc[k];
                }
            }
            if let Some(c) = lap {
                let (yc, hc) = (&y[ch(c)], &hbar[ch(c)]);
                grow(&mut sc.q, sn);
                let q = &mut sc.q[..sn];
                q.fill(0.0);
                for f in first_lo..first_hi {
                    let yf = &y[ch(f)];
                    let out = &mut yb_rest[rest(f)];
                    for k in 0..sn {
                        q[k] += yf[k] * yf[k];
                        out[k] += 2.0 * d2[k] * yf[k] * hc[k];
                    }
                }
                for k in 0..sn {
                    yb0[k] += (d2[k] * yc[k] + d3[k] * q[k]) * hc[k];
                }
            }
            std::mem::swap(&mut sc.ybar, &mut sc.yb);
        }
    }
}

/// Make `v` at least `n` long without ever shrinking it, so a buffer shared by
/// blocks of different sizes is not zero-filled again on every use.
fn grow(v: &mut Vec<f64>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// Reusable buffers of the reverse pass (one set per thread).
#[derive(Default)]
struct BackwardScratch {
    ybar: Vec<f64>,
    hbar: Vec<f64>,
    yb: Vec<f64>,
    d1: Vec<f64>,
    d2: Vec<f64>,
    d3: Vec<f64>,
    q: Vec<f64>,
    zi: Vec<f64>,
    yi: Vec<f64>,
}
