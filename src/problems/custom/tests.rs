//! Tests of custom problems built from their definitions.

use super::*;
use crate::problems::ConditionKind;

fn condition(kind: ConditionKind) -> ConditionSpec {
    ConditionSpec {
        kind,
        ..ConditionSpec::dirichlet_boundary()
    }
}

/// The legacy `pde = "poisson"` problem: −Δu* as the source (checked at a
/// point against the closed form), u* on the boundary, the errors against u*.
#[test]
fn legacy_poisson_is_minus_laplacian_of_the_solution() {
    let c = CustomProblem {
        pde: Some("poisson".into()),
        solution: Some("sin(pi*x)*sin(pi*y) + x*y".into()),
        interior_points: 50,
        boundary_points: 20,
        eval_points: 30,
        ..Default::default()
    };
    let pb = c.build("mine").unwrap();
    assert_eq!(
        pb.blocks.iter().map(|b| b.name()).collect::<Vec<_>>(),
        ["interior", "boundary"]
    );
    let pi = std::f64::consts::PI;
    let interior = &pb.blocks[0];
    for i in 0..interior.len() {
        let x = interior.point(i).x;
        let want = 2.0 * pi * pi * (pi * x[0]).sin() * (pi * x[1]).sin();
        assert!((interior.sources()[i] - want).abs() < 1e-12);
    }
    let boundary = &pb.blocks[1];
    for i in 0..boundary.len() {
        let x = boundary.point(i).x;
        let want = (pi * x[0]).sin() * (pi * x[1]).sin() + x[0] * x[1];
        assert!((boundary.sources()[i] - want).abs() < 1e-15);
    }
    assert_eq!(pb.reference.values.len(), 30);
}

/// A periodic condition on a space-time box: matched pairs (the same but
/// for x) for u and, the equation being second order in x, for u_x; its
/// held-out set is made of fresh pairs; the mean condition is one row.
#[test]
fn periodic_pairs_and_mean_rows() {
    let c = CustomProblem {
        equation: Some("u_t - u_xx = 0".into()),
        domain: DomainSpec::Box {
            lo: vec![0.0],
            hi: vec![2.0],
        },
        time: Some([0.0, 1.0]),
        conditions: vec![
            ConditionSpec {
                value: Some("sin(pi*x)".into()),
                points: Some(10),
                ..condition(ConditionKind::Initial)
            },
            ConditionSpec {
                on: Some("x".into()),
                points: Some(7),
                ..condition(ConditionKind::Periodic)
            },
            ConditionSpec {
                value: Some("0".into()),
                points: Some(9),
                ..condition(ConditionKind::Mean)
            },
        ],
        interior_points: 40,
        ..Default::default()
    };
    let pb = c.build("p").unwrap();
    let names: Vec<&str> = pb.blocks.iter().map(|b| b.name()).collect();
    assert_eq!(
        names,
        [
            "interior",
            "initial",
            "periodic-x",
            "periodic-x u_x",
            "mean"
        ]
    );
    let ls = pb.least_squares().unwrap();
    assert_eq!(ls.n_residuals(), 40 + 10 + 7 + 7 + 1);
    let check_pairs = |pts: &[f64], m: usize| {
        assert_eq!(pts.len(), 2 * m * 2);
        for k in 0..m {
            let (a, b) = (&pts[2 * k..2 * k + 2], &pts[2 * (m + k)..2 * (m + k) + 2]);
            assert_eq!((a[0], a[1], b[1]), (b[0], 0.0, 2.0), "pair {k}");
        }
    };
    check_pairs(pb.blocks[2].points(), 7);
    check_pairs(pb.blocks[3].points(), 7);
    let held = ls.held_out(&*pb.domain, 5, 3).unwrap();
    check_pairs(held.blocks()[2].points(), 3);
    assert_ne!(held.blocks()[2].points(), pb.blocks[2].points());
    assert_eq!(held.blocks()[4].rows(), 1);
    // The initial slice's held-out points lie at t = 0.
    assert!(held.blocks()[1].points().chunks(2).all(|x| x[0] == 0.0));
}

