//! Property test: random bytes and randomly damaged valid files fed to every
//! parser and loader (checkpoints, models, histories, optimiser and run
//! and TOML run configurations, command-line values) give errors, never panics.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use natgrad::optim::{Cutoff, OptimizerConfig};
use natgrad::report::History;
use natgrad::residual::Weighting;
use natgrad::train::{Checkpoint, RunConfig, RunSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A valid document damaged at random: truncated, bytes flipped or
/// replaced, or a span duplicated.
fn damage(valid: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut v = valid.to_vec();
    match rng.random_range(0..4) {
        0 => v.truncate(rng.random_range(0..=v.len())),
        1 => {
            for _ in 0..rng.random_range(1..5) {
                let i = rng.random_range(0..v.len());
                v[i] ^= 1 << rng.random_range(0..8);
            }
        }
        2 => {
            let i = rng.random_range(0..v.len());
            let junk = [
                b'{', b'}', b'"', b',', b'-', b'e', b'9', b'n', b'[', b']', b':',
            ];
            v[i] = junk[rng.random_range(0..junk.len())];
        }
        _ => {
            let a = rng.random_range(0..v.len());
            let b = rng.random_range(a..=v.len());
            let span = v[a..b].to_vec();
            let at = rng.random_range(0..=v.len());
            v.splice(at..at, span);
        }
    }
    v
}

fn random_bytes(rng: &mut ChaCha8Rng) -> Vec<u8> {
    (0..rng.random_range(0..200))
        .map(|_| rng.random())
        .collect()
}

fn no_panic(what: &str, input: &[u8], f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        panic!("{what} panicked on {:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn parsers_and_loaders_never_panic() {
    let dir = std::env::temp_dir().join(format!("natgrad-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Valid samples produced by a real short run.
    let run_dir = dir.join("run");
    let mut spec = RunSpec::defaults("heat").unwrap();
    spec.budget.max_iters = 2;
    spec.out = Some(run_dir.clone());
    spec.progress_every = None;
    spec.optimizer = OptimizerConfig::default_for("ssbroyden").unwrap();
    spec.run().unwrap();
    let read = |name: &str| std::fs::read(run_dir.join(name)).unwrap();
    let samples = [
        ("checkpoint.json", read("checkpoint.json")),
        ("model.json", read("model.json")),
        ("history.csv", read("history.csv")),
        (
            "optimizer",
            serde_json::to_vec(&OptimizerConfig::default_for("amstramgram").unwrap()).unwrap(),
        ),
        ("spec", serde_json::to_vec(&spec).unwrap()),
        (
            "run.toml",
            RunConfig::from_spec(&spec).unwrap().to_toml().into_bytes(),
        ),
    ];
    let file = dir.join("input");
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    for case in 0..3000 {
        let (kind, valid) = &samples[case % samples.len()];
        let input = if rng.random_bool(0.2) {
            random_bytes(&mut rng)
        } else {
            damage(valid, &mut rng)
        };
        std::fs::write(&file, &input).unwrap();
        let text = String::from_utf8_lossy(&input).into_owned();
        match *kind {
            "checkpoint.json" => no_panic(kind, &input, || {
                let _ = Checkpoint::load(&file);
            }),
            "model.json" => no_panic(kind, &input, || {
                let _ = natgrad::model::SavedModel::load(&file);
            }),
            "history.csv" => no_panic(kind, &input, || {
                let _ = History::parse(&text, "fuzz");
            }),
            "optimizer" => no_panic(kind, &input, || {
                if let Ok(c) = serde_json::from_slice::<OptimizerConfig>(&input) {
                    let _ = c
                        .validate()
                        .and_then(|_| c.build(&Default::default()).map(|_| ()));
                }
            }),
            "run.toml" => no_panic(kind, &input, || {
                if let Ok(c) = RunConfig::parse(&text, "fuzz") {
                    let _ = c.to_spec();
                }
            }),
            _ => no_panic(kind, &input, || {
                if let Ok(s) = serde_json::from_slice::<RunSpec>(&input) {
                    let _ = s.validate();
                }
            }),
        }
        // Formulas of custom problems.
        no_panic("formula", &input, || {
            if let Ok(f) = natgrad::pde::expr::Expr::parse(&text, 2) {
                let _ = f.eval(&[0.3, -0.2]);
                let _ = natgrad::pde::expr::laplacian(&f, &[0.3, -0.2]);
            }
        });
        // Command-line values.
        no_panic("cutoff/weighting/set", &input, || {
            let _ = Cutoff::parse(&text);
            let _ = Weighting::parse(&text);
            let mut c = OptimizerConfig::default_for("nystrom").unwrap();
            let (k, v) = text.split_once('=').unwrap_or((&text, "1"));
            let _ = c.set(k, v);
            let _ = c.set("rank", &text);
        });
    }
    // Resuming from a damaged checkpoint is an error, not a panic.
    let ck = read("checkpoint.json");
    for _ in 0..20 {
        std::fs::write(run_dir.join("checkpoint.json"), damage(&ck, &mut rng)).unwrap();
        no_panic("resume", &ck, || {
            let _ = RunSpec::resume(Path::new(&run_dir), |_, _| {}, None, None, None);
        });
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The custom-problem schema: the example configs damaged line by line
/// (a line dropped, duplicated, or its value replaced by something that
/// is wrong in a typical way) or byte by byte, parsed and built: errors,
/// never panics.
#[test]
fn damaged_custom_problem_configs_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let mut samples: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "poisson-large.toml"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    samples.sort();
    let junk = [
        "\"u_xxx\"",
        "\"1/0\"",
        "\"x9\"",
        "\"lap(v)\"",
        "\"u_n\"",
        "\"f\"",
        "\"t\"",
        "\"\"",
        "\"(\"",
        "\"x = 2\"",
        "\"t = 0\"",
        "\"initial\"",
        "\"boundary\"",
        "\"y\"",
        "\"periodic\"",
        "\"mean\"",
        "\"point\"",
        "\"robin\"",
        "\"neumann\"",
        "\"grid\"",
        "\"halton\"",
        "\"sqrt(-1)\"",
        "\"u_t\"",
        "\"u^u\"",
        "\"exp(1000)\"",
        "-1",
        "0",
        "1",
        "2",
        "1e-300",
        "nan",
        "inf",
        "[]",
        "[0]",
        "[1, 0]",
        "[0, 0, 0]",
        "{ kind = \"disk\", center = [], radius = 1 }",
        "{ kind = \"box\", lo = [1], hi = [0] }",
        "{ kind = \"union\", of = [] }",
        "{ kind = \"l-shape\" }",
        "true",
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let (mut built, mut refused) = (0, 0);
    for case in 0..800 {
        let (name, valid) = &samples[case % samples.len()];
        let mut lines: Vec<String> = valid.lines().map(str::to_string).collect();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..lines.len());
            match rng.random_range(0..4) {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let l = lines[i].clone();
                    lines.insert(i, l);
                }
                _ => {
                    if let Some((k, _)) = lines[i].clone().split_once('=') {
                        lines[i] = format!("{k}= {}", junk[rng.random_range(0..junk.len())]);
                    }
                }
            }
            if lines.is_empty() {
                break;
            }
        }
        let mut text = lines.join("\n");
        if rng.random_bool(0.2) {
            text = String::from_utf8_lossy(&damage(text.as_bytes(), &mut rng)).into_owned();
        }
        no_panic(name, text.as_bytes(), || {
            match RunConfig::parse(&text, "fuzz").and_then(|c| c.to_spec()) {
                Ok(spec) => {
                    let pb = spec.problem().unwrap();
                    let ls = pb.least_squares().unwrap();
                    let theta = pb.initial_theta(0).unwrap();
                    let _ = ls.loss(&theta);
                    built += 1;
                }
                Err(e) => {
                    assert!(!e.to_string().contains('\n'), "not one line: {e}");
                    refused += 1;
                }
            }
        });
    }
    // Both outcomes are common: the damage reaches the builder.
    assert!(
        built > 100 && refused > 100,
        "built {built}, refused {refused}"
    );
}
