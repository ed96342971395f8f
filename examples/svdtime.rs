use natgrad::linalg::*;
fn main() {
    for &(m, n) in &[(900usize, 129usize), (871,257), (1723, 921)] {
        let a = Matrix::from_fn(n, m, |i, j| ((i * 7 + j * 13) as f64).sin() * (-(i as f64) / 10.0).exp());
        let r: Vec<f64> = (0..m).map(|i| (i as f64).cos()).collect();
        let reps = 5;
        let t = std::time::Instant::now();
        for _ in 0..reps { let _ = SystemSvd::compute(&a, &r).unwrap(); }
        println!("{m}x{n} qr path: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
        let t = std::time::Instant::now();
        for _ in 0..reps { let _ = Svd::compute(View::col_major(a.as_slice(), n, m)).unwrap(); }
        println!("{m}x{n} direct: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    }
}
