//! The PDEs of `examples/configs/`: the catalogue problems written as
//! configs train exactly like the built-in ones, every config's Jacobian
//! matches finite differences, and `--print-config` round-trips them.

use std::path::{Path, PathBuf};

use natgrad::linalg::Compute;
use natgrad::residual::{LeastSquares, Weighting};
use natgrad::train::{Budget, RunConfig, RunSpec, Trainer};

fn config(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/configs")
        .join(file)
}

fn spec(file: &str) -> RunSpec {
    RunConfig::read(&config(file))
        .and_then(|c| c.to_spec())
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Five iterations of `spec`'s optimiser from `theta`.
fn five_steps(spec: &RunSpec, ls: &LeastSquares, theta: Vec<f64>) -> f64 {
    let mut opt = spec.optimizer.build(&Compute::default()).unwrap();
    Trainer::new(Budget {
        max_iters: 5,
        max_seconds: f64::INFINITY,
        ..Default::default()
    })
    .run(ls, opt.as_mut(), theta)
    .unwrap()
    .loss
}

/// Each catalogue problem written as a config, on the catalogue's points,
/// has the catalogue's loss at θ₀ (to rounding) and after five iterations
/// of the catalogue's optimiser (to 1e-12 relative). Where the config's
/// own grids are meant to be the catalogue's (laplace2d, nonlinear-poisson:
/// `method = "grid"`), the points are compared too.
#[test]
fn catalogue_problems_as_configs_train_the_same() {
    for (name, file, same_grids) in [
        ("laplace2d", "laplace2d.toml", true),
        ("laplace5d", "laplace5d.toml", false),
        ("heat", "heat.toml", false),
        ("nonlinear-poisson", "nonlinear-poisson.toml", true),
        ("burgers", "burgers.toml", false),
        ("allen-cahn", "allen-cahn.toml", false),
    ] {
        let cat = RunSpec::defaults(name).unwrap();
        let cfg = spec(file);
        let (pc, pf) = (cat.problem().unwrap(), cfg.problem().unwrap());
        assert_eq!(pc.widths, pf.widths, "{name}");
        assert_eq!(pc.blocks.len(), pf.blocks.len(), "{name}: blocks");
        assert_eq!(pc.transform.is_some(), pf.transform.is_some(), "{name}");
        let ls_cat = pc.least_squares().unwrap();
        let mut ls_cfg = pf.least_squares().unwrap();
        for (b, blk) in pc.blocks.iter().enumerate() {
            if same_grids {
                assert_eq!(
                    blk.points(),
                    pf.blocks[b].points(),
                    "{name}: block {b} points"
                );
            }
            ls_cfg = ls_cfg
                .replace_block_points(b, blk.points().to_vec(), blk.normals().map(<[f64]>::to_vec))
                .unwrap();
        }
        let theta = pc.initial_theta(0).unwrap();
        assert_eq!(theta, pf.initial_theta(0).unwrap(), "{name}: θ₀");
        let (l0c, l0f) = (ls_cat.loss(&theta).unwrap(), ls_cfg.loss(&theta).unwrap());
        assert!(
            (l0c - l0f).abs() <= 1e-14 * l0c,
            "{name}: L(θ₀) {l0c:e} (catalogue) vs {l0f:e} (config)"
        );
        let (lc, lf) = (
            five_steps(&cat, &ls_cat, theta.clone()),
            five_steps(&cat, &ls_cfg, theta),
        );
        let rel = (lc - lf).abs() / lc;
        assert!(
            rel <= 1e-12,
            "{name}: loss after 5 iterations {lc:e} (catalogue) vs {lf:e} (config), relative {rel:e}"
        );
        assert!(lc < l0c, "{name}: the optimiser made progress");
    }
}

/// Every example config: the assembled Jacobian `φ = ∂r/∂θ` (formula
/// residuals, their data, normals and output transforms) against central
/// differences of the residuals in θ, on a spread of parameters.
#[test]
fn example_configs_jacobians_match_finite_differences() {
    let mut files: Vec<String> = std::fs::read_dir(config(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".toml") && f != "poisson-large.toml")
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let pb = spec(&file).problem().unwrap();
        let ls = pb.least_squares().unwrap();
        let theta = pb.initial_theta(3).unwrap();
        let sys = ls.assemble(&theta, Weighting::Uniform).unwrap();
        // The rows of the system, with the configs' system weights.
        let flat = |t: &[f64]| -> Vec<f64> {
            let mut r = Vec::new();
            ls.weighted_residuals_into(t, Weighting::Uniform, &mut r)
                .unwrap();
            r
        };
        let p = theta.len();
        let s = sys.r.len();
        for j in [0, p / 3, p / 2, p - 2, p - 1] {
            let h = 1e-6;
            let (mut tp, mut tm) = (theta.clone(), theta.clone());
            tp[j] += h;
            tm[j] -= h;
            let (rp, rm) = (flat(&tp), flat(&tm));
            let scale = sys.r.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for i in (0..s).step_by(s / 40 + 1) {
                let fd = (rp[i] - rm[i]) / (2.0 * h);
                let exact = sys.jac_t.at(j, i);
                assert!(
                    (fd - exact).abs() <= 1e-6 * scale.max(exact.abs()),
                    "{file}: ∂r_{i}/∂θ_{j} = {exact:e}, finite differences {fd:e}"
                );
            }
        }
    }
}

