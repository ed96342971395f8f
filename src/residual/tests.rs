//! Tests of residual blocks, assembly and curvature (finite differences, reconstruction).

#![allow(clippy::needless_range_loop)]

use super::*;
use crate::model::{Activation, Init, JetTape};
use crate::pde::{Dirichlet, InitialCondition, Jet, JetSpec, Neumann, Operator, Point, Scalar};
use num_dual::DualNum;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct AllenCahnLike;
impl Operator for AllenCahnLike {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value().with_first(0).with_second(1, 1)
    }
    fn residual<D: Scalar>(&self, p: &Point<'_>, u: &Jet<'_, D>) -> D {
        u.d(0) - u.d2(1, 1) * 1e-3 - (u.value() - u.value().powi(3)) * 5.0 - p.x[1].sin()
    }
}

struct Poisson;
impl Operator for Poisson {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value().with_laplacian()
    }
    fn residual<D: Scalar>(&self, p: &Point<'_>, u: &Jet<'_, D>) -> D {
        -u.laplacian() - p.x[0] * p.x[1]
    }
}

struct MixedSecond;
impl Operator for MixedSecond {
    fn jet_spec(&self) -> JetSpec {
        JetSpec::value().with_second(0, 1).with_gradient()
    }
    fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
        u.d2(0, 1) + u.d(0) * u.d(1) + u.value().exp()
    }
}

fn test_problem(act: Activation) -> (LeastSquares, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut pts =
        |n: usize| -> Vec<f64> { (0..2 * n).map(|_| rng.random_range(0.0..1.0)).collect() };
    let mlp = Mlp::new(vec![2, 6, 5, 1], act).unwrap();
    let theta = mlp.init(Init::Normal { std: 0.5 }, 4);
    let nb = vec![1.0, 0.0, 0.6, 0.8, 0.0, -1.0];
    let blocks = vec![
        Block::new("poisson", 2, pts(4), Poisson),
        Block::new("allen-cahn", 2, pts(3), AllenCahnLike),
        Block::new("mixed", 2, pts(3), MixedSecond),
        // Rows tying points together: u(a_k) − u(b_k) and a mean.
        Block::new("pairs", 2, pts(6), Dirichlet::zero()).with_combination(Combination::Pairs),
        Block::new("dirichlet", 2, pts(2), Dirichlet::new(|x| x[0] - x[1])),
        Block::new("mean", 2, pts(5), Dirichlet::new(|x| x[0])).with_combination(Combination::Mean),
        Block::new("neumann", 2, pts(3), Neumann::new(vec![0, 1], |x| x[0])).with_normals(nb),
        Block::new(
            "initial",
            2,
            pts(2),
            InitialCondition::new(|x| (3.0 * x[1]).sin()),
        ),
    ];
    (LeastSquares::new(mlp, blocks).unwrap(), theta)
}

