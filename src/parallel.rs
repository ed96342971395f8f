//! Worker threads for independent work: line-search candidates and chunks
//! of collocation points during assembly.
//!
//! Every task computes exactly what a serial run would and results are
//! combined in a fixed order, so the number of workers never changes a
//! result. The dense linear algebra has its own knob
//! ([`crate::linalg::Par`], passed to each kernel).

use std::sync::Mutex;

thread_local! {
    static IN_TASK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is running a task of [`map_groups`] that
/// shares the cores with other tasks: its dense kernels then run on one
/// thread ([`crate::linalg`] asks), since nesting both kinds of threads
/// oversubscribes the cores (docs/notes.md).
pub fn in_task() -> bool {
    IN_TASK.with(|c| c.get())
}

/// `f()` with [`in_task`] true on this thread.
fn as_task<R>(f: impl FnOnce() -> R) -> R {
    let before = IN_TASK.with(|c| c.replace(true));
    let out = f();
    IN_TASK.with(|c| c.set(before));
    out
}

/// The number of worker threads: one per available core.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `items.map(f)` in order, the items cut into one contiguous group per
/// worker: the calling thread takes the first group itself and the pool's
/// persistent threads the others (they keep their thread-local buffers —
/// forward tapes, reverse-pass scratch — from one call to the next).
pub fn map_groups<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let w = workers().min(items.len()).max(1);
    if w == 1 {
        return items.into_iter().map(f).collect();
    }
    let per = items.len().div_ceil(w);
    let mut groups: Vec<Vec<T>> = Vec::with_capacity(w);
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        groups.push(it.by_ref().take(per).collect());
    }
    let mut results: Vec<Vec<R>> = groups.iter().map(|_| Vec::new()).collect();
    let mut groups = groups.into_iter();
    let first = groups.next().expect("w ≥ 2 groups");
    let (head, tail) = results.split_first_mut().expect("w ≥ 2 groups");
    let f = &f;
    pool(w - 1).in_place_scope(|scope| {
        for (slot, group) in tail.iter_mut().zip(groups) {
            scope.spawn(move |_| *slot = as_task(|| group.into_iter().map(f).collect()));
        }
        *head = as_task(|| first.into_iter().map(f).collect());
    });
    results.into_iter().flatten().collect()
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
