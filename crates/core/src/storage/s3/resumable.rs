//! Resumable uploads on the S3 backend.
//!
//! ```text
//! <prefix>uploads/<id>/record        the upload's record and the multipart upload's state (CBOR)
//! <prefix>uploads/<id>/data          the key of the upload's multipart upload, completed at commit
//! <prefix>uploads/<id>/tail-<offset> the bytes after the last part, fewer than a part needs
//! <prefix>uploads/<id>/lock          the lease of the append or commit under way
//! <prefix>uploads/<id>/tree-<start>  the pairs of the object's tree one append wrote, from byte
//!                                    `start` of the tree on (see [`crate::tree`])
//! ```
//! The bytes go out as parts of a multipart upload to `data` (8 MiB each; an append that ends with
//! 5 MiB or more pending sends them as a part of their own, fewer wait in a tail object). The record
//! is written after the parts and the tail, and names the tail, so a process that dies at any point
//! leaves the last record whole: parts sent after it are sent again under the same numbers.
//!
//! The lease is a create-only PUT: a second one gets `CONFLICT`. It lasts [`LEASE`] and is renewed
//! while an append runs; a lease of a process on this host that is gone, or one expired, is taken
//! over.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::writer::{S3Writer, PART_LEN};
use super::Bucket;
use crate::error::{Error, Result};
use crate::hashing::Digests;
use crate::identity::Digest;
use crate::storage::Committed;
use crate::upload::{UploadId, UploadRecord, UploadSession};
use crate::wire::cbor;
use crate::wire::fields::{Field, Fields, MapCodec};
use crate::wire::Wire;

/// The smallest part S3 takes, but for the last.
const MIN_PART_LEN: usize = 5 << 20;
/// The name of a piece of the tree's pairs, before its start in the tree.
const TREE_PIECE: &str = "tree-";
/// How long a lease holds without renewal.
const LEASE: Duration = Duration::from_secs(60);
/// A lease is renewed once this old.
const RENEW_AFTER: Duration = Duration::from_secs(20);

/// What the record object holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stored {
    record: UploadRecord,
    updated_at: SystemTime,
    /// The multipart upload to `data`, once the first part is sent.
    multipart: Option<String>,
    /// The ETags of parts 1, 2, ...
    parts: Vec<String>,
    /// The tail's key (below the upload's), when there is one.
    tail: Option<String>,
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl MapCodec for Stored {
    const NAME: &'static str = "S3Upload";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![
            ("record", cbor::bytes(&self.record.to_cbor())),
            ("updated_at_ms", cbor::unsigned(millis(self.updated_at))),
            ("parts", cbor::array(self.parts.iter().map(|etag| cbor::text(etag)).collect())),
        ];
        if let Some(multipart) = &self.multipart {
            entries.push(("multipart", cbor::text(multipart)));
        }
        if let Some(tail) = &self.tail {
            entries.push(("tail", cbor::text(tail)));
        }
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let parts = fields.required("parts")?.array()?;
        Ok(Stored {
            record: UploadRecord::from_cbor(&fields.required("record")?.bytes()?)?,
            updated_at: UNIX_EPOCH + Duration::from_millis(fields.required("updated_at_ms")?.unsigned()?),
            parts: parts.into_iter().map(Field::text).collect::<Result<_>>()?,
            multipart: fields.optional("multipart").map(Field::text).transpose()?,
            tail: fields.optional("tail").map(Field::text).transpose()?,
        })
    }
}

impl Bucket {
    fn uploads_dir(&self) -> Path {
        Path::from(format!("{}uploads", self.prefix))
    }

    fn upload_key(&self, id: &UploadId, name: &str) -> Path {
        Path::from(format!("{}uploads/{id}/{name}", self.prefix))
    }

    pub(super) fn block_on<F: std::future::Future>(&self, future: F) -> Result<F::Output> {
        let runtime = self.runtime.as_ref().ok_or_else(|| Error::BackendUnavailable {
            backend: self.id.clone(),
            cause: "no async runtime to drive S3 requests from: the backend was opened outside one".into(),
        })?;
        Ok(runtime.block_on(future))
    }

