use natgrad::linalg::*;
fn main() {
    for &(m, n) in &[(129usize, 129usize), (257, 257), (900, 129), (871,257)] {
        let a = Matrix::from_fn(m, n, |i, j| ((i * 7 + j * 13) as f64).sin() * (-(j as f64) / 10.0).exp());
        let t = std::time::Instant::now();
        let reps = 10;
        for _ in 0..reps { let _ = Svd::compute(View::col_major(a.as_slice(), m, n)).unwrap(); }
        println!("{m}x{n}: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
        let t = std::time::Instant::now();
        let mut c = Matrix::zeros(n, n);
        for _ in 0..reps { matmul_in_place(c.as_mut_slice(), View::col_major(a.as_slice(), m, n).t(), View::col_major(a.as_slice(), m, n), false); }
        println!("  gram {m}x{n}: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    }
}