/// Held-out points: fresh points of each block's region (faces keep
/// their coordinate and get its normal), as many as the block has up to
/// the cap, the same for the same seed; a block without a region keeps
/// its points.
#[test]
fn held_out_points_are_fresh_points_of_the_same_regions() {
    use crate::geometry::BoxDomain;
    let mlp = Mlp::new(vec![2, 4, 1], Activation::Tanh).unwrap();
    let interior: Vec<f64> = (0..20).map(|i| 0.05 * (i % 10) as f64 + 0.02).collect();
    let blocks = vec![
        Block::new("interior", 2, interior.clone(), Poisson).with_region(Region::Interior),
        Block::new(
            "x=1",
            2,
            vec![1.0, 0.3, 1.0, 0.6, 1.0, 0.9],
            Dirichlet::zero(),
        )
        .with_region(Region::Face {
            axis: 0,
            upper: true,
        }),
        Block::new("pinned", 2, vec![0.5, 0.5], Dirichlet::zero()),
    ];
    let ls = LeastSquares::new(mlp, blocks).unwrap();
    let dom = BoxDomain::unit(2);
    let ho = ls.held_out(&dom, 3, 1000).unwrap();
    assert_eq!(ho.blocks[0].len(), 10);
    assert_ne!(ho.blocks[0].points, interior);
    assert!(ho.blocks[0].points.iter().all(|v| (0.0..=1.0).contains(v)));
    let face = &ho.blocks[1];
    assert_eq!(face.len(), 3);
    assert!(face.points.chunks(2).all(|p| p[0] == 1.0));
    assert_eq!(
        face.normals.as_deref(),
        Some(&[1.0, 0.0, 1.0, 0.0, 1.0, 0.0][..])
    );
    assert_eq!(ho.blocks[2].points, vec![0.5, 0.5]);
    assert_eq!(
        ls.held_out(&dom, 3, 1000).unwrap().blocks[0].points,
        ho.blocks[0].points
    );
    assert_ne!(
        ls.held_out(&dom, 4, 1000).unwrap().blocks[0].points,
        ho.blocks[0].points
    );
    assert_eq!(ls.held_out(&dom, 3, 4).unwrap().blocks[0].len(), 4);
}

/// A residual reading a jet channel it did not declare is refused when
/// the problem is built (it used to panic at the first loss).
#[test]
fn undeclared_jet_channels_are_errors() {
    struct Sloppy;
    impl Operator for Sloppy {
        fn jet_spec(&self) -> JetSpec {
            JetSpec::value()
        }
        fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
            u.value() + u.laplacian()
        }
    }
    let mlp = Mlp::new(vec![2, 3, 1], Activation::Tanh).unwrap();
    let blk = Block::new("pde", 2, vec![0.2, 0.3], Sloppy);
    let e = match LeastSquares::new(mlp, vec![blk]) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an undeclared channel was accepted"),
    };
    assert!(
        e.contains("block `pde`") && e.contains("the Laplacian"),
        "{e}"
    );
}

/// A Neumann block without normals is refused when the problem is built
/// (not a panic at the first loss); its data may read the normal.
#[test]
fn neumann_needs_normals_and_its_data_sees_them() {
    let mlp = Mlp::new(vec![2, 3, 1], Activation::Tanh).unwrap();
    let pts = vec![0.0, 0.5, 1.0, 0.5];
    let bare = Block::new("wall", 2, pts.clone(), Neumann::new(vec![0, 1], |_| 0.0));
    let e = match LeastSquares::new(mlp.clone(), vec![bare]) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a Neumann block without normals was accepted"),
    };
    assert!(
        e.contains("block `wall`") && e.contains("with_normals"),
        "{e}"
    );
    let normals = vec![-1.0, 0.0, 1.0, 0.0];
    let g = |x: &[f64], n: &[f64]| 10.0 * n[0] + x[1];
    let blk =
        Block::new("wall", 2, pts, Neumann::with_normal_data(vec![0, 1], g)).with_normals(normals);
    assert_eq!(blk.sources(), &[-10.0 + 0.5, 10.0 + 0.5]);
    assert!(LeastSquares::new(mlp, vec![blk]).is_ok());
}

fn flat(r: Vec<Vec<f64>>) -> Vec<f64> {
    r.into_iter().flatten().collect()
}

/// The jets of `u` (through the transform, if any) at every point of block `b`.
fn u_jets(ls: &LeastSquares, b: usize, theta: &[f64]) -> Vec<Vec<f64>> {
    let blk = &ls.blocks[b];
    let ch = &ls.channels[b];
    let n = ch.count() * ls.model.output_dim();
    let mut tape = JetTape::default();
    ls.model
        .forward_jets_into(theta, &blk.points, ch, &mut tape)
        .unwrap();
    let mut scratch = Vec::new();
    (0..blk.len())
        .map(|i| {
            let mut jet = vec![0.0; n];
            tape.point_jet_in_place(i, &mut jet);
            if let Some(t) = ls.transform.as_deref() {
                t.plans[b].apply_in_place(&t.jets[b][i], &mut jet, &mut scratch);
            }
            jet
        })
        .collect()
}

