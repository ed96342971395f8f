//! The worker pool for independent work: line-search candidates and chunks
//! of collocation points during assembly.
//!
//! Every task computes exactly what a serial run would and results are
//! combined in a fixed order, so the number of workers never changes a
//! result. The dense linear algebra has its own knob
//! ([`crate::linalg::set_threads`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

static WORKERS: AtomicUsize = AtomicUsize::new(0);

/// Set the number of worker threads (`0`, the default, uses every available core).
pub fn set_workers(n: usize) {
    WORKERS.store(n, Ordering::Relaxed);
}

/// The number of worker threads in use.
pub fn workers() -> usize {
    match WORKERS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Run `f` inside the pool of [`workers`] threads. The pool persists, so its
/// threads keep their thread-local buffers (forward tapes, reverse-pass
/// scratch) from one call to the next.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool(workers()).install(f)
}

fn pool(n: usize) -> &'static rayon::ThreadPool {
    static POOLS: Mutex<Vec<(usize, &'static rayon::ThreadPool)>> = Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = pools.iter().find(|(k, _)| *k == n) {
        return p;
    }
    let p: &'static rayon::ThreadPool = Box::leak(Box::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .thread_name(|i| format!("natgrad-worker-{i}"))
            .build()
            .expect("worker thread pool"),
    ));
    pools.push((n, p));
    p
}
