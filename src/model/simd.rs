//! A vectorisable `tanh` for the activation loops.
//!
//! The scalar kernel is branch-free so the compiler can vectorise it; on
//! x86-64 a copy compiled for AVX2 is chosen at run time. No fused
//! multiply–add is used, so every path rounds identically and runs are
//! bit-reproducible whichever kernel a machine picks.

use std::ops::Range;

use super::Activation;

/// Cody–Waite split of ln 2 (fdlibm): `LN2_HI` has trailing zero bits, so `k·LN2_HI` is exact.
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// `expm1(x) = eˣ − 1` for `x ∈ [−40, 0]` without cancellation: range
/// reduction `x = k ln2 + r`, `|r| ≤ ln2/2`, `q = e^r − 1 = r(1 + r/2 + … + r¹²/13!)`
/// (truncation 4e-18 relative), then `expm1 = 2^k q + (2^k − 1)`; for `k = 0`
/// that is `q` itself, accurate however small `x` is.
#[inline(always)]
fn expm1_neg(x: f64) -> f64 {
    // Round to nearest with the 1.5·2⁵² shifter: no rounding instruction and no
    // float→int conversion, so the whole kernel stays in vector registers.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let shifted = x * std::f64::consts::LOG2_E + SHIFTER;
    let k = shifted - SHIFTER;
    let ki = shifted.to_bits().wrapping_sub(SHIFTER.to_bits());
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0;
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    let q = r * p;
    let scale = f64::from_bits(ki.wrapping_add(1023) << 52);
    scale * q + (scale - 1.0)
}

/// Branch-free `tanh|y| = −m/(2 + m)` with `m = expm1(−2|y|)` (|y| clamped at
/// 20, where tanh is 1 in f64), sign restored; a few ulp relative everywhere,
/// NaN propagates.
#[inline(always)]
pub(crate) fn tanh_kernel(y: f64) -> f64 {
    let a = y.abs();
    let m = expm1_neg(-2.0 * if a < 20.0 { a } else { 20.0 });
    let t = (-m / (2.0 + m)).copysign(y);
    if y.is_nan() { y } else { t }
}

#[inline(always)]
fn tanh_block(y: &[f64], h: &mut [f64], d1: &mut [f64], d2: &mut [f64]) {
    // Eight at a time: two independent vector chains hide the division's latency.
    const L: usize = 8;
    let n = y.len() / L * L;
    for (((yc, hc), ac), bc) in y[..n]
        .chunks_exact(L)
        .zip(h[..n].chunks_exact_mut(L))
        .zip(d1[..n].chunks_exact_mut(L))
        .zip(d2[..n].chunks_exact_mut(L))
    {
        // A plain loop, not a closure: closures do not inherit the caller's
        // target features, and an outlined scalar call here costs 2×.
        let mut t = [0.0; L];
        for i in 0..L {
            t[i] = tanh_kernel(yc[i]);
        }
        for i in 0..L {
            let a = 1.0 - t[i] * t[i];
            hc[i] = t[i];
            ac[i] = a;
            bc[i] = -2.0 * t[i] * a;
        }
    }
    for k in n..y.len() {
        let t = tanh_kernel(y[k]);
        let a = 1.0 - t * t;
        h[k] = t;
        d1[k] = a;
        d2[k] = -2.0 * t * a;
    }
}

