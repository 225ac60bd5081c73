//! Writing an object whose key is not known until its last byte is in.
//!
//! Up to one part's worth, the chunks stay in memory and go out in one create-only PUT under the
//! final key. Past that, they stream by multipart upload to a staging key, at most
//! [`PARTS_IN_FLIGHT`] parts uploading while the next fills, and commit copies the completed
//! staging object to its final key. The writer runs on the ingest's blocking thread, so it drives
//! the async client with `block_on`.

use std::future::Future;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::runtime::Handle;

use super::{catalogue, Bucket};
use crate::error::{Error, Result};
use crate::hashing::Digests;
use crate::identity::ContentAddress;
use crate::storage::{Committed, ObjectWriter};

/// The size of a multipart upload's parts, and the most an object sent in one PUT may have.
pub(super) const PART_LEN: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 2;
/// Objects up to this size go straight to their create-only PUT, without a HEAD first.
const SEND_WITHOUT_ASKING: usize = 256 * 1024;
/// How long dropping an unfinished writer waits for its upload to be removed.
const CLEANUP_WAIT: Duration = Duration::from_secs(30);

pub(super) struct S3Writer {
    bucket: Arc<Bucket>,
    runtime: Handle,
    /// The ingest's thread, the only one on which dropping the writer may wait.
    owner: ThreadId,
    state: State,
}

enum State {
    /// Small so far: kept for one PUT.
    Buffered { chunks: Vec<Bytes>, len: usize },
    /// Streaming to a staging key.
    Uploading { staging: Path, upload: WriteMultipart },
    /// Uploaded to a staging key, not yet copied to the final one.
    Staged(Path),
    /// A resumable upload's completed object, to copy to the final key; the upload's to remove.
    Completed(Path),
    /// Nothing of this writer's left on the server but a committed object.
    Done,
}

/// What commit found at the final key.
enum Placed {
    /// Stored now, at this time (as its metadata or record says).
    New(SystemTime),
    AlreadyThere(SystemTime),
}

impl S3Writer {
    /// `size_hint` past one part starts the multipart upload now instead of after a part's worth.
    pub(super) fn create(bucket: Arc<Bucket>, size_hint: Option<u64>) -> Result<Self> {
        let runtime = bucket.runtime.clone().ok_or_else(|| Error::BackendUnavailable {
            backend: bucket.id.clone(),
            cause: "no async runtime to drive S3 requests from: the backend was opened outside one".into(),
        })?;
        let state = State::Buffered { chunks: Vec::new(), len: 0 };
        let mut writer = S3Writer { bucket, runtime, owner: std::thread::current().id(), state };
        if size_hint.is_some_and(|size| size > PART_LEN as u64) {
            writer.start_upload()?;
        }
        Ok(writer)
    }

    /// Stores an object already whole in memory and digested: when an intact copy is stored, it
    /// costs one HEAD and sends nothing.
    pub(super) fn put(
        bucket: Arc<Bucket>,
        address: &ContentAddress,
        digests: &Digests,
        bytes: Bytes,
    ) -> Result<Committed> {
        let mut writer = Box::new(S3Writer::create(bucket, None)?);
        let target = writer.bucket.object_path(address);
        // Sending a small object costs less than asking first: its create-only PUT finds a stored
        // copy anyway. A larger one is worth a HEAD that may spare the upload.
        if bytes.len() > SEND_WITHOUT_ASKING && writer.intact_object_at(address, digests.size_bytes)?.is_some() {
            if let Some(stored_at) = writer.touched_intact_object(address, digests)? {
                return Ok(Committed { locator: target.to_string(), stored_at, deduplicated: true });
            }
        }
        writer.write(bytes)?;
        writer.commit(address, digests)
    }