/// `vᵀ C v` of the operator curvature against `Σ_i w_i r_i δJᵢᵀ F''ᵢ δJᵢ`
/// with the jet variations δJᵢ from central differences of the jets along
/// v (u³, e^u and u_x·u_y terms; with and without an output transform);
/// C is symmetric.
#[test]
fn operator_curvature_matches_finite_differences() {
    for (ls, theta) in [
        test_problem(Activation::Tanh),
        hard_constrained(Activation::Tanh),
    ] {
        let c = ls.operator_curvature(&theta, Weighting::BlockMean).unwrap();
        let p = ls.n_params();
        for i in 0..p {
            for j in 0..p {
                assert!((c.at(i, j) - c.at(j, i)).abs() <= 1e-12 * (1.0 + c.at(i, j).abs()));
            }
        }
        let r: Vec<Vec<f64>> = (0..ls.blocks.len())
            .map(|b| ls.point_residuals(b, &theta).unwrap())
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..3 {
            let v: Vec<f64> = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
            let cv = c.mul_vec(&v);
            let lhs = crate::linalg::dot(&v, &cv);
            let h = 1e-5;
            let tp: Vec<f64> = theta.iter().zip(&v).map(|(t, d)| t + h * d).collect();
            let tm: Vec<f64> = theta.iter().zip(&v).map(|(t, d)| t - h * d).collect();
            let mut rhs = 0.0;
            for b in 0..ls.blocks.len() {
                let blk = &ls.blocks[b];
                if blk.combination().is_some() {
                    continue; // linear in the jet
                }
                let w = Weighting::BlockMean.row_factor(blk.rows()).powi(2);
                let (j0, jp, jm) = (
                    u_jets(&ls, b, &theta),
                    u_jets(&ls, b, &tp),
                    u_jets(&ls, b, &tm),
                );
                let n = j0[0].len();
                let mut hess = vec![0.0; n * n];
                for i in 0..blk.len() {
                    blk.op
                        .curvature(&blk.point(i), &j0[i], &ls.channels[b], 1, &mut hess);
                    let dj: Vec<f64> = (0..n).map(|c| (jp[i][c] - jm[i][c]) / (2.0 * h)).collect();
                    let quad: f64 = (0..n)
                        .map(|c| {
                            (0..n)
                                .map(|c2| dj[c] * hess[c * n + c2] * dj[c2])
                                .sum::<f64>()
                        })
                        .sum();
                    rhs += w * r[b][i] * quad;
                }
            }
            assert!(lhs.abs() > 1e-6, "curvature vanishes: {lhs}");
            assert!(
                (lhs - rhs).abs() < 1e-7 * (1.0 + rhs.abs()),
                "vᵀCv {lhs} vs finite differences {rhs}"
            );
        }
    }
}

/// Every row of φ, for linear and nonlinear operators and each boundary
/// kind, against central finite differences of the residual in θ.
#[test]
fn jacobian_rows_match_finite_differences() {
    for act in [Activation::Tanh, Activation::Sin] {
        let (ls, theta) = test_problem(act);
        check_jacobian(&ls, &theta, &format!("{act:?}"));
    }
}

/// Every row of φ against central differences of the residuals in θ.
fn check_jacobian(ls: &LeastSquares, theta: &[f64], label: &str) {
    let theta = theta.to_vec();
    let sys = ls.assemble(&theta, Weighting::Uniform).unwrap();
    let p = ls.n_params();
    let s = ls.n_residuals();
    assert_eq!(sys.r, flat(ls.residuals(&theta).unwrap()));
    let h = 1e-6;
    for q in 0..p {
        let mut tp = theta.clone();
        let mut tm = theta.clone();
        tp[q] += h;
        tm[q] -= h;
        let rp = flat(ls.residuals(&tp).unwrap());
        let rm = flat(ls.residuals(&tm).unwrap());
        for i in 0..s {
            let fd = (rp[i] - rm[i]) / (2.0 * h);
            let an = sys.jac_t.at(q, i);
            assert!(
                (fd - an).abs() < 2e-7 * (1.0 + an.abs()),
                "{label} row {i} (block {}), param {q}: fd {fd} vs {an}",
                sys.block_ranges
                    .iter()
                    .zip(ls.blocks())
                    .find(|(r, _)| r.contains(&i))
                    .unwrap()
                    .1
                    .name()
            );
        }
    }
}

