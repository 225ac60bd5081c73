//! What the S3 backend keeps about each object besides its bytes, and how it finds an object by
//! its SHA-256.
//!
//! ```text
//! <prefix>objects/<alg>/<aa>/<bb>/<hex>          the object; its LastModified is when it was first
//!                                                stored; one written in one PUT has its SHA-256 in
//!                                                user metadata `sha256`
//! <prefix>index/sha256/<aa>/<bb>/<sha256 hex>    body `blake3:<hex>`: the BLAKE3-primary object
//!                                                with that SHA-256
//! <prefix>touched/<alg>/<aa>/<bb>/<hex>          the record: the last touch time, and the SHA-256 and
//!                                                store time of an object without the metadata (one
//!                                                copied from a multipart upload, whose metadata is
//!                                                set before its digest is known)
//! <prefix>deleting/<alg>-<hex>-<unique>          a copy a conditional delete holds while it looks
//!                                                at the touch time a second time
//! <prefix>index/complete                         every object has its catalogue entry
//! <prefix>trees/<alg>/<aa>/<hex>.obao4           the object's hash tree (see `trees.rs`)
//! ```
//! S3 cannot change an object's metadata in place, hence the touch record beside it. An index entry
//! is written before its object and checked again after, and removed only after the object is
//! gone and written again if the object reappeared; an entry without its object is harmless.

use std::time::SystemTime;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{Attribute, AttributeValue, Attributes, GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt};

use super::Bucket;
use crate::api::{ListRequest, ObjectPage, LIST_PAGE_LEN};
use crate::error::{Error, Result};
use crate::identity::{parse_hex_digest, ContentAddress, Digest, HashAlgorithm, DIGEST_LEN};
use crate::results::{rfc3339_millis, ObjectInfo};
use crate::storage::{digest_reader, object_locator, Deletion};

/// The user metadata keys of an object's SHA-256 and of when it was stored, by this process's clock
/// (`x-amz-meta-sha256`, `x-amz-meta-stored-at`): a conditional delete compares touch times with a
/// time its caller read from the same kind of clock, and LastModified has whole seconds.
const SHA256_METADATA: &str = "sha256";
const STORED_AT_METADATA: &str = "stored-at";
/// Objects of a bucket written before the catalogue looked at concurrently while cataloguing it.
const CATALOGUED_AT_ONCE: usize = 8;

/// The attributes an object is written with.
pub(super) fn object_attributes(sha256: &[u8; DIGEST_LEN], stored_at: SystemTime) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::Metadata(SHA256_METADATA.into()), AttributeValue::from(hex::encode(sha256)));
    attributes.insert(Attribute::Metadata(STORED_AT_METADATA.into()), AttributeValue::from(rfc3339_millis(stored_at)));
    attributes
}

/// An object as its HEAD describes it.
pub(super) struct Head {
    pub meta: ObjectMeta,
    /// `None` for an object written before the catalogue recorded it (or copied from an upload).
    pub sha256: Option<[u8; DIGEST_LEN]>,
    recorded_stored_at: Option<SystemTime>,
}

impl Head {
    /// When the object was stored: as its metadata, else its record, else its LastModified says.
    pub fn stored_at(&self, record: &Record) -> SystemTime {
        self.recorded_stored_at.or(record.stored_at).unwrap_or_else(|| self.meta.last_modified.into())
    }
}

impl Bucket {
    pub(super) fn key(&self, relative: String) -> Path {
        Path::from(format!("{}{relative}", self.prefix))
    }

    fn index_path(&self, sha256: &[u8; DIGEST_LEN]) -> Path {
        let hex = hex::encode(sha256);
        self.key(format!("index/sha256/{}/{}/{hex}", &hex[0..2], &hex[2..4]))
    }

    fn touch_path(&self, address: &ContentAddress) -> Path {
        self.key(object_locator(address).replacen("objects/", "touched/", 1))
    }

