//! Helpers shared by the command-line tests: run the binary, scratch folders,
//! read a run's files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `natgrad` with `args`.
pub fn natgrad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_natgrad"))
        .args(args)
        .output()
        .expect("runs the binary")
}

/// A scratch folder of this test process (removed if it exists).
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("natgrad-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The process's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `history.csv` of a run folder, as rows of cells.
pub fn read_history(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    text.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// `summary.json` of a run folder.
pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}
