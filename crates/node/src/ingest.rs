//! A streaming ingest as a JS object: chunks go in without a copy, the result comes out once.

use artifactstore_core::{Bytes, Ingest, WriteOutcome as Outcome};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use tokio::sync::Mutex;

use crate::convert::{invalid_argument, to_js_error, NativeIngestResult};

#[napi]
pub struct NativeIngest {
    // `None` once finished or aborted.
    ingest: Mutex<Option<Ingest>>,
}

/// The core's `WriteOutcome`, for JavaScript: what `tryWrite` did with a chunk: queued it, found
/// the queue full (call `write`), or found the ingest stopped (call `finish` for the reason).
#[napi]
pub enum WriteOutcome {
    Queued,
    Full,
    Stopped,
}

impl NativeIngest {
    pub fn new(ingest: Ingest) -> Self {
        NativeIngest { ingest: Mutex::new(Some(ingest)) }
    }
}

/// Wraps a JS buffer without copying it; the buffer stays referenced until the core drops it.
fn chunk(buffer: Buffer) -> Bytes {
    Bytes::from_owner(buffer)
}

#[napi]
impl NativeIngest {
    /// Queues a chunk if there is room, without waiting.
    #[napi]
    pub fn try_write(&self, buffer: Buffer) -> WriteOutcome {
        let Ok(guard) = self.ingest.try_lock() else { return WriteOutcome::Full };
        match guard.as_ref().map(|ingest| ingest.try_write(chunk(buffer))) {
            Some(Outcome::Queued) => WriteOutcome::Queued,
            Some(Outcome::Full) => WriteOutcome::Full,
            Some(Outcome::Stopped) | None => WriteOutcome::Stopped,
        }
    }

    /// Queues a chunk, waiting for room; resolves `false` when the ingest has stopped.
    #[napi]
    pub async fn write(&self, buffer: Buffer) -> bool {
        match self.ingest.lock().await.as_ref() {
            Some(ingest) => ingest.write(chunk(buffer)).await,
            None => false,
        }
    }

    /// Ends the stream; resolves when the object is stored.
    #[napi]
    pub async fn finish(&self) -> Result<NativeIngestResult> {
        let ingest = self.ingest.lock().await.take();
        let ingest = ingest.ok_or_else(|| invalid_argument("the ingest has already ended".into()))?;
        ingest.finish().await.map(NativeIngestResult::from).map_err(to_js_error)
    }

    /// Abandons the ingest; resolves once everything it wrote is gone.
    #[napi]
    pub async fn abort(&self) {
        if let Some(ingest) = self.ingest.lock().await.take() {
            ingest.abort().await;
        }
    }
}