    pub(super) fn aside_path(&self, address: &ContentAddress) -> Path {
        let unique = self.new_staging_path();
        let unique = unique.filename().unwrap_or_default();
        self.key(format!("deleting/{}-{}-{unique}", address.algorithm, address.hex()))
    }

    /// The object's HEAD, `None` when absent; `BACKEND_UNAVAILABLE` when the bucket cannot answer.
    pub(super) async fn head_object(&self, address: &ContentAddress) -> Result<Option<Head>> {
        let path = self.object_path(address);
        match self.store.get_opts(&path, GetOptions { head: true, ..Default::default() }).await {
            Ok(result) => {
                let metadata = |key: &'static str| result.attributes.get(&Attribute::Metadata(key.into()));
                let sha256 = metadata(SHA256_METADATA).and_then(|hex| parse_hex_digest(hex));
                let recorded_stored_at = metadata(STORED_AT_METADATA).and_then(|t| humantime::parse_rfc3339(t).ok());
                Ok(Some(Head { meta: result.meta, sha256, recorded_stored_at }))
            }
            Err(e) => match self.failure(format!("looking up {path}"), e).await {
                Some(failure) => Err(failure),
                None => Ok(None),
            },
        }
    }

    /// A small key's body, `None` when absent.
    async fn small_body(&self, path: &Path) -> Result<Option<Bytes>> {
        match self.store.get(path).await {
            Ok(result) => result.bytes().await.map(Some).map_err(|e| self.unavailable(format!("reading {path}"), &e)),
            Err(e) => match self.failure(format!("reading {path}"), e).await {
                Some(failure) => Err(failure),
                None => Ok(None),
            },
        }
    }

