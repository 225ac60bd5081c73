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

/// An ObjectInfo as a flat array, [`ObjectInfoFields`], which lib/native/object-info.ts makes into
/// the object: napi builds an object a property at a time, interning each key, which costs a
/// `statObject` about as much as its system calls.
pub struct NativeObjectInfo(core::ObjectInfo);

/// The content address's algorithm and hex, the SHA-256 hex, sizeBytes, backendId, locator,
/// storedAt, touchedAt.
#[napi]
pub type ObjectInfoFields = (&'static str, String, String, i64, String, String, String, String);

impl From<core::ObjectInfo> for NativeObjectInfo {
    fn from(info: core::ObjectInfo) -> Self {
        NativeObjectInfo(info)
    }
}

impl ToNapiValue for NativeObjectInfo {
    unsafe fn to_napi_value(env: napi::sys::napi_env, value: Self) -> Result<napi::sys::napi_value> {
        unsafe { ToNapiValue::to_napi_value(env, fields_of(value.0)) }
    }
}

fn fields_of(info: core::ObjectInfo) -> ObjectInfoFields {
    (
        info.content_address.algorithm.as_str(),
        info.content_address.hex(),
        info.sha256_digest.hex(),
        size(info.size_bytes),
        info.backend_id,
        info.locator,
        core::results::rfc3339_millis(info.stored_at),
        core::results::rfc3339_millis(info.touched_at),
    )
}

/// A page of listObjects. A class, so that the caller can ask for the next page (`nextAfter`)
/// before it has this one's objects made (`takeObjects`), which then happens on the JS thread
/// while the core's threads find the next.
#[napi]
pub struct NativeObjectPage(core::ObjectPage);

#[napi]
impl NativeObjectPage {
    /// Where the next page starts; absent when the listing is complete.
    #[napi(getter)]
    pub fn next_after(&self) -> Option<String> {
        self.0.next_after.map(|address| address.to_string())
    }

    /// How many objects the page holds.
    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.0.objects.len() as u32
    }

    /// The page's objects as their fields (see `NativeObjectInfo`), once: the page is empty after.
    #[napi]
    pub fn take_objects(&mut self) -> Vec<ObjectInfoFields> {
        std::mem::take(&mut self.0.objects).into_iter().map(fields_of).collect()
    }
}

impl From<core::ObjectPage> for NativeObjectPage {
    fn from(page: core::ObjectPage) -> Self {
        NativeObjectPage(page)
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

impl TryFrom<NativeIngestOptions> for core::IngestRequest {
    type Error = Error;

    fn try_from(o: NativeIngestOptions) -> Result<Self> {
        let hints = core::IngestHints {
            size_hint: o.size_hint.map(|hint| count(hint, "hints.sizeHint")).transpose()?,
            primary_algorithm: o.primary_algorithm.as_deref().map(str::parse).transpose().map_err(to_js_error)?,
            backend_id: o.backend_id,
        };
        let expect_size = o.expect_size_bytes.map(|size| count(size, "expect.sizeBytes")).transpose()?;
        let expect = core::Expectations::parse(expect_size, o.expect_sha256.as_deref(), o.expect_primary.as_deref())
            .map_err(to_js_error)?;
        Ok(core::IngestRequest { hints, expect })
    }
}

/// A count JavaScript passed as a number (lib/options.ts has checked it is a non-negative integer).
fn count(value: i64, field: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| invalid_argument(format!("{field} must be a non-negative integer, got {value}")))
}

/// Parses an address in the SPEC's text form.
pub fn parse_address(address: &str) -> Result<core::ContentAddress> {
    core::ContentAddress::parse(address).map_err(to_js_error)
}
