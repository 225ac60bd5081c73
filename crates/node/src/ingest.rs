//! Streaming calls as JS objects: an ingest, and an upload's append. Chunks go in without a copy,
//! the result comes out once.

use artifactstore_core::wire::Wire;
use artifactstore_core::{Bytes, Ingest, IngestResult, UploadStatus, WriteOutcome as Outcome};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use tokio::sync::Mutex;

use crate::convert::{invalid_argument, to_js_error, NativeIngestResult};

/// The core's `WriteOutcome`, for JavaScript: what `tryWrite` did with a chunk: queued it, found
/// the queue full (call `write`), or found the ingest stopped (call `finish` for the reason).
#[napi]
pub enum WriteOutcome {
    Queued,
    Full,
    Stopped,
}

/// What both classes share: the core's streaming call, `None` once finished or aborted.
struct Session<T> {
    ingest: Mutex<Option<Ingest<T>>>,
}

impl<T: Send + 'static> Session<T> {
    fn new(ingest: Ingest<T>) -> Self {
        Session { ingest: Mutex::new(Some(ingest)) }
    }

    fn try_write(&self, buffer: Buffer) -> WriteOutcome {
        let Ok(guard) = self.ingest.try_lock() else { return WriteOutcome::Full };
        match guard.as_ref().map(|ingest| ingest.try_write(chunk(buffer))) {
            Some(Outcome::Queued) => WriteOutcome::Queued,
            Some(Outcome::Full) => WriteOutcome::Full,
            Some(Outcome::Stopped) | None => WriteOutcome::Stopped,
        }
    }

    async fn write(&self, buffer: Buffer) -> bool {
        match self.ingest.lock().await.as_ref() {
            Some(ingest) => ingest.write(chunk(buffer)).await,
            None => false,
        }
    }

    async fn finish(&self) -> Result<T> {
        let ingest = self.ingest.lock().await.take();
        let ingest = ingest.ok_or_else(|| invalid_argument("the call has already ended".into()))?;
        ingest.finish().await.map_err(to_js_error)
    }

    async fn abort(&self) {
        if let Some(ingest) = self.ingest.lock().await.take() {
            ingest.abort().await;
        }
    }
}

/// Wraps a JS buffer without copying it; the buffer stays referenced until the core drops it.
fn chunk(buffer: Buffer) -> Bytes {
    Bytes::from_owner(buffer)
}

#[napi]
pub struct NativeIngest {
    session: Session<IngestResult>,
}

impl NativeIngest {
    pub fn new(ingest: Ingest) -> Self {
        NativeIngest { session: Session::new(ingest) }
    }
}

#[napi]
impl NativeIngest {
    /// Queues a chunk if there is room, without waiting.
    #[napi]
    pub fn try_write(&self, buffer: Buffer) -> WriteOutcome {
        self.session.try_write(buffer)
    }

    /// Queues a chunk, waiting for room; resolves `false` when the ingest has stopped.
    #[napi]
    pub async fn write(&self, buffer: Buffer) -> bool {
        self.session.write(buffer).await
    }

    /// Ends the stream; resolves when the object is stored.
    #[napi]
    pub async fn finish(&self) -> Result<NativeIngestResult> {
        self.session.finish().await.map(NativeIngestResult::from)
    }

    /// Abandons the ingest; resolves once everything it wrote is gone.
    #[napi]
    pub async fn abort(&self) {
        self.session.abort().await
    }
}

/// An append to a resumable upload: the same calls as an ingest; its result is the upload's status.
#[napi]
pub struct NativeAppend {
    session: Session<UploadStatus>,
}

impl NativeAppend {
    pub fn new(append: Ingest<UploadStatus>) -> Self {
        NativeAppend { session: Session::new(append) }
    }
}

#[napi]
impl NativeAppend {
    #[napi]
    pub fn try_write(&self, buffer: Buffer) -> WriteOutcome {
        self.session.try_write(buffer)
    }

    #[napi]
    pub async fn write(&self, buffer: Buffer) -> bool {
        self.session.write(buffer).await
    }

    /// Ends the stream; resolves with the upload's `UploadStatus` in the wire's CBOR.
    #[napi]
    pub async fn finish(&self) -> Result<Buffer> {
        self.session.finish().await.map(|status| Buffer::from(status.to_cbor()))
    }

    /// Stops the append; resolves once the upload's record holds every byte taken so far.
    #[napi]
    pub async fn abort(&self) {
        self.session.abort().await
    }
}
