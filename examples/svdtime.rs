use natgrad::linalg::*;
fn main() {
    for &(m, n) in &[(900usize, 129usize), (871, 257), (1723, 921)] {
        let a = Matrix::from_fn(n, m, |i, j| ((i * 7 + j * 13) as f64).sin() * (-(i as f64) / 10.0).exp());
        for rm in [false, true] {
            let t = std::time::Instant::now();
            let reps = 5;
            for _ in 0..reps {
                let v = if rm { View::row_major(a.as_slice(), m, n) } else { View::col_major(a.as_slice(), n, m) };
                let _ = Svd::compute(v).unwrap();
            }
            println!("{m}x{n} rowmajor={rm}: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
        }
    }
}
