//! Dense-kernel threads, a parameter of each kernel ([`linalg::Par`]) and of
//! a run ([`linalg::Compute`]): same count, same bits.

use natgrad::linalg::{
    self, Compute, Device, Matrix, Par, SystemSvd, SystemSvdWorkspace, View, matmul_in_place,
};

/// A matrix with entries from a fixed xorshift stream in [−0.5, 0.5).
fn matrix(m: usize, n: usize, seed: u64) -> Matrix {
    let mut x = seed.wrapping_mul(6364136223846793005) | 1;
    Matrix::from_fn(m, n, |_, _| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as f64 / u64::MAX as f64 - 0.5
    })
}

/// With 2 threads, a decomposition and a product large enough to use them
/// give bit-identical results on every call, agree with 1 thread to
/// rounding, and nothing runs threaded inside a worker task.
#[test]
fn two_threads_are_reproducible_and_agree_with_one() {
    // 1200 × 600 system: the SVD of its 600 × 600 factor is above the threshold.
    let (s, p) = (1200, 600);
    assert!(linalg::svd_flops(p, p) > linalg::PAR_MIN_SVD_FLOPS);
    let jac_t = matrix(p, s, 1);
    let r: Vec<f64> = (0..s).map(|i| (0.37 * i as f64).sin()).collect();
    let decompose = |threads: usize| {
        let compute = Compute {
            threads,
            device: Device::Cpu,
        };
        let mut ws = SystemSvdWorkspace::new(&compute).unwrap();
        SystemSvd::compute_with(&jac_t, &r, &mut ws).unwrap()
    };
    let one = decompose(1);
    let (a, b) = (decompose(2), decompose(2));
    assert_eq!(a.s, b.s, "same thread count, same singular values");
    assert_eq!(a.c, b.c);
    assert_eq!(a.v.as_slice(), b.v.as_slice());
    // Both are backward-stable decompositions of φ: each σ is exact for a φ
    // perturbed by ~ε‖φ‖_F, so they agree to 2ε‖φ‖_F (measured: 4.1e-14,
    // 11 εσ₁ — the 10 εσ₁ of the partial-vs-full check does not bound two
    // different summation orders of the whole decomposition).
    let s1 = one.s[0];
    let frob = linalg::norm2(jac_t.as_slice());
    for (x, y) in one.s.iter().zip(&a.s) {
        assert!((x - y).abs() <= 2.0 * f64::EPSILON * frob, "{x} vs {y}");
    }
    // Reconstruction of φ V = U Σ through the coefficients: ‖φ v_k‖ = σ_k.
    let phi = jac_t.transpose();
    for k in [0, p / 2, p - 1] {
        let u = phi.mul_vec(a.v.col(k));
        let norm = linalg::norm2(&u);
        assert!(
            (norm - a.s[k]).abs() <= 1e-12 * s1,
            "k = {k}: {norm} vs {}",
            a.s[k]
        );
    }
    // A product over the threshold: identical on repeat, equal to rounding with 1 thread.
    let (m, k, n) = (800, 400, 400);
    assert!(2.0 * (m * k * n) as f64 > linalg::PAR_MIN_PRODUCT_FLOPS);
    let (x, y) = (matrix(m, k, 2), matrix(k, n, 3));
    let product = |threads: usize| {
        let mut out = vec![0.0; m * n];
        matmul_in_place(
            &mut out,
            View::col_major(x.as_slice(), m, k),
            View::col_major(y.as_slice(), k, n),
            false,
            Par::threads(threads),
        );
        out
    };
    let (p1, p2, p2b) = (product(1), product(2), product(2));
    assert_eq!(p2, p2b);
    let scale = linalg::norm2(&p1);
    let diff: Vec<f64> = p1.iter().zip(&p2).map(|(a, b)| a - b).collect();
    assert!(linalg::norm2(&diff) <= 1e-13 * scale);
    // Worker tasks know they are tasks (when there are several workers: one
    // per core); the caller does not.
    let shared = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
    assert!(!natgrad::parallel::in_task());
    let inside = natgrad::parallel::map_groups(vec![0, 1, 2, 3], |_| natgrad::parallel::in_task());
    assert_eq!(inside, vec![shared; 4]);
    assert!(!natgrad::parallel::in_task());
}
