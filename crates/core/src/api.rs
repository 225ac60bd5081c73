//! The shape of every operation: what a caller sends (one request type per operation, beside the
//! result it gets back, in [`crate::results`]) and the one table of operations that the Node
//! binding, the daemon and the daemon's client follow.
//!
//! Adding an operation: its request and result here and in `results`, their CBOR in `wire`, the
//! backends' work, and one line per front end (a row of [`OPERATIONS`], plus an arm of
//! [`crate::dispatch::call`] for a unary one).

use std::fmt;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::identity::{parse_hex_digest, ContentAddress, HashAlgorithm, DIGEST_LEN};

/// The SPEC's `IngestHints`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestHints {
    /// Lets a backend pre-allocate or pick an upload strategy; never an error.
    pub size_hint: Option<u64>,
    pub primary_algorithm: Option<HashAlgorithm>,
    /// Which configured backend; the default one when absent.
    pub backend_id: Option<String>,
}

/// The SPEC's `IngestExpectations`, integrity on write: a mismatch stores nothing.
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
}

/// `ingestStream`, `ingestFile` and an ingest of bytes already in memory: the SPEC's
/// `IngestOptions` without its signal. The bytes travel beside it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestRequest {
    pub hints: IngestHints,
    pub expect: Expectations,
}

impl IngestRequest {
    pub fn backend_id(&self) -> Option<&str> {
        self.hints.backend_id.as_deref()
    }

    pub fn primary(&self) -> HashAlgorithm {
        self.hints.primary_algorithm.unwrap_or(HashAlgorithm::Blake3)
    }
}

/// A half-open byte range `[start, end)`; checked against the object's size by the backend that
/// holds it (see [`crate::storage::resolve_range`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// `serveObject`: the object, or a range of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeRequest {
    pub address: ContentAddress,
    /// The whole object when absent.
    pub byte_range: Option<ByteRange>,
    pub backend_id: Option<String>,
    /// Check every byte against the object's tree before it is handed out (the default).
    pub verify: bool,
}

/// What a serve says before its first byte: which object, and how many bytes will follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeHead {
    pub content_address: ContentAddress,
    /// Bytes the serve yields: the range's length.
    pub size_bytes: u64,
    /// The whole object's size.
    pub total_size_bytes: u64,
}

/// `verifyObject`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyRequest {
    pub address: ContentAddress,
    pub backend_id: Option<String>,
}

/// `deleteObject`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteRequest {
    pub address: ContentAddress,
    pub backend_id: Option<String>,
    /// Delete only an object last touched before this time; keep one touched since.
    pub unless_touched_since: Option<SystemTime>,
}

/// `statObject`: what the catalogue knows of an object, without reading its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatRequest {
    pub address: ContentAddress,
    pub backend_id: Option<String>,
}

/// `touchObject`: sets an object's touch time to now, as an ingest that finds it present does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouchRequest {
    pub address: ContentAddress,
    pub backend_id: Option<String>,
}

/// One page of `listObjects`: the objects after `after` (all when absent), ascending by address
/// text, at most `limit` of them, only those touched before `touched_before` when given. Front ends
/// turn pages into the SPEC's async iterable, asking for the next page as the caller consumes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub backend_id: Option<String>,
    pub after: Option<ContentAddress>,
    pub limit: Option<u64>,
    pub touched_before: Option<SystemTime>,
}

/// The most objects one page of a listing holds (and the most it looks at): what bounds a
/// listing's memory, whatever the store's size.
pub const LIST_PAGE_LEN: usize = 1000;

/// [`LIST_PAGE_LEN`] for a page handed over in memory, in the caller's process, which no frame
/// bounds: there each page's fixed cost (the walk's start, the hand-off to the caller's thread
/// and back) weighs more than a page's size, which stays a few MiB at most.
pub const IN_PROCESS_LIST_PAGE_LEN: usize = 4096;

/// What one `ListRequest` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectPage {
    pub objects: Vec<crate::results::ObjectInfo>,
    /// Where the next page starts (its `after`); absent when the listing is complete.
    pub next_after: Option<ContentAddress>,
}

/// One page of `scrub`: verifies the objects after `after` (all when absent), ascending, and with
/// `quarantine` moves each corrupt one to `quarantine/`. A page ends after [`LIST_PAGE_LEN`]
/// objects or about [`SCRUB_PAGE_TIME`] of work (with `bytes_per_second`, of the rate's work), so
/// that a front end reports progress and honours its caller's signal between pages; the page says
/// how long the front end waits before the next one to keep to the rate (a wait it can cut short).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubRequest {
    pub backend_id: Option<String>,
    pub after: Option<ContentAddress>,
    pub quarantine: bool,
    pub bytes_per_second: Option<u64>,
}

/// How long one page of a scrub works before it returns.
pub const SCRUB_PAGE_TIME: std::time::Duration = std::time::Duration::from_millis(500);

/// What one page of a scrub found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubPage {
    /// The backend scrubbed (the default one when the request named none).
    pub backend_id: String,
    pub checked_objects: u64,
    pub checked_bytes: u64,
    /// The objects that failed, each as `verifyObject` reports it.
    pub corrupt: Vec<crate::results::VerifyResult>,
    pub quarantined: u64,
    /// The last object the page checked.
    pub last_address: Option<ContentAddress>,
    /// Where the next page starts (its `after`); absent when the scrub is complete.
    pub next_after: Option<ContentAddress>,
    /// With `bytes_per_second`: how long to wait before the next page (or, after the last one,
    /// before reporting the scrub done), so that the pages together keep to the rate.
    pub pause_ms: u64,
}