    /// Stores the object a resumable upload completed at `completed` as an ingest would, leaving
    /// that key where it is (the upload removes it once the object is in place).
    pub(super) fn commit_completed(
        bucket: Arc<Bucket>,
        completed: Path,
        address: &ContentAddress,
        digests: &Digests,
    ) -> Result<Committed> {
        let mut writer = Box::new(S3Writer::create(bucket, None)?);
        writer.state = State::Completed(completed);
        writer.commit(address, digests)
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Starts a multipart upload and hands it what was buffered so far.
    fn start_upload(&mut self) -> Result<()> {
        let staging = self.bucket.new_staging_path();
        let upload = self
            .block_on(self.bucket.store.put_multipart(&staging))
            .map_err(|e| self.bucket.unavailable(format!("starting a multipart upload to {staging}"), &e))?;
        let upload = WriteMultipart::new_with_chunk_size(upload, PART_LEN);
        if let State::Buffered { chunks, .. } = std::mem::replace(&mut self.state, State::Uploading { staging, upload })
        {
            chunks.into_iter().try_for_each(|chunk| self.upload(chunk))?;
        }
        Ok(())
    }

    /// Queues a chunk for upload once fewer than [`PARTS_IN_FLIGHT`] parts are under way.
    fn upload(&mut self, chunk: Bytes) -> Result<()> {
        let State::Uploading { staging, upload } = &mut self.state else { unreachable!("not uploading") };
        self.runtime
            .block_on(upload.wait_for_capacity(PARTS_IN_FLIGHT))
            .map_err(|e| self.bucket.unavailable(format!("uploading a part to {staging}"), &e))?;
        upload.put(chunk);
        Ok(())
    }

    /// One create-only PUT; an object already there is kept if it has the right size and is still
    /// there once touched (touch first, then look: see `Bucket::delete_unless_touched`).
    fn put_whole(&self, address: &ContentAddress, chunks: Vec<Bytes>, digests: &Digests) -> Result<Placed> {
        let target = self.bucket.object_path(address);
        let payload = PutPayload::from_iter(chunks);
        let doing = || format!("storing {target}");
        let stored_at = SystemTime::now();
        let attributes = catalogue::object_attributes(&digests.sha256.bytes, stored_at);
        let options = PutOptions { mode: PutMode::Create, attributes: attributes.clone(), ..Default::default() };
        let existing = match self.block_on(self.bucket.store.put_opts(&target, payload.clone(), options)) {
            Ok(_) => return Ok(Placed::New(stored_at)),
            Err(object_store::Error::AlreadyExists { .. }) => self.touched_intact_object(address, digests)?,
            // A server may answer a create-only PUT of a key that a concurrent PUT just created
            // by resetting the connection mid-body (versitygw does): the object there settles it.
            Err(e) => match self.touched_intact_object(address, digests) {
                Ok(Some(stored_at)) => Some(stored_at),
                _ => return Err(self.bucket.unavailable(doing(), &e)),
            },
        };
        if let Some(stored_at) = existing {
            return Ok(Placed::AlreadyThere(stored_at));
        }
        // What is there is not the object (or it went away): overwritten. A conditional delete
        // putting the object back at the same moment may make the server refuse this write with a
        // conflict (versitygw's posix backend answers 409): then the object is there again, or
        // the write is tried again.
        let options = PutOptions { attributes, ..Default::default() };
        for tries in 1.. {
            match self.block_on(self.bucket.store.put_opts(&target, payload.clone(), options.clone())) {
                Ok(_) => return Ok(Placed::New(stored_at)),
                Err(object_store::Error::AlreadyExists { .. }) if tries < 5 => {
                    if let Some(stored_at) = self.touched_intact_object(address, digests)? {
                        return Ok(Placed::AlreadyThere(stored_at));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5 * tries));
                }
                Err(e) => return Err(self.bucket.unavailable(doing(), &e)),
            }
        }
        unreachable!("the loop returns")
    }

    /// Completes the upload, then copies the staging object to its place unless an intact object
    /// is there already (and still there once touched).
    fn place_upload(
        &mut self,
        staging: Path,
        upload: WriteMultipart,
        address: &ContentAddress,
        digests: &Digests,
    ) -> Result<Placed> {
        self.block_on(upload.finish())
            .map_err(|e| self.bucket.unavailable(format!("completing the upload to {staging}"), &e))?;
        self.state = State::Staged(staging.clone());
        let placed = self.place_staged(&staging, address, digests)?;
        // Best effort: once the object is in place, a leftover staging object is the sweep's.
        let _ = self.block_on(self.bucket.store.delete(&staging));
        self.state = State::Done;
        Ok(placed)
    }

    /// Copies a whole object at `staging` to its place unless an intact object is there already
    /// (and still there once touched).
    fn place_staged(&self, staging: &Path, address: &ContentAddress, digests: &Digests) -> Result<Placed> {
        let target = self.bucket.object_path(address);
        Ok(match self.intact_object_at(address, digests.size_bytes)? {
            Some(_) => match self.touched_intact_object(address, digests)? {
                Some(stored_at) => Placed::AlreadyThere(stored_at),
                None => self.copy(staging, &target, address, digests)?,
            },
            None => self.copy(staging, &target, address, digests)?,
        })
    }

    /// Touches the object at the address, then looks for an intact copy there: when it was stored.
    fn touched_intact_object(&self, address: &ContentAddress, digests: &Digests) -> Result<Option<SystemTime>> {
        self.block_on(self.bucket.record_touch(address, Some(&digests.sha256.bytes)))?;
        self.intact_object_at(address, digests.size_bytes)
    }

