//! Output transforms for hard constraints: `u(x) = g(x) + ψ(x)·N_θ(x)`.
//!
//! With `g` equal to the boundary (or initial) data on the constrained set and
//! `ψ` vanishing there (and nowhere else in the domain), every `u` satisfies
//! the constraint exactly, so the residual blocks for it can be dropped.
//!
//! The map from the network's jet `N, ∂_k N, ∂_k∂_l N, ΔN` to the jet of `u`
//! is affine, by the product rule:
//!
//! - `u = g + ψN`
//! - `∂_k u = ∂_k g + ∂_k ψ N + ψ ∂_k N`
//! - `∂_k∂_l u = ∂_k∂_l g + ∂_k∂_l ψ N + ∂_k ψ ∂_l N + ∂_l ψ ∂_k N + ψ ∂_k∂_l N`
//! - `Δu = Δg + Δψ N + 2 Σ_k ∂_k ψ ∂_k N + ψ ΔN`
//!
//! so first derivatives of `N` are needed on every axis that appears in a
//! second derivative (all axes for the Laplacian): [`OutputTransform::augment`]
//! adds them to a block's jet request. The same list of product-rule terms
//! drives the forward map ([`OutputTransform::apply_in_place`]) and its
//! transpose for the reverse pass ([`OutputTransform::pull_back_in_place`]),
//! so the Jacobian stays consistent with the residual by construction.
//!
//! `g` and `ψ` are written once, generically, as functions of hyper-dual
//! numbers (`num_dual::HyperDual64`), from which their exact derivatives are
//! taken; at fixed training points those jets are computed once.

use std::sync::Arc;

use num_dual::HyperDual64;

use super::{Channels, JetSpec};
use crate::error::{Error, Result};

/// A field `x ↦ f(x)` evaluated on hyper-dual numbers (so its first and second
/// derivatives are exact).
pub type FieldFn = Arc<dyn Fn(&[HyperDual64]) -> HyperDual64 + Send + Sync>;

/// `u = g + ψ·N_θ` on a single-output network.
#[derive(Clone)]
pub struct OutputTransform {
    description: String,
    lift: FieldFn,
    factor: FieldFn,
}

impl std::fmt::Debug for OutputTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutputTransform({})", self.description)
    }
}

/// One product-rule term: `u[c_u] += mult · ψ[c_psi] · N[c_n]`.
#[derive(Clone, Copy, Debug)]
struct Term {
    c_u: usize,
    c_n: usize,
    c_psi: usize,
    mult: f64,
}

/// The jets of `g` and `ψ` at one point, in a block's channel layout.
#[derive(Clone, Debug, Default)]
pub struct PointJets {
    /// `g` and its derivatives (channel layout).
    pub lift: Vec<f64>,
    /// `ψ` and its derivatives (channel layout).
    pub factor: Vec<f64>,
}

impl OutputTransform {
    /// `u = lift(x) + factor(x)·N_θ(x)`; `description` is shown in summaries
    /// (for example `"u = −sin(πx) + t(1 − x²)·N"`).
    pub fn new(
        description: impl Into<String>,
        lift: impl Fn(&[HyperDual64]) -> HyperDual64 + Send + Sync + 'static,
        factor: impl Fn(&[HyperDual64]) -> HyperDual64 + Send + Sync + 'static,
    ) -> Self {
        OutputTransform {
            description: description.into(),
            lift: Arc::new(lift),
            factor: Arc::new(factor),
        }
    }

    /// The formula given at construction.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The jet request of `N` needed to produce the channels `channels` of
    /// `u`: the same channels plus the first derivatives on every axis of a
    /// second derivative (every axis if the Laplacian is requested).
    pub fn augment(channels: &Channels) -> JetSpec {
        let mut spec = JetSpec::value();
        for &k in channels.first_axes() {
            spec = spec.with_first(k);
        }
        for &(k, l) in channels.second_pairs() {
            spec = spec.with_first(k).with_first(l).with_second(k, l);
        }
        if channels.has_laplacian() {
            spec = spec.with_gradient().with_laplacian();
        }
        spec
    }

