//! One ingest: chunks arrive from the caller, are hashed and written on a thread of the ingest's
//! own, and the object is committed under its address once the last byte is in and every
//! expectation holds. Anything short of that leaves nothing behind: the writer removes its
//! temporary data when dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::api::{Expectations, IngestRequest};
pub use crate::chunk_queue::WriteOutcome;
use crate::chunk_queue::{chunk_queue, ChunkSender};
use crate::error::{Error, Result};
use crate::hashing::{digest_bytes_with_tree, Digests, DualHasher};
use crate::identity::{ContentAddress, Digest, DIGEST_LEN};
use crate::metrics::{ByteCounter, CallTimer};
use crate::results::{IngestResult, StorageReceipt};
use crate::storage::{Backend, Committed, CHUNK_LEN};
use crate::tree::{has_tree, Outboard};

/// Bytes queued between the caller and the ingest thread: enough to keep both busy, few enough
/// that a fast producer waits for a slow disk instead of filling memory.
const QUEUE_BYTES: u32 = 4 * 1024 * 1024;

impl Expectations {
    fn check_size_so_far(&self, size_bytes: u64) -> Result<()> {
        match self.size_bytes {
            Some(expected) if size_bytes > expected => Err(Error::IntegrityMismatch(format!(
                "expected {expected} bytes, the stream has at least {size_bytes}"
            ))),
            _ => Ok(()),
        }
    }

    pub(crate) fn check(&self, digests: &Digests) -> Result<()> {
        if let Some(expected) = self.size_bytes.filter(|&size| size != digests.size_bytes) {
            return Err(Error::IntegrityMismatch(format!(
                "expected {expected} bytes, the stream had {}",
                digests.size_bytes
            )));
        }
        check_digest("sha256", self.sha256, &digests.sha256)?;
        check_digest("primary", self.primary, &digests.primary)
    }
}

fn check_digest(what: &str, expected: Option<[u8; DIGEST_LEN]>, actual: &Digest) -> Result<()> {
    match expected {
        Some(expected) if expected != actual.bytes => Err(Error::IntegrityMismatch(format!(
            "expected {what} digest {}, the stream's is {actual}",
            hex::encode(expected)
        ))),
        _ => Ok(()),
    }
}

/// The write side of an ingest (or of an upload's append, whose outcome is the upload's status):
/// the caller pushes chunks, then finishes or drops it.
pub struct Ingest<T = IngestResult> {
    queue: ChunkSender,
    outcome: oneshot::Receiver<Result<T>>,
    abandoned: Arc<AtomicBool>,
}

/// What a streaming job gets: the chunks as they arrive, and whether its caller gave up.
pub(crate) type Chunks<'a> = &'a mut dyn Iterator<Item = Result<Bytes>>;

impl Ingest {
    pub(crate) fn start(
        runtime: &tokio::runtime::Handle,
        backend: Arc<dyn Backend>,
        request: IngestRequest,
        timer: CallTimer,
        ingested: ByteCounter,
    ) -> Self {
        Ingest::spawn(runtime, ingested, move |chunks, abandoned| {
            let result = store_chunks(backend.as_ref(), chunks, &request, abandoned);
            timer.finish(&result);
            result
        })
    }
}

