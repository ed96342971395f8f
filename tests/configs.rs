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
        let flat = |t: &[f64]| -> Vec<f64> { ls.residuals(t).unwrap().concat() };
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
