//! The S3 backend, over the `object_store` crate.
//!
//! ```text
//! <prefix>objects/<algorithm>/<hex[0:2]>/<hex[2:4]>/<hex>   whole objects, and nothing else
//! <prefix>staging/<unique>                                  large ingests on their way to objects/
//! <prefix>index/, touched/, deleting/                       the catalogue (see [`catalogue`])
//! <prefix>uploads/<id>/                                     resumable uploads (see [`resumable`])
//! ```
//! A small object is kept in memory and written with one create-only PUT under its final key. A
//! large one streams by multipart upload to a staging key and is copied to its final key once its
//! address is known. Either way an object is never visible half-written.

mod catalogue;
mod client;
mod reader;
mod resumable;
mod trees;
mod uploads;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use self::writer::S3Writer;
use super::{
    digest_reader, object_locator, Backend, Committed, Deletion, HeldObject, ObjectReader, ObjectWriter, TreeFile,
};
use crate::api::{DeleteRequest, IngestRequest, ListRequest, ObjectPage, ServeRequest};
use crate::config::S3Config;
use crate::error::{Error, Result};
use crate::hashing::Digests;
use crate::identity::{ContentAddress, HashAlgorithm};
use crate::results::{BackendHealth, BackendKind, ObjectInfo};
use crate::upload::{UploadId, UploadRecord, UploadSession};

/// A staging object lives only while one server-side copy runs; one older than this was left by an
/// ingest that died between completing its upload and committing it.
const STALE_STAGING: Duration = Duration::from_secs(15 * 60);

/// Requests a lookup of many objects (`findMissing`, a page of a listing) keeps in flight.
const LOOKUPS_AT_ONCE: usize = 16;

#[derive(Debug)]
pub struct S3Backend {
    bucket: Arc<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    id: String,
    bucket_name: String,
    /// Empty or ending in '/'.
    prefix: String,
    store: AmazonS3,
    /// The same bucket, for create-only copies (see [`client::copy_client`]).
    copier: AmazonS3,
    /// The same bucket, with short timeouts and no retries: health must answer promptly.
    probe: AmazonS3,
    /// The runtime the backend was opened on, which drives the requests of writers on threads
    /// outside it; `None` when opened outside any.
    runtime: Option<tokio::runtime::Handle>,
    /// Set once every object of the bucket is known to have its catalogue entry (see
    /// `Bucket::catalogue_existing_objects`).
    catalogued: tokio::sync::OnceCell<()>,
}

impl S3Backend {
    /// Configures the clients and starts a sweep of stale staging data in the background. Sends no
    /// request itself: a server that is down now is `backendHealth`'s to report, not a reason to
    /// refuse the whole data plane.
    pub fn open(id: String, config: &S3Config) -> Result<Self> {
        let bucket = Arc::new(Bucket {
            store: client::data_client(&id, config)?,
            copier: client::copy_client(&id, config)?,
            probe: client::probe_client(&id, config)?,
            bucket_name: config.bucket.clone(),
            prefix: config.prefix.clone(),
            runtime: tokio::runtime::Handle::try_current().ok(),
            catalogued: tokio::sync::OnceCell::new(),
            id,
        });
        if let Some(runtime) = &bucket.runtime {
            let bucket = bucket.clone();
            // A failed sweep is retried by the next open; nothing depends on it.
            runtime.spawn(async move { bucket.sweep().await });
        }
        Ok(S3Backend { bucket })
    }
}

#[async_trait]
impl Backend for S3Backend {
    fn id(&self) -> &str {
        &self.bucket.id
    }

