//! Aborting the multipart uploads that ingests which died left unfinished under `<prefix>staging/`,
//! and those of a resumable upload being removed (see [`super::resumable`]).
//!
//! object_store cannot list incomplete uploads, so the listing (ListMultipartUploads) is a GET of
//! `/<bucket>?uploads&prefix=...`, signed by object_store itself (a presigned URL: the same
//! credentials, region and endpoint as every other request) and sent with reqwest, the HTTP client
//! object_store is built on. The abort goes through object_store's [`MultipartStore`].

use std::time::{Duration, SystemTime};

use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::signer::{Method, SignedUrlOptions, Signer};
use serde::Deserialize;

use super::Bucket;
use crate::error::{Error, Result};

/// One page of ListMultipartUploads, reduced to what the sweep needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listing {
    #[serde(default, rename = "Upload")]
    uploads: Vec<Upload>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Upload {
    key: String,
    upload_id: String,
    /// RFC 3339, e.g. `2024-05-01T12:00:00.000Z`.
    initiated: String,
}

/// An upload's `Initiated` is when it started (on AWS), and a large ingest over a slow link may
/// upload for hours: only one this old is surely abandoned. A day is also what bucket lifecycle
/// rules (`AbortIncompleteMultipartUpload`) commonly use.
const STALE_UPLOAD: Duration = Duration::from_secs(24 * 60 * 60);

/// Aborts the uploads under `<prefix>staging/` initiated more than [`STALE_UPLOAD`] ago; returns
/// how many it aborted.
pub(super) async fn abort_stale(bucket: &Bucket) -> Result<u64> {
    abort_under(bucket, &format!("{}staging/", bucket.prefix), is_stale).await
}

/// Aborts the uploads under `prefix` that `chosen` picks; returns how many it aborted.
pub(super) async fn abort_under(bucket: &Bucket, prefix: &str, chosen: impl Fn(&Upload) -> bool) -> Result<u64> {
    let doing = format!("listing multipart uploads under s3://{}/{prefix}", bucket.bucket_name);
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| unavailable(bucket, &doing, e))?;
    let mut aborted = 0;
    let mut key_marker: Option<String> = None;
    loop {
        let listing =
            list(bucket, &http, prefix, key_marker.as_deref()).await.map_err(|e| unavailable(bucket, &doing, e))?;
        for upload in listing.uploads.iter().filter(|upload| chosen(upload)) {
            // A key object_store would spell differently is not one of ours.
            let Ok(path) = Path::parse(&upload.key) else { continue };
            match bucket.store.abort_multipart(&path, &upload.upload_id).await {
                Ok(()) => aborted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(bucket.unavailable(format!("aborting the multipart upload to {path}"), &e)),
            }
        }
        let next = listing.next_key_marker.filter(|key| !key.is_empty() && listing.is_truncated);
        if next.is_none() || next == key_marker {
            return Ok(aborted);
        }
        key_marker = next;
    }
}

fn is_stale(upload: &Upload) -> bool {
    let Ok(initiated) = humantime::parse_rfc3339_weak(&upload.initiated) else { return false };
    SystemTime::now().duration_since(initiated).is_ok_and(|age| age >= STALE_UPLOAD)
}

/// One page of the uploads under `prefix`, from the first key after `key_marker` on. Pages go by
/// key alone (no upload-id-marker): a staging key is never uploaded to twice (nor an upload's data
/// key, but by a process that died before recording it), and versitygw rejects
/// the NextUploadIdMarker it hands out itself.
async fn list(
    bucket: &Bucket,
    http: &reqwest::Client,
    prefix: &str,
    key_marker: Option<&str>,
) -> Result<Listing, Box<dyn std::error::Error + Send + Sync>> {
    let mut query = vec![("uploads", ""), ("prefix", prefix)];
    query.extend(key_marker.map(|key| ("key-marker", key)));
    let options = SignedUrlOptions::new().with_query(query);
    // The empty path is the bucket itself.
    let url = bucket.store.signed_url_opts(Method::GET, &Path::default(), Duration::from_secs(300), &options).await?;
    // Without the URL, which carries the signature.
    let response = http.get(url.as_str()).send().await.map_err(reqwest::Error::without_url)?;
    let status = response.status();
    let body = response.text().await.map_err(reqwest::Error::without_url)?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {body}").into());
    }
    Ok(quick_xml::de::from_str(&body)?)
}

/// `BACKEND_UNAVAILABLE` saying what was being done and why it failed, causes included.
fn unavailable(bucket: &Bucket, doing: &str, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    let error = error.into();
    let mut cause = format!("{doing}: {error}");
    let mut source = error.source();
    while let Some(inner) = source {
        cause = format!("{cause}: {inner}");
        source = inner.source();
    }
    Error::BackendUnavailable { backend: bucket.id.clone(), cause }
}