    /// The bytes at `key`, `None` when there is no such key.
    fn get_bytes(&self, key: &Path) -> Result<Option<Bytes>> {
        let got = self.block_on(async { self.store.get(key).await?.bytes().await })?;
        match got {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.unavailable(format!("reading {key}"), &e)),
        }
    }

    pub(super) fn put_bytes(&self, key: &Path, bytes: Bytes, mode: PutMode) -> Result<std::result::Result<(), ()>> {
        let options = PutOptions { mode, ..Default::default() };
        match self.block_on(self.store.put_opts(key, PutPayload::from(bytes), options))? {
            Ok(_) => Ok(Ok(())),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Err(())),
            Err(e) => Err(self.unavailable(format!("writing {key}"), &e)),
        }
    }

    fn delete_key_blocking(&self, key: &Path) -> Result<()> {
        self.block_on(self.delete_key(key))?.map(drop)
    }

    pub(super) fn create_upload(&self, id: &UploadId, record: &UploadRecord) -> Result<SystemTime> {
        let stored = Stored {
            record: record.clone(),
            updated_at: SystemTime::now(),
            multipart: None,
            parts: vec![],
            tail: None,
        };
        let key = self.upload_key(id, "record");
        match self.put_bytes(&key, stored.to_cbor().into(), PutMode::Create)? {
            Ok(()) => Ok(stored.updated_at),
            Err(()) => Err(Error::Conflict(format!("createUpload: {key} exists already"))),
        }
    }

    fn read_stored(&self, id: &UploadId) -> Result<Option<Stored>> {
        let key = self.upload_key(id, "record");
        let Some(bytes) = self.get_bytes(&key)? else { return Ok(None) };
        let stored = Stored::from_cbor(&bytes).map_err(|e| {
            Error::io(format!("backend '{}': reading {key}", self.id), std::io::Error::other(e.to_string()))
        })?;
        Ok(Some(stored))
    }

    pub(super) fn read_upload(&self, id: &UploadId) -> Result<Option<(UploadRecord, SystemTime)>> {
        Ok(self.read_stored(id)?.map(|stored| (stored.record, stored.updated_at)))
    }

    pub(super) fn upload_ids(&self) -> Result<Vec<UploadId>> {
        let dir = self.uploads_dir();
        let listed = self
            .block_on(self.store.list_with_delimiter(Some(&dir)))?
            .map_err(|e| self.unavailable(format!("listing {dir}/"), &e))?;
        Ok(listed.common_prefixes.iter().filter_map(|p| p.filename().and_then(UploadId::from_listed)).collect())
    }

    /// Removes everything of an upload that holds no lease (`CONFLICT` while one does).
    pub(super) fn remove_upload(self: &Arc<Self>, id: &UploadId) -> Result<bool> {
        let Some(lease) = Lease::take(self.clone(), id, "abortUpload")? else { return Ok(false) };
        if self.read_stored(id)?.is_none() {
            lease.release();
            return Ok(false);
        }
        let removed = self.remove_stored(id);
        lease.release();
        removed.map(|()| true)
    }

    /// Removes an upload's multipart uploads and keys (all of them, with any tail a killed append
    /// left behind) but its lock, which goes with the lease.
    fn remove_stored(&self, id: &UploadId) -> Result<()> {
        // Every multipart upload to the data key: the recorded one, and any a process that died
        // started before recording it.
        self.block_on(super::uploads::abort_under(self, &format!("{}uploads/{id}/", self.prefix), |_| true))??;
        let dir = Path::from(format!("{}uploads/{id}", self.prefix));
        let keys = self.block_on(async {
            use futures::TryStreamExt;
            self.store.list(Some(&dir)).map_ok(|meta| meta.location).try_collect::<Vec<_>>().await
        })?;
        let keys = keys.map_err(|e| self.unavailable(format!("listing {dir}/"), &e))?;
        let record = self.upload_key(id, "record");
        let lock = self.upload_key(id, "lock");
        for key in keys.iter().filter(|key| **key != record && **key != lock) {
            self.delete_key_blocking(key)?;
        }
        // The record last: an upload whose removal died half way is still there to remove.
        self.delete_key_blocking(&record)
    }

    pub(super) fn lock_upload(self: &Arc<Self>, id: &UploadId, what: &str) -> Result<Option<Box<dyn UploadSession>>> {
        let Some(lease) = Lease::take(self.clone(), id, what)? else { return Ok(None) };
        let Some(stored) = self.read_stored(id)? else {
            lease.release();
            return Ok(None);
        };
        let tail = match &stored.tail {
            Some(tail) => {
                let key = self.upload_key(id, tail);
                let bytes = self.get_bytes(&key)?;
                bytes.ok_or_else(|| Error::io(format!("reading {key}"), std::io::ErrorKind::NotFound.into()))?
            }
            None => Bytes::new(),
        };
        let pending_len = tail.len();
        let pending = if tail.is_empty() { vec![] } else { vec![tail] };
        Ok(Some(Box::new(S3UploadSession {
            bucket: self.clone(),
            id: id.clone(),
            stored,
            pending,
            pending_len,
            lease,
        })))
    }
}

/// The lease of one upload: given back by `release` (or, dropped, in the background).
struct Lease {
    bucket: Arc<Bucket>,
    key: Path,
    renewed: Instant,
    released: bool,
}