    fn create_writer(&self, request: &IngestRequest) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer::create(self.bucket.clone(), request.hints.size_hint)?))
    }

    fn put(&self, address: &ContentAddress, digests: &Digests, bytes: Bytes) -> Result<Committed> {
        S3Writer::put(self.bucket.clone(), address, digests, bytes)
    }

    async fn open(&self, request: &ServeRequest) -> Result<Box<dyn ObjectReader>> {
        Ok(Box::new(reader::open(&self.bucket, request).await?))
    }

    fn put_tree(&self, address: &ContentAddress, tree_file: Bytes, replace: bool) -> Result<()> {
        self.bucket.put_tree(address, tree_file, replace)
    }

    async fn open_tree(&self, address: &ContentAddress) -> Result<Option<Box<dyn TreeFile>>> {
        let tree = self.bucket.open_tree(address).await?;
        Ok(tree.map(|tree| Box::new(tree) as Box<dyn TreeFile>))
    }

    async fn digest(&self, address: &ContentAddress) -> Result<HeldObject> {
        let mut reader = reader::open(&self.bucket, &ServeRequest::from(*address)).await?;
        Ok(HeldObject::Digested(digest_reader(&mut reader, address.algorithm).await?))
    }

    async fn resolve(&self, address: &ContentAddress) -> Result<ContentAddress> {
        let bucket = &self.bucket;
        if address.algorithm != HashAlgorithm::Sha256 || bucket.head_object(address).await?.is_some() {
            return Ok(*address);
        }
        let indexed = match bucket.read_index(&address.bytes).await? {
            None if !bucket.catalogued.initialized() => {
                // Perhaps an object stored before the catalogue, not yet given its entry.
                bucket.ensure_catalogued().await?;
                bucket.read_index(&address.bytes).await?
            }
            indexed => indexed,
        };
        match indexed {
            Some(primary) if bucket.head_object(&primary).await?.is_some() => Ok(primary),
            Some(primary) => {
                bucket.remove_index(&address.bytes, &primary).await?;
                Ok(*address)
            }
            None => Ok(*address),
        }
    }

    async fn stat(&self, address: &ContentAddress) -> Result<ObjectInfo> {
        let head = self.bucket.head_object(address).await?.ok_or_else(|| self.bucket.not_found(address))?;
        self.bucket.info(address, head).await
    }

    fn stat_blocking(&self, address: &ContentAddress) -> Result<ObjectInfo> {
        let runtime = self.bucket.runtime.clone().ok_or_else(|| Error::BackendUnavailable {
            backend: self.bucket.id.clone(),
            cause: "no async runtime to drive S3 requests from: the backend was opened outside one".into(),
        })?;
        runtime.block_on(async { self.stat(&self.resolve(address).await?).await })
    }

    /// Touches first, then looks, as an ingest does (see `delete`).
    async fn touch(&self, address: &ContentAddress) -> Result<ObjectInfo> {
        let before = self.stat(address).await?;
        self.bucket.record_touch(address, Some(&before.sha256_digest.bytes)).await?;
        self.stat(address).await
    }

    async fn list(&self, request: &ListRequest) -> Result<ObjectPage> {
        self.bucket.list(request).await
    }

    async fn addresses(&self, after: Option<&ContentAddress>, limit: usize) -> Result<Vec<ContentAddress>> {
        self.bucket.addresses(after, limit).await
    }

    async fn quarantine(&self, address: &ContentAddress) -> Result<bool> {
        self.bucket.quarantine(address).await
    }

    async fn find_missing(&self, addresses: &[ContentAddress]) -> Result<Vec<ContentAddress>> {
        let held = futures::stream::iter(addresses.iter().copied())
            .map(|address| async move {
                let primary = self.resolve(&address).await?;
                Ok::<_, Error>((address, self.bucket.head_object(&primary).await?.is_some()))
            })
            .buffered(LOOKUPS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let mut missing = Vec::new();
        for found in held {
            let (address, present) = found?;
            if !present {
                missing.push(address);
            }
        }
        Ok(missing)
    }

    async fn delete(&self, request: &DeleteRequest) -> Result<Deletion> {
        let address = &request.address;
        let Some(head) = self.bucket.head_object(address).await? else { return Ok(Deletion::Absent) };
        let path = self.bucket.object_path(address);
        let Some(since) = request.unless_touched_since else {
            self.bucket.delete_key(&path).await?;
            self.bucket.forget(address, head.sha256).await?;
            return Ok(Deletion::Deleted);
        };
        let record = self.bucket.record(address).await?;
        let touched_at = catalogue::touched_at(record.touched_at, head.stored_at(&record));
        if touched_at >= since {
            return Ok(Deletion::Kept(touched_at));
        }
        self.bucket.delete_unless_touched(address, since, head.sha256).await
    }

    async fn health(&self) -> BackendHealth {
        let started = Instant::now();
        let probe = self.bucket.check_bucket().await;
        BackendHealth {
            backend_id: self.bucket.id.clone(),
            kind: BackendKind::S3,
            healthy: probe.is_ok(),
            latency_micros: started.elapsed().as_micros() as u64,
            detail: probe.err(),
            free_bytes: None,
            total_bytes: None,
        }
    }

    async fn sweep(&self) -> Result<u64> {
        self.bucket.sweep().await
    }

    fn create_upload(&self, id: &UploadId, record: &UploadRecord) -> Result<SystemTime> {
        self.bucket.create_upload(id, record)
    }

    fn read_upload(&self, id: &UploadId) -> Result<Option<(UploadRecord, SystemTime)>> {
        self.bucket.read_upload(id)
    }

    fn lock_upload(&self, id: &UploadId, what: &str) -> Result<Option<Box<dyn UploadSession>>> {
        self.bucket.lock_upload(id, what)
    }

    fn remove_upload(&self, id: &UploadId) -> Result<bool> {
        self.bucket.remove_upload(id)
    }

    fn upload_ids(&self) -> Result<Vec<UploadId>> {
        self.bucket.upload_ids()
    }
}

