//! One ingest: chunks arrive from the caller, are hashed and written on a thread of the ingest's
//! own, and the object is committed under its address once the last byte is in and every
//! expectation holds. Anything short of that leaves nothing behind: the writer removes its
//! temporary data when dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::chunk_queue::{chunk_queue, ChunkSender, TrySendError};
use crate::error::{Error, Result};
use crate::hashing::{digest_bytes, Digests, DualHasher};
use crate::identity::{parse_hex_digest, Digest, HashAlgorithm, DIGEST_LEN};
use crate::results::{IngestResult, StorageReceipt};
use crate::storage::{Backend, Committed, CHUNK_LEN};

/// Bytes queued between the caller and the ingest thread: enough to keep both busy, few enough
/// that a fast producer waits for a slow disk instead of filling memory.
const QUEUE_BYTES: u32 = 4 * 1024 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestOptions {
    pub backend_id: Option<String>,
    pub primary: Option<HashAlgorithm>,
    pub size_hint: Option<u64>,
    pub expect: Expectations,
}

/// Integrity on write: a mismatch stores nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    pub size_bytes: Option<u64>,
    pub sha256: Option<[u8; DIGEST_LEN]>,
    pub primary: Option<[u8; DIGEST_LEN]>,
}

impl Expectations {
    /// Parses expected digests given as hex; the error names the field and its value.
    pub fn parse(size_bytes: Option<u64>, sha256: Option<&str>, primary: Option<&str>) -> Result<Self> {
        let digest = |field: &str, hex: Option<&str>| {
            hex.map(|hex| {
                parse_hex_digest(hex)
                    .ok_or_else(|| Error::invalid_argument(format!("{field} {hex:?} is not 64 lowercase hex digits")))
            })
            .transpose()
        };
        Ok(Expectations {
            size_bytes,
            sha256: digest("expect.sha256", sha256)?,
            primary: digest("expect.primary", primary)?,
        })
    }

    fn check_size_so_far(&self, size_bytes: u64) -> Result<()> {
        match self.size_bytes {
            Some(expected) if size_bytes > expected => Err(Error::IntegrityMismatch(format!(
                "expected {expected} bytes, the stream has at least {size_bytes}"
            ))),
            _ => Ok(()),
        }
    }

    fn check(&self, digests: &Digests) -> Result<()> {
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

/// The write side of an ingest: the caller pushes chunks, then finishes or drops it.
pub struct Ingest {
    queue: ChunkSender,
    outcome: oneshot::Receiver<Result<IngestResult>>,
    abandoned: Arc<AtomicBool>,
}

/// What `try_write` did with a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    Queued,
    /// The queue is full: `write` the same chunk, which waits for room.
    Full,
    /// The ingest has failed: `finish` says why.
    Stopped,
}

impl Ingest {
    pub(crate) fn start(runtime: &tokio::runtime::Handle, backend: Arc<dyn Backend>, options: IngestOptions) -> Self {
        let (queue, mut chunks) = chunk_queue(QUEUE_BYTES);
        let (report, outcome) = oneshot::channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let gave_up = abandoned.clone();
        runtime.spawn_blocking(move || {
            let chunks = std::iter::from_fn(|| chunks.blocking_recv().map(Ok));
            // Abandoned by `abort`, or by dropping the ingest unfinished.
            let abandoned = || gave_up.load(Ordering::Acquire) || report.is_closed();
            let result = store_chunks(backend.as_ref(), chunks, &options, abandoned);
            let _ = report.send(result);
        });
        Ingest { queue, outcome, abandoned }
    }

    /// Queues a chunk without waiting; hands it back when the queue is full.
    pub fn try_write(&self, chunk: Bytes) -> (Accepted, Option<Bytes>) {
        match self.queue.try_send(chunk) {
            Ok(()) => (Accepted::Queued, None),
            Err(TrySendError::Full(chunk)) => (Accepted::Full, Some(chunk)),
            Err(TrySendError::Closed) => (Accepted::Stopped, None),
        }
    }

    /// Queues a chunk, waiting for room; `false` when the ingest has failed (`finish` says why).
    pub async fn write(&self, chunk: Bytes) -> bool {
        self.queue.send(chunk).await
    }

    /// Ends the stream and waits for the object to be committed.
    pub async fn finish(self) -> Result<IngestResult> {
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
    options: &IngestOptions,
    abandoned: impl Fn() -> bool,
) -> Result<IngestResult> {
    let mut writer = backend.create_writer(options.size_hint)?;
    let mut hasher = DualHasher::new(options.primary.unwrap_or(HashAlgorithm::Blake3));
    for chunk in chunks {
        let chunk = chunk?;
        hasher.update(&chunk);
        options.expect.check_size_so_far(hasher.size_bytes())?;
        writer.write(chunk)?;
    }
    if abandoned() {
        return Err(Error::Aborted("the ingest was abandoned by its caller".into()));
    }
    let digests = hasher.finalize();
    options.expect.check(&digests)?;
    let committed = writer.commit(&digests.primary, &digests)?;
    Ok(ingest_result(backend.id(), &digests, committed))
}

/// Stores an object that is whole in memory: digests first, so a stored copy is found before
/// anything is written. Blocking.
pub(crate) fn store_bytes(backend: &dyn Backend, bytes: Bytes, options: &IngestOptions) -> Result<IngestResult> {
    let primary = options.primary.unwrap_or(HashAlgorithm::Blake3);
    let digests = digest_bytes(primary, &bytes, CHUNK_LEN);
    options.expect.check(&digests)?;
    let committed = backend.put(&digests.primary, &digests, bytes)?;
    Ok(ingest_result(backend.id(), &digests, committed))
}

fn ingest_result(backend_id: &str, digests: &Digests, committed: Committed) -> IngestResult {
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