    /// Overwrites a small key. Two writers of one key at once (an ingest and a delete putting back
    /// an index entry) may see a server refuse one of them with a conflict (versitygw's posix
    /// backend answers 409 while the other's write is in place): the key's content is the same
    /// either way, so the refused write is tried again.
    async fn put_small(&self, path: &Path, body: String) -> Result<()> {
        let body = Bytes::from(body);
        let mut tries = 0;
        loop {
            match self.store.put(path, body.clone().into()).await {
                Ok(_) => return Ok(()),
                Err(object_store::Error::AlreadyExists { .. }) if tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 * tries)).await;
                }
                Err(e) => return Err(self.unavailable(format!("writing {path}"), &e)),
            }
        }
    }

    /// Points the SHA-256 of a BLAKE3-primary object at it.
    pub(super) async fn write_index(&self, sha256: &[u8; DIGEST_LEN], primary: &ContentAddress) -> Result<()> {
        if primary.algorithm != HashAlgorithm::Blake3 {
            return Ok(());
        }
        self.put_small(&self.index_path(sha256), primary.to_string()).await
    }

    /// Writes the index entry again if a conditional delete of an older copy removed it while this
    /// object was being stored.
    pub(super) async fn ensure_index(&self, sha256: &[u8; DIGEST_LEN], primary: &ContentAddress) -> Result<()> {
        if primary.algorithm != HashAlgorithm::Blake3 || self.read_index(sha256).await? == Some(*primary) {
            return Ok(());
        }
        self.write_index(sha256, primary).await
    }

    /// The primary address the index names for a SHA-256, if any.
    pub(super) async fn read_index(&self, sha256: &[u8; DIGEST_LEN]) -> Result<Option<ContentAddress>> {
        let body = self.small_body(&self.index_path(sha256)).await?;
        Ok(body.and_then(|body| std::str::from_utf8(&body).ok().and_then(|text| ContentAddress::parse(text).ok())))
    }

    /// Removes the index entry of an object that is gone, then looks again: one stored anew
    /// meanwhile gets its entry back.
    pub(super) async fn remove_index(&self, sha256: &[u8; DIGEST_LEN], primary: &ContentAddress) -> Result<()> {
        self.delete_key(&self.index_path(sha256)).await?;
        if self.head_object(primary).await?.is_some() {
            self.write_index(sha256, primary).await?;
        }
        Ok(())
    }

    /// Records a touch of the object now, with its SHA-256 when known (and what the record said
    /// of when it was stored).
    pub(super) async fn record_touch(&self, address: &ContentAddress, sha256: Option<&[u8; DIGEST_LEN]>) -> Result<()> {
        let stored_at = self.record(address).await?.stored_at;
        let record = Record { sha256: sha256.copied(), touched_at: Some(SystemTime::now()), stored_at };
        self.put_small(&self.touch_path(address), record.to_text()).await
    }

    /// Records, before an object copied from an upload appears, what its metadata cannot hold.
    pub(super) async fn record_store(
        &self,
        address: &ContentAddress,
        sha256: &[u8; DIGEST_LEN],
        at: SystemTime,
    ) -> Result<()> {
        let record = Record { sha256: Some(*sha256), touched_at: Some(at), stored_at: Some(at) };
        self.put_small(&self.touch_path(address), record.to_text()).await
    }

    /// The object's record, empty when it has none.
    pub(super) async fn record(&self, address: &ContentAddress) -> Result<Record> {
        let body = self.small_body(&self.touch_path(address)).await?;
        Ok(body.map_or_else(Record::default, |body| Record::parse(&body)))
    }

    /// The last touch recorded, if any.
    pub(super) async fn recorded_touch(&self, address: &ContentAddress) -> Result<Option<SystemTime>> {
        Ok(self.record(address).await?.touched_at)
    }

    pub(super) async fn forget_touch(&self, address: &ContentAddress) -> Result<()> {
        self.delete_key(&self.touch_path(address)).await.map(drop)
    }

    /// The catalogue entry of an object whose HEAD is `head`. An object stored before the
    /// catalogue recorded its SHA-256 is digested (and indexed) when asked for.
    pub(super) async fn info(&self, address: &ContentAddress, head: Head) -> Result<ObjectInfo> {
        let record = self.record(address).await?;
        let stored_at = head.stored_at(&record);
        let sha256 = match head.sha256.or(record.sha256) {
            Some(sha256) => sha256,
            None => {
                let mut reader = super::reader::open(self, &crate::api::ServeRequest::from(*address)).await?;
                let digests = digest_reader(&mut reader, address.algorithm).await?;
                let sha256 = digests.sha256.bytes;
                self.write_index(&sha256, address).await?;
                let record = Record { sha256: Some(sha256), ..record };
                self.put_small(&self.touch_path(address), record.to_text()).await?;
                sha256
            }
        };
        Ok(ObjectInfo {
            content_address: *address,
            sha256_digest: Digest::new(HashAlgorithm::Sha256, sha256),
            size_bytes: head.meta.size,
            backend_id: self.id.clone(),
            locator: head.meta.location.to_string(),
            stored_at,
            touched_at: touched_at(record.touched_at, stored_at),
        })
    }

    /// Gives every object of a bucket written before the catalogue existed its entry (digesting
    /// those without a recorded SHA-256), once per bucket: `index/complete` marks a bucket whose
    /// every object has one. Run by the sweep at open; a lookup by SHA-256 that finds no entry
    /// before it has finished waits for it.
    pub(super) async fn ensure_catalogued(&self) -> Result<()> {
        self.catalogued.get_or_try_init(|| self.catalogue_existing_objects()).await.map(|_| ())
    }

    async fn catalogue_existing_objects(&self) -> Result<()> {
        let complete = self.key("index/complete".into());
        if self.small_body(&complete).await?.is_some() {
            return Ok(());
        }
        let mut after = None;
        loop {
            let (addresses, more) = self.address_page(after.as_ref(), LIST_PAGE_LEN).await?;
            for batch in addresses.chunks(CATALOGUED_AT_ONCE) {
                futures::future::try_join_all(batch.iter().map(|address| self.catalogue_one(address))).await?;
            }
            match (more, addresses.last()) {
                (true, Some(last)) => after = Some(*last),
                _ => break,
            }
        }
        self.put_small(&complete, String::new()).await
    }

    /// Gives an object without a recorded SHA-256 its entry (`info` digests and indexes it).
    async fn catalogue_one(&self, address: &ContentAddress) -> Result<()> {
        match self.head_object(address).await? {
            Some(head) if head.sha256.is_none() => self.info(address, head).await.map(|_| ()),
            _ => Ok(()),
        }
    }

    /// The addresses of up to `limit` keys under `objects/` after `after`, in key order (which is
    /// address order), from one listing request.
    pub(super) async fn addresses(&self, after: Option<&ContentAddress>, limit: usize) -> Result<Vec<ContentAddress>> {
        Ok(self.address_page(after, limit).await?.0)
    }

    /// [`Self::addresses`], and whether keys may follow (the listing gave `limit` of them).
    async fn address_page(&self, after: Option<&ContentAddress>, limit: usize) -> Result<(Vec<ContentAddress>, bool)> {
        let objects = self.key("objects/".into());
        let offset = match after {
            Some(after) => self.object_path(after),
            None => self.key("objects".into()),
        };
        let keys: Vec<_> = self
            .store
            .list_with_offset(Some(&objects), &offset)
            .take(limit)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<object_store::Result<_>>()
            .map_err(|e| self.unavailable(format!("listing {objects}"), &e))?;
        let more = keys.len() == limit;
        Ok((keys.iter().filter_map(|meta| self.address_of(&meta.location)).collect(), more))
    }

    /// One page of the objects after `request.after`; their entries are looked up a few at a time.
    pub(super) async fn list(&self, request: &ListRequest) -> Result<ObjectPage> {
        let limit = request.limit.map_or(LIST_PAGE_LEN, |limit| limit as usize);
        let mut addresses = self.addresses(request.after.as_ref(), limit + 1).await?;
        let more = addresses.len() > limit;
        addresses.truncate(limit);
        let looked_up = futures::stream::iter(addresses.iter().copied())
            .map(|address| async move {
                match self.head_object(&address).await? {
                    Some(head) => self.info(&address, head).await.map(Some),
                    None => Ok(None), // deleted since it was listed
                }
            })
            .buffered(super::LOOKUPS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let mut page = ObjectPage::default();
        for info in looked_up {
            match info? {
                Some(info) if request.touched_before.is_none_or(|before| info.touched_at < before) => {
                    page.objects.push(info)
                }
                _ => {}
            }
        }
        page.next_after = if more { addresses.last().copied() } else { None };
        Ok(page)
    }

    /// The address a key under `objects/` stands for; `None` for any other key.
    fn address_of(&self, key: &Path) -> Option<ContentAddress> {
        let relative = key.as_ref().strip_prefix(&self.prefix)?.strip_prefix("objects/")?;
        let (algorithm, rest) = relative.split_once('/')?;
        let hex = rest.rsplit('/').next()?;
        let address = ContentAddress::parse(&format!("{algorithm}:{hex}")).ok()?;
        (self.object_path(&address) == *key).then_some(address)
    }

    /// What the catalogue keeps of a deleted object goes too.
    pub(super) async fn forget(&self, address: &ContentAddress, sha256: Option<[u8; DIGEST_LEN]>) -> Result<()> {
        if let Some(sha256) = sha256.filter(|_| address.algorithm == HashAlgorithm::Blake3) {
            self.remove_index(&sha256, address).await?;
        }
        self.remove_tree(address).await?;
        self.forget_touch(address).await
    }

    /// The conditional delete of an object last touched before `since`: copy it aside, delete it,
    /// look at the touch record again, and put it back if it was touched meanwhile. An ingest or a
    /// touch records its touch before it looks, so either the second look sees the touch, or the
    /// ingest's look finds the object gone and stores it anew.
    pub(super) async fn delete_unless_touched(
        &self,
        address: &ContentAddress,
        since: SystemTime,
        sha256: Option<[u8; DIGEST_LEN]>,
    ) -> Result<Deletion> {
        let path = self.object_path(address);
        let aside = self.aside_path(address);
        let doing = |what: &str| format!("{what} {path} (deleting it unless touched)");
        match self.copier.copy(&path, &aside).await {
            Ok(()) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(Deletion::Absent),
            Err(e) => return Err(self.unavailable(doing("moving aside"), &e)),
        }
        self.delete_key(&path).await?;
        let touched = self.recorded_touch(address).await?;
        let deletion = match touched {
            Some(touched_at) if touched_at >= since => {
                self.put_back(&aside, &path).await?;
                Deletion::Kept(touched_at)
            }
            _ => Deletion::Deleted,
        };
        self.delete_key(&aside).await?;
        if deletion == Deletion::Deleted {
            self.forget(address, sha256).await?;
        }
        Ok(deletion)
    }

    /// Moves a corrupt object to the same key below `quarantine/` (copy, then delete).
    pub(super) async fn quarantine(&self, address: &ContentAddress) -> Result<bool> {
        let path = self.object_path(address);
        let Some(head) = self.head_object(address).await? else { return Ok(false) };
        let target = self.key(object_locator(address).replacen("objects/", "quarantine/", 1));
        let doing = |what: &str| format!("{what} {path} (quarantining it)");
        match self.copier.copy(&path, &target).await {
            Ok(()) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.unavailable(doing("copying"), &e)),
        }
        self.delete_key(&path).await?;
        self.quarantine_tree(address).await?;
        self.forget(address, head.sha256).await?;
        Ok(true)
    }

    /// Copies an object moved aside back, unless an ingest stored it anew meanwhile.
    async fn put_back(&self, aside: &Path, path: &Path) -> Result<()> {
        let doing = || format!("putting {path} back (it was touched while being deleted)");
        match self.copier.copy_if_not_exists(aside, path).await {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. }) => {
                self.copier.copy(aside, path).await.map_err(|e| self.unavailable(doing(), &e))
            }
            Err(e) => Err(self.unavailable(doing(), &e)),
        }
    }

    pub(super) fn not_found(&self, address: &ContentAddress) -> Error {
        Error::NotFound { address: address.to_string(), backend: self.id.clone() }
    }
}