/// A disk × time problem: the initial slice inside the disk, lateral
/// boundary points with spatial normals, and held-out initial points drawn
/// inside the disk (rejection from the bounding box's face).
#[test]
fn space_time_on_a_disk() {
    let c = CustomProblem {
        equation: Some("u_t - lap(u) = 0".into()),
        domain: DomainSpec::Disk {
            center: vec![0.0, 0.0],
            radius: 1.0,
        },
        time: Some([0.0, 0.5]),
        exact: Some("exp(-t)*x".into()),
        conditions: vec![
            ConditionSpec {
                value: Some("x".into()),
                points: Some(30),
                ..condition(ConditionKind::Initial)
            },
            ConditionSpec {
                points: Some(25),
                value: Some("exp(-t)*x".into()),
                ..condition(ConditionKind::Neumann)
            },
        ],
        interior_points: 50,
        ..Default::default()
    };
    let pb = c.build("d").unwrap();
    let inside = |x: &[f64]| x[1] * x[1] + x[2] * x[2] <= 1.0 + 1e-12;
    assert!(
        pb.blocks[1]
            .points()
            .chunks(3)
            .all(|x| x[0] == 0.0 && inside(x))
    );
    let normals = pb.blocks[2].normals().unwrap();
    for (x, n) in pb.blocks[2].points().chunks(3).zip(normals.chunks(3)) {
        assert_eq!(n[0], 0.0);
        assert!((n[1] - x[1]).abs() < 1e-12 && (n[2] - x[2]).abs() < 1e-12);
    }
    let ls = pb.least_squares().unwrap();
    let held = ls.held_out(&*pb.domain, 1, 100).unwrap();
    assert!(
        held.blocks()[1]
            .points()
            .chunks(3)
            .all(|x| x[0] == 0.0 && inside(x))
    );
    assert_eq!(pb.coordinates, ["t", "x", "y"]);
}

/// `closed-grid` puts the interior points on the tensor grid with the ends
/// (`m` per axis, `m²` the count closest to the one asked), sides and
/// corners included; it needs a box, and conditions refuse it.
#[test]
fn closed_grid_reaches_the_boundary() {
    let square = CustomProblem {
        pde: Some("poisson".into()),
        solution: Some("x*y".into()),
        domain: DomainSpec::Box {
            lo: vec![0.0, -1.0],
            hi: vec![2.0, 1.0],
        },
        interior_points: 24,
        interior_method: PointMethod::ClosedGrid,
        boundary_points: 20,
        eval_points: 10,
        ..Default::default()
    };
    let pb = square.build("closed").unwrap();
    let pts = pb.blocks[0].points();
    assert_eq!(pts.len(), 2 * 25, "5 × 5 nodes for 24 asked");
    let xs: Vec<f64> = pts.chunks(2).map(|p| p[0]).collect();
    let ys: Vec<f64> = pts.chunks(2).map(|p| p[1]).collect();
    for (v, lo, hi) in [(&xs, 0.0, 2.0), (&ys, -1.0, 1.0)] {
        let mut nodes = v.clone();
        nodes.sort_by(f64::total_cmp);
        nodes.dedup();
        let want: Vec<f64> = (0..5).map(|i| lo + (hi - lo) * i as f64 / 4.0).collect();
        assert_eq!(nodes, want);
    }
    let disk = CustomProblem {
        domain: DomainSpec::Disk {
            center: vec![0.0, 0.0],
            radius: 1.0,
        },
        ..square.clone()
    };
    let e = disk.build("closed-disk").err().unwrap().to_string();
    assert!(e.contains("closed-grid") && e.contains("box"), "{e}");
    let on_condition = CustomProblem {
        interior_method: PointMethod::Grid,
        conditions: vec![ConditionSpec {
            method: Some(PointMethod::ClosedGrid),
            ..ConditionSpec::dirichlet_boundary()
        }],
        ..square
    };
    let e = on_condition
        .build("closed-condition")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("closed-grid") && e.contains("interior points only"),
        "{e}"
    );
}

/// `midpoint-grid` puts the interior points at the centres of `m × m`
/// equal cells, half a spacing from every side; a condition refuses it.
#[test]
fn midpoint_grid_is_cell_centred() {
    let square = CustomProblem {
        pde: Some("poisson".into()),
        solution: Some("x*y".into()),
        domain: DomainSpec::Box {
            lo: vec![0.0, 0.0],
            hi: vec![1.0, 2.0],
        },
        interior_points: 16,
        interior_method: PointMethod::MidpointGrid,
        boundary_points: 20,
        eval_points: 10,
        ..Default::default()
    };
    let pb = square.build("mid").unwrap();
    let pts = pb.blocks[0].points();
    assert_eq!(pts.len(), 2 * 16);
    let mut ys: Vec<f64> = pts.chunks(2).map(|p| p[1]).collect();
    ys.sort_by(f64::total_cmp);
    ys.dedup();
    assert_eq!(ys, [0.25, 0.75, 1.25, 1.75]);
    let on_condition = CustomProblem {
        interior_method: PointMethod::Grid,
        conditions: vec![ConditionSpec {
            method: Some(PointMethod::MidpointGrid),
            ..ConditionSpec::dirichlet_boundary()
        }],
        ..square
    };
    let e = on_condition
        .build("mid-condition")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("midpoint-grid") && e.contains("interior points only"),
        "{e}"
    );
}
