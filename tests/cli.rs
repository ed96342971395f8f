//! The command line end to end: listing, bad input, a short solve and its outputs.

mod common;

use std::process::{Command, Output};

use common::{natgrad, read_history, stderr, tmp};

#[test]
fn list_names_problems_and_optimizers() {
    let o = natgrad(&["list"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    for name in ["laplace2d", "heat", "anagram", "adam", "lbfgs"] {
        assert!(text.contains(name), "`{name}` missing from:\n{text}");
    }
}

#[test]
fn bad_input_gives_one_line_errors_not_panics() {
    let cases: &[(&[&str], &str)] = &[
        (&["solve", "nope"], "unknown problem `nope`"),
        (
            &["solve", "laplace2d", "--optimizer", "sgd2"],
            "unknown optimizer `sgd2`",
        ),
        (
            &[
                "compare",
                "laplace2d",
                "--optimizers",
                "papr",
                "--max-iters",
                "1",
            ],
            "unknown setup (preset or optimizer) `papr`; known: default, paper, anagram",
        ),
        (
            &["solve", "laplace2d", "--cutoff", "abc"],
            "`abc` is not a cutoff",
        ),
        (
            &["solve", "laplace2d", "--cutoff", "-1"],
            "must be finite and ≥ 0",
        ),
        (
            &["solve", "laplace2d", "--weighting", "odd"],
            "unknown weighting `odd`",
        ),
        (
            &["solve", "laplace2d", "--max-seconds", "-2"],
            "budget.max_seconds",
        ),
        (
            &[
                "solve",
                "laplace2d",
                "--optimizer",
                "adam",
                "--cutoff",
                "1e-6",
            ],
            "invalid value for `optimizer.cutoff`: adam has no such parameter",
        ),
    ];
    for (args, msg) in cases {
        let o = natgrad(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(msg), "{args:?}: expected `{msg}` in:\n{e}");
        assert!(!e.contains("panicked"), "{args:?} panicked:\n{e}");
    }
    // Malformed numbers are caught by the argument parser (exit code 2).
    let o = natgrad(&["solve", "laplace2d", "--max-iters", "-3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--max-iters"));
}

#[test]
fn short_solve_writes_history_summary_and_model() {
    let out = tmp("solve");
    let o = natgrad(&[
        "solve",
        "laplace2d",
        "--max-iters",
        "8",
        "--eval-every",
        "4",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("iter"),
        "no progress lines:\n{}",
        stderr(&o)
    );
    let rows = read_history(&out);
    assert_eq!(
        rows[0][..8],
        [
            "iter",
            "time_s",
            "loss",
            "l2_abs",
            "l2_rel",
            "linf",
            "rank",
            "step_size"
        ]
    );
    assert_eq!(rows.len(), 1 + 9, "header + iterations 0..=8");
    let loss0: f64 = rows[1][2].parse().unwrap();
    let loss8: f64 = rows[9][2].parse().unwrap();
    assert!(loss8 < loss0, "loss did not decrease: {loss0} → {loss8}");
    assert!(
        !rows[5][3].is_empty() && rows[6][3].is_empty(),
        "errors every 4 iterations"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "problem",
        "optimizer",
        "seed",
        "params",
        "samples",
        "iters",
        "time_s",
        "loss",
        "l2_abs",
        "l2_rel",
        "linf",
        "termination",
    ] {
        assert!(
            summary.get(key).is_some(),
            "summary lacks `{key}`: {summary}"
        );
    }
    assert_eq!(summary["problem"], "laplace2d");
    assert_eq!(summary["params"], 129);
    assert_eq!(summary["samples"], 900);
    assert_eq!(summary["iters"], 8);
    assert_eq!(summary["termination"]["reason"], "max-iters");
    let (mlp, theta) = natgrad::model::SavedModel::load(out.join("model.json")).unwrap();
    assert_eq!(mlp.widths(), &[2, 32, 1]);
    assert_eq!(theta.len(), 129);
    // spectra.csv: at the logged iterations 4 and 8, one row per n = 0..=129.
    let spectra = std::fs::read_to_string(out.join("spectra.csv")).unwrap();
    let lines: Vec<&str> = spectra.lines().collect();
    assert_eq!(
        lines[0],
        "iter,n,sigma,rce,sqrt_loss,kept,kept_wide,rank1,rank2,precision"
    );
    assert_eq!(lines.len(), 1 + 2 * 130);
    let row: Vec<&str> = lines[2].split(',').collect();
    assert_eq!((row[0], row[1]), ("4", "1"));
    let (sigma, rce): (f64, f64) = (row[2].parse().unwrap(), row[3].parse().unwrap());
    assert!(sigma > 0.0 && rce > 0.0);
    std::fs::remove_dir_all(&out).ok();
}

/// AMStraMGRAM through the CLI with a parameter set by `--param`: the
/// spectra carry its ranks and precision; a bad parameter is a one-line error.
#[test]
fn amstramgram_params_and_spectra() {
    let out = tmp("ams");
    let o = natgrad(&[
        "solve",
        "laplace2d",
        "--optimizer",
        "amstramgram",
        "--param",
        "start_precision=1e-5",
        "--max-iters",
        "3",
        "--eval-every",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let spectra = std::fs::read_to_string(out.join("spectra.csv")).unwrap();
    let first: Vec<&str> = spectra.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first[0], "1");
    assert!(first[7].parse::<usize>().is_ok() && first[8].parse::<usize>().is_ok());
    assert_eq!(first[9].parse::<f64>().unwrap(), 1e-5);
    let rows = read_history(&out);
    let l0: f64 = rows[1][2].parse().unwrap();
    let l3: f64 = rows[4][2].parse().unwrap();
    assert!(l3 < l0, "{l0} → {l3}");
    let o = natgrad(&[
        "solve",
        "laplace2d",
        "--optimizer",
        "amstramgram",
        "--param",
        "precison=1e-5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("optimizer.precison") && e.lines().count() <= 2,
        "{e}"
    );
    std::fs::remove_dir_all(&out).ok();
}

const ALL_OPTIMIZERS: [&str; 7] = [
    "amstramgram",
    "anagram",
    "engd",
    "nystrom",
    "lbfgs",
    "adam",
    "ssbroyden",
];

/// Resume the run in `dir` up to `iters` iterations; it must succeed.
fn resume_to(dir: &std::path::Path, iters: &str, opt: &str) {
    let o = natgrad(&[
        "solve",
        "--resume",
        dir.to_str().unwrap(),
        "--max-iters",
        iters,
        "--quiet",
    ]);
    assert!(o.status.success(), "{opt}: {}", stderr(&o));
}

/// Every cell of two histories equal except the timing columns (`time_s`, `t_*`).
fn assert_same_history(a: &[Vec<String>], b: &[Vec<String>], label: &str) {
    assert_eq!(a.len(), b.len(), "{label}: row counts");
    assert_eq!(a[0], b[0], "{label}: headers");
    let timing: Vec<usize> = a[0]
        .iter()
        .enumerate()
        .filter(|(_, c)| *c == "time_s" || c.starts_with("t_"))
        .map(|(i, _)| i)
        .collect();
    for (ra, rb) in a.iter().zip(b).skip(1) {
        for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
            if !timing.contains(&i) {
                assert_eq!(x, y, "{label}: iteration {}, column {}", ra[0], a[0][i]);
            }
        }
    }
}

fn solve_heat(opt: &str, iters: &str, out: &std::path::Path) -> Output {
    natgrad(&[
        "solve",
        "heat",
        "--optimizer",
        opt,
        "--max-iters",
        iters,
        "--eval-every",
        "3",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ])
}

/// The same seed gives the same history, bit for bit in every column but
/// the timings, for every optimiser.
#[test]
fn same_seed_same_history() {
    for opt in ALL_OPTIMIZERS {
        let runs: Vec<Vec<Vec<String>>> = (0..2)
            .map(|k| {
                let out = tmp(&format!("det-{opt}-{k}"));
                let o = solve_heat(opt, "4", &out);
                assert!(o.status.success(), "{opt}: {}", stderr(&o));
                let rows = read_history(&out);
                std::fs::remove_dir_all(&out).ok();
                rows
            })
            .collect();
        assert_same_history(&runs[0], &runs[1], opt);
    }
}

/// A checkpoint records the digest of the training points; resuming it onto
/// other points (a problem whose set-up changed since it was written) is a
/// one-line error, not a run that silently continues on another problem.
#[test]
fn resume_onto_other_points_is_refused() {
    let out = tmp("points-digest");
    assert!(solve_heat("adam", "3", &out).status.success());
    let path = out.join("checkpoint.json");
    let mut ck: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let digest = ck["points"].as_str().unwrap().to_string();
    assert!(digest.starts_with("871 points, "), "{digest}");
    ck["points"] = serde_json::json!("870 points, 0000000000000000");
    std::fs::write(&path, ck.to_string()).unwrap();
    let o = natgrad(&["solve", "--resume", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("other training points (870 points, 0000000000000000)")
            && err.contains(&format!("({digest})"))
            && err.lines().count() == 1,
        "{err}"
    );
    std::fs::remove_dir_all(&out).ok();
}

/// A run stopped after 3 iterations and resumed to 6 gives the history of
/// an uninterrupted 6-iteration run, bit for bit (timings aside), for every
/// optimiser: θ, the optimiser's state (moments, quasi-Newton memory,
/// AMStraMGRAM's cutoffs and basis, the Nyström stream) all carry over.
#[test]
fn resume_continues_bit_for_bit() {
    for opt in ALL_OPTIMIZERS {
        let (full, part) = (tmp(&format!("full-{opt}")), tmp(&format!("part-{opt}")));
        assert!(solve_heat(opt, "6", &full).status.success());
        assert!(solve_heat(opt, "3", &part).status.success());
        assert!(
            part.join("checkpoint.json").exists(),
            "{opt}: no checkpoint"
        );
        resume_to(&part, "6", opt);
        assert_same_history(&read_history(&full), &read_history(&part), opt);
        let spectra = |d: &std::path::Path| std::fs::read_to_string(d.join("spectra.csv")).ok();
        assert_eq!(spectra(&full), spectra(&part), "{opt}: spectra.csv");
        std::fs::remove_dir_all(&full).ok();
        std::fs::remove_dir_all(&part).ok();
    }
}

/// A run that restarts (`[restarts]`) continues, after the restart, exactly
/// as a fresh run from the next initialisation, for every optimiser: the
/// optimiser starts over from its initial state. A run stopped after the
/// restart and resumed equals the uninterrupted one, and `summary.json`
/// lists the restart.
#[test]
fn restarts_continue_as_fresh_runs_and_resume() {
    let dir = tmp("restarts");
    std::fs::create_dir_all(&dir).unwrap();
    let (restart, fresh) = (dir.join("restart.toml"), dir.join("fresh.toml"));
    std::fs::write(
        &restart,
        "[problem]\nname = \"heat\"\n[restarts]\nafter = 3\nabove = 0.0\n\
         inits = [{ kind = \"normal\", std = 0.3 }]\n",
    )
    .unwrap();
    std::fs::write(
        &fresh,
        "[problem]\nname = \"heat\"\n[model]\ninit = { kind = \"normal\", std = 0.3 }\n",
    )
    .unwrap();
    let run = |config: &std::path::Path, opt: &str, iters: &str, out: &std::path::Path| {
        let o = natgrad(&[
            "solve",
            "--config",
            config.to_str().unwrap(),
            "--optimizer",
            opt,
            "--max-iters",
            iters,
            "--eval-every",
            "1",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{opt}: {}", stderr(&o));
    };
    for opt in ALL_OPTIMIZERS {
        let (r, f, p) = (
            dir.join(format!("r-{opt}")),
            dir.join(format!("f-{opt}")),
            dir.join(format!("p-{opt}")),
        );
        run(&restart, opt, "5", &r);
        run(&fresh, opt, "2", &f);
        assert_eq!(
            common::summary(&r)["restarts"],
            serde_json::json!([3]),
            "{opt}"
        );
        let (rows, fresh_rows) = (read_history(&r), read_history(&f));
        // Iterations 4 and 5 of the restarted run (rows 5, 6 after the
        // header) are 1 and 2 of the fresh one.
        assert_eq!(rows.len(), 7, "{opt}");
        let skip: Vec<usize> = rows[0]
            .iter()
            .enumerate()
            .filter(|(_, c)| *c == "iter" || *c == "time_s" || c.starts_with("t_"))
            .map(|(i, _)| i)
            .collect();
        for (k, (a, b)) in rows[5..].iter().zip(&fresh_rows[2..]).enumerate() {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if !skip.contains(&i) {
                    assert_eq!(
                        x,
                        y,
                        "{opt}: step {} after the restart, {}",
                        k + 1,
                        rows[0][i]
                    );
                }
            }
        }
        // Stopped one step after the restart, resumed to 5.
        run(&restart, opt, "4", &p);
        resume_to(&p, "5", opt);
        assert_same_history(&rows, &read_history(&p), opt);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// With collocation resampling (RAD every 2 iterations) the run differs from
/// the fixed-point run from the first redraw on, and a resumed run still
/// equals an uninterrupted one: the checkpoint keeps the points and the
/// random stream, the optimisers drop what was computed on the old points.
#[test]
fn resampled_run_resumes_bit_for_bit() {
    let run = |opt: &str, iters: &str, out: &std::path::Path, resample: bool| {
        let mut args = vec![
            "solve",
            "heat",
            "--optimizer",
            opt,
            "--max-iters",
            iters,
            "--eval-every",
            "2",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        if resample {
            args.extend(["--resample-every", "2"]);
        }
        let o = natgrad(&args);
        assert!(o.status.success(), "{opt}: {}", stderr(&o));
    };
    for opt in ["ssbroyden", "amstramgram", "lbfgs", "adam"] {
        let (fixed, full, part) = (
            tmp(&format!("rs-fixed-{opt}")),
            tmp(&format!("rs-full-{opt}")),
            tmp(&format!("rs-part-{opt}")),
        );
        run(opt, "6", &fixed, false);
        run(opt, "6", &full, true);
        // Stopped right after the redraw at iteration 4: the resumed step 5
        // starts from nothing but the checkpoint, the uninterrupted one from
        // the optimiser's memory, which must not hold old-point values.
        run(opt, "4", &part, true);
        let ck = std::fs::read_to_string(part.join("checkpoint.json")).unwrap();
        assert!(ck.contains("\"redraws\":2"), "{opt}: no sampling state");
        resume_to(&part, "6", opt);
        let (h_fixed, h_full) = (read_history(&fixed), read_history(&full));
        assert_same_history(&h_full, &read_history(&part), opt);
        // Rows 1..=3 (iterations 0..=2) are the same run; the loss of
        // iteration 3 (row 4, column 2) is on the new points.
        assert_same_history(&h_fixed[..4], &h_full[..4], opt);
        assert_ne!(h_fixed[4][2], h_full[4][2], "{opt}: loss after the redraw");
        for d in [fixed, full, part] {
            std::fs::remove_dir_all(&d).ok();
        }
    }
}

/// SIGTERM stops a long run at the end of a step: exit code 4, summary with
/// termination `interrupted`, a checkpoint and the history so far; resuming
/// it reaches the same final loss as an uninterrupted run, bit for bit.
#[test]
fn sigterm_then_resume_matches_uninterrupted() {
    // AMStraMGRAM on heat: ~0.1 s per iteration here, so the signal lands mid-run.
    let iters = "40";
    let (whole, cut) = (tmp("sig-whole"), tmp("sig-cut"));
    let child = Command::new(env!("CARGO_BIN_EXE_natgrad"))
        .args([
            "solve",
            "heat",
            "--optimizer",
            "amstramgram",
            "--max-iters",
            iters,
            "--eval-every",
            "1000",
            "--quiet",
            "--out",
        ])
        .arg(&cut)
        .spawn()
        .unwrap();
    // Signal once training has started (history.csv is created after the
    // problem is built) and had time for a few of its ~0.1 s iterations.
    let started = std::time::Instant::now();
    while !cut.join("history.csv").exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let summary = std::fs::read_to_string(cut.join("summary.json")).unwrap();
    assert!(summary.contains("\"interrupted\""), "{summary}");
    let rows = read_history(&cut);
    let done: usize = rows.last().unwrap()[0].parse().unwrap();
    assert!(done > 0 && done < 40, "stopped after {done} iterations");
    let o = natgrad(&["solve", "--resume", cut.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = natgrad(&[
        "solve",
        "heat",
        "--optimizer",
        "amstramgram",
        "--max-iters",
        iters,
        "--eval-every",
        "1000",
        "--quiet",
        "--out",
        whole.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let loss = |d: &std::path::Path| -> serde_json::Value {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(s["iters"], 40);
        s["loss"].clone()
    };
    assert_eq!(loss(&whole), loss(&cut));
    std::fs::remove_dir_all(&whole).ok();
    std::fs::remove_dir_all(&cut).ok();
}

/// Resuming from a missing, truncated or foreign checkpoint is a one-line error.
#[test]
fn bad_checkpoints_are_clear_errors() {
    let dir = tmp("badck");
    std::fs::create_dir_all(&dir).unwrap();
    let resume = |d: &std::path::Path| natgrad(&["solve", "--resume", d.to_str().unwrap()]);
    let o = resume(&dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("checkpoint.json"), "{}", stderr(&o));
    std::fs::write(
        dir.join("checkpoint.json"),
        "{\"format\": \"natgrad-checkpoint\", \"vers",
    )
    .unwrap();
    let o = resume(&dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a checkpoint"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    let o = natgrad(&["solve", "heat", "--resume", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "problem and --resume together");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn baselines_decrease_the_loss_on_heat() {
    for opt in ["adam", "lbfgs", "engd", "nystrom", "ssbroyden"] {
        let out = tmp(opt);
        let o = natgrad(&[
            "solve",
            "heat",
            "--optimizer",
            opt,
            "--max-iters",
            "20",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{opt}: {}", stderr(&o));
        let rows = read_history(&out);
        let first: f64 = rows[1][2].parse().unwrap();
        let last: f64 = rows.last().unwrap()[2].parse().unwrap();
        assert!(last < first, "{opt}: {first} → {last}");
        std::fs::remove_dir_all(&out).ok();
    }
}

/// Every catalogue problem with AMStraMGRAM for a few iterations: the loss
/// decreases, errors against the reference are finite, and the run files
/// are written (hard-constrained burgers records its transform). (Not the
/// default optimiser: the papers' ANaGRAM on laplace2d, seed 0, first
/// raises the loss for dozens of iterations at the smallest step.)
#[test]
fn every_catalogue_problem_smoke_runs() {
    let cache = tmp("cache");
    for entry in natgrad::train::catalogue::CATALOGUE {
        let name = &entry.name;
        let out = tmp(&format!("smoke-{name}"));
        let o = Command::new(env!("CARGO_BIN_EXE_natgrad"))
            .args([
                "solve",
                name,
                "--optimizer",
                "amstramgram",
                "--max-iters",
                "3",
                "--eval-every",
                "3",
                "--quiet",
                "--out",
                out.to_str().unwrap(),
            ])
            .env("NATGRAD_CACHE_DIR", &cache)
            .output()
            .expect("runs the binary");
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let rows = read_history(&out);
        assert_eq!(rows.len(), 1 + 4, "{name}: header + iterations 0..=3");
        let loss0: f64 = rows[1][2].parse().unwrap();
        let loss3: f64 = rows[4][2].parse().unwrap();
        assert!(loss3 < loss0, "{name}: loss {loss0} → {loss3}");
        let ho = rows[0].iter().position(|c| c == "heldout_loss").unwrap();
        let h: f64 = rows[4][ho].parse().unwrap();
        assert!(h.is_finite() && h > 0.0, "{name}: held-out loss {h}");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["problem"], *name);
        let l2: f64 = summary["l2_rel"].as_f64().unwrap();
        assert!(l2.is_finite() && l2 > 0.0, "{name}: l2_rel {l2}");
        assert_eq!(
            summary.get("output_transform").is_some(),
            *name == "burgers",
            "{name}: {summary}"
        );
        assert!(out.join("model.json").exists());
        std::fs::remove_dir_all(&out).ok();
    }
    // allen-cahn's reference was computed once and cached.
    let cached: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    std::fs::remove_dir_all(&cache).ok();
}

/// `natgrad bench` on tiny cases (two optimisers by name, the two presets)
/// writes the Markdown and CSV tables, with the papers' numbers beside
/// ours; a bad problem name is a one-line error.
#[test]
fn bench_writes_markdown_and_csv() {
    let out = tmp("bench");
    let o = natgrad(&[
        "bench",
        "--problems",
        "laplace2d",
        "--optimizers",
        "amstramgram,anagram,default,paper",
        "--max-iters",
        "3",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert!(md.contains("| laplace2d | amstramgram | 0 | 3 |"), "{md}");
    assert!(md.contains("| laplace2d | anagram | 0 | 3 |"), "{md}");
    assert!(
        md.contains("| laplace2d | amstramgram (default) | 0 | 3 |"),
        "{md}"
    );
    assert!(
        md.contains("| laplace2d | anagram (paper) | 0 | 3 |"),
        "{md}"
    );
    assert!(md.contains("2.24e-15"), "paper number missing:\n{md}");
    let csv = std::fs::read_to_string(out.join("bench.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.contains("laplace2d,anagram,paper,0,3,"), "{csv}");
    for case in [
        "laplace2d-amstramgram-s0",
        "laplace2d-default-amstramgram-s0",
        "laplace2d-paper-anagram-s0",
    ] {
        assert!(
            out.join("runs").join(case).join("history.csv").exists(),
            "{case}"
        );
    }
    std::fs::remove_dir_all(&out).ok();
    let o = natgrad(&[
        "bench",
        "--problems",
        "nope",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown problem `nope`"),
        "{}",
        stderr(&o)
    );
}

fn is_png(p: &std::path::Path) -> bool {
    std::fs::read(p).is_ok_and(|b| b.len() > 1000 && b.starts_with(b"\x89PNG"))
}

/// `compare` runs every optimiser on one problem and writes the table and
/// the four curve figures; `plot` draws curves, spectra and the solution
/// maps from run directories and names bad input in one line.
#[test]
fn compare_and_plot_write_tables_and_figures() {
    let out = tmp("compare");
    let all = "amstramgram,anagram,engd,nystrom,lbfgs,adam,ssbroyden";
    let o = natgrad(&[
        "compare",
        "laplace2d",
        "--optimizers",
        all,
        "--max-iters",
        "4",
        "--eval-every",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("and every 1 iterations"), "{md}");
    for opt in all.split(',') {
        assert!(
            md.contains(&format!("| {opt} | 0 | 4 |")),
            "{opt} row missing:\n{md}"
        );
        assert!(
            md.contains(&format!("- `{opt}`: `{{\"name\":\"{opt}\"")),
            "{opt} settings missing:\n{md}"
        );
    }
    for f in [
        "error_vs_time",
        "error_vs_iter",
        "loss_vs_time",
        "loss_vs_iter",
    ] {
        assert!(is_png(&out.join(format!("{f}.png"))), "{f}.png");
    }
    let ams = out.join("runs/laplace2d-amstramgram-s0");
    let figs = tmp("plot");
    let o = natgrad(&[
        "plot",
        ams.to_str().unwrap(),
        "--iters",
        "1,4",
        "--out",
        figs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "spectrum-iter1",
        "spectrum-iter4",
        "solution",
        "error_vs_time",
    ] {
        assert!(is_png(&figs.join(format!("{f}.png"))), "{f}.png");
    }
    let o = natgrad(&[
        "plot",
        ams.to_str().unwrap(),
        "--iters",
        "99",
        "--out",
        figs.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--iters") && stderr(&o).lines().count() == 1,
        "{}",
        stderr(&o)
    );
    // The best iterate by held-out loss has its own map.
    let o = natgrad(&[
        "plot",
        ams.to_str().unwrap(),
        "--model",
        "best",
        "--out",
        figs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(is_png(&figs.join("solution-best.png")));
    std::fs::remove_file(ams.join("best_model.json")).unwrap();
    let o = natgrad(&["plot", ams.to_str().unwrap(), "--model", "best"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("best_model.json"), "{}", stderr(&o));
    let missing = out.join("runs/nope");
    let o = natgrad(&["plot", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("summary.json"), "{}", stderr(&o));
    std::fs::remove_dir_all(&out).ok();
    std::fs::remove_dir_all(&figs).ok();
}

/// A run that cannot fit in the memory allowed is refused before training
/// with the estimate in the message (here the limit is set to 1 MiB).
#[test]
fn runs_too_large_for_memory_are_refused() {
    let out = tmp("mem");
    let run = |limit: &str| {
        Command::new(env!("CARGO_BIN_EXE_natgrad"))
            .args(["solve", "heat", "--max-iters", "1", "--quiet", "--out"])
            .arg(&out)
            .env("NATGRAD_MEMORY_LIMIT_MIB", limit)
            .output()
            .unwrap()
    };
    let o = run("1");
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("needs about") && e.contains("only 1 MiB") && e.contains("871×257"),
        "{e}"
    );
    assert!(!out.join("history.csv").exists());
    let o = run("lots");
    assert!(
        stderr(&o).contains("NATGRAD_MEMORY_LIMIT_MIB"),
        "{}",
        stderr(&o)
    );
    assert!(run("100000").status.success());
    std::fs::remove_dir_all(&out).ok();
}

/// `solve --config` runs the file's settings (flags override them),
/// `--print-config` prints the full effective configuration, which runs as
/// is, and a bad field is a one-line error naming it.
#[test]
fn config_files_drive_runs() {
    let dir = tmp("config");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("run.toml");
    let out = dir.join("run");
    std::fs::write(
        &cfg,
        format!(
            "seed = 2\n[problem]\nname = \"heat\"\n[model]\nwidths = [2, 12, 1]\n\
             [optimizer]\nname = \"anagram\"\nweighting = \"block-mean\"\n\
             [budget]\nmax_iters = 7\n[output]\ndir = {:?}\neval_every = 1\n",
            out.to_str().unwrap()
        ),
    )
    .unwrap();
    let o = natgrad(&[
        "solve",
        "--config",
        cfg.to_str().unwrap(),
        "--max-iters",
        "3",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["iters"], 3, "the flag overrides the file");
    assert_eq!(summary["seed"], 2);
    assert_eq!(summary["params"], 12 * 2 + 12 + 12 + 1);
    assert_eq!(summary["config"]["optimizer"]["weighting"], "block-mean");
    let o = natgrad(&["solve", "--config", cfg.to_str().unwrap(), "--print-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    for line in [
        "seed = 2",
        "widths = [2, 12, 1]",
        "max_iters = 7",
        "max_seconds = 120.0",
    ] {
        assert!(printed.contains(line), "`{line}` missing:\n{printed}");
    }
    let full = dir.join("full.toml");
    std::fs::write(&full, &printed).unwrap();
    let o = natgrad(&[
        "solve",
        "--config",
        full.to_str().unwrap(),
        "--print-config",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        printed,
        "printing is a fixed point"
    );
    std::fs::write(
        &cfg,
        "[problem]\nname = \"heat\"\n[budget]\nmax_iters = \"many\"\n",
    )
    .unwrap();
    let o = natgrad(&["solve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("budget.max_iters") && e.contains("line 4"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `eval` writes u (and derivatives) at the user's points, through the
/// problem's hard constraint; bad point files are one-line errors.
#[test]
fn eval_writes_solution_at_points() {
    let dir = tmp("eval");
    let o = natgrad(&[
        "solve",
        "burgers",
        "--optimizer",
        "adam",
        "--max-iters",
        "2",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pts = dir.join("points.csv");
    std::fs::write(&pts, "t,x\n0,0.5\n0.5,1\n").unwrap();
    let model = dir.join("model.json");
    let o = natgrad(&[
        "eval",
        model.to_str().unwrap(),
        "--points",
        pts.to_str().unwrap(),
        "--derivatives",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "x0,x1,u,du_dx0,du_dx1,laplacian_u");
    // The hard constraint holds whatever N_θ is: u(0, x) = −sin(πx), u(t, ±1) = 0.
    let u = |l: &str| -> f64 { l.split(',').nth(2).unwrap().parse().unwrap() };
    assert!(
        (u(lines[1]) + (std::f64::consts::PI * 0.5).sin()).abs() < 1e-14,
        "{text}"
    );
    assert!(u(lines[2]).abs() < 1e-14, "{text}");
    std::fs::write(&pts, "0,0.5,1\n").unwrap();
    let o = natgrad(&[
        "eval",
        model.to_str().unwrap(),
        "--points",
        pts.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("line 1: 3 columns, the model has 2 inputs"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The older one-line custom problem (`pde = "poisson"` on the L-shape, the
/// README's form of earlier versions) trains from the command line; a short
/// run already lowers the error well below its start.
#[test]
fn custom_lshape_config_trains() {
    let dir = tmp("lshape");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("lshape.toml");
    std::fs::write(
        &cfg,
        format!(
            "[problem]\nname = \"lshape-poisson\"\npde = \"poisson\"\ndomain = {{ kind = \"l-shape\" }}\n\
             solution = \"sin(pi*x)*sin(pi*y) + x*y\"\n[budget]\nmax_iters = 1000\n[output]\ndir = {:?}\n",
            dir.join("run").to_str().unwrap()
        ),
    )
    .unwrap();
    let o = natgrad(&["solve", "--config", cfg.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = read_history(&dir.join("run"));
    let l2 = |r: &Vec<String>| -> f64 { r[4].parse().unwrap() };
    let (first, last) = (l2(&rows[1]), l2(rows.last().unwrap()));
    assert!(last < 1e-2 * first, "l2_rel {first} → {last}");
    let o = natgrad(&[
        "eval",
        dir.join("run/model.json").to_str().unwrap(),
        "--points",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "a TOML file is not a point file");
    std::fs::remove_dir_all(&dir).ok();
}

/// `bench --profile` writes the phase table for each decomposition asked
/// for; `bench --svd-check` compares the partial with the full SVD.
#[test]
fn bench_profile_and_svd_check_write_tables() {
    let out = tmp("profile");
    let o = natgrad(&[
        "bench",
        "--profile",
        "--problems",
        "heat",
        "--optimizers",
        "anagram",
        "--svd",
        "full,partial",
        "--profile-iters",
        "2",
        "--warmup",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("profile.md")).unwrap();
    assert!(
        md.contains("| heat | anagram | full | auto (cpu) | 871 | 257 | 257 |"),
        "{md}"
    );
    assert!(
        md.contains("| heat | anagram | partial | auto (cpu) | 871 | 257 |"),
        "{md}"
    );
    let csv = std::fs::read_to_string(out.join("profile.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let o = natgrad(&[
        "bench",
        "--svd-check",
        "0",
        "--problems",
        "heat",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("svd-check.md")).unwrap();
    assert_eq!(md.matches("| heat | 0 | 871 × 257 |").count(), 4, "{md}");
    let o = natgrad(&[
        "bench",
        "--profile",
        "--svd",
        "lapack",
        "--problems",
        "heat",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("svd"), "{}", stderr(&o));
    std::fs::remove_dir_all(&out).ok();
}

/// `--device cuda` where no CUDA device can be used (every CI machine; the
/// binary built with or without `--features cuda`) is a one-line error with
/// exit code 1; `--device auto` runs on the CPU and says why; an unknown
/// device name is refused.
#[test]
fn device_flag_errors_without_cuda_and_auto_falls_back() {
    let out = tmp("device");
    let dir = out.to_str().unwrap();
    let o = natgrad(&[
        "solve",
        "laplace2d",
        "--device",
        "cuda",
        "--max-iters",
        "1",
        "--out",
        dir,
    ]);
    let err = stderr(&o);
    if o.status.success() {
        // A machine with a usable device: the run says it decomposed there.
        assert!(err.contains("decompositions on cuda ("), "{err}");
    } else {
        assert_eq!(o.status.code(), Some(1), "{err}");
        let line = err.lines().last().unwrap_or_default();
        assert!(
            line.starts_with("error: ") && line.contains("CUDA device: "),
            "{err}"
        );
        assert!(!out.join("checkpoint.json").exists(), "nothing ran");
        let o = natgrad(&[
            "solve",
            "laplace2d",
            "--device",
            "auto",
            "--max-iters",
            "1",
            "--out",
            dir,
        ]);
        let err = stderr(&o);
        assert!(o.status.success(), "{err}");
        assert!(
            err.contains("decompositions on cpu (CUDA device: "),
            "{err}"
        );
    }
    let o = natgrad(&["solve", "laplace2d", "--device", "gpu", "--max-iters", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown device `gpu`; known: cpu, cuda, auto"));
}

/// `--preset paper` runs the problem's papers' settings (laplace2d: ANaGRAM,
/// cutoff 1e-6) into its own folder; the default is natgrad's (AMStraMGRAM).
#[test]
fn preset_paper_runs_the_papers_settings() {
    let out = tmp("preset");
    let o = natgrad(&["solve", "laplace2d", "--preset", "paper", "--print-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("name = \"anagram\""), "{text}");
    assert!(text.contains("runs/laplace2d-paper-anagram-0"), "{text}");
    let o = natgrad(&["solve", "laplace2d", "--print-config"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("name = \"amstramgram\"") && text.contains("start_precision = 1e-10\n"),
        "{text}"
    );
    let o = natgrad(&[
        "solve",
        "laplace2d",
        "--preset",
        "paper",
        "--max-iters",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["optimizer"], "anagram");
    let o = natgrad(&["solve", "laplace2d", "--preset", "papers"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown preset `papers`; known: default, paper"));
}

/// `natgrad kernel` maps the three kernels of a run's model (PNG, and the
/// map as CSV), and a malformed `--at` is a one-line error.
#[test]
fn kernel_maps_and_bad_points() {
    let out = tmp("kernel");
    let o = natgrad(&[
        "solve",
        "laplace2d",
        "--preset",
        "paper",
        "--max-iters",
        "20",
        "--save-models-at",
        "0,10",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = out.to_str().unwrap();
    assert!(out.join("model-0.json").exists() && out.join("model-10.json").exists());
    assert!(!out.join("model-20.json").exists());
    // A snapshot is drawn like the final model; a missing one is named.
    let o = natgrad(&[
        "kernel", dir, "--kind", "ntk", "--at", "0.5,0.5", "--model", "iter:10",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = natgrad(&[
        "kernel", dir, "--kind", "ntk", "--at", "0.5,0.5", "--model", "iter:5",
    ]);
    assert!(stderr(&o).contains("no model-5.json"), "{}", stderr(&o));
    for kind in ["ntk", "operator-ntk", "green"] {
        let csv = out.join(format!("{kind}.csv"));
        let o = natgrad(&[
            "kernel",
            dir,
            "--kind",
            kind,
            "--at",
            "0.5,0.5",
            "--grid",
            "20",
            "--csv",
            csv.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
        assert!(out.join(format!("kernel-{kind}.png")).exists(), "{kind}");
        let text = std::fs::read_to_string(&csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 20 * 20, "{kind}");
        assert_eq!(lines[0], format!("x,y,{kind}"));
        let v: f64 = lines[1].split(',').nth(2).unwrap().parse().unwrap();
        assert!(v.is_finite(), "{kind}: {}", lines[1]);
    }
    for (at, msg) in [
        ("0.5", "needs 2 coordinates"),
        ("1.5,0.5", "outside the domain"),
    ] {
        let o = natgrad(&["kernel", dir, "--kind", "ntk", "--at", at]);
        assert_eq!(o.status.code(), Some(1), "{at}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(msg) && e.trim().lines().count() == 1,
            "{at}: {e}"
        );
    }
    let o = natgrad(&["kernel", dir, "--kind", "nope", "--at", "0.5,0.5"]);
    assert!(stderr(&o).contains("unknown kernel `nope`"));
    // Replacing the run deletes its snapshots with its other files.
    let o = natgrad(&[
        "solve",
        "laplace2d",
        "--max-iters",
        "2",
        "--quiet",
        "--force",
        "--out",
        dir,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join("model-10.json").exists());
}
