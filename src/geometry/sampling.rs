//! Point samplers: tensor grids, seeded uniform sampling, Halton sequences.

use rand::Rng;

use super::{BoxDomain, Face};
use crate::error::{Error, Result};

/// Which ends of an interval a [`linspace`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ends {
    /// Both ends: `lo + (hi−lo)·i/(n−1)`, `i = 0..n−1`.
    Both,
    /// The lower end only: `i = 0..n−2`.
    Lower,
    /// The upper end only: `i = 1..n−1`.
    Upper,
    /// Interior only: `i = 1..n−2` (the papers' "grid N").
    Neither,
}

/// The midpoints of `m` equal cells of `[lo, hi]`: `lo + (hi−lo)·(i + ½)/m`,
/// `i = 0..m−1` (spacing `(hi−lo)/m`, half a spacing from each end).
pub fn midpoints(lo: f64, hi: f64, m: usize) -> Vec<f64> {
    (0..m)
        .map(|i| lo + (hi - lo) * ((i as f64 + 0.5) / m as f64))
        .collect()
}

/// `n` equispaced nodes of `[lo, hi]` (spacing `(hi−lo)/(n−1)`), minus the excluded ends.
pub fn linspace(lo: f64, hi: f64, n: usize, ends: Ends) -> Vec<f64> {
    if n < 2 {
        return if n == 1 && matches!(ends, Ends::Both | Ends::Lower) {
            vec![lo]
        } else {
            vec![]
        };
    }
    let (a, b) = match ends {
        Ends::Both => (0, n),
        Ends::Lower => (0, n - 1),
        Ends::Upper => (1, n),
        Ends::Neither => (1, n - 1),
    };
    let m = (n - 1) as f64;
    (a..b)
        .map(|i| {
            if i == n - 1 {
                hi
            } else {
                lo + (hi - lo) * (i as f64 / m)
            }
        })
        .collect()
}

/// The tensor product of per-axis coordinate lists, row-major, first axis slowest.
pub fn tensor_grid(axes: &[Vec<f64>]) -> Vec<f64> {
    let d = axes.len();
    let count: usize = axes.iter().map(Vec::len).product();
    let mut out = Vec::with_capacity(count * d);
    let mut idx = vec![0usize; d];
    for _ in 0..count {
        for k in 0..d {
            out.push(axes[k][idx[k]]);
        }
        for k in (0..d).rev() {
            idx[k] += 1;
            if idx[k] < axes[k].len() {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

/// `n` i.i.d. uniform points in the box, from the caller's seeded generator.
pub fn uniform_interior(domain: &BoxDomain, n: usize, rng: &mut impl Rng) -> Vec<f64> {
    let d = domain.dim();
    let mut out = Vec::with_capacity(n * d);
    for _ in 0..n {
        for k in 0..d {
            let s = domain.side(k);
            out.push(s.lo + s.length() * rng.random::<f64>());
        }
    }
    out
}

/// `n` points on the boundary: a uniform point of the box with one uniformly
/// chosen coordinate set to its lower or upper end (each with probability ½).
/// This is the reference codes' boundary sampler (each face equally likely,
/// whatever its measure).
pub fn uniform_faces(domain: &BoxDomain, n: usize, rng: &mut impl Rng) -> Vec<f64> {
    let d = domain.dim();
    let mut out = uniform_interior(domain, n, rng);
    for i in 0..n {
        let k = rng.random_range(0..d);
        let s = domain.side(k);
        out[i * d + k] = if rng.random::<bool>() { s.hi } else { s.lo };
    }
    out
}

/// `n` i.i.d. uniform points on one face of the box, the face's coordinate
/// fixed and the others drawn in order (no draw for the fixed one).
pub fn uniform_face(domain: &BoxDomain, face: &Face, n: usize, rng: &mut impl Rng) -> Vec<f64> {
    let d = domain.dim();
    let mut out = Vec::with_capacity(n * d);
    for _ in 0..n {
        for k in 0..d {
            let s = domain.side(k);
            out.push(if k != face.axis {
                rng.random_range(s.lo..s.hi)
            } else if face.upper {
                s.hi
            } else {
                s.lo
            });
        }
    }
    out
}

fn radical_inverse(mut i: u64, base: u64) -> f64 {
    let mut f = 1.0;
    let mut r = 0.0;
    let b = base as f64;
    while i > 0 {
        f /= b;
        r += f * (i % base) as f64;
        i /= base;
    }
    r
}

/// `n` points of the Halton sequence (bases 2, 3, 5, …) scaled to the box,
/// starting after `skip` points (index 0, the origin, is always skipped).
/// Deterministic: no seed. Supports up to 32 dimensions.
pub fn halton(domain: &BoxDomain, n: usize, skip: u64) -> Result<Vec<f64>> {
    const PRIMES: [u64; 32] = [
        2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131,
    ];
    let d = domain.dim();
    if d > PRIMES.len() {
        return Err(Error::config(
            "sampler",
            format!("Halton supports up to 32 dimensions, got {d}"),
        ));
    }
    let mut out = Vec::with_capacity(n * d);
    for i in 0..n as u64 {
        for (k, &p) in PRIMES.iter().enumerate().take(d) {
            let s = domain.side(k);
            out.push(s.lo + s.length() * radical_inverse(i + 1 + skip, p));
        }
    }
    Ok(out)
}
