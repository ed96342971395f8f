//! Reports built from runs: the benchmark tables of `natgrad bench`, the
//! side-by-side runs of `natgrad compare`, and the figures of `natgrad plot`.

pub mod bench;
pub mod compare;
#[cfg(feature = "plots")]
pub mod figures;
pub mod history;
#[cfg(feature = "plots")]
pub mod kernel_map;
#[cfg(feature = "plots")]
pub mod plot;
pub mod profile;

pub use bench::{
    BenchRow, Case, THRESHOLDS, case, csv, markdown, run_case, time_to_target, times_to_thresholds,
};
#[cfg(feature = "plots")]
pub use figures::RunData;
pub use history::History;
