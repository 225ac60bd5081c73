//! Blocking work (file IO, hashing) run off the async threads.

use crate::error::{Error, Result};

/// Runs `job` on tokio's blocking pool and waits for it; a panicking job is an `IO` error.
pub(crate) async fn run_blocking<T: Send + 'static>(job: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(job)
        .await
        .unwrap_or_else(|e| Err(Error::io("a storage thread failed", std::io::Error::other(e))))
}

/// At most this many threads share one [`map_on_cores`].
const MAX_THREADS: usize = 4;
/// A thread of its own is started for no fewer items than this.
const ITEMS_PER_THREAD: usize = 64;

/// `work` of each item, in order, shared among the cores: for many small blocking calls (system
/// calls on objects one by one) whose caller waits for them all. Where no thread can be started
/// the work is done here.
pub(crate) fn map_on_cores<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let threads = *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS));
    let share = items.len().div_ceil(threads).max(ITEMS_PER_THREAD);
    let work_through = |part: &[T]| part.iter().map(&work).collect::<Vec<_>>();
    std::thread::scope(|scope| {
        let mut parts = items.chunks(share);
        let first = parts.next().unwrap_or_default();
        let others: Vec<_> = parts
            .map(|part| (part, std::thread::Builder::new().spawn_scoped(scope, move || work_through(part))))
            .collect();
        let mut results = work_through(first);
        for (part, thread) in others {
            match thread {
                Ok(thread) => results.extend(thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
                Err(_) => results.extend(work_through(part)),
            }
        }
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_the_order_of_the_items() {
        for len in [0, 1, 63, 64, 65, 1000, 4097] {
            let items: Vec<u64> = (0..len).collect();
            assert_eq!(map_on_cores(&items, |n| n * 3), items.iter().map(|n| n * 3).collect::<Vec<_>>(), "{len} items");
        }
    }
}