    fn terms(channels: &Channels) -> Result<Vec<Term>> {
        let f = |k: usize| {
            channels.first_index(k).ok_or_else(|| {
                Error::config(
                    "output transform",
                    format!("the jet lacks ∂/∂x_{k}, needed by the product rule (use `augment`)"),
                )
            })
        };
        let t = |c_u, c_n, c_psi, mult| Term {
            c_u,
            c_n,
            c_psi,
            mult,
        };
        let mut terms = vec![t(0, 0, 0, 1.0)];
        for &k in channels.first_axes() {
            let fk = f(k)?;
            terms.push(t(fk, 0, fk, 1.0));
            terms.push(t(fk, fk, 0, 1.0));
        }
        for &(k, l) in channels.second_pairs() {
            let s = channels
                .second_index(k, l)
                .expect("pair listed by the channels");
            let (fk, fl) = (f(k)?, f(l)?);
            terms.push(t(s, 0, s, 1.0));
            terms.push(t(s, fl, fk, 1.0));
            terms.push(t(s, fk, fl, 1.0));
            terms.push(t(s, s, 0, 1.0));
        }
        if let Some(lap) = channels.laplacian_index() {
            terms.push(t(lap, 0, lap, 1.0));
            for k in 0..channels.dim() {
                let fk = f(k)?;
                terms.push(t(lap, fk, fk, 2.0));
            }
            terms.push(t(lap, lap, 0, 1.0));
        }
        Ok(terms)
    }

    /// Jets of `g` and `ψ` at `x` in the layout of `channels` (exact, by
    /// hyper-dual evaluation: one evaluation per axis, one per mixed pair).
    pub fn point_jets(&self, x: &[f64], channels: &Channels) -> PointJets {
        let nc = channels.count();
        let (mut lift, mut factor) = (vec![0.0; nc], vec![0.0; nc]);
        let d = x.len();
        let eval = |k: Option<usize>, l: Option<usize>, f: &FieldFn| {
            let xs: Vec<HyperDual64> = (0..d)
                .map(|i| {
                    HyperDual64::new(
                        x[i],
                        if Some(i) == k { 1.0 } else { 0.0 },
                        if Some(i) == l { 1.0 } else { 0.0 },
                        0.0,
                    )
                })
                .collect();
            f(&xs)
        };
        for (out, f) in [(&mut lift, &self.lift), (&mut factor, &self.factor)] {
            out[0] = eval(None, None, f).re;
            let mut lap = 0.0;
            for k in 0..d {
                let v = eval(Some(k), Some(k), f);
                if let Some(i) = channels.first_index(k) {
                    out[i] = v.eps1;
                }
                if let Some(i) = channels.second_index(k, k) {
                    out[i] = v.eps1eps2;
                }
                lap += v.eps1eps2;
            }
            for &(k, l) in channels.second_pairs() {
                if k != l {
                    let i = channels.second_index(k, l).expect("listed pair");
                    out[i] = eval(Some(k), Some(l), f).eps1eps2;
                }
            }
            if let Some(i) = channels.laplacian_index() {
                out[i] = lap;
            }
        }
        PointJets { lift, factor }
    }

    /// `u(x)` from the network value `n` (no derivatives).
    pub fn value(&self, x: &[f64], n: f64) -> f64 {
        let xs: Vec<HyperDual64> = x.iter().map(|&v| HyperDual64::from_re(v)).collect();
        (self.lift)(&xs).re + (self.factor)(&xs).re * n
    }

    /// The precomputed transform of one block: its product-rule terms.
    pub fn plan(&self, channels: &Channels) -> Result<TransformPlan> {
        Ok(TransformPlan {
            terms: Self::terms(channels)?,
        })
    }
}

/// The product-rule terms of an [`OutputTransform`] for one channel layout.
#[derive(Clone, Debug)]
pub struct TransformPlan {
    terms: Vec<Term>,
}

impl TransformPlan {
    /// Overwrite the network jet `jet` (one output, channel layout) with the
    /// jet of `u = g + ψN`.
    pub fn apply_in_place(&self, pj: &PointJets, jet: &mut [f64], scratch: &mut Vec<f64>) {
        scratch.clear();
        scratch.extend_from_slice(jet);
        jet.copy_from_slice(&pj.lift);
        for t in &self.terms {
            jet[t.c_u] += t.mult * pj.factor[t.c_psi] * scratch[t.c_n];
        }
    }

    /// Turn cotangents `∂F/∂u_c` (in `grad`) into `∂F/∂N_c`: the transpose
    /// of the linear part of [`TransformPlan::apply_in_place`].
    pub fn pull_back_in_place(&self, pj: &PointJets, grad: &mut [f64], scratch: &mut Vec<f64>) {
        scratch.clear();
        scratch.extend_from_slice(grad);
        grad.iter_mut().for_each(|v| *v = 0.0);
        for t in &self.terms {
            grad[t.c_n] += t.mult * pj.factor[t.c_psi] * scratch[t.c_u];
        }
    }
}