    /// A create-only copy where the server supports one; a plain copy otherwise, which at worst
    /// overwrites an object with the same content. The copy carries no SHA-256 in its metadata (the
    /// upload began before it was known): the record beside it, written first, holds it.
    fn copy(&self, staging: &Path, target: &Path, address: &ContentAddress, digests: &Digests) -> Result<Placed> {
        let doing = || format!("copying {staging} to {target}");
        let stored_at = SystemTime::now();
        self.block_on(self.bucket.record_store(address, &digests.sha256.bytes, stored_at))?;
        match self.block_on(self.bucket.copier.copy_if_not_exists(staging, target)) {
            Ok(()) => return Ok(Placed::New(stored_at)),
            Err(object_store::Error::AlreadyExists { .. }) => {
                if let Some(stored_at) = self.intact_object_at(address, digests.size_bytes)? {
                    return Ok(Placed::AlreadyThere(stored_at));
                }
            }
            Err(object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. }) => {}
            Err(e) if is_not_implemented(&e) => {}
            Err(e) => return Err(self.bucket.unavailable(doing(), &e)),
        }
        self.block_on(self.bucket.store.copy(staging, target)).map_err(|e| self.bucket.unavailable(doing(), &e))?;
        Ok(Placed::New(stored_at))
    }

    /// When the object at `target` was stored, if there is one of the right size. One of another
    /// size (left by corruption) is as good as none: the new copy replaces it.
    fn intact_object_at(&self, address: &ContentAddress, size_bytes: u64) -> Result<Option<SystemTime>> {
        let Some(head) = self.block_on(self.bucket.head_object(address))? else { return Ok(None) };
        if head.meta.size != size_bytes {
            return Ok(None);
        }
        let record = self.block_on(self.bucket.record(address))?;
        Ok(Some(head.stored_at(&record)))
    }

    /// What must be removed if the writer goes away now.
    fn cleanup(&mut self) -> Option<BoxFuture<'static, ()>> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Uploading { upload, .. } => Some(
                async move {
                    let _ = upload.abort().await;
                }
                .boxed(),
            ),
            State::Staged(staging) => {
                let store = self.bucket.store.clone();
                Some(
                    async move {
                        let _ = store.delete(&staging).await;
                    }
                    .boxed(),
                )
            }
            State::Buffered { .. } | State::Completed(_) | State::Done => None,
        }
    }
}

/// A server that answers the conditional copy with 501 Not Implemented.
fn is_not_implemented(error: &object_store::Error) -> bool {
    let message = super::client::describe(error);
    message.contains("501 Not Implemented")
}

impl ObjectWriter for S3Writer {
    fn write(&mut self, chunk: Bytes) -> Result<()> {
        match &mut self.state {
            State::Buffered { chunks, len } => {
                *len += chunk.len();
                chunks.push(chunk);
                if *len > PART_LEN {
                    self.start_upload()?;
                }
                Ok(())
            }
            State::Uploading { .. } => self.upload(chunk),
            State::Staged(_) | State::Completed(_) | State::Done => unreachable!("written after commit"),
        }
    }

    /// Indexes the object by its SHA-256 first, places it, then checks the index (a conditional
    /// delete of an older copy may have removed the entry meanwhile).
    fn commit(mut self: Box<Self>, address: &ContentAddress, digests: &Digests) -> Result<Committed> {
        let target = self.bucket.object_path(address);
        let sha256 = &digests.sha256.bytes;
        self.block_on(self.bucket.write_index(sha256, address))?;
        let placed = match std::mem::replace(&mut self.state, State::Done) {
            State::Buffered { chunks, .. } => self.put_whole(address, chunks, digests)?,
            State::Uploading { staging, upload } => self.place_upload(staging, upload, address, digests)?,
            State::Completed(completed) => self.place_staged(&completed, address, digests)?,
            State::Staged(_) | State::Done => unreachable!("committed twice"),
        };
        let (stored_at, deduplicated) = match placed {
            Placed::New(stored_at) => {
                self.block_on(self.bucket.ensure_index(sha256, address))?;
                (stored_at, false)
            }
            Placed::AlreadyThere(stored_at) => (stored_at, true),
        };
        Ok(Committed { locator: target.to_string(), stored_at, deduplicated })
    }
}

impl Drop for S3Writer {
    /// Aborts the upload or deletes the staging object. On the ingest's thread it waits, so that an
    /// aborted ingest has removed its data when its caller hears back; anywhere else (an async
    /// thread, where blocking is not allowed) the removal just runs on.
    fn drop(&mut self) {
        let Some(cleanup) = self.cleanup() else { return };
        // A plain channel, no tokio timer: a runtime shutting down drops the task, and with it the
        // sender, instead of panicking in a drop.
        let (removed, removal) = std::sync::mpsc::channel::<()>();
        self.runtime.spawn(async move {
            cleanup.await;
            let _ = removed.send(());
        });
        if std::thread::current().id() == self.owner {
            let _ = removal.recv_timeout(CLEANUP_WAIT);
        }
    }
}
