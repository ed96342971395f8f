use natgrad::linalg::*;
fn main() {
    let (m, n) = (900usize, 129usize);
    let a = Matrix::from_fn(m, n, |i, j| ((i * 7 + j * 13) as f64).sin() * (-(j as f64) / 10.0).exp());
    let reps = 20;
    let t = std::time::Instant::now();
    let mut tau = Vec::new();
    for _ in 0..reps { let mut b = a.clone(); householder_qr_in_place(&mut b, &mut tau); }
    println!("qr: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    let r = Matrix::from_fn(n, n, |i, j| if i <= j { a.at(i, j) } else { 0.0 });
    let t = std::time::Instant::now();
    for _ in 0..reps { let _ = Svd::compute(View::col_major(r.as_slice(), n, n)).unwrap(); }
    println!("svd(R): {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
}
#[allow(dead_code)]
fn unused() {}
