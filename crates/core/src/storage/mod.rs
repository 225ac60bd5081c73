//! Where objects live. One trait, [`Backend`], and its implementations; the data plane above it
//! hashes, checks and routes, and never touches a file or a key itself.

pub mod fs;
pub mod s3;
mod served;

use std::ops::Range;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::api::{ByteRange, DeleteRequest, IngestRequest, ListRequest, ObjectPage, ServeRequest};
use crate::error::{Error, Result};
use crate::hashing::Digests;
use crate::identity::{ContentAddress, HashAlgorithm};
use crate::results::{BackendHealth, ObjectInfo};
use crate::tree;
use crate::upload::{UploadId, UploadRecord, UploadSession};
pub(crate) use served::{ServedObject, READ_AHEAD_CHUNKS};

/// Reads of a served object and writes during an ingest move in chunks of this size.
pub const CHUNK_LEN: usize = 1 << 20;

#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    fn id(&self) -> &str;

    /// Starts a new object whose address is not known until all of its bytes are written.
    /// Blocking, like the writer it returns: called from the ingest's own thread.
    fn create_writer(&self, request: &IngestRequest) -> Result<Box<dyn ObjectWriter>>;

    /// Stores an object that is whole in memory and already digested. Blocking.
    fn put(&self, address: &ContentAddress, digests: &Digests, bytes: Bytes) -> Result<Committed>;

    /// Whether a `put` of a few KiB takes microseconds, not a device flush or a network round trip:
    /// such puts are worth waiting for in place (see [`crate::QuickLane`]).
    fn puts_small_objects_quickly(&self) -> bool {
        false
    }

    /// Opens the requested object, or its byte range, for reading: the bytes [`read_range`] says.
    /// Fails with `NOT_FOUND` or `INVALID_RANGE` before any byte is read.
    async fn open(&self, request: &ServeRequest) -> Result<Box<dyn ObjectReader>>;

    /// Keeps an object's tree file beside it (see [`crate::tree`]): before the object is committed,
    /// so that a visible object has its tree. A tree already there is kept (trees are
    /// deterministic), unless `replace` (it was found damaged). Blocking.
    fn put_tree(&self, address: &ContentAddress, tree_file: Bytes, replace: bool) -> Result<()>;

    /// Opens an object's tree file; `None` when it has none. An open tree stays readable when its
    /// object is deleted meanwhile, as the object's open reader does (where the backend allows).
    async fn open_tree(&self, address: &ContentAddress) -> Result<Option<Box<dyn TreeFile>>>;

    /// Re-reads an object whole and digests what it holds.
    async fn digest(&self, address: &ContentAddress) -> Result<HeldObject>;

    /// The primary address of the object `address` names: itself, or for `sha256:<hex>` with no
    /// SHA-256-primary object of that digest, the BLAKE3-primary object whose SHA-256 it is. Reads
    /// no object bytes; an address that names nothing comes back as it is.
    async fn resolve(&self, address: &ContentAddress) -> Result<ContentAddress>;

    /// What the catalogue knows of an object (by its primary address), without reading its bytes.
    async fn stat(&self, address: &ContentAddress) -> Result<ObjectInfo>;

    /// Whether [`Self::stat_blocking`] answers in microseconds (a local filesystem, not a network
    /// round trip): worth running on a quick lane and waiting for in place (see [`crate::QuickLane`]).
    fn answers_in_place(&self) -> bool {
        false
    }

    /// [`Self::resolve`], then [`Self::stat`], on the caller's thread. Blocking.
    fn stat_blocking(&self, address: &ContentAddress) -> Result<ObjectInfo>;

    /// Lets go of what the backend holds open (the data plane is closing; calls under way finish).
    fn close(&self) {}

    /// [`Self::stat_blocking`] where the answer is in memory already (the kernel's caches, the
    /// backend's), so that asking cannot wait for a device; `None` where it is not. Safe to call
    /// on an event loop's thread.
    fn stat_cached(&self, _address: &ContentAddress) -> Option<Result<ObjectInfo>> {
        None
    }

    /// Sets an object's touch time to now; `NOT_FOUND` when absent.
    async fn touch(&self, address: &ContentAddress) -> Result<ObjectInfo>;

    /// One page of the backend's objects; `request.limit` is set and at most [`crate::api::IN_PROCESS_LIST_PAGE_LEN`].
    async fn list(&self, request: &ListRequest) -> Result<ObjectPage>;

    /// The names under `objects/` after `after`, ascending, at most `limit`, whatever each is (a
    /// scrub checks them all).
    async fn addresses(&self, after: Option<&ContentAddress>, limit: usize) -> Result<Vec<ContentAddress>>;

    /// Moves a corrupt object out of `objects/` to the same path below `quarantine/`, never deleting
    /// a byte; `false` when it was gone already.
    async fn quarantine(&self, address: &ContentAddress) -> Result<bool>;

    /// The addresses (of either digest) the backend does not hold, in the order given.
    async fn find_missing(&self, addresses: &[ContentAddress]) -> Result<Vec<ContentAddress>>;

    /// Removes an object (by its primary address), unless the request's `unless_touched_since`
    /// keeps it. Holds against ingests and touches of the same object at the same time: one that
    /// began at or after that time and resolved leaves the object present and whole.
    async fn delete(&self, request: &DeleteRequest) -> Result<Deletion>;

    /// Probes the backend for real; never fails, an unhealthy backend says why in `detail`.
    async fn health(&self) -> BackendHealth;

    /// Removes temporary data left behind by ingests that died; returns how many items it removed.
    async fn sweep(&self) -> Result<u64>;

    // Resumable uploads (see `crate::upload`); all blocking.

    /// Makes a new upload with this record; returns its update time.
    fn create_upload(&self, id: &UploadId, record: &UploadRecord) -> Result<SystemTime>;

    /// An upload's record and update time; `None` when this backend has no such upload.
    fn read_upload(&self, id: &UploadId) -> Result<Option<(UploadRecord, SystemTime)>>;

    /// Locks an upload for `what` (an append or a commit): `CONFLICT` while another holds it, in
    /// any process; `None` when this backend has no such upload.
    fn lock_upload(&self, id: &UploadId, what: &str) -> Result<Option<Box<dyn UploadSession>>>;

    /// Removes an upload and its bytes: `CONFLICT` while it is locked, `false` when absent.
    fn remove_upload(&self, id: &UploadId) -> Result<bool>;

    /// The ids of every upload this backend holds, in no particular order.
    fn upload_ids(&self) -> Result<Vec<UploadId>>;
}