/// `findMissing`: which of these addresses the backend does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindMissingRequest {
    pub addresses: Vec<ContentAddress>,
    pub backend_id: Option<String>,
}

impl ServeRequest {
    /// The bytes `[start, end)` of the object at `address`, on the default backend.
    pub fn range(address: ContentAddress, start: u64, end: u64) -> Self {
        ServeRequest { address, byte_range: Some(ByteRange { start, end }), backend_id: None, verify: true }
    }
}

/// The requests that name only an object: the whole of it, on the default backend.
macro_rules! request_for_address {
    ($($request:ident { $($field:ident: $value:expr),* }),*) => {$(
        impl From<ContentAddress> for $request {
            fn from(address: ContentAddress) -> Self {
                $request { address, backend_id: None, $($field: $value),* }
            }
        }
    )*};
}

request_for_address!(
    ServeRequest { byte_range: None, verify: true },
    VerifyRequest {},
    DeleteRequest { unless_touched_since: None },
    StatRequest {},
    TouchRequest {}
);

/// `appendUpload`: the bytes travel beside it, and must start at the upload's current offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    pub upload_id: String,
    pub offset: u64,
}

/// `uploadStatus` and `abortUpload`: the upload, by its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRequest {
    pub upload_id: String,
}

/// `commitUpload`: expectations checked beside those given at create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitUploadRequest {
    pub upload_id: String,
    pub expect: Expectations,
}

/// One page of `listUploads`: uploads after the id `after` (all when absent), ascending by id,
/// at most `limit`, only those last updated before `updated_before` when given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListUploadsRequest {
    pub backend_id: Option<String>,
    pub updated_before: Option<SystemTime>,
    pub after: Option<String>,
    pub limit: Option<u64>,
}

/// What one `ListUploadsRequest` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadPage {
    pub uploads: Vec<crate::results::UploadStatus>,
    /// Where the next page starts (its `after`); absent when the listing is complete.
    pub next_after: Option<String>,
}

/// `purgeUploads`: removes every upload last updated before `updated_before`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeUploadsRequest {
    pub updated_before: SystemTime,
    pub backend_id: Option<String>,
}

/// `backendHealth`: takes nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthRequest {}

/// `metrics`: takes nothing; the result is the text of [`crate::metrics`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsRequest {}

/// Which way bytes flow during an operation, besides its request and its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// A request, then a result.
    Unary,
    /// The caller streams the object's bytes after the request, then gets the result.
    BytesIn,
    /// The result comes first ([`ServeHead`]), then the object's bytes.
    BytesOut,
}

/// One operation of the data plane as every front end names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The wire name: the SPEC's method name in snake_case (`verify_object`).
    pub name: &'static str,
    /// The SPEC's method name (`verifyObject`).
    pub method: &'static str,
    pub transfer: Transfer,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

const fn operation(name: &'static str, method: &'static str, transfer: Transfer) -> Operation {
    Operation { name, method, transfer }
}

/// Every operation a data plane serves, in the SPEC's order. `ingestFile` is not here: it reads a
/// path on the caller's side and ingests the bytes (`ingest_stream`), so no front end hands a path
/// to another process.
pub const OPERATIONS: &[Operation] = &[
    operation("ingest_stream", "ingestStream", Transfer::BytesIn),
    operation("serve_object", "serveObject", Transfer::BytesOut),
    operation("verify_object", "verifyObject", Transfer::Unary),
    operation("delete_object", "deleteObject", Transfer::Unary),
    operation("backend_health", "backendHealth", Transfer::Unary),
    operation("stat_object", "statObject", Transfer::Unary),
    operation("touch_object", "touchObject", Transfer::Unary),
    operation("find_missing", "findMissing", Transfer::Unary),
    operation("list_objects", "listObjects", Transfer::Unary),
    operation("scrub", "scrub", Transfer::Unary),
    operation("create_upload", "createUpload", Transfer::Unary),
    operation("append_upload", "appendUpload", Transfer::BytesIn),
    operation("upload_status", "uploadStatus", Transfer::Unary),
    operation("commit_upload", "commitUpload", Transfer::Unary),
    operation("abort_upload", "abortUpload", Transfer::Unary),
    operation("list_uploads", "listUploads", Transfer::Unary),
    operation("purge_uploads", "purgeUploads", Transfer::Unary),
    operation("metrics", "metrics", Transfer::Unary),
];

/// The operation with this wire name.
pub fn operation_named(name: &str) -> Result<&'static Operation> {
    OPERATIONS.iter().find(|op| op.name == name).ok_or_else(|| {
        let known: Vec<_> = OPERATIONS.iter().map(|op| op.name).collect();
        Error::invalid_argument(format!("unknown operation {name:?} (known: {})", known.join(", ")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_one_row_and_a_snake_case_wire_name() {
        for (index, op) in OPERATIONS.iter().enumerate() {
            assert_eq!(operation_named(op.name).unwrap(), op);
            assert!(OPERATIONS[..index].iter().all(|other| other.name != op.name), "{op} twice");
            let snake: String = op
                .method
                .chars()
                .flat_map(|c| if c.is_ascii_uppercase() { vec!['_', c.to_ascii_lowercase()] } else { vec![c] })
                .collect();
            assert_eq!(snake, op.name);
        }
    }

    #[test]
    fn an_unknown_operation_is_named() {
        let err = operation_named("drop_table").unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT");
        assert!(err.to_string().contains("\"drop_table\""), "{err}");
    }
}
