//! What a new user meets in a first hour: output roots, folders that already
//! hold a run, interrupted comparisons, budgets, plots of configured
//! problems, and the messages of bad input.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{natgrad, stderr, summary, tmp};

/// `compare` without `--out` writes under `runs/` like every other command.
#[test]
fn compare_without_out_writes_under_runs() {
    let cwd = tmp("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_natgrad"))
        .args([
            "compare",
            "laplace2d",
            "--optimizers",
            "adam",
            "--max-seconds",
            "0.3",
            "--quiet",
        ])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(cwd.join("runs/compare/laplace2d/compare.md").exists());
    assert!(!cwd.join("compare").exists());
    std::fs::remove_dir_all(&cwd).ok();
}

/// A folder that holds a run is refused (the message names `--force` and
/// `--resume`); `--force` replaces its files, so no stale `spectra.csv` of
/// the old run survives into the new one.
#[test]
fn a_folder_holding_a_run_is_refused_unless_forced() {
    let out = tmp("stale");
    let dir = out.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "solve",
            "laplace2d",
            "--max-iters",
            "2",
            "--quiet",
            "--out",
            dir,
        ];
        args.extend_from_slice(extra);
        natgrad(&args)
    };
    let o = run(&["--preset", "paper"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("spectra.csv").exists());
    let o = run(&["--optimizer", "ssbroyden"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("already holds a run") && e.contains("--force"),
        "{e}"
    );
    assert!(e.contains(&format!("--resume {dir}")), "{e}");
    let o = run(&["--optimizer", "ssbroyden", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join("spectra.csv").exists(), "stale spectra.csv kept");
    assert_eq!(summary(&out)["optimizer"], "ssbroyden");
    std::fs::remove_dir_all(&out).ok();
}

/// SIGINT during `compare`: exit code 4, the finished case complete, the
/// interrupted one with a checkpoint and a summary, resumable, and the hint
/// names its folder.
#[test]
fn sigint_during_compare_keeps_every_case() {
    let out = tmp("cmp-int");
    let child = Command::new(env!("CARGO_BIN_EXE_natgrad"))
        .args([
            "compare",
            "heat",
            "--optimizers",
            "adam,amstramgram",
            "--max-seconds",
            "3",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let second = out.join("runs/heat-amstramgram-s0");
    let started = Instant::now();
    while !second.join("history.csv").exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(e.contains(&format!("--resume {}", second.display())), "{e}");
    let first = out.join("runs/heat-adam-s0");
    assert_eq!(summary(&first)["termination"]["reason"], "max-seconds");
    assert_eq!(summary(&second)["termination"]["reason"], "interrupted");
    assert!(second.join("checkpoint.json").exists());
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("adam") && md.contains("amstramgram"), "{md}");
    let o = natgrad(&["solve", "--resume", second.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(&out).ok();
}

/// A time limit given alone lifts the problem's default iteration limit
/// (burgers: 1000; SSBroyden takes ~3–4 ms per iteration there, so the old
/// behaviour stopped after ~4 s of a 300 s request) and the reason the run
/// ended is in its summary; an
/// iteration limit alone lifts the time limit.
#[test]
fn a_limit_given_alone_replaces_the_other_default() {
    let out = tmp("budget");
    let o = natgrad(&[
        "solve",
        "burgers",
        "--optimizer",
        "ssbroyden",
        "--max-seconds",
        "2",
        "--eval-every",
        "0",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    assert_ne!(s["termination"]["reason"], "max-iters", "{s}");
    assert_eq!(
        s["config"]["budget"]["max_iters"],
        u64::MAX,
        "no iteration limit: {s}"
    );
    let line = stderr(&o);
    let reason = match s["termination"]["reason"].as_str() {
        Some("max-seconds") => "time budget reached",
        _ => "stalled",
    };
    assert!(line.starts_with(&format!("burgers: {reason}")), "{line}");
    let o = natgrad(&["solve", "burgers", "--max-iters", "5", "--print-config"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("max_iters = 5") && text.contains("max_seconds = inf"),
        "{text}"
    );
    std::fs::remove_dir_all(&out).ok();
}

/// `plot` draws `solution.png` for a problem declared in a run config (a
/// disk: the trained solution alone on a grid of its bounding box), and a
/// request for a spectrum that was not logged fails before anything is written.
#[test]
fn plot_draws_configured_problems_and_checks_first() {
    let dir = tmp("plot-disk");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("disk.toml");
    let run = dir.join("run");
    std::fs::write(
        &cfg,
        "[problem]\nname = \"disk\"\npde = \"poisson\"\n\
         domain = { kind = \"disk\", center = [0, 0], radius = 1 }\n\
         solution = \"x1^2 - x2^2 + 1\"\ninterior_points = 200\nboundary_points = 60\n\
         eval_points = 400\n[optimizer]\nname = \"anagram\"\n[budget]\nmax_iters = 3\n",
    )
    .unwrap();
    let o = natgrad(&[
        "solve",
        "--config",
        cfg.to_str().unwrap(),
        "--eval-every",
        "1",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = natgrad(&["plot", run.to_str().unwrap(), "--iters", "99999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("iteration 99999"), "{}", stderr(&o));
    let pngs = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "png")
            })
            .count()
    };
    assert_eq!(pngs(&run), 0, "nothing drawn before the check");
    let o = natgrad(&["plot", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run.join("solution.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad input gets one line naming what is wrong and where.
#[test]
fn messages_name_what_is_wrong() {
    let dir = tmp("msgs");
    std::fs::create_dir_all(&dir).unwrap();
    // A folder without a run.
    let o = natgrad(&["solve", "--resume", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert_eq!(e.matches("checkpoint.json").count(), 1, "{e}");
    assert!(e.contains("holds no run"), "{e}");
    // A semicolon-separated points file.
    let run = dir.join("run");
    let o = natgrad(&[
        "solve",
        "laplace2d",
        "--max-iters",
        "1",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pts = dir.join("pts.csv");
    std::fs::write(&pts, "0.5;0.5\n").unwrap();
    let o = natgrad(&[
        "eval",
        run.join("model.json").to_str().unwrap(),
        "--points",
        pts.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("2 comma-separated numbers") && e.contains("`0.5;0.5`"),
        "{e}"
    );
    // Zero threads.
    let o = natgrad(&["solve", "laplace2d", "--threads", "0", "--max-iters", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("compute.threads"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

/// `--quiet` keeps one summary line per run; `-qq` and `--silent` print nothing.
#[test]
fn quiet_keeps_one_summary_line() {
    let out = tmp("quiet");
    let run = |flag: &str, sub: &str| {
        natgrad(&[
            "solve",
            "laplace2d",
            "--max-iters",
            "2",
            flag,
            "--out",
            out.join(sub).to_str().unwrap(),
        ])
    };
    let o = run("--quiet", "a");
    assert!(o.status.success());
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(
        e.contains("maximum iterations reached after 2 iterations"),
        "{e}"
    );
    for (flag, sub) in [("-qq", "b"), ("--silent", "c")] {
        let o = run(flag, sub);
        assert!(o.status.success());
        assert_eq!(stderr(&o), "", "{flag}");
    }
    std::fs::remove_dir_all(&out).ok();
}

/// A network that interpolates a handful of collocation points is flagged:
/// held-out loss far above the training loss, a warning on stderr and in
/// summary.json, and the best iterate by held-out loss kept in
/// best_model.json; every history has the held-out column. By default the
/// run stops at the first evaluation that shows it; `--no-overfit-stop`
/// goes on to the budget.
#[test]
fn overfitting_a_few_points_is_flagged() {
    let dir = tmp("overfit");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("few.toml");
    let run = dir.join("run");
    std::fs::write(
        &cfg,
        "[problem]\nname = \"few\"\npde = \"poisson\"\n\
         domain = { kind = \"box\", lo = [0, 0], hi = [1, 1] }\n\
         solution = \"sin(3*pi*x)*sin(3*pi*y)\"\ninterior_points = 6\nboundary_points = 8\n\
         [budget]\nmax_iters = 400\n",
    )
    .unwrap();
    let o = natgrad(&[
        "solve",
        "--config",
        cfg.to_str().unwrap(),
        "--eval-every",
        "20",
        "--no-overfit-stop",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&run);
    assert_eq!(s["iters"].as_u64(), Some(400), "{s}");
    let ratio = s["heldout_ratio"].as_f64().unwrap();
    assert!(
        ratio > natgrad::train::OVERFIT_RATIO,
        "held-out/train {ratio}: {s}"
    );
    let w = s["overfitting"].as_str().unwrap();
    assert!(w.contains("--resample-every"), "{w}");
    assert!(
        stderr(&o).contains("warning: the held-out loss"),
        "{}",
        stderr(&o)
    );
    assert!(s["best"]["heldout_loss"].as_f64().unwrap() <= s["heldout_loss"].as_f64().unwrap());
    assert!(run.join("best_model.json").exists());
    let rows = common::read_history(&run);
    let col = rows[0].iter().position(|c| c == "heldout_loss").unwrap();
    assert!(!rows[1][col].is_empty() && !rows[21][col].is_empty() && rows[2][col].is_empty());
    // The default stops at the first evaluation above the threshold.
    let o = natgrad(&[
        "solve",
        "--config",
        cfg.to_str().unwrap(),
        "--eval-every",
        "20",
        "--force",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&run);
    let iters = s["iters"].as_u64().unwrap();
    assert!(iters < 400 && iters.is_multiple_of(20), "{s}");
    let msg = s["termination_message"].as_str().unwrap();
    assert!(
        msg.contains("overfitting") && msg.contains("best_model.json"),
        "{msg}"
    );
    assert!(s["heldout_ratio"].as_f64().unwrap() > natgrad::train::OVERFIT_RATIO);
    assert!(run.join("best_model.json").exists());
    std::fs::remove_dir_all(&dir).ok();
}
