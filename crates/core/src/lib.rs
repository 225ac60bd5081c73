//! artifactstore-core: the byte-handling core of the artifact store. It names a stream of bytes by
//! its content (BLAKE3, with SHA-256 alongside, in one pass), stores it in a backend, and serves,
//! verifies and deletes it again. No Node.js here: the napi binding and the future daemon both sit
//! on top of [`DataPlane`].

pub mod api;
mod blocking;
pub mod buffers;
mod chunk_queue;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod hashing;
pub mod identity;
pub mod ingest;
pub mod metrics;
pub mod plane;
pub mod quick_lane;
pub mod results;
pub mod storage;
pub mod tree;
pub mod upload;
mod verified;
pub mod wire;

pub use api::{
    AppendRequest, ByteRange, CommitUploadRequest, DeleteRequest, Expectations, FindMissingRequest, HealthRequest,
    IngestHints, IngestRequest, ListRequest, ListUploadsRequest, MetricsRequest, ObjectPage, Operation,
    PurgeUploadsRequest, ScrubPage, ScrubRequest, ServeHead, ServeRequest, StatRequest, TouchRequest, Transfer,
    UploadPage, UploadRequest, VerifyRequest, OPERATIONS,
};
pub use bytes::Bytes;
pub use config::{BackendOptions, PlaneConfig};
pub use error::{Error, Result};
pub use identity::{ContentAddress, Digest, HashAlgorithm};
pub use ingest::{Ingest, WriteOutcome};
pub use plane::{DataPlane, Served};
pub use quick_lane::{QuickLane, Ticket};
pub use results::{
    AbortedUpload, BackendHealth, BackendKind, BackendStatus, DeletionResult, IngestResult, ObjectInfo, PurgedUploads,
    ScrubProgress, ScrubReport, StorageReceipt, UploadStatus, VerifyResult,
};
pub use storage::ObjectReader;