fn hard_constrained(act: Activation) -> (LeastSquares, Vec<f64>) {
    let (ls, theta) = test_problem(act);
    let t = OutputTransform::new(
        "u = sin(x)·y + x(1 − x)·y·N",
        |x| x[0].sin() * x[1],
        |x| x[0] * (x[0] * -1.0 + 1.0) * x[1],
    );
    (ls.with_transform(t).unwrap(), theta)
}

/// With an output transform, φ still matches finite differences in θ
/// (the pull-back is the transpose of the product rule).
#[test]
fn transformed_jacobian_matches_finite_differences() {
    for act in [Activation::Tanh, Activation::Sin] {
        let (ls, theta) = hard_constrained(act);
        check_jacobian(&ls, &theta, &format!("transformed {act:?}"));
    }
}

/// With an output transform, each residual equals the operator applied to
/// a finite-difference jet (in x) of `u = g + ψ·N_θ` built from values
/// only: this checks the product rule and the hyper-dual jets of g, ψ.
#[test]
fn transformed_residuals_match_finite_difference_jets() {
    let (ls, theta) = hard_constrained(Activation::Tanh);
    let t = ls.transform().unwrap().clone();
    let mlp = ls.model().clone();
    let u = |x: &[f64]| t.value(x, mlp.values(&theta, x).unwrap()[0]);
    let r: Vec<Vec<f64>> = (0..ls.blocks.len())
        .map(|b| ls.point_residuals(b, &theta).unwrap())
        .collect();
    for (b, blk) in ls.blocks().iter().enumerate() {
        let ch = &ls.channels[b];
        for i in 0..blk.len() {
            let p = blk.point(i);
            let at = |dk: &[(usize, f64)]| {
                let mut y = p.x.to_vec();
                for &(k, d) in dk {
                    y[k] += d;
                }
                u(&y)
            };
            let h = 1e-4;
            let d1 = |k: usize| (at(&[(k, h)]) - at(&[(k, -h)])) / (2.0 * h);
            let d2 = |k: usize, l: usize| {
                if k == l {
                    (at(&[(k, h)]) - 2.0 * u(p.x) + at(&[(k, -h)])) / (h * h)
                } else {
                    (at(&[(k, h), (l, h)]) - at(&[(k, h), (l, -h)]) - at(&[(k, -h), (l, h)])
                        + at(&[(k, -h), (l, -h)]))
                        / (4.0 * h * h)
                }
            };
            let mut jet = vec![u(p.x)];
            jet.extend(ch.first_axes().iter().map(|&k| d1(k)));
            jet.extend(ch.second_pairs().iter().map(|&(k, l)| d2(k, l)));
            if ch.has_laplacian() {
                jet.push(d2(0, 0) + d2(1, 1));
            }
            let fd = blk.residual_fn().eval(&p, &jet, ch, 1) - blk.sources()[i];
            assert!(
                (fd - r[b][i]).abs() < 1e-5 * (1.0 + fd.abs()),
                "block {} point {i}: transformed {} vs finite differences {fd}",
                blk.name(),
                r[b][i]
            );
        }
    }
    // The constraint holds exactly where ψ vanishes: x = 0.
    let x = [0.0, 0.7];
    assert_eq!(u(&x), x[0].sin() * x[1]);
}