impl Lease {
    /// Takes the upload's lease for `what`: `CONFLICT` while another holds it; `None` when the
    /// upload has no record (then no lease is left behind).
    fn take(bucket: Arc<Bucket>, id: &UploadId, what: &str) -> Result<Option<Lease>> {
        if bucket.read_stored(id)?.is_none() {
            return Ok(None);
        }
        let key = bucket.upload_key(id, "lock");
        for _ in 0..2 {
            if bucket.put_bytes(&key, holder().into(), PutMode::Create)?.is_ok() {
                return Ok(Some(Lease { bucket, key, renewed: Instant::now(), released: false }));
            }
            match bucket.get_bytes(&key)? {
                Some(held) if !stale(&held) => return Err(id.busy(what)),
                // Expired, or its process is gone: taken over.
                Some(_) => bucket.delete_key_blocking(&key)?,
                None => {}
            }
        }
        Err(id.busy(what))
    }

    fn renew_if_old(&mut self) -> Result<()> {
        if self.renewed.elapsed() >= RENEW_AFTER {
            let _ = self.bucket.put_bytes(&self.key, holder().into(), PutMode::Overwrite)?;
            self.renewed = Instant::now();
        }
        Ok(())
    }

    /// Gives the lease back before returning, so that the next call finds the upload free.
    /// Blocking.
    fn release(mut self) {
        self.released = true;
        let _ = self.bucket.delete_key_blocking(&self.key);
    }
}

impl Drop for Lease {
    /// Where a lease is dropped unreleased (perhaps on an async thread, which must not block),
    /// it is given back in the background.
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Some(runtime) = &self.bucket.runtime {
            let (store, key) = (self.bucket.store.clone(), self.key.clone());
            runtime.spawn(async move { store.delete(&key).await });
        }
    }
}

/// The lease's text: `<host> <pid> <expiry in ms since the epoch>`.
fn holder() -> String {
    format!("{} {} {}", hostname(), std::process::id(), millis(SystemTime::now() + LEASE))
}

fn stale(held: &[u8]) -> bool {
    let text = String::from_utf8_lossy(held);
    let fields: Vec<&str> = text.split(' ').collect();
    let [host, pid, expiry] = fields[..] else { return true };
    let expired = expiry.parse::<u64>().map_or(true, |expiry| expiry < millis(SystemTime::now()));
    let gone = host == hostname() && pid.parse::<u32>().is_ok_and(|pid| !process_alive(pid));
    expired || gone
}

fn hostname() -> String {
    let mut name = [0u8; 256];
    if unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } != 0 {
        return String::new();
    }
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..len]).into_owned()
}

fn process_alive(pid: u32) -> bool {
    match libc::pid_t::try_from(pid) {
        Ok(pid) if pid > 0 => unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() != libc::ESRCH },
        _ => true,
    }
}

struct S3UploadSession {
    bucket: Arc<Bucket>,
    id: UploadId,
    stored: Stored,
    /// The tail and what was written since, not yet sent as a part.
    pending: Vec<Bytes>,
    pending_len: usize,
    lease: Lease,
}

impl S3UploadSession {
    /// Sends the first `len` pending bytes as the next part.
    fn send_part(&mut self, len: usize) -> Result<()> {
        let data = self.bucket.upload_key(&self.id, "data");
        let multipart = match &self.stored.multipart {
            Some(multipart) => multipart.clone(),
            None => {
                let created = self.bucket.block_on(self.bucket.store.create_multipart(&data))?;
                let multipart =
                    created.map_err(|e| self.bucket.unavailable(format!("starting an upload to {data}"), &e))?;
                self.stored.multipart = Some(multipart.clone());
                multipart
            }
        };
        let payload = PutPayload::from_iter(take_front(&mut self.pending, len));
        self.pending_len -= len;
        let index = self.stored.parts.len();
        let sent = self.bucket.block_on(self.bucket.store.put_part(&data, &multipart, index, payload))?;
        let part = sent.map_err(|e| self.bucket.unavailable(format!("sending part {} of {data}", index + 1), &e))?;
        self.stored.parts.push(part.content_id);
        self.lease.renew_if_old()
    }

    /// Whether `data` holds a completed upload of `size` bytes.
    fn completed_already(&self, data: &Path, size: u64) -> Result<bool> {
        match self.bucket.block_on(self.bucket.store.head(data))? {
            Ok(meta) => Ok(meta.size == size),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.bucket.unavailable(format!("looking up {data}"), &e)),
        }
    }

    fn pending_bytes(&self) -> Bytes {
        let mut all = BytesMut::with_capacity(self.pending_len);
        self.pending.iter().for_each(|piece| all.extend_from_slice(piece));
        all.freeze()
    }
}