/// When an object was last touched: its recorded touch, or when it was stored if later (a record
/// may outlive an object that was deleted and stored again).
pub(super) fn touched_at(recorded: Option<SystemTime>, stored_at: SystemTime) -> SystemTime {
    recorded.map_or(stored_at, |touched| touched.max(stored_at))
}

/// What the touch record holds, as lines `sha256=<hex>` and `touched_at=<RFC 3339>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Record {
    pub sha256: Option<[u8; DIGEST_LEN]>,
    pub touched_at: Option<SystemTime>,
    pub stored_at: Option<SystemTime>,
}

impl Record {
    fn to_text(self) -> String {
        let mut text = String::new();
        if let Some(sha256) = self.sha256 {
            text += &format!("sha256={}\n", hex::encode(sha256));
        }
        if let Some(touched_at) = self.touched_at {
            text += &format!("touched_at={}\n", rfc3339_millis(touched_at));
        }
        if let Some(stored_at) = self.stored_at {
            text += &format!("stored_at={}\n", rfc3339_millis(stored_at));
        }
        text
    }

    /// Reads what it can; a damaged record is as good as none.
    fn parse(body: &[u8]) -> Self {
        let mut record = Record::default();
        for line in String::from_utf8_lossy(body).lines() {
            match line.split_once('=') {
                Some(("sha256", hex)) => record.sha256 = parse_hex_digest(hex),
                Some(("touched_at", time)) => record.touched_at = humantime::parse_rfc3339(time).ok(),
                Some(("stored_at", time)) => record.stored_at = humantime::parse_rfc3339(time).ok(),
                _ => {}
            }
        }
        record
    }
}
