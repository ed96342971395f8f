use natgrad::model::*;
use natgrad::linalg::*;
use std::time::Instant;
fn main() {
    let pb = natgrad::problems::build("laplace2d").unwrap();
    let ls = pb.least_squares().unwrap();
    let mlp = pb.mlp().unwrap();
    let th = pb.initial_theta(0).unwrap();
    let blk = &ls.blocks()[0];
    let ch = blk.residual_fn().jet_spec().resolve(2).unwrap();
    let n = 200;
    let t = Instant::now();
    let mut tape = JetTape::default();
    for _ in 0..n { mlp.forward_jets_into(&th, blk.points(), &ch, &mut tape).unwrap(); }
    println!("forward: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
    let s = blk.len(); let nc = ch.count();
    let t = Instant::now();
    let mut seed = vec![0.0; nc * s];
    for _ in 0..n {
        let mut jet = vec![0.0; nc]; let mut g = vec![0.0; nc];
        for i in 0..s { tape.point_jet_in_place(i, &mut jet); blk.residual_fn().linearise(&blk.point(i), &jet, &ch, 1, &mut g); for c in 0..nc { seed[c*s+i] = g[c]; } }
    }
    println!("linearise: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
    let p = mlp.n_params();
    let mut buf = vec![0.0; p * s];
    let t = Instant::now();
    for _ in 0..n { mlp.backward(&th, &tape, &seed, GradSink::PerPoint(&mut buf)).unwrap(); }
    println!("backward: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
    let t = Instant::now();
    for _ in 0..n { let m = Matrix::zeros(p, 900); std::hint::black_box(&m); }
    println!("zeros: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
}