/// The first `len` bytes of `pieces`, taken out of it.
fn take_front(pieces: &mut Vec<Bytes>, mut len: usize) -> Vec<Bytes> {
    let mut taken = Vec::new();
    while len > 0 {
        let piece = &mut pieces[0];
        if piece.len() <= len {
            len -= piece.len();
            taken.push(pieces.remove(0));
        } else {
            taken.push(piece.split_to(len));
            len = 0;
        }
    }
    taken
}

impl UploadSession for S3UploadSession {
    fn record(&self) -> &UploadRecord {
        &self.stored.record
    }

    fn release(self: Box<Self>) {
        self.lease.release();
    }

    fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        while self.pending_len >= PART_LEN {
            self.send_part(PART_LEN)?;
        }
        Ok(())
    }

    fn save(&mut self, record: UploadRecord, pairs: &[u8]) -> Result<SystemTime> {
        if self.pending_len >= MIN_PART_LEN {
            self.send_part(self.pending_len)?;
        }
        if !pairs.is_empty() {
            let start = record.tree_len - pairs.len() as u64;
            let key = self.bucket.upload_key(&self.id, &format!("{TREE_PIECE}{start:020}"));
            let _ = self.bucket.put_bytes(&key, Bytes::copy_from_slice(pairs), PutMode::Overwrite)?;
        }
        let old_tail = self.stored.tail.take();
        if self.pending_len > 0 {
            let name = format!("tail-{}", record.offset);
            let key = self.bucket.upload_key(&self.id, &name);
            let _ = self.bucket.put_bytes(&key, self.pending_bytes(), PutMode::Overwrite)?;
            self.stored.tail = Some(name);
        }
        self.stored.record = record;
        self.stored.updated_at = SystemTime::now();
        let key = self.bucket.upload_key(&self.id, "record");
        let _ = self.bucket.put_bytes(&key, self.stored.to_cbor().into(), PutMode::Overwrite)?;
        if let Some(old) = old_tail.filter(|old| Some(old) != self.stored.tail.as_ref()) {
            self.bucket.delete_key_blocking(&self.bucket.upload_key(&self.id, &old))?;
        }
        Ok(self.stored.updated_at)
    }

    /// The pieces from 0 to the record's `tree_len`, each starting where the one before ended (a
    /// piece a killed append left beyond it is not one of them).
    fn tree_pairs(&self) -> Result<Vec<u8>> {
        let tree_len = self.stored.record.tree_len;
        let dir = Path::from(format!("{}uploads/{}", self.bucket.prefix, self.id));
        let listed =
            self.bucket.block_on(async { self.bucket.store.list(Some(&dir)).try_collect::<Vec<_>>().await })?;
        let listed = listed.map_err(|e| self.bucket.unavailable(format!("listing {dir}/"), &e))?;
        let mut starts: Vec<u64> =
            listed.iter().filter_map(|meta| meta.location.filename()?.strip_prefix(TREE_PIECE)?.parse().ok()).collect();
        starts.sort_unstable();
        let mut pairs = Vec::new();
        for start in starts.into_iter().take_while(|&start| start < tree_len) {
            if start != pairs.len() as u64 {
                break;
            }
            let key = self.bucket.upload_key(&self.id, &format!("{TREE_PIECE}{start:020}"));
            let Some(piece) = self.bucket.get_bytes(&key)? else { break };
            pairs.extend_from_slice(&piece);
        }
        pairs.truncate(tree_len as usize);
        Ok(pairs)
    }

    /// Small uploads (no part sent) are stored from memory as an ingest of them would be; others
    /// send their tail as the last part, complete the multipart upload and copy it into place.
    fn commit(mut self: Box<Self>, address: &Digest, digests: &Digests) -> Result<Committed> {
        let committed = match self.stored.multipart.clone() {
            None => S3Writer::put(self.bucket.clone(), address, digests, self.pending_bytes())?,
            Some(multipart) => {
                let data = self.bucket.upload_key(&self.id, "data");
                // A commit that completed the upload and then failed (or died) left `data` whole.
                if !self.completed_already(&data, digests.size_bytes)? {
                    if self.pending_len > 0 {
                        self.send_part(self.pending_len)?;
                    }
                    let parts = self.stored.parts.iter().map(|etag| PartId { content_id: etag.clone() }).collect();
                    let completed =
                        self.bucket.block_on(self.bucket.store.complete_multipart(&data, &multipart, parts))?;
                    completed.map_err(|e| self.bucket.unavailable(format!("completing the upload to {data}"), &e))?;
                }
                S3Writer::commit_completed(self.bucket.clone(), data, address, digests)?
            }
        };
        self.bucket.remove_stored(&self.id)?;
        self.lease.release();
        Ok(committed)
    }
}
