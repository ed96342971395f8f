use natgrad::optim::Objective;
fn main() {
    let pb = natgrad::problems::build("laplace2d").unwrap();
    let ls = pb.least_squares().unwrap();
    let th = pb.initial_theta(0).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..2000 { ls.loss(&th).unwrap(); }
    println!("loss: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 2000.0);
}