/// Propagate the jet channels through the activation (the chain rule for
/// Taylor-mode jets, see [`crate::model`]):
/// `h₀ = σ(y₀)`, `∂_k h = σ'∂_k y`, `∂_kl h = σ'∂_kl y + σ''∂_k y ∂_l y`,
/// `Δh = σ'Δy + σ''Σ_k(∂_k y)²`. Channel `c` occupies `c·sn..(c+1)·sn` of
/// `y` and `h`; `s1`, `s2` receive σ', σ'' of the value channel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn activation_channels(
    act: Activation,
    y: &[f64],
    h: &mut [f64],
    s1: &mut [f64],
    s2: &mut [f64],
    sn: usize,
    first: Range<usize>,
    parents: &[(usize, usize)],
    lap: Option<usize>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { activation_channels_avx2(act, y, h, s1, s2, sn, first, parents, lap) };
            return;
        }
    }
    activation_channels_body(act, y, h, s1, s2, sn, first, parents, lap)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn activation_channels_avx2(
    act: Activation,
    y: &[f64],
    h: &mut [f64],
    s1: &mut [f64],
    s2: &mut [f64],
    sn: usize,
    first: Range<usize>,
    parents: &[(usize, usize)],
    lap: Option<usize>,
) {
    activation_channels_body(act, y, h, s1, s2, sn, first, parents, lap)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn activation_channels_body(
    act: Activation,
    y: &[f64],
    h: &mut [f64],
    s1: &mut [f64],
    s2: &mut [f64],
    sn: usize,
    first: Range<usize>,
    parents: &[(usize, usize)],
    lap: Option<usize>,
) {
    let ch = |c: usize| c * sn..(c + 1) * sn;
    match act {
        Activation::Tanh => tanh_block(&y[ch(0)], &mut h[ch(0)], s1, s2),
        Activation::Sin => {
            for (((yk, hk), ak), bk) in y[ch(0)]
                .iter()
                .zip(h[ch(0)].iter_mut())
                .zip(s1.iter_mut())
                .zip(s2.iter_mut())
            {
                let (sv, cv) = yk.sin_cos();
                *hk = sv;
                *ak = cv;
                *bk = -sv;
            }
        }
    }
    let (s1, s2) = (&*s1, &*s2);
    for c in first.clone() {
        for ((hk, yk), d1) in h[ch(c)].iter_mut().zip(&y[ch(c)]).zip(s1) {
            *hk = d1 * yk;
        }
    }
    for (q, &(a, b)) in parents.iter().enumerate() {
        let c = first.end + q;
        let (ya, yb, yc) = (&y[ch(a)], &y[ch(b)], &y[ch(c)]);
        for ((((hk, d1), d2), yck), (yak, ybk)) in h[ch(c)]
            .iter_mut()
            .zip(s1)
            .zip(s2)
            .zip(yc)
            .zip(ya.iter().zip(yb))
        {
            *hk = d1 * yck + d2 * yak * ybk;
        }
    }
    if let Some(c) = lap {
        let hc = &mut h[ch(c)];
        for ((hk, d1), yk) in hc.iter_mut().zip(s1).zip(&y[ch(c)]) {
            *hk = d1 * yk;
        }
        for f in first {
            for ((hk, d2), yf) in hc.iter_mut().zip(s2).zip(&y[ch(f)]) {
                *hk += d2 * yf * yf;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Activation;
    /// The vectorised kernel against libm over a dense sweep (within 2ε absolute,
    /// 4ε relative), and the AVX2
    /// and portable paths bit for bit.
    #[test]
    fn simd_tanh_matches_libm_and_is_path_independent() {
        let ys: Vec<f64> = (-250_000..250_000)
            .flat_map(|i| {
                let y = i as f64 * 1e-4 * std::f64::consts::PI;
                [y, y * 1e-3, y * 1e-9]
            })
            .collect();
        let n = ys.len();
        let (mut h, mut d1, mut d2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        super::activation_channels(
            Activation::Tanh,
            &ys,
            &mut h,
            &mut d1,
            &mut d2,
            n,
            1..1,
            &[],
            None,
        );
        let (mut h2, mut e1, mut e2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        super::tanh_block(&ys, &mut h2, &mut e1, &mut e2);
        assert_eq!(h, h2);
        let mut worst_abs = 0.0_f64;
        let mut worst_rel = 0.0_f64;
        for (y, t) in ys.iter().zip(&h) {
            let b = y.tanh();
            worst_abs = worst_abs.max((t - b).abs());
            if b != 0.0 {
                worst_rel = worst_rel.max(((t - b) / b).abs());
            }
        }
        assert!(worst_abs <= 2.0 * f64::EPSILON, "abs {worst_abs:e}");
        assert!(worst_rel <= 4.0 * f64::EPSILON, "rel {worst_rel:e}");
        let mut one = [0.0; 4];
        let (mut a, mut b) = ([0.0; 4], [0.0; 4]);
        super::activation_channels(
            Activation::Tanh,
            &[f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0],
            &mut one,
            &mut a,
            &mut b,
            4,
            1..1,
            &[],
            None,
        );
        assert!(one[0].is_nan());
        assert_eq!(&one[1..], &[1.0, -1.0, 0.0]);
    }
}
