use natgrad::optim::Objective;
use natgrad::residual::Weighting;
use std::time::Instant;
fn main() {
    let pb = natgrad::problems::build(std::env::args().nth(1).as_deref().unwrap_or("laplace2d")).unwrap();
    let ls = pb.least_squares().unwrap();
    let th = pb.initial_theta(0).unwrap();
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let t = Instant::now();
    for _ in 0..n { ls.loss(&th).unwrap(); }
    println!("loss: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
    let t = Instant::now();
    for _ in 0..n { ls.system(&th, Weighting::Uniform).unwrap(); }
    println!("assemble: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
    let sys = ls.system(&th, Weighting::Uniform).unwrap();
    let t = Instant::now();
    for _ in 0..10 { natgrad::linalg::Svd::compute(natgrad::linalg::View::col_major(sys.jac_t.as_slice(), sys.jac_t.nrows(), sys.jac_t.ncols())).unwrap(); }
    println!("svd: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 10.0);
}
