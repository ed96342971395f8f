//! Which derivatives of the network a residual needs, and how they are laid out.

use crate::error::{Error, Result};

/// A request for derivative channels of `u_θ(x)` with respect to the input `x`.
///
/// The value `u` is always present. Ask for first derivatives `∂_k u`,
/// second derivatives `∂_k ∂_l u`, or the Laplacian `Δu = Σ_k ∂_k² u` (which
/// is propagated as one channel, "forward Laplacian", without the individual
/// `∂_k² u`). The request is closed before propagation ([`Channels`]): the
/// Laplacian needs every `∂_k u`, and `∂_k ∂_l u` needs `∂_k u` and `∂_l u`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JetSpec {
    first: Vec<usize>,
    all_first: bool,
    second: Vec<(usize, usize)>,
    laplacian: bool,
}

impl JetSpec {
    /// Only the value `u`.
    pub fn value() -> Self {
        Self::default()
    }

    /// Add the first derivative `∂_k u` (input axis `k`, zero-based).
    pub fn with_first(mut self, k: usize) -> Self {
        self.first.push(k);
        self
    }

    /// Add every first derivative (the gradient `∇u`).
    pub fn with_gradient(mut self) -> Self {
        self.all_first = true;
        self
    }

    /// Add the second derivative `∂_k ∂_l u`.
    pub fn with_second(mut self, k: usize, l: usize) -> Self {
        self.second.push((k.min(l), k.max(l)));
        self
    }

    /// Add the Laplacian `Δu` over all input axes.
    pub fn with_laplacian(mut self) -> Self {
        self.laplacian = true;
        self
    }

    /// Close the request for an input of dimension `dim` and fix the channel order.
    ///
    /// Errors if an axis is `≥ dim`.
    pub fn resolve(&self, dim: usize) -> Result<Channels> {
        let mut first: Vec<usize> = self.first.clone();
        for &(k, l) in &self.second {
            first.push(k);
            first.push(l);
        }
        if self.all_first || self.laplacian {
            first.extend(0..dim);
        }
        if let Some(&bad) = first.iter().find(|&&k| k >= dim) {
            return Err(Error::config(
                "jet spec",
                format!("derivative along axis {bad} requested, but the input has dimension {dim}"),
            ));
        }
        first.sort_unstable();
        first.dedup();
        let mut second = self.second.clone();
        second.sort_unstable();
        second.dedup();
        Ok(Channels {
            dim,
            first,
            second,
            laplacian: self.laplacian,
        })
    }
}

/// The resolved, closed set of jet channels and their order.
///
/// Channel 0 is the value; then the first derivatives in increasing axis
/// order; then the second derivatives `(k ≤ l)` in lexicographic order; then
/// the Laplacian if requested. A batch of `S` points stores channel `c` of
/// point `i` at column `c·S + i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channels {
    dim: usize,
    first: Vec<usize>,
    second: Vec<(usize, usize)>,
    laplacian: bool,
}

impl Channels {
    /// Only the value channel.
    pub fn value(dim: usize) -> Self {
        Channels {
            dim,
            first: vec![],
            second: vec![],
            laplacian: false,
        }
    }

    /// Input dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of channels `C`.
    pub fn count(&self) -> usize {
        1 + self.first.len() + self.second.len() + usize::from(self.laplacian)
    }

    /// Axes with a first-derivative channel, in channel order.
    pub fn first_axes(&self) -> &[usize] {
        &self.first
    }

    /// Axis pairs `(k ≤ l)` with a second-derivative channel, in channel order.
    pub fn second_pairs(&self) -> &[(usize, usize)] {
        &self.second
    }

    /// Whether the Laplacian channel is present.
    pub fn has_laplacian(&self) -> bool {
        self.laplacian
    }

    /// Channel index of `∂_k u`.
    pub fn first_index(&self, k: usize) -> Option<usize> {
        self.first.iter().position(|&a| a == k).map(|p| 1 + p)
    }

    /// Channel index of `∂_k ∂_l u` (order of `k`, `l` irrelevant).
    pub fn second_index(&self, k: usize, l: usize) -> Option<usize> {
        let key = (k.min(l), k.max(l));
        self.second
            .iter()
            .position(|&p| p == key)
            .map(|p| 1 + self.first.len() + p)
    }

    /// Channel index of `Δu`.
    pub fn laplacian_index(&self) -> Option<usize> {
        self.laplacian
            .then(|| 1 + self.first.len() + self.second.len())
    }

    /// For each second-derivative channel, the channel indices of `∂_k` and `∂_l`.
    pub(crate) fn second_parents(&self) -> Vec<(usize, usize)> {
        self.second
            .iter()
            .map(|&(k, l)| {
                (
                    self.first_index(k).expect("closed spec"),
                    self.first_index(l).expect("closed spec"),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_and_order() {
        let c = JetSpec::value()
            .with_second(1, 0)
            .with_first(2)
            .resolve(3)
            .unwrap();
        assert_eq!(c.first_axes(), &[0, 1, 2]);
        assert_eq!(c.count(), 5);
        assert_eq!(c.second_index(0, 1), Some(4));
        assert_eq!(c.second_index(1, 0), Some(4));
        let l = JetSpec::value().with_laplacian().resolve(2).unwrap();
        assert_eq!(l.count(), 4);
        assert_eq!(l.laplacian_index(), Some(3));
        assert!(JetSpec::value().with_first(3).resolve(2).is_err());
    }
}
