//! Checks of the CUDA route: its algorithm on the CPU (always), and the
//! device against the CPU where a device opens.

use super::*;
use crate::linalg::testing::{graded, orthogonality, reconstruction, with_spectrum};
use crate::linalg::{Compute, Device};
use crate::linalg::{
    Par, SystemSvd, SystemSvdWorkspace, View, householder_q_into, householder_qr_in_place,
    matmul_in_place, norm2, symmetric_eigen,
};

/// The CPU counterpart of the device's small SVD (steps 1–3 of the
/// module documentation, faer's symmetric eigensolver for `syevd`).
fn reference_small_svd(r: &Matrix) -> Svd {
    let p = r.nrows();
    let mut aug = Matrix::zeros(2 * p, 2 * p);
    for j in 0..p {
        for i in 0..=j {
            *aug.at_mut(p + i, j) = -r.at(i, j);
        }
    }
    let (_, z) = symmetric_eigen(&aug).unwrap();
    let mut x = Matrix::from_fn(p, p, |i, j| z.at(i, j));
    let mut tau = Vec::new();
    householder_qr_in_place(&mut x, &mut tau, Par::Seq);
    let mut v = Matrix::default();
    householder_q_into(&x, &tau, &mut v, Par::Seq);
    let mut w = Matrix::zeros(p, p);
    matmul_in_place(
        w.as_mut_slice(),
        View::col_major(r.as_slice(), p, p),
        View::col_major(v.as_slice(), p, p),
        false,
        Par::Seq,
    );
    householder_qr_in_place(&mut w, &mut tau, Par::Seq);
    let d: Vec<f64> = (0..p).map(|j| w.at(j, j)).collect();
    let mut u = Matrix::default();
    householder_q_into(&w, &tau, &mut u, Par::Seq);
    let mut s = Vec::new();
    finish_on_host(&d, &mut u, &mut s, &mut v).unwrap();
    Svd { u, s, v }
}

/// R of a tall matrix (upper triangle of its Householder QR).
fn r_factor(phi: &Matrix) -> Matrix {
    let mut qr = phi.clone();
    let mut tau = Vec::new();
    householder_qr_in_place(&mut qr, &mut tau, Par::Seq);
    let p = phi.ncols();
    Matrix::from_fn(p, p, |i, j| if i <= j { qr.at(i, j) } else { 0.0 })
}

/// The algorithm itself, on the CPU: graded spectra down to 1e-15 and
/// 1e-30 and a rank-deficient one give σ to a few ε·σ₁, orthonormal
/// factors and a reconstruction to ~1e-15 (measured 1.1–1.7e-15 and
/// 3 ε·σ₁ with numpy's LAPACK eigensolver).
#[test]
fn eigen_route_svd_is_accurate_on_the_cpu() {
    let mut cases: Vec<(Matrix, Vec<f64>)> = vec![graded(600, 120, 7)];
    let deep: Vec<f64> = (0..100)
        .map(|i| 10f64.powf(-30.0 * i as f64 / 99.0))
        .collect();
    cases.push((with_spectrum(400, 100, &deep, 8), deep));
    let mut deficient: Vec<f64> = (0..80)
        .map(|i| 10f64.powf(-10.0 * i as f64 / 79.0))
        .collect();
    deficient.extend([0.0; 20]);
    cases.push((with_spectrum(400, 100, &deficient, 9), deficient));
    for (phi, sig) in cases {
        let r = r_factor(&phi);
        let svd = reference_small_svd(&r);
        let rec = reconstruction(&r, &svd);
        assert!(rec <= 1e-14, "reconstruction {rec:e}");
        assert!(orthogonality(&svd.u) < 1e-13 && orthogonality(&svd.v) < 1e-13);
        for (k, (x, y)) in svd.s.iter().zip(&sig).enumerate() {
            assert!(
                (x - y).abs() <= 50.0 * f64::EPSILON * sig[0],
                "σ_{k}: {x} vs {y}"
            );
        }
        assert!(svd.s.windows(2).all(|w| w[0] >= w[1]), "σ sorted");
    }
}

/// The device, or `None` with a note (CI has none: the device checks
/// then assert nothing and say so; they run on a GPU machine, see PROFILE.md).
fn device() -> Option<SystemSvdWorkspace> {
    let compute = Compute {
        threads: 1,
        device: Device::Cuda,
    };
    match SystemSvdWorkspace::new(&compute) {
        Ok(ws) => Some(ws),
        Err(e) => {
            eprintln!("no CUDA device, device check skipped: {e}");
            None
        }
    }
}

/// On the device: the graded-spectrum system (1000×200, σ =
/// logspace(0, −15)) gives σ within 50 ε·σ₁, and the same coefficients,
/// remainder and truncated solves as the CPU decomposition.
#[test]
fn device_decomposition_matches_the_cpu() {
    let Some(mut ws) = device() else { return };
    for (m, n) in [(1000, 200), (900, 129)] {
        let (phi, sig) = graded(m, n, 17);
        let r: Vec<f64> = (0..m).map(|i| (0.37 * i as f64).sin()).collect();
        let jac_t = phi.transpose();
        let gpu = SystemSvd::compute_with(&jac_t, &r, &mut ws).unwrap();
        assert!(gpu.on_device);
        let cpu = SystemSvd::compute(&jac_t, &r).unwrap();
        for (k, (x, y)) in gpu.s.iter().zip(&sig).enumerate() {
            assert!((x - y).abs() <= 50.0 * f64::EPSILON, "σ_{k}: {x} vs {y}");
        }
        assert_eq!(gpu.s.len(), n);
        let rn = norm2(&r);
        assert!((gpu.outside2 - cpu.outside2).abs() <= 1e-13 * rn * rn);
        for keep in [10, n / 2] {
            let (x, y) = (gpu.truncated_solve(keep), cpu.truncated_solve(keep));
            let d: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
            assert!(
                norm2(&d) <= 1e-14 / sig[keep - 1] * norm2(&y),
                "keep {keep}"
            );
        }
        // U_R orthonormal: ‖c‖² + outside² = ‖r‖².
        let total = norm2(&gpu.c).powi(2) + gpu.outside2;
        assert!((total - rn * rn).abs() <= 1e-12 * rn * rn);
        // The device basis reprojects like a fresh decomposition.
        let (c2, o2) = ws.reproject(&r).unwrap();
        assert!((o2 - gpu.outside2).abs() <= 1e-13 * rn * rn);
        for (a, b) in c2.iter().zip(&gpu.c) {
            assert!((a - b).abs() <= 1e-13 * rn);
        }
    }
}
