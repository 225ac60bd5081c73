//! What the operations return: the SPEC's result types, in Rust.

use std::time::SystemTime;

use crate::identity::{ContentAddress, Digest};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageReceipt {
    pub backend_id: String,
    /// fs: the object's path relative to the backend root; s3: the object key.
    pub locator: String,
    pub size_bytes: u64,
    pub stored_at: SystemTime,
    /// The object was already present and nothing new was written.
    pub deduplicated: bool,
}

impl StorageReceipt {
    /// `stored_at` in RFC 3339 UTC with milliseconds, e.g. `2026-11-24T04:06:36.000Z`.
    pub fn stored_at_rfc3339(&self) -> String {
        rfc3339_millis(self.stored_at)
    }
}

/// The one text form of a time in results: RFC 3339 UTC with milliseconds.
pub fn rfc3339_millis(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestResult {
    pub primary_digest: Digest,
    pub sha256_digest: Digest,
    pub size_bytes: u64,
    pub receipt: StorageReceipt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyResult {
    pub content_address: ContentAddress,
    pub verified: bool,
    pub actual_primary_digest: Digest,
    pub actual_sha256_digest: Digest,
    pub actual_size_bytes: u64,
    pub mismatch: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletionResult {
    pub content_address: ContentAddress,
    pub backend_id: String,
    /// false: the object was absent, or kept because it was touched (then `touched_at` says when).
    pub deleted: bool,
    pub touched_at: Option<SystemTime>,
}

/// What the catalogue knows of an object, read without reading its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The primary digest.
    pub content_address: ContentAddress,
    pub sha256_digest: Digest,
    pub size_bytes: u64,
    pub backend_id: String,
    pub locator: String,
    /// When it was first stored.
    pub stored_at: SystemTime,
    /// The last ingest or touch that found it present (`stored_at` at first).
    pub touched_at: SystemTime,
}

/// An upload in progress: an ingest spread over many calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadStatus {
    pub upload_id: String,
    pub backend_id: String,
    /// Bytes appended so far: where the next append starts.
    pub offset: u64,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// What `abortUpload` did: `aborted` is false when the upload was absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbortedUpload {
    pub upload_id: String,
    pub aborted: bool,
}

/// What `purgeUploads` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgedUploads {
    pub purged: u64,
}

/// How far a scrub has come, reported now and then while it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubProgress {
    pub checked_objects: u64,
    pub checked_bytes: u64,
    pub corrupt_objects: u64,
    /// The text form of the last address checked.
    pub last_address: Option<String>,
}

/// What a scrub of one backend found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubReport {
    pub backend_id: String,
    pub checked_objects: u64,
    pub checked_bytes: u64,
    /// The objects that failed, each as `verifyObject` reports it.
    pub corrupt: Vec<VerifyResult>,
    pub quarantined: u64,
    /// false when stopped by its signal.
    pub complete: bool,
    /// When not complete: pass it as `after` to go on.
    pub resume_after: Option<String>,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Fs,
    S3,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Fs => "fs",
            BackendKind::S3 => "s3",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendHealth {
    pub backend_id: String,
    pub kind: BackendKind,
    pub healthy: bool,
    pub latency_micros: u64,
    pub detail: Option<String>,
    pub free_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendStatus {
    /// Every backend is healthy.
    pub healthy: bool,
    pub backends: Vec<BackendHealth>,
}
