//! Core values and errors, as JavaScript sees them. Nothing here decides anything: it only copies
//! fields and turns a core error into a JS error whose message starts with the SPEC's code.

use artifactstore_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// A core error as a JS error: `"<CODE>: <message>"`, which lib/errors.ts turns into a DataPlaneError.
pub fn to_js_error(error: core::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{}: {}", error.code(), error))
}

pub fn invalid_argument(message: String) -> Error {
    to_js_error(core::Error::invalid_argument(message))
}

pub fn size(value: u64) -> i64 {
    value as i64
}

#[napi(object)]
pub struct NativeDigest {
    pub algorithm: String,
    pub hex: String,
}

impl From<core::Digest> for NativeDigest {
    fn from(digest: core::Digest) -> Self {
        NativeDigest { algorithm: digest.algorithm.as_str().to_owned(), hex: digest.hex() }
    }
}

#[napi(object)]
pub struct NativeStorageReceipt {
    pub backend_id: String,
    pub locator: String,
    pub size_bytes: i64,
    pub stored_at: String,
    pub deduplicated: bool,
}

#[napi(object)]
pub struct NativeIngestResult {
    pub primary_digest: NativeDigest,
    pub sha256_digest: NativeDigest,
    pub size_bytes: i64,
    pub receipt: NativeStorageReceipt,
}

impl From<core::IngestResult> for NativeIngestResult {
    fn from(result: core::IngestResult) -> Self {
        let receipt = &result.receipt;
        NativeIngestResult {
            primary_digest: result.primary_digest.into(),
            sha256_digest: result.sha256_digest.into(),
            size_bytes: size(result.size_bytes),
            receipt: NativeStorageReceipt {
                backend_id: receipt.backend_id.clone(),
                locator: receipt.locator.clone(),
                size_bytes: size(receipt.size_bytes),
                stored_at: receipt.stored_at_rfc3339(),
                deduplicated: receipt.deduplicated,
            },
        }
    }
}

#[napi(object)]
pub struct NativeVerifyResult {
    pub content_address: NativeDigest,
    pub verified: bool,
    pub actual_primary_digest: NativeDigest,
    pub actual_sha256_digest: NativeDigest,
    pub actual_size_bytes: i64,
    pub mismatch: Option<String>,
}

impl From<core::VerifyResult> for NativeVerifyResult {
    fn from(result: core::VerifyResult) -> Self {
        NativeVerifyResult {
            content_address: result.content_address.into(),
            verified: result.verified,
            actual_primary_digest: result.actual_primary_digest.into(),
            actual_sha256_digest: result.actual_sha256_digest.into(),
            actual_size_bytes: size(result.actual_size_bytes),
            mismatch: result.mismatch,
        }
    }
}

#[napi(object)]
pub struct NativeDeletionResult {
    pub content_address: NativeDigest,
    pub backend_id: String,
    pub deleted: bool,
}

impl From<core::DeletionResult> for NativeDeletionResult {
    fn from(result: core::DeletionResult) -> Self {
        NativeDeletionResult {
            content_address: result.content_address.into(),
            backend_id: result.backend_id,
            deleted: result.deleted,
        }
    }
}

#[napi(object)]
pub struct NativeBackendHealth {
    pub backend_id: String,
    pub kind: String,
    pub healthy: bool,
    pub latency_micros: i64,
    pub detail: Option<String>,
    pub free_bytes: Option<i64>,
    pub total_bytes: Option<i64>,
}

#[napi(object)]
pub struct NativeBackendStatus {
    pub healthy: bool,
    pub backends: Vec<NativeBackendHealth>,
}

impl From<core::BackendStatus> for NativeBackendStatus {
    fn from(status: core::BackendStatus) -> Self {
        let backends = status
            .backends
            .into_iter()
            .map(|b| NativeBackendHealth {
                backend_id: b.backend_id,
                kind: b.kind.as_str().to_owned(),
                healthy: b.healthy,
                latency_micros: size(b.latency_micros),
                detail: b.detail,
                free_bytes: b.free_bytes.map(size),
                total_bytes: b.total_bytes.map(size),
            })
            .collect();
        NativeBackendStatus { healthy: status.healthy, backends }
    }
}

/// One backend as the caller configured it; checked by the core, which names any bad field.
#[napi(object)]
pub struct NativeBackendOptions {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub root: Option<String>,
    pub durable: Option<bool>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl From<NativeBackendOptions> for core::BackendOptions {
    fn from(o: NativeBackendOptions) -> Self {
        core::BackendOptions {
            id: o.id,
            kind: o.kind,
            root: o.root,
            durable: o.durable,
            bucket: o.bucket,
            prefix: o.prefix,
            endpoint: o.endpoint,
            region: o.region,
            access_key_id: o.access_key_id,
            secret_access_key: o.secret_access_key,
            session_token: o.session_token,
        }
    }
}

#[napi(object)]
pub struct NativeIngestOptions {
    pub backend_id: Option<String>,
    pub primary_algorithm: Option<String>,
    pub size_hint: Option<i64>,
    pub expect_size_bytes: Option<i64>,
    pub expect_sha256: Option<String>,
    pub expect_primary: Option<String>,
}

impl TryFrom<NativeIngestOptions> for core::IngestOptions {
    type Error = Error;

    fn try_from(o: NativeIngestOptions) -> Result<Self> {
        let expect_size = o
            .expect_size_bytes
            .map(|size| {
                u64::try_from(size).map_err(|_| invalid_argument(format!("expect.sizeBytes {size} is negative")))
            })
            .transpose()?;
        let primary = o.primary_algorithm.as_deref().map(str::parse).transpose().map_err(to_js_error)?;
        let expect = core::Expectations::parse(expect_size, o.expect_sha256.as_deref(), o.expect_primary.as_deref())
            .map_err(to_js_error)?;
        Ok(core::IngestOptions {
            backend_id: o.backend_id,
            primary,
            size_hint: o.size_hint.and_then(|hint| u64::try_from(hint).ok()),
            expect,
        })
    }
}

/// Parses an address in the SPEC's text form.
pub fn parse_address(address: &str) -> Result<core::ContentAddress> {
    core::ContentAddress::parse(address).map_err(to_js_error)
}