#[test]
fn gradient_matches_finite_differences_and_jacobian() {
    let (ls, theta) = test_problem(Activation::Tanh);
    let (loss, g) = ls.loss_gradient(&theta).unwrap();
    assert!((loss - ls.loss(&theta).unwrap()).abs() < 1e-14 * loss.max(1.0));
    let h = 1e-6;
    for q in 0..ls.n_params() {
        let mut tp = theta.clone();
        let mut tm = theta.clone();
        tp[q] += h;
        tm[q] -= h;
        let fd = (ls.loss(&tp).unwrap() - ls.loss(&tm).unwrap()) / (2.0 * h);
        assert!(
            (fd - g[q]).abs() < 1e-6 * (1.0 + g[q].abs()),
            "param {q}: fd {fd} vs {}",
            g[q]
        );
    }
    // With block-mean weights, 2 φ̃ᵀ r̃ is the gradient and ‖r̃‖² the loss.
    let sys = ls.assemble(&theta, Weighting::BlockMean).unwrap();
    let jr = sys.jac_t.mul_vec(&sys.r);
    for q in 0..ls.n_params() {
        assert!((2.0 * jr[q] - g[q]).abs() < 1e-12 * (1.0 + g[q].abs()));
    }
    let rr: f64 = sys.r.iter().map(|v| v * v).sum();
    assert!((rr - loss).abs() < 1e-12 * loss);
}

#[test]
fn bad_blocks_are_rejected() {
    let mlp = Mlp::new(vec![2, 3, 1], Activation::Tanh).unwrap();
    let wrong_dim = Block::new("b", 3, vec![0.0; 6], Dirichlet::zero());
    assert!(matches!(
        LeastSquares::new(mlp.clone(), vec![wrong_dim]),
        Err(Error::DimensionMismatch { .. })
    ));
    let nan = Block::new("b", 2, vec![0.0, f64::NAN], Dirichlet::zero());
    assert!(LeastSquares::new(mlp.clone(), vec![nan]).is_err());
    assert!(LeastSquares::new(mlp, vec![]).is_err());
}

#[test]
fn non_finite_residual_names_the_block() {
    struct Blowup;
    impl Operator for Blowup {
        fn jet_spec(&self) -> JetSpec {
            JetSpec::value()
        }
        fn residual<D: Scalar>(&self, _p: &Point<'_>, u: &Jet<'_, D>) -> D {
            u.value().ln() * f64::INFINITY
        }
    }
    let mlp = Mlp::new(vec![1, 3, 1], Activation::Tanh).unwrap();
    let theta = mlp.init(Init::default(), 0);
    let ls = LeastSquares::new(mlp, vec![Block::new("wall", 1, vec![0.5], Blowup)]).unwrap();
    let e = ls.assemble(&theta, Weighting::Uniform).unwrap_err();
    assert!(e.to_string().contains("wall"), "{e}");
}

/// Replacing a block's points in place gives the system `with_block_points`
/// builds (through an output transform too), leaves the original of a clone
/// untouched, and refuses a boundary piece without changing anything.
#[test]
fn set_block_points_matches_with_block_points() {
    for pb in [
        crate::problems::burgers().unwrap(),
        crate::problems::laplace2d(),
    ] {
        let ls = pb.least_squares().unwrap();
        let theta = pb.initial_theta(5).unwrap();
        let b = ls.block_index("interior").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let pts: Vec<f64> = (0..2 * 50).map(|_| rng.random_range(0.05..0.95)).collect();
        let built = ls.with_block_points(b, pts.clone()).unwrap();
        let mut moved = ls.clone();
        moved.set_block_points(b, pts).unwrap();
        assert_eq!(
            moved.loss(&theta).unwrap().to_bits(),
            built.loss(&theta).unwrap().to_bits()
        );
        assert_eq!(
            ls.blocks()[b].len(),
            pb.blocks[b].len(),
            "the original is untouched"
        );
        if let Ok(edge) = ls.block_index("boundary") {
            let before = moved.loss(&theta).unwrap();
            assert!(moved.set_block_points(edge, vec![0.5, 0.5]).is_err());
            assert_eq!(moved.loss(&theta).unwrap().to_bits(), before.to_bits());
        }
    }
}

