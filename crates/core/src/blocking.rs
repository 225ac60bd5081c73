//! Blocking work (file IO, hashing) run off the async threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

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
    let share = items.len().div_ceil(threads()).max(ITEMS_PER_THREAD);
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

/// `work` of each item `items` hands out, in their order, shared among the cores, until the
/// results worked out weigh `enough` (or the items end): for a walk whose length is not known
/// ahead, a listing's page. Each thread takes the next item when it is done with its last, so
/// none waits on another until the end; every item handed out is worked through, so the results
/// are the items' first part. The first error ends it.
pub(crate) fn map_on_cores_until<T, R: Send, E: Send>(
    items: impl Iterator<Item = Result<T, E>> + Send,
    work: impl Fn(T) -> Result<R, E> + Sync,
    weight: impl Fn(&R) -> usize + Sync,
    enough: usize,
) -> Result<Vec<R>, E> {
    let queue = Mutex::new(items.enumerate());
    let (weighed, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
    let work_through = || -> Result<Vec<(usize, R)>, E> {
        let mut done = Vec::new();
        while weighed.load(Ordering::Relaxed) < enough && !failed.load(Ordering::Relaxed) {
            let Some((index, item)) = queue.lock().unwrap_or_else(PoisonError::into_inner).next() else { break };
            let result = item.and_then(&work).inspect_err(|_| failed.store(true, Ordering::Relaxed))?;
            weighed.fetch_add(weight(&result), Ordering::Relaxed);
            done.push((index, result));
        }
        Ok(done)
    };
    let mut done = std::thread::scope(|scope| {
        let others: Vec<_> =
            (1..threads()).filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, work_through).ok()).collect();
        let mut done = work_through()?;
        for thread in others {
            done.extend(thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?);
        }
        Ok(done)
    })?;
    done.sort_unstable_by_key(|(index, _)| *index);
    Ok(done.into_iter().map(|(_, result)| result).collect())
}

/// How many threads share one [`map_on_cores`]: the cores, up to [`MAX_THREADS`].
pub(crate) fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS))
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

    fn ok_items(len: u64) -> impl Iterator<Item = std::result::Result<u64, String>> + Send {
        (0..len).map(Ok)
    }

    #[test]
    fn until_enough_gives_a_first_part_of_the_items_in_order() {
        for enough in [0, 1, 10, 999, 1000, 5000] {
            let results = map_on_cores_until(ok_items(1000), |n| Ok::<_, String>(n * 3), |_| 1, enough).unwrap();
            assert!(results.len() >= enough.min(1000), "{enough}: {} results", results.len());
            assert!(results.len() <= (enough + threads()).min(1000), "{enough}: {} results", results.len());
            assert_eq!(results, (0..results.len() as u64).map(|n| n * 3).collect::<Vec<_>>(), "{enough}");
        }
    }

    #[test]
    fn until_enough_weighs_each_result() {
        let results = map_on_cores_until(ok_items(100), |n| Ok::<_, String>(vec![n; 10]), Vec::len, 55).unwrap();
        assert!((6..6 + threads()).contains(&results.len()), "{} results", results.len());
    }

    #[test]
    fn until_enough_ends_at_the_first_error_of_an_item_or_its_work() {
        let failing = (0..100u64).map(|n| if n == 50 { Err(format!("item {n}")) } else { Ok(n) });
        assert_eq!(map_on_cores_until(failing, Ok::<_, String>, |_| 1, 1000), Err("item 50".to_owned()));
        let work = |n: u64| if n == 70 { Err(format!("work {n}")) } else { Ok(n) };
        assert_eq!(map_on_cores_until(ok_items(100), work, |_| 1, 1000), Err("work 70".to_owned()));
    }
}
