use natgrad::linalg::*;
fn main() {
    let (m, n) = (900usize, 129usize);
    let a = Matrix::from_fn(n, m, |i, j| ((i * 7 + j * 13) as f64).sin() * (-(i as f64) / 10.0).exp());
    let reps = 20;
    let t = std::time::Instant::now();
    for _ in 0..reps { std::hint::black_box(a.transpose()); }
    println!("transpose: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    let b = a.transpose();
    let mut tau = vec![];
    let mut q = b.clone();
    householder_qr_in_place(&mut q, &mut tau);
    let t = std::time::Instant::now();
    for _ in 0..reps { std::hint::black_box(Matrix::from_fn(n, n, |i, j| if i <= j { q.at(i, j) } else { 0.0 })); }
    println!("R copy: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    let r = Matrix::from_fn(n, n, |i, j| if i <= j { q.at(i, j) } else { 0.0 });
    let t = std::time::Instant::now();
    for _ in 0..reps { let _ = Svd::compute(View::col_major(r.as_slice(), n, n)).unwrap(); }
    println!("svd(R actual): {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
}
