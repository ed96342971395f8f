//! Reports built from runs: the benchmark tables of `natgrad bench`.

pub mod bench;

pub use bench::{
    BenchCase, BenchRow, THRESHOLDS, csv, markdown, run_case, time_to_target, times_to_thresholds,
};