/// A block's weight multiplies its rows of `r̃` and `φ̃` by `√w` (on top of
/// the weighting), its operator curvature by `w`, and changes neither the
/// loss nor the other blocks; `residuals_into` agrees with the assembly; a
/// weight that is not finite and > 0 is refused, naming the block.
#[test]
fn block_weights_scale_their_rows_and_leave_the_loss() {
    use crate::optim::Objective;
    let (ls, theta) = test_problem(Activation::Tanh);
    let weights = [1.0, 4.0, 1.0, 9.0, 100.0, 0.25, 1.0, 2.0];
    assert_eq!(weights.len(), ls.blocks().len());
    let blocks = ls
        .blocks()
        .iter()
        .zip(weights)
        .map(|(b, w)| b.clone().with_system_weight(w))
        .collect();
    let weighted = LeastSquares::new(ls.model().clone(), blocks).unwrap();
    for weighting in [Weighting::Uniform, Weighting::BlockMean] {
        let a = ls.assemble(&theta, weighting).unwrap();
        let b = weighted.assemble(&theta, weighting).unwrap();
        assert_eq!(a.loss, b.loss);
        assert_eq!(a.block_losses, b.block_losses);
        assert_eq!(a.block_ranges, b.block_ranges);
        for (k, range) in a.block_ranges.iter().enumerate() {
            let f = weights[k].sqrt();
            for i in range.clone() {
                assert!((b.r[i] - f * a.r[i]).abs() <= 1e-15 * (f * a.r[i]).abs());
                for (x, y) in b.jac_t.col(i).iter().zip(a.jac_t.col(i)) {
                    assert!((x - f * y).abs() <= 1e-15 * (f * y).abs());
                }
            }
        }
        let mut r = Vec::new();
        Objective::residuals_into(&weighted, &theta, weighting, &mut r).unwrap();
        assert_eq!(r.len(), b.r.len());
        for (x, y) in r.iter().zip(&b.r) {
            assert!((x - y).abs() <= 1e-14 * y.abs().max(1e-300), "{x} vs {y}");
        }
        assert_eq!(weighted.loss(&theta).unwrap(), ls.loss(&theta).unwrap());
    }
    // Only the nonlinear blocks curve: allen-cahn (weight 4) and mixed (1).
    let one = |w: f64| {
        let mut w8 = [1.0; 8];
        w8[1] = w;
        let blocks = ls
            .blocks()
            .iter()
            .zip(w8)
            .map(|(b, w)| b.clone().with_system_weight(w))
            .collect();
        LeastSquares::new(ls.model().clone(), blocks)
            .unwrap()
            .operator_curvature(&theta, Weighting::Uniform)
            .unwrap()
    };
    let (c1, c4, c5) = (one(1.0), one(4.0), one(5.0));
    // C is linear in the weight: C(5) − C(4) = C(4) − C(1) over 3, and ≠ 0.
    let mut moved = 0.0f64;
    for (i, ((a, b), c)) in c1
        .as_slice()
        .iter()
        .zip(c4.as_slice())
        .zip(c5.as_slice())
        .enumerate()
    {
        let d = c - b;
        assert!(
            (3.0 * d - (b - a)).abs() <= 1e-12 * (1.0 + b.abs()),
            "entry {i}"
        );
        moved = moved.max(d.abs());
    }
    assert!(
        moved > 1e-6,
        "the allen-cahn block's curvature did not move"
    );
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let blocks =
            vec![Block::new("wall", 2, vec![0.5, 0.5], Dirichlet::zero()).with_system_weight(bad)];
        let Err(e) = LeastSquares::new(ls.model().clone(), blocks) else {
            panic!("weight {bad} accepted");
        };
        assert!(
            e.to_string().contains("block `wall`") && e.to_string().contains("weight"),
            "{e}"
        );
    }
}