/// The receiving end of an ingest. It is driven from a blocking thread (the ingest's own), so its
/// methods may block. Dropping a writer without `commit` removes everything it wrote.
pub trait ObjectWriter: Send {
    fn write(&mut self, chunk: Bytes) -> Result<()>;

    /// Makes the object visible under `address`, or finds it already there (deduplicated).
    fn commit(self: Box<Self>, address: &ContentAddress, digests: &Digests) -> Result<Committed>;
}

/// An object's tree file, open for reading.
#[async_trait]
pub trait TreeFile: Send {
    fn file_len(&self) -> u64;
    /// `len` bytes from `offset`, which the file holds.
    async fn read_at(&mut self, offset: u64, len: u64) -> Result<Bytes>;
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    Absent,
    /// Touched at this time, not before the request's `unless_touched_since`: kept.
    Kept(SystemTime),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub locator: String,
    pub stored_at: SystemTime,
    pub deduplicated: bool,
}

#[async_trait]
pub trait ObjectReader: Send {
    /// Bytes this reader yields in all.
    fn size_bytes(&self) -> u64;
    /// The whole object's size.
    fn total_size_bytes(&self) -> u64;
    /// The next chunk, `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>>;
}

/// What a backend found when it re-read an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeldObject {
    /// A file or key whose bytes digest to these.
    Digested(Digests),
    /// Something that is not an object sits where the object belongs (a directory, a symlink).
    NotAnObject(String),
}

/// The object's path below a backend root or S3 prefix:
/// `objects/<algorithm>/<hex[0:2]>/<hex[2:4]>/<hex>`.
pub fn object_locator(address: &ContentAddress) -> String {
    let hex = address.hex();
    format!("objects/{}/{}/{}/{}", address.algorithm, &hex[0..2], &hex[2..4], hex)
}

/// Checks a half-open byte range against an object of `size` bytes: the one place ranges are
/// checked.
pub fn resolve_range(range: Option<ByteRange>, size: u64) -> Result<Range<u64>> {
    let Some(ByteRange { start, end }) = range else { return Ok(0..size) };
    let invalid = |reason| Error::InvalidRange { start, end, size, reason };
    if start > end {
        return Err(invalid("start is after end"));
    }
    if end > size {
        return Err(invalid("end is past the end of the object"));
    }
    Ok(start..end)
}

/// The bytes a serve of an object of `size` bytes reads: the requested range, widened to whole
/// groups when each group is to be checked against the object's tree.
pub fn read_range(request: &ServeRequest, size: u64) -> Result<Range<u64>> {
    let range = resolve_range(request.byte_range, size)?;
    if !request.verify || range.is_empty() {
        return Ok(range);
    }
    let (first, last) = tree::groups_covering(range.start, range.end);
    Ok(first * tree::GROUP_LEN..(last * tree::GROUP_LEN).min(size))
}

/// Where an object's tree file lives below a backend root or S3 prefix:
/// `trees/<algorithm>/<hex[0:2]>/<hex>.obao4`.
pub fn tree_locator(address: &ContentAddress) -> String {
    let hex = address.hex();
    format!("trees/{}/{}/{}{}", address.algorithm, &hex[0..2], hex, tree::TREE_SUFFIX)
}

/// Digests the chunks of a reader, for backends without a faster way to re-read an object.
pub async fn digest_reader(reader: &mut dyn ObjectReader, primary: HashAlgorithm) -> Result<Digests> {
    Ok(digest_reader_with_tree(reader, primary).await?.0)
}

/// [`digest_reader`], and the tree of the bytes read.
pub async fn digest_reader_with_tree(
    reader: &mut dyn ObjectReader,
    primary: HashAlgorithm,
) -> Result<(Digests, tree::Outboard)> {
    let mut hasher = crate::hashing::DualHasher::new(primary);
    while let Some(chunk) = reader.next_chunk().await? {
        hasher.update(&chunk);
    }
    Ok(hasher.finalize_with_tree())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_half_open_and_bounded_by_the_size() {
        let range = |start, end| Some(ByteRange { start, end });
        assert_eq!(resolve_range(None, 10).unwrap(), 0..10);
        assert_eq!(resolve_range(range(0, 0), 0).unwrap(), 0..0);
        assert_eq!(resolve_range(range(10, 10), 10).unwrap(), 10..10);
        assert_eq!(resolve_range(range(3, 7), 10).unwrap(), 3..7);
        for (start, end) in [(5, 4), (0, 11), (11, 11), (11, 12)] {
            let err = resolve_range(range(start, end), 10).unwrap_err();
            assert_eq!(err.code(), "INVALID_RANGE");
            assert!(err.to_string().contains(&format!("[{start}, {end})")), "{err}");
        }
    }

    #[test]
    fn locators_follow_the_spec_layout() {
        let address: ContentAddress =
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262".parse().unwrap();
        assert_eq!(
            object_locator(&address),
            "objects/blake3/af/13/af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