/// `--print-config` of every example config reads back to the same run.
#[test]
fn example_configs_round_trip() {
    for entry in std::fs::read_dir(config("")).unwrap() {
        let path = entry.unwrap().path();
        let spec = RunConfig::read(&path).unwrap().to_spec().unwrap();
        let text = RunConfig::from_spec(&spec).unwrap().to_toml();
        let again = RunConfig::parse(&text, "printed")
            .and_then(|c| c.to_spec())
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
        assert_eq!(
            RunConfig::from_spec(&again).unwrap().to_toml(),
            text,
            "{}",
            path.display()
        );
        assert_eq!(again.custom, spec.custom, "{}", path.display());
    }
}

/// Every check before training: a one-line error naming the field (and the
/// line of the file where there is one), never a panic.
#[test]
fn custom_problem_errors_name_the_field_and_line() {
    let heat =
        "[problem]\nname = \"h\"\ndomain = { kind = \"box\", lo = [0], hi = [1] }\ntime = [0, 1]\n";
    let square = "[problem]\nname = \"p\"\ndomain = { kind = \"box\", lo = [0, 0], hi = [1, 1] }\n";
    let disk =
        "[problem]\nname = \"d\"\ndomain = { kind = \"disk\", center = [0, 0], radius = 1 }\n";
    let dirichlet = "[[condition]]\nkind = \"dirichlet\"\nvalue = \"0\"\n";
    let initial = "[[condition]]\nkind = \"initial\"\nvalue = \"sin(pi*x)\"\n";
    let cases: Vec<(String, &[&str])> = vec![
        (
            format!("{square}equation = \"-lap(u) + kk*u = 1\"\n{dirichlet}"),
            &[
                "problem.equation",
                "unknown name `kk`",
                "accepted names are x1 … x2 (or x, y)",
                "(line 4)",
            ],
        ),
        (
            format!("{square}equation = \"u_xxx = 1\"\n{dirichlet}"),
            &["problem.equation", "order 3", "second order"],
        ),
        (
            format!("{square}equation = \"-lap(u) = f\"\n{dirichlet}"),
            &["problem.source", "give source"],
        ),
        (
            format!("{square}equation = \"-lap(u) = 1\"\n"),
            &["`condition`", "none given"],
        ),
        (
            format!("{square}equation = \"-lap(u) = 1\"\n[problem.params]\nx = 2\n{dirichlet}"),
            &["problem.params.x", "not a usable name", "(line 6)"],
        ),
        (
            format!("{heat}equation = \"u_t - u_xx = 0\"\n{dirichlet}"),
            &["`condition`", "no condition has kind = \"initial\""],
        ),
        (
            format!("{heat}equation = \"u_tt - u_xx = 0\"\n{dirichlet}{initial}"),
            &["condition[1].u_t", "missing", "(line 9)"],
        ),
        (
            format!("{heat}equation = \"u_t - u_xx = 0\"\n{initial}u_t = \"0\"\n{dirichlet}"),
            &["condition[0].u_t", "second order in time", "(line 9)"],
        ),
        (
            format!("{square}equation = \"-lap(u) = 1\"\n{dirichlet}on = \"x = 0.5\"\n"),
            &[
                "condition[0].on",
                "not a side of the domain: x runs from 0 to 1",
                "(line 8)",
            ],
        ),
        (
            format!("{disk}equation = \"-lap(u) = 1\"\n{dirichlet}on = \"x = 1\"\n"),
            &["condition[0].on", "box domains only"],
        ),
        (
            format!(
                "{disk}equation = \"-lap(u) = 1\"\n[[condition]]\nkind = \"periodic\"\non = \"x\"\n"
            ),
            &["condition[0].on", "box domain"],
        ),
        (
            format!("{square}equation = \"-lap(u) = 1\"\n{initial}"),
            &["condition[0].on", "needs a time variable"],
        ),
        (
            format!(
                "{square}equation = \"-lap(u) = 1\"\n[[condition]]\nkind = \"point\"\nat = [0.5]\nvalue = \"0\"\n"
            ),
            &["condition[0].at", "2 coordinates", "(line 7)"],
        ),
        (
            format!("{square}equation = \"-lap(u) = 1\"\n[[condition]]\nkind = \"perodic\"\n"),
            &["condition[0].kind", "unknown variant `perodic`", "periodic"],
        ),
        (
            format!(
                "{square}equation = \"-lap(u) = 1\"\n[[condition]]\nkind = \"dirichlet\"\non = \"x = 0\"\nvalue = \"1/x\"\n"
            ),
            &["block `x=0`", "not finite"],
        ),
        (
            format!(
                "{square}equation = \"-lap(u) = 1\"\n[[condition]]\nkind = \"neumann\"\nvalue = \"0\"\n[[condition]]\nkind = \"robin\"\nvalue = \"0\"\nname = \"r\"\n"
            ),
            &["condition[1].alpha", "missing"],
        ),
        (
            format!("{square}equation = \"-lap(u) = 1\"\n{dirichlet}{dirichlet}"),
            &["condition[1].name", "already the name"],
        ),
        (
            format!(
                "{heat}equation = \"u_t - u_xx = 0\"\n{initial}[[condition]]\nkind = \"neumann\"\non = \"initial\"\nvalue = \"0\"\n"
            ),
            &["condition[1].on", "go together"],
        ),
        (
            format!("{square}equation = \"-lap(u) = t\"\n{dirichlet}"),
            &["problem.equation", "no time variable"],
        ),
        (
            format!("{square}equation = \"u_n = 1\"\n{dirichlet}"),
            &["problem.equation", "only exists in boundary conditions"],
        ),
        (
            format!(
                "{heat}equation = \"u_t - u_xx = 0\"\n{initial}[[condition]]\nkind = \"neumann\"\non = \"t = 1\"\nvalue = \"0\"\n"
            ),
            &["condition[1].kind", "constant time"],
        ),
        (
            format!(
                "{square}equation = \"-lap(u) = 1\"\n[[condition]]\nkind = \"robin\"\nalpha = nan\nvalue = \"0\"\n"
            ),
            &["condition[0].alpha", "finite", "(line 7)"],
        ),
        (
            format!(
                "{square}equation = \"-lap(u) = 1\"\n[[condition]]\nkind = \"dirichlet\"\non = \"x > 5\"\nvalue = \"0\"\n"
            ),
            &["condition[0].on", "predicate holds on (almost) none"],
        ),
        (
            "[problem]\nname = \"heat\"\n[[condition]]\nkind = \"dirichlet\"\n".to_string(),
            &["problem.name", "catalogue problem"],
        ),
        (
            format!(
                "{square}equation = \"-lap(u) = 1\"\n{dirichlet}[[condition]]\nkind = \"mean\"\nvalue = \"0\"\n[sampling]\nresample_every = 10\nblock = \"mean\"\n"
            ),
            &["sampling.block", "not an interior block"],
        ),
    ];
    for (text, want) in cases {
        let e = match RunConfig::parse(&text, "case.toml").and_then(|c| c.to_spec()) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        };
        assert!(!e.contains('\n'), "not one line: {e}");
        for w in want {
            assert!(e.contains(w), "`{w}` not in: {e}\n--- for:\n{text}");
        }
    }
}

