//! Blocking work (file IO, hashing) run off the async threads.

use crate::error::{Error, Result};

/// Runs `job` on tokio's blocking pool and waits for it; a panicking job is an `IO` error.
pub(crate) async fn run_blocking<T: Send + 'static>(job: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(job)
        .await
        .unwrap_or_else(|e| Err(Error::io("a storage thread failed", std::io::Error::other(e))))
}