impl Bucket {
    fn object_path(&self, address: &ContentAddress) -> Path {
        Path::from(format!("{}{}", self.prefix, object_locator(address)))
    }

    fn staging_dir(&self) -> Path {
        Path::from(format!("{}staging", self.prefix))
    }

    /// A staging key no other ingest, in this process or any other, will pick.
    fn new_staging_path(&self) -> Path {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        // RandomState is seeded from the OS's randomness: 64 bits no other host will draw.
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        Path::from(format!("{}staging/{random:016x}-{}-{sequence}", self.prefix, std::process::id()))
    }

    fn unavailable(&self, doing: impl std::fmt::Display, error: &object_store::Error) -> Error {
        client::unavailable(&self.id, doing, error)
    }

    /// Deletes `path`; `false` when it was gone already (deleted meanwhile by another caller, say).
    async fn delete_key(&self, path: &Path) -> Result<bool> {
        match self.store.delete(path).await {
            Ok(()) => Ok(true),
            Err(e) if client::key_gone(&e) => Ok(false),
            Err(e) => Err(self.unavailable(format!("deleting {path}"), &e)),
        }
    }

    /// `NOT_FOUND` for a missing key in a bucket that is there, `BACKEND_UNAVAILABLE` otherwise.
    async fn read_failure(&self, address: &ContentAddress, doing: String, error: object_store::Error) -> Error {
        let missing = || Error::NotFound { address: address.to_string(), backend: self.id.clone() };
        self.failure(doing, error).await.unwrap_or_else(missing)
    }

    /// `BACKEND_UNAVAILABLE` saying why a request failed, or `None` for a missing key in a bucket
    /// that is there. A HEAD's 404 or 403 has no body to say why (no such key, or no such bucket?
    /// a bad signature, or an unknown key id?), so a listing of the bucket, whose error does, is
    /// asked.
    async fn failure(&self, doing: String, error: object_store::Error) -> Option<Error> {
        use object_store::Error::{NotFound, PermissionDenied, Unauthenticated};
        if !matches!(error, NotFound { .. } | PermissionDenied { .. } | Unauthenticated { .. }) {
            return Some(self.unavailable(doing, &error));
        }
        match self.check_bucket().await {
            Err(cause) => {
                Some(Error::BackendUnavailable { backend: self.id.clone(), cause: format!("{doing}: {cause}") })
            }
            Ok(()) if matches!(error, NotFound { .. }) => None,
            Ok(()) => Some(self.unavailable(doing, &error)),
        }
    }

    /// A signed listing of (at most the first page of) the prefix: proves the endpoint answers,
    /// the credentials are accepted and the bucket exists. Says why not otherwise.
    async fn check_bucket(&self) -> Result<(), String> {
        let prefix = Path::from(self.prefix.as_str());
        match self.probe.list_with_delimiter(Some(&prefix)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("listing s3://{}/{}: {}", self.bucket_name, self.prefix, client::describe(&e))),
        }
    }

    /// Deletes staging objects older than [`STALE_STAGING`], and aborts the multipart uploads under
    /// staging/ initiated longer ago than that (see [`uploads`]).
    async fn sweep(&self) -> Result<u64> {
        let staging = self.staging_dir();
        let mut listing = self.store.list(Some(&staging));
        let mut removed = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.unavailable(format!("listing {staging}"), &e))?;
            let age = SystemTime::from(meta.last_modified).elapsed().unwrap_or_default();
            if age < STALE_STAGING {
                continue;
            }
            if self.delete_key(&meta.location).await? {
                removed += 1;
            }
        }
        let removed = removed + uploads::abort_stale(self).await?;
        self.ensure_catalogued().await?;
        Ok(removed)
    }
}
