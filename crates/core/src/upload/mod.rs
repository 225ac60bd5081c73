//! Resumable uploads: an ingest spread over many calls and processes. The core owns the rules
//! (ids, offsets, hash state, expectations); a backend keeps each upload's bytes and its record,
//! one lock per upload, and stores the object at commit as an ingest would.
//!
//! After every append the record holds the offset and the hash states of exactly the bytes before
//! it (SHA-256's serialized state; BLAKE3 as the object's tree under construction, see
//! [`crate::tree`], whose pairs the backend keeps beside the bytes), so a commit digests nothing
//! again, and stores the object's tree with it.

mod calls;
mod record;

use std::time::SystemTime;

use bytes::Bytes;
use sha2::Sha256;

pub use self::record::UploadRecord;
use crate::api::Expectations;
use crate::error::{Error, Result};
use crate::hashing::{Digests, DualHasher};
use crate::identity::{Digest, HashAlgorithm};
use crate::ingest::{ingest_result, Chunks};
use crate::results::{IngestResult, UploadStatus};
use crate::storage::{Backend, Committed};
use crate::tree::{has_tree, outboard_len, GroupTree, Outboard, SavedTree};

/// Random bytes in an upload id: 128 bits.
const ID_BYTES: usize = 16;

/// An upload's id: 32 lowercase hex digits, so it is safe in a path, a key and a URL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn random() -> Result<Self> {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::io("createUpload: drawing an upload id", std::io::Error::other(e.to_string())))?;
        Ok(UploadId(hex::encode(bytes)))
    }

    /// Anything but an id this module made is `NOT_FOUND`: no such upload can exist.
    pub fn parse(text: &str) -> Result<Self> {
        let well_formed = text.len() == 2 * ID_BYTES && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(Error::UnknownUpload(format!(
                "no upload {text:?}: an upload id is {} lowercase hex digits",
                2 * ID_BYTES
            )));
        }
        Ok(UploadId(text.to_owned()))
    }

    /// A name found in a backend's listing, `None` for anything that is not an upload's.
    pub fn from_listed(name: &str) -> Option<Self> {
        UploadId::parse(name).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn not_found(&self) -> Error {
        Error::UnknownUpload(format!("no upload {:?} in any backend", self.0))
    }

    pub fn busy(&self, what: &str) -> Error {
        Error::Conflict(format!("{what}: upload {:?} has an append or a commit under way", self.0))
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One upload, locked against every other append, commit and abort (in any process) while held;
/// dropping it releases the lock. Blocking, like a writer.
pub trait UploadSession: Send {
    fn record(&self) -> &UploadRecord;

    /// Appends at the record's offset plus what this session has written.
    fn write(&mut self, chunk: Bytes) -> Result<()>;

    /// Makes the bytes up to `record.offset` durable, keeps `pairs` (the tree's, from
    /// `record.tree_len - pairs.len()` on), then replaces the record; returns the upload's new
    /// update time.
    fn save(&mut self, record: UploadRecord, pairs: &[u8]) -> Result<SystemTime>;

    /// The tree's pairs kept so far: the first `record().tree_len` bytes.
    fn tree_pairs(&self) -> Result<Vec<u8>>;

    /// Stores the bytes as the object at `address` (or finds it stored), then removes the upload
    /// and releases the lock.
    fn commit(self: Box<Self>, address: &Digest, digests: &Digests) -> Result<Committed>;

    /// Releases the lock before returning (dropping a session releases it too, perhaps later).
    fn release(self: Box<Self>) {}
}

/// The status the SPEC returns for an upload of `backend` with this record.
pub fn status(id: &UploadId, backend: &dyn Backend, record: &UploadRecord, updated_at: SystemTime) -> UploadStatus {
    UploadStatus {
        upload_id: id.to_string(),
        backend_id: backend.id().to_owned(),
        offset: record.offset,
        created_at: record.created_at,
        // A file's mtime may lag the clock a create read by a tick.
        updated_at: updated_at.max(record.created_at),
    }
}

/// Appends the chunks to a locked upload, then saves its record with the hash states of every byte
/// written, even when the stream failed or was abandoned part way; returns the saved record and
/// its update time. Blocking.
pub(crate) fn append(
    session: &mut dyn UploadSession,
    chunks: Chunks,
    abandoned: &dyn Fn() -> bool,
) -> Result<(UploadRecord, SystemTime)> {
    let before = session.record().clone();
    let mut hasher = before.hasher()?;
    let mut failure = None;
    for chunk in chunks {
        match chunk.and_then(|chunk| session.write(chunk.clone()).map(|()| chunk)) {
            Ok(chunk) => hasher.update(&chunk),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if failure.is_none() && abandoned() {
        failure = Some(Error::Aborted("appendUpload: the append was abandoned by its caller".into()));
    }
    let (record, pairs) = before.advanced(hasher);
    let updated_at = session.save(record.clone(), &pairs)?;
    match failure {
        Some(e) => Err(e),
        None => Ok((record, updated_at)),
    }
}

/// Checks every expectation against the record's digests, then stores the object. A mismatch
/// leaves the upload as it was. Blocking.
pub(crate) fn commit(
    backend: &dyn Backend,
    session: Box<dyn UploadSession>,
    expect: &Expectations,
) -> Result<IngestResult> {
    let record = session.record();
    let (digests, last_pairs) = record.finish()?;
    record.expect.check(&digests)?;
    expect.check(&digests)?;
    put_tree(backend, session.as_ref(), &digests, last_pairs);
    let committed = session.commit(&digests.primary, &digests)?;
    Ok(ingest_result(backend.id(), &digests, committed))
}

/// Stores the tree of the committed object from the pairs the appends kept and those its end adds.
/// A tree that cannot be put together is left out: a verified serve rebuilds a missing tree.
fn put_tree(backend: &dyn Backend, session: &dyn UploadSession, digests: &Digests, last: Outboard) {
    if !has_tree(digests.size_bytes) {
        return;
    }
    let Ok(mut pairs) = session.tree_pairs() else { return };
    pairs.extend_from_slice(&last.pairs);
    if pairs.len() as u64 != outboard_len(digests.size_bytes) {
        return;
    }
    let tree = Outboard { pairs: pairs.into(), ..last };
    let _ = crate::ingest::put_tree(backend, &digests.primary, &tree, false);
}

impl UploadRecord {
    /// A new, empty upload's record.
    pub fn new(primary: HashAlgorithm, expect: Expectations, created_at: SystemTime) -> Self {
        UploadRecord {
            offset: 0,
            created_at,
            primary,
            expect,
            sha256: record::saved_sha256(&<Sha256 as sha2::Digest>::new()),
            tree: SavedTree::default(),
            tree_len: 0,
        }
    }

    fn hasher(&self) -> Result<DualHasher> {
        let corrupt = || {
            let reason = format!("its hash state does not fit its offset {}", self.offset);
            Error::io("reading an upload's record", std::io::Error::other(reason))
        };
        let sha256 = record::sha256_state(&self.sha256).ok_or_else(corrupt)?;
        let tree = GroupTree::restore(self.tree.clone(), self.offset).ok_or_else(corrupt)?;
        // The pairs kept so far are exactly those the tree wrote: a record saying otherwise is damaged.
        if tree.pairs_len() != self.tree_len {
            return Err(corrupt());
        }
        Ok(DualHasher::resume(self.primary, tree, sha256, self.offset))
    }

    /// This record once the hasher's bytes are appended, and the tree's pairs those bytes wrote.
    fn advanced(&self, hasher: DualHasher) -> (Self, Vec<u8>) {
        let (tree, sha256, size_bytes) = hasher.into_states();
        let mut tree = tree.expect("an upload's hasher builds its tree");
        let pairs = tree.take_pairs();
        let record = UploadRecord {
            offset: size_bytes,
            sha256: record::saved_sha256(&sha256),
            tree: tree.save(),
            tree_len: self.tree_len + pairs.len() as u64,
            ..self.clone()
        };
        (record, pairs)
    }

    /// The digests of the bytes so far, from the saved states alone.
    pub fn digests(&self) -> Result<Digests> {
        Ok(self.finish()?.0)
    }

    /// The digests, and the root and last pairs of the tree (those no append has written).
    fn finish(&self) -> Result<(Digests, Outboard)> {
        Ok(self.hasher()?.finalize_with_tree())
    }
}