impl<T: Send + 'static> Ingest<T> {
    /// Runs `job` on a thread of its own, fed with the chunks the caller pushes (counted as
    /// `ingested`).
    pub(crate) fn spawn(
        runtime: &tokio::runtime::Handle,
        ingested: ByteCounter,
        job: impl FnOnce(Chunks, &dyn Fn() -> bool) -> Result<T> + Send + 'static,
    ) -> Self {
        let (queue, mut chunks) = chunk_queue(QUEUE_BYTES);
        let (report, outcome) = oneshot::channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let gave_up = abandoned.clone();
        runtime.spawn_blocking(move || {
            let mut chunks = std::iter::from_fn(|| {
                let chunk = chunks.blocking_recv()?;
                ingested.add(chunk.len());
                Some(Ok(chunk))
            });
            // Abandoned by `abort`, or by dropping the ingest unfinished.
            let abandoned = || gave_up.load(Ordering::Acquire) || report.is_closed();
            let result = job(&mut chunks, &abandoned);
            let _ = report.send(result);
        });
        Ingest { queue, outcome, abandoned }
    }

    /// Queues a chunk without waiting. When the queue is full the chunk is dropped: `write` it
    /// again, which waits for room.
    pub fn try_write(&self, chunk: Bytes) -> WriteOutcome {
        self.queue.try_send(chunk)
    }

    /// Queues a chunk, waiting for room; `false` when the ingest has failed (`finish` says why).
    pub async fn write(&self, chunk: Bytes) -> bool {
        self.queue.send(chunk).await
    }

    /// Ends the stream and waits for the object to be committed.
    pub async fn finish(self) -> Result<T> {
        let Ingest { queue, outcome, .. } = self;
        drop(queue);
        outcome.await.unwrap_or_else(|_| Err(Error::io("ingest", std::io::Error::other("the ingest thread panicked"))))
    }

    /// Abandons the ingest and waits until everything it wrote is removed.
    pub async fn abort(self) {
        let Ingest { queue, outcome, abandoned } = self;
        abandoned.store(true, Ordering::Release);
        drop(queue);
        // The ingest thread reports only after its writer has removed what it wrote.
        let _ = outcome.await;
    }
}

/// Hashes and writes every chunk, checks the expectations and commits the object, unless
/// `abandoned` says the caller gave up first. Blocking.
pub(crate) fn store_chunks(
    backend: &dyn Backend,
    chunks: impl IntoIterator<Item = Result<Bytes>>,
    request: &IngestRequest,
    abandoned: impl Fn() -> bool,
) -> Result<IngestResult> {
    let mut writer = backend.create_writer(request)?;
    let mut hasher = DualHasher::new(request.primary());
    for chunk in chunks {
        let chunk = chunk?;
        hasher.update(&chunk);
        request.expect.check_size_so_far(hasher.size_bytes())?;
        writer.write(chunk)?;
    }
    if abandoned() {
        return Err(Error::Aborted("the ingest was abandoned by its caller".into()));
    }
    let (digests, tree) = hasher.finalize_with_tree();
    request.expect.check(&digests)?;
    put_tree(backend, &digests.primary, &tree, false)?;
    let committed = writer.commit(&digests.primary, &digests)?;
    Ok(ingest_result(backend.id(), &digests, committed))
}

/// Stores an object that is whole in memory: digests first, so a stored copy is found before
/// anything is written. Blocking.
pub(crate) fn store_bytes(backend: &dyn Backend, bytes: Bytes, request: &IngestRequest) -> Result<IngestResult> {
    let (digests, tree) = digest_bytes_with_tree(request.primary(), &bytes, CHUNK_LEN);
    request.expect.check(&digests)?;
    put_tree(backend, &digests.primary, &tree, false)?;
    let committed = backend.put(&digests.primary, &digests, bytes)?;
    Ok(ingest_result(backend.id(), &digests, committed))
}

/// Keeps the tree of an object of more than one group beside it: before the object is committed,
/// or in place of a damaged one (`replace`). Blocking.
pub(crate) fn put_tree(backend: &dyn Backend, address: &ContentAddress, tree: &Outboard, replace: bool) -> Result<()> {
    if !has_tree(tree.size_bytes) {
        return Ok(());
    }
    backend.put_tree(address, tree.file_bytes(address.algorithm), replace)
}

pub(crate) fn ingest_result(backend_id: &str, digests: &Digests, committed: Committed) -> IngestResult {
    IngestResult {
        primary_digest: digests.primary,
        sha256_digest: digests.sha256,
        size_bytes: digests.size_bytes,
        receipt: StorageReceipt {
            backend_id: backend_id.to_owned(),
            locator: committed.locator,
            size_bytes: digests.size_bytes,
            stored_at: committed.stored_at,
            deduplicated: committed.deduplicated,
        },
    }
}