/// A config using every field of the schema (a difference of domains,
/// source, solution, a reference CSV with a header, parameters, a
/// transform, Halton interior points, predicates, weights, names, point,
/// mean and Robin conditions) builds, reads its reference from the CSV
/// next to it, and round-trips through `--print-config`.
#[test]
fn every_field_round_trips_and_a_reference_csv_gives_the_errors() {
    let dir = std::env::temp_dir().join(format!("natgrad-every-field-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rows = [[0.25, 0.5], [1.0, 0.1], [0.5, 0.9]];
    let mut csv = String::from("x,y,u\n");
    for [x, y] in rows {
        csv.push_str(&format!("{x},{y},{}\n", x + y));
    }
    std::fs::write(dir.join("ref.csv"), csv).unwrap();
    let text = r#"
seed = 2
[problem]
name = "every-field"
domain = { kind = "difference", from = { kind = "box", lo = [0, 0], hi = [2, 1] }, minus = { kind = "disk", center = [1.5, 0.5], radius = 0.25 } }
equation = "-lap(u) + c*u = f"
source = "c*(x + y)"
solution = "x + y"
reference = "ref.csv"
interior_points = 300
interior_method = "halton"
boundary_points = 50
eval_points = 10
points_seed = 3

[problem.params]
c = 2

[problem.transform]
g = "x + y"
psi = "x*(2 - x)"

[[condition]]
on = "y < 0.5"
kind = "dirichlet"
name = "low"
weight = 2.0

[[condition]]
on = "y > 0.999"
kind = "robin"
alpha = 1.5
points = 20

[[condition]]
kind = "point"
at = [0.5, 0.5]

[[condition]]
kind = "mean"
points = 30
method = "halton"
"#;
    let path = dir.join("every.toml");
    std::fs::write(&path, text).unwrap();
    let spec = RunConfig::read(&path).unwrap().to_spec().unwrap();
    let pb = spec.problem().unwrap();
    let names: Vec<&str> = pb.blocks.iter().map(|b| b.name()).collect();
    assert_eq!(names, ["interior", "low", "y>0.999", "point", "mean"]);
    assert!(pb.blocks[1].points().chunks(2).all(|x| x[1] < 0.5));
    assert!(pb.blocks[2].points().chunks(2).all(|x| x[1] > 0.999));
    assert_eq!(pb.reference.points, rows.concat());
    assert_eq!(pb.reference.values, vec![0.75, 1.1, 1.4]);
    // The constraint holds exactly where ψ vanishes.
    let theta = pb.initial_theta(0).unwrap();
    let u = pb.solution(&theta, &[0.0, 0.3, 2.0, 0.7]).unwrap();
    assert_eq!(u, vec![0.3, 2.7]);
    let printed = RunConfig::from_spec(&spec).unwrap().to_toml();
    let again = RunConfig::parse(&printed, "printed")
        .unwrap()
        .to_spec()
        .unwrap();
    assert_eq!(again.custom, spec.custom);
    assert_eq!(RunConfig::from_spec(&again).unwrap().to_toml(), printed);
    // A reference row outside the domain or of the wrong width is named.
    for (bad, want) in [
        ("0.1,0.2\n", "2 columns, expected 3"),
        ("1.5,0.5,2\n", "not in the domain"),
    ] {
        std::fs::write(dir.join("ref.csv"), bad).unwrap();
        let e = RunConfig::read(&path)
            .unwrap()
            .to_spec()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("problem.reference") && e.contains("line 1") && e.contains(want),
            "{e}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Each condition kind on a small problem with a known solution, trained
/// with the default optimiser (SSBroyden) for a fixed number of iterations
/// (deterministic for the seed): about 1.5× the iterations at which the run
/// of `docs/custom-problems.md` first measured l2_rel ≤ 1e-5, well inside
/// 60 s of training on the 2-core machine (0.8–12 s there).
#[test]
fn condition_kinds_reach_1e_5() {
    for (file, iters) in [
        ("robin-box.toml", 700),
        ("neumann-disk.toml", 1100),
        ("advection-periodic.toml", 2200),
        ("wave.toml", 1500),
        ("poisson6d.toml", 3200),
        ("reaction-diffusion.toml", 800),
        ("helmholtz-union.toml", 1200),
    ] {
        let mut s = spec(file);
        assert_eq!(
            s.optimizer.name(),
            "ssbroyden",
            "{file}: the default optimiser"
        );
        s.budget.max_iters = iters;
        s.progress_every = None;
        let dir = std::env::temp_dir().join(format!("natgrad-kinds-{}-{file}", std::process::id()));
        s.out = Some(dir.clone());
        s.replace_existing = true;
        let out = s.run().unwrap();
        let l2 = out.metrics.unwrap().l2_rel;
        assert!(
            out.iters == iters && l2 <= 1e-5,
            "{file}: l2_rel {l2:e} after {} iterations",
            out.iters
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
