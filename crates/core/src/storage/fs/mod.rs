//! The local-directory backend.
//!
//! ```text
//! <root>/objects/<algorithm>/<hex[0:2]>/<hex[2:4]>/<hex>   whole objects, and nothing else
//! <root>/index/sha256/<aa>/<sha256 hex>                    the catalogue (see [`catalogue`])
//! <root>/trees/<algorithm>/<hex[0:2]>/<hex>.obao4         objects' hash trees (see [`trees`])
//! <root>/tmp/                                              ingests in progress, health probes
//! <root>/deleting/                                         objects a conditional delete moved aside
//! <root>/uploads/<id>/                                      resumable uploads (see [`uploads`])
//! ```
//! An object appears under `objects/` by a single `link` of a fully written temporary file, so it
//! is never visible half-written; with `durable` the file is flushed before and its directory after.

mod cached;
mod catalogue;
mod listing;
mod memo;
mod reader;
mod stat;
mod temp;
mod trees;
mod uploads;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;

use self::catalogue::Recorded;
use self::memo::{FileRecord, Memo};
use self::stat::Stat;
use self::temp::TempFile;
use super::{
    object_locator, read_range, tree_locator, Backend, Committed, Deletion, HeldObject, ObjectReader, ObjectWriter,
    TreeFile, CHUNK_LEN,
};
use crate::api::{
    DeleteRequest, IngestRequest, ListRequest, ObjectPage, ServeRequest, IN_PROCESS_LIST_PAGE_LEN, LIST_PAGE_LEN,
};
use crate::blocking::{map_on_cores, map_on_cores_until, run_blocking};
use crate::buffers::BufferPool;
use crate::config::FsConfig;
use crate::error::{Error, IoContext, Result};
use crate::hashing::{Digests, DualHasher};
use crate::identity::{ContentAddress, Digest, HashAlgorithm};
use crate::results::{BackendHealth, BackendKind, ObjectInfo};
use crate::upload::{UploadId, UploadRecord, UploadSession};

#[derive(Debug)]
pub struct FsBackend {
    store: Arc<Store>,
}

#[derive(Debug)]
struct Store {
    id: String,
    root: PathBuf,
    tmp: PathBuf,
    durable: bool,
    /// What objects' attributes record (see [`memo`]).
    records: Memo<FileRecord>,
    /// The BLAKE3-primary object each SHA-256 looked up names.
    primaries: Memo<ContentAddress>,
    /// The root, held open for lookups from the kernel's caches until the plane closes.
    base: RwLock<Option<cached::Base>>,
}

impl FsBackend {
    /// Opens (creating if needed) a store under `config.root` and sweeps what dead ingests left.
    /// Blocking.
    pub fn open(id: String, config: &FsConfig) -> Result<Self> {
        let root = config.root.clone();
        let tmp = root.join("tmp");
        for dir in [root.join("objects"), tmp.clone(), root.join(catalogue::ASIDE_DIR)] {
            fs::create_dir_all(&dir).context(|| format!("backend '{id}': creating {}", dir.display()))?;
        }
        temp::sweep_stale(&tmp).context(|| format!("backend '{id}': sweeping {}", tmp.display()))?;
        catalogue::restore_aside(&root, temp::process_alive)
            .context(|| format!("backend '{id}': putting back objects left by conditional deletes"))?;
        let base = cached::Base::open(&root).context(|| format!("backend '{id}': opening {}", root.display()))?;
        let store = Store {
            id,
            root,
            tmp,
            durable: config.durable,
            records: Memo::default(),
            primaries: Memo::default(),
            base: RwLock::new(Some(base)),
        };
        store.sweep_uploads().context(|| format!("backend '{}': sweeping uploads/", store.id))?;
        store.catalogue_existing_objects()?;
        store.sweep_orphan_trees().context(|| format!("backend '{}': sweeping trees/", store.id))?;
        Ok(FsBackend { store: Arc::new(store) })
    }

    /// `checked_absent`: the caller has just found no object at the address.
    fn writer(&self, checked_absent: bool) -> Result<FsWriter> {
        let temp = TempFile::create(&self.store.tmp)
            .context(|| format!("creating a temporary file in {}", self.store.tmp.display()))?;
        Ok(FsWriter { store: self.store.clone(), temp, checked_absent })
    }

    async fn blocking<T: Send + 'static>(&self, job: impl FnOnce(&Store) -> Result<T> + Send + 'static) -> Result<T> {
        let store = self.store.clone();
        run_blocking(move || job(&store)).await
    }
}

#[async_trait]
impl Backend for FsBackend {
    fn id(&self) -> &str {
        &self.store.id
    }

    fn create_writer(&self, _request: &IngestRequest) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(self.writer(false)?))
    }

    fn put(&self, address: &ContentAddress, digests: &Digests, bytes: Bytes) -> Result<Committed> {
        // Known content: a copy already stored costs a touch and a stat, not a temporary file.
        let locator = object_locator(address);
        let existing = self.store.touch_existing(&self.store.root.join(&locator), digests);
        if let Ok(Some(stored_at)) = existing {
            return Ok(Committed { locator, stored_at, deduplicated: true });
        }
        let mut writer = Box::new(self.writer(true)?);
        writer.write(bytes)?;
        writer.commit(address, digests)
    }

    /// Without `durable` a put ends in the page cache.
    fn puts_small_objects_quickly(&self) -> bool {
        !self.store.durable
    }

    async fn open(&self, request: &ServeRequest) -> Result<Box<dyn ObjectReader>> {
        let (address, request) = (request.address, request.clone());
        self.blocking(move |store| {
            let (file, size, locator) = store.open_object(&address)?;
            let range = read_range(&request, size)?;
            Ok(Box::new(reader::serve_file(file, range, size, locator)?) as Box<dyn ObjectReader>)
        })
        .await
    }

    fn put_tree(&self, address: &ContentAddress, tree_file: Bytes, replace: bool) -> Result<()> {
        let context = || format!("backend '{}': writing {}", self.store.id, tree_locator(address));
        self.store.write_tree(address, &tree_file, replace).context(context)
    }

    async fn open_tree(&self, address: &ContentAddress) -> Result<Option<Box<dyn TreeFile>>> {
        let context = || format!("backend '{}': opening {}", self.store.id, tree_locator(address));
        let tree = self.store.open_tree(address).context(context)?;
        Ok(tree.map(|tree| Box::new(tree) as Box<dyn TreeFile>))
    }

    async fn digest(&self, address: &ContentAddress) -> Result<HeldObject> {
        let address = *address;
        self.blocking(move |store| match store.find_object(&address)? {
            Found::File(file, _, locator) => Ok(HeldObject::Digested(digest_file(file, &address, &locator)?)),
            Found::NotAnObject(what) => Ok(HeldObject::NotAnObject(what)),
        })
        .await
    }

    async fn resolve(&self, address: &ContentAddress) -> Result<ContentAddress> {
        // Here, as a stat (see `answers_in_place`): a system call or two.
        self.store.resolve(address)
    }

    async fn stat(&self, address: &ContentAddress) -> Result<ObjectInfo> {
        // Here, as `touch` and `resolve` (the plane's own lookups take `stat_blocking`).
        self.store.info(address, Visit::Again)
    }

    /// A stat is a couple of system calls: no flush, whether durable or not.
    fn answers_in_place(&self) -> bool {
        true
    }

    fn stat_blocking(&self, address: &ContentAddress) -> Result<ObjectInfo> {
        self.store.info_of(address)
    }

    fn stat_cached(&self, address: &ContentAddress) -> Option<Result<ObjectInfo>> {
        self.store.cached_info_of(address)
    }

    fn close(&self) {
        if let Ok(mut base) = self.store.base.write() {
            base.take();
        }
    }

    async fn touch(&self, address: &ContentAddress) -> Result<ObjectInfo> {
        // Here, as a stat (see `answers_in_place`): a system call or two.
        self.store.touch(address)
    }

    async fn list(&self, request: &ListRequest) -> Result<ObjectPage> {
        let request = request.clone();
        self.blocking(move |store| store.list(&request)).await
    }

    async fn addresses(&self, after: Option<&ContentAddress>, limit: usize) -> Result<Vec<ContentAddress>> {
        let after = after.copied();
        self.blocking(move |store| {
            let walk = listing::Walk::new(&store.root, after.as_ref()).take(limit);
            walk.collect::<io::Result<_>>().context(|| format!("backend '{}': listing objects/", store.id))
        })
        .await
    }

    async fn quarantine(&self, address: &ContentAddress) -> Result<bool> {
        let address = *address;
        self.blocking(move |store| {
            let locator = object_locator(&address);
            let context = || format!("backend '{}': quarantining {locator}", store.id);
            let recorded = catalogue::recorded(&store.root.join(&locator)).context(context)?;
            let moved = catalogue::quarantine(&store.root, &locator).context(context)?;
            catalogue::quarantine(&store.root, &tree_locator(&address)).context(context)?;
            if moved {
                store.forget(&address, recorded, &store.root.join(&locator)).context(context)?;
            }
            Ok(moved)
        })
        .await
    }

    async fn find_missing(&self, addresses: &[ContentAddress]) -> Result<Vec<ContentAddress>> {
        let addresses = addresses.to_vec();
        self.blocking(move |store| {
            let found = map_on_cores(&addresses, |address| store.lookup(address));
            let mut missing = Vec::new();
            for (address, found) in addresses.iter().zip(found) {
                if found?.is_none() {
                    missing.push(*address);
                }
            }
            Ok(missing)
        })
        .await
    }

    async fn delete(&self, request: &DeleteRequest) -> Result<Deletion> {
        let (address, unless_touched_since) = (request.address, request.unless_touched_since);
        self.blocking(move |store| {
            let locator = object_locator(&address);
            let context = || format!("backend '{}': deleting {locator}", store.id);
            store.delete(&address, unless_touched_since).context(context)
        })
        .await
    }

    async fn health(&self) -> BackendHealth {
        let store = self.store.clone();
        let started = Instant::now();
        let probe = tokio::task::spawn_blocking(move || store.probe()).await;
        let latency_micros = started.elapsed().as_micros() as u64;
        let mut health = BackendHealth {
            backend_id: self.store.id.clone(),
            kind: BackendKind::Fs,
            healthy: false,
            latency_micros,
            detail: None,
            free_bytes: None,
            total_bytes: None,
        };
        match probe {
            Ok(Ok((free, total))) => {
                health.healthy = true;
                health.free_bytes = Some(free);
                health.total_bytes = Some(total);
            }
            Ok(Err(e)) => health.detail = Some(e.to_string()),
            Err(e) => health.detail = Some(format!("the probe failed: {e}")),
        }
        health
    }

    async fn sweep(&self) -> Result<u64> {
        self.blocking(|store| {
            let temps = temp::sweep_stale(&store.tmp).context(|| format!("sweeping {}", store.tmp.display()))?;
            let trees = store.sweep_orphan_trees().context(|| format!("backend '{}': sweeping trees/", store.id))?;
            Ok(temps
                + trees
                + store.sweep_uploads().context(|| format!("backend '{}': sweeping uploads/", store.id))?)
        })
        .await
    }

    fn create_upload(&self, id: &UploadId, record: &UploadRecord) -> Result<SystemTime> {
        self.store.create_upload(id, record)
    }

    fn read_upload(&self, id: &UploadId) -> Result<Option<(UploadRecord, SystemTime)>> {
        self.store.read_upload(id)
    }

    fn lock_upload(&self, id: &UploadId, what: &str) -> Result<Option<Box<dyn UploadSession>>> {
        uploads::lock(&self.store, id, what)
    }

    fn remove_upload(&self, id: &UploadId) -> Result<bool> {
        uploads::remove_unlocked(&self.store, id)
    }

    fn upload_ids(&self) -> Result<Vec<UploadId>> {
        self.store.upload_ids()
    }
}

/// Whether a lookup is remembered for the next: a listing or the sweep looks at every object once,
/// and would push out the objects that are looked up again and again.
#[derive(Clone, Copy)]
enum Visit {
    Again,
    Once,
}

/// What sits at an object's path.
enum Found {
    /// The object's file, its size and its locator.
    File(File, u64, String),
    /// Something else: a directory, a symlink, a device. Says what.
    NotAnObject(String),
}

impl Store {
    fn not_found(&self, address: &ContentAddress) -> Error {
        Error::NotFound { address: address.to_string(), backend: self.id.clone() }
    }

    fn object_path(&self, address: &ContentAddress) -> PathBuf {
        self.root.join(object_locator(address))
    }

    /// See [`Backend::resolve`].
    fn resolve(&self, address: &ContentAddress) -> Result<ContentAddress> {
        if !catalogue::names_another(address) {
            return Ok(*address);
        }
        Ok(self.lookup(address)?.unwrap_or(*address))
    }

    /// [`Self::info`] of the object `address` names, looked up as [`Self::lookup`] does, with one
    /// look at each file fewer, and for a SHA-256 looked up before, at the object it named first
    /// (the lookups a registry repeats). Only a store in another process storing an object under
    /// that SHA-256 since makes this name another object than `lookup` (whose callers, serve,
    /// verify and delete, go to the address's own place first).
    fn info_of(&self, address: &ContentAddress) -> Result<ObjectInfo> {
        if let Some(primary) = self.remembered_primary(address) {
            match self.info(&primary, Visit::Again) {
                Err(Error::NotFound { .. }) => self.primaries.forget(address),
                other => return other,
            }
        }
        let found = self.info(address, Visit::Again);
        if !catalogue::names_another(address) || !matches!(found, Err(Error::NotFound { .. })) {
            return found;
        }
        let context = || format!("backend '{}': looking up {address} in the index", self.id);
        let Some(primary) = catalogue::read_index(&self.root, &address.bytes).context(context)? else {
            return found;
        };
        match self.info(&primary, Visit::Again) {
            Err(Error::NotFound { .. }) => {
                let object = self.object_path(&primary);
                catalogue::remove_index(&self.root, &address.bytes, &primary, &object).context(context)?;
                found
            }
            Ok(info) => {
                self.primaries.put(address, primary);
                Ok(info)
            }
            other => other,
        }
    }

    /// The address of the object `address` names, if the store holds it: the address itself, or
    /// for a SHA-256 the BLAKE3-primary object the index names. A dangling index entry (its object
    /// deleted, or lost to a crash before it was linked) is removed on the way.
    fn lookup(&self, address: &ContentAddress) -> Result<Option<ContentAddress>> {
        if exists(&self.object_path(address))? {
            return Ok(Some(*address));
        }
        if !catalogue::names_another(address) {
            return Ok(None);
        }
        if let Some(primary) = self.primaries.get(address) {
            if exists(&self.object_path(&primary))? {
                return Ok(Some(primary));
            }
            self.primaries.forget(address);
        }
        let context = || format!("backend '{}': looking up {address} in the index", self.id);
        let Some(primary) = catalogue::read_index(&self.root, &address.bytes).context(context)? else {
            return Ok(None);
        };
        let object = self.object_path(&primary);
        if exists(&object)? {
            self.primaries.put(address, primary);
            return Ok(Some(primary));
        }
        catalogue::remove_index(&self.root, &address.bytes, &primary, &object).context(context)?;
        Ok(None)
    }

    /// The BLAKE3-primary object a SHA-256 named when it was last looked up here, looked at first:
    /// the SHA-256's own place is then empty (an object stored there since, by this store, made
    /// it forget).
    fn remembered_primary(&self, address: &ContentAddress) -> Option<ContentAddress> {
        catalogue::names_another(address).then(|| self.primaries.get(address)).flatten()
    }

    /// Sets the object's touch time to now and returns its entry.
    fn touch(&self, address: &ContentAddress) -> Result<ObjectInfo> {
        let locator = object_locator(address);
        if !catalogue::touch(&self.root.join(&locator)).context(|| format!("touching {locator}"))? {
            return Err(self.not_found(address));
        }
        self.info(address, Visit::Again)
    }

    /// The object's catalogue entry. An object stored before the catalogue recorded its SHA-256 is
    /// digested once, and recorded.
    fn info(&self, address: &ContentAddress, visit: Visit) -> Result<ObjectInfo> {
        let locator = object_locator(address);
        let path = self.root.join(&locator);
        let metadata = match fs::symlink_metadata(&path) {
            // Something else in an object's place (a directory, a symlink) is no object: the
            // scrub's to quarantine.
            Ok(metadata) if metadata.is_file() => metadata,
            Ok(_) => return Err(self.not_found(address)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(self.not_found(address)),
            Err(e) => return Err(Error::io(format!("backend '{}': looking up {locator}", self.id), e)),
        };
        let stat = Stat::from(&metadata);
        let recorded = match stat.file.and_then(|file| self.records.record(address, file)) {
            Some(recorded) => recorded,
            None => {
                let recorded = self.recorded(address, &path, &locator, &stat)?;
                if let (Some(file), Visit::Again) = (stat.file, visit) {
                    self.records.put(address, (file, recorded));
                }
                recorded
            }
        };
        Ok(self.entry(address, locator, &stat, recorded))
    }

    /// [`Self::info`] of an object in a leaf directory a listing holds open, looked up by its name
    /// there (see [`stat`]).
    fn info_in(&self, leaf: &listing::ReadLeaf, address: &ContentAddress) -> Result<ObjectInfo> {
        let context = || format!("backend '{}': looking up {}", self.id, object_locator(address));
        let (dir, name) = (leaf.fd().context(context)?, listing::LeafName::of(address));
        let stat = match stat::stat_in(dir, name.as_c_str()).context(context)? {
            // As `info`: something else in an object's place is no object.
            Some(stat) if stat.is_file => stat,
            _ => return Err(self.not_found(address)),
        };
        // Read, not looked for among the remembered: a listing looks at each object once, and in a
        // store of more objects than are remembered, looking costs half the read and rarely finds.
        let Some(recorded) = catalogue::recorded_in(dir, name.as_c_str(), leaf.path()).context(context)? else {
            // Stored before attributes were kept: `info` digests it, and records.
            return self.info(address, Visit::Once);
        };
        Ok(self.entry(address, object_locator(address), &stat, recorded))
    }

    /// [`Self::info_of`] where it can be answered without waiting for a device: the object's path
    /// in the kernel's lookup caches (see [`cached`]) and its attribute remembered, so that the
    /// look at the path is all there is to it. `None` where it cannot (the object or its attribute
    /// not looked at lately, an object stored since under a SHA-256 looked up): ask
    /// [`Self::info_of`] on a thread that may wait.
    fn cached_info_of(&self, address: &ContentAddress) -> Option<Result<ObjectInfo>> {
        let named = catalogue::names_another(address);
        let primary = if named { self.primaries.get(address)? } else { *address };
        let locator = object_locator(&primary);
        let looked_up = cached::symlink_metadata(self.base.read().ok()?.as_ref()?, Path::new(&locator));
        let metadata = match looked_up {
            cached::Cached::Found(metadata) if metadata.is_file() => metadata,
            // As `info`: nothing, or something else in an object's place, is no object. A SHA-256
            // whose object is gone may name another now, which only the index says.
            cached::Cached::Found(_) | cached::Cached::Absent if !named => return Some(Err(self.not_found(address))),
            _ => return None,
        };
        let stat = Stat::from(&metadata);
        let recorded = self.records.record(&primary, stat.file?)?;
        Some(Ok(self.entry(&primary, locator, &stat, recorded)))
    }

    fn entry(&self, address: &ContentAddress, locator: String, stat: &Stat, recorded: Recorded) -> ObjectInfo {
        ObjectInfo {
            content_address: *address,
            sha256_digest: Digest::new(HashAlgorithm::Sha256, recorded.sha256),
            size_bytes: stat.size,
            backend_id: self.id.clone(),
            locator,
            stored_at: recorded.stored_at,
            touched_at: catalogue::touched_at(stat, Some(&recorded)),
        }
    }

    /// What the object's attribute records, or (an object stored before attributes were kept)
    /// what its bytes say, recorded now.
    fn recorded(&self, address: &ContentAddress, path: &Path, locator: &str, stat: &Stat) -> Result<Recorded> {
        if let Some(recorded) = catalogue::recorded(path).context(|| format!("reading the attributes of {locator}"))? {
            return Ok(recorded);
        }
        let (file, _, _) = self.open_object(address)?;
        let digests = digest_file(file, address, locator)?;
        let recorded = Recorded { sha256: digests.sha256.bytes, stored_at: catalogue::touched_at(stat, None) };
        let context = || format!("backend '{}': recording the catalogue entry of {locator}", self.id);
        catalogue::record_at(path, &recorded).context(context)?;
        self.index(address, &digests).context(context)?;
        Ok(recorded)
    }

    /// Indexes a BLAKE3-primary object by its SHA-256.
    fn index(&self, address: &ContentAddress, digests: &Digests) -> io::Result<()> {
        if catalogue::indexed(address) {
            catalogue::write_index(&self.root, &digests.sha256.bytes, address)?;
        }
        Ok(())
    }

    /// Touches an intact object at `path` and returns when it was stored; `None` when there is
    /// none. Anything else found there (a file of the wrong size, left by corruption) is removed,
    /// so the new copy takes its place.
    fn touch_existing(&self, path: &Path, digests: &Digests) -> io::Result<Option<SystemTime>> {
        if !catalogue::touch(path)? {
            return Ok(None);
        }
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_file() && m.size() == digests.size_bytes => {
                let stored_at = match catalogue::recorded(path)? {
                    Some(recorded) => recorded.stored_at,
                    None => {
                        let recorded = Recorded { sha256: digests.sha256.bytes, stored_at: SystemTime::now() };
                        match catalogue::record_at(path, &recorded) {
                            Ok(()) => {}
                            // Moved away since it was touched: a delete's second look sees the touch.
                            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                            Err(e) => return Err(e),
                        }
                        recorded.stored_at
                    }
                };
                self.index(&digests.primary, digests)?;
                Ok(Some(stored_at))
            }
            Ok(m) if m.is_dir() => {
                Err(io::Error::new(io::ErrorKind::AlreadyExists, "a directory is in the object's place"))
            }
            Ok(_) => fs::remove_file(path).map(|()| None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes an object. With `unless_touched_since`, the one way to do it without a lock: look at
    /// the touch time; only if it is older, move the object aside and look again, and put it back if
    /// it was touched meanwhile. An ingest touches before it looks, so either its touch lands before
    /// the second look (and the object is put back) or its look finds the object gone (and it
    /// stores it anew).
    fn delete(&self, address: &ContentAddress, unless_touched_since: Option<SystemTime>) -> io::Result<Deletion> {
        let path = self.object_path(address);
        let recorded = catalogue::recorded(&path)?;
        let Some(since) = unless_touched_since else {
            return match fs::remove_file(&path) {
                Ok(()) => self.forget(address, recorded, &path).map(|()| Deletion::Deleted),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Deletion::Absent),
                Err(e) => Err(e),
            };
        };
        let touched_at = match fs::symlink_metadata(&path) {
            Ok(metadata) => catalogue::touched_at(&Stat::from(&metadata), recorded.as_ref()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Deletion::Absent),
            Err(e) => return Err(e),
        };
        if touched_at >= since {
            return Ok(Deletion::Kept(touched_at));
        }
        let aside = catalogue::aside_path(&self.root, address);
        match fs::rename(&path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Deletion::Absent),
            Err(e) => return Err(e),
        }
        let touched_at = catalogue::touched_at(&Stat::from(&fs::symlink_metadata(&aside)?), recorded.as_ref());
        if touched_at >= since {
            catalogue::put_back(&aside, &path)?;
            return Ok(Deletion::Kept(touched_at));
        }
        fs::remove_file(&aside)?;
        self.forget(address, recorded, &path).map(|()| Deletion::Deleted)
    }

    /// Gives every object of a store written before the catalogue existed its entry (reading the
    /// objects that lack one), once: `index/complete` marks a store whose every object has one.
    fn catalogue_existing_objects(&self) -> Result<()> {
        let complete = self.root.join("index").join("complete");
        if exists(&complete)? {
            return Ok(());
        }
        for address in listing::Walk::new(&self.root, None) {
            let address = address.context(|| format!("backend '{}': listing objects/", self.id))?;
            match self.info(&address, Visit::Once) {
                Ok(info) => self
                    .index(
                        &address,
                        &Digests { primary: address, sha256: info.sha256_digest, size_bytes: info.size_bytes },
                    )
                    .context(|| format!("backend '{}': indexing {address}", self.id))?,
                // Gone since listed, or not a regular file (the scrub's to find).
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let context = || format!("backend '{}': writing {}", self.id, complete.display());
        fs::create_dir_all(complete.parent().expect("a parent")).context(context)?;
        File::create(&complete).context(context)?;
        Ok(())
    }

    /// Looks at up to `limit` objects after `request.after` and returns those that match; the
    /// page says where to go on while objects remain. A listing waits on system calls, one for
    /// each leaf directory and two for each object: the leaves are read and their objects looked
    /// up on all cores, a leaf at a time each.
    fn list(&self, request: &ListRequest) -> Result<ObjectPage> {
        let limit = request.limit.map_or(LIST_PAGE_LEN, |limit| limit as usize);
        let after = request.after.as_ref();
        let leaves = listing::Leaves::new(&self.root, after);
        // One object beyond the page says whether another page follows.
        let looked_at = map_on_cores_until(leaves, |leaf| self.leaf_infos(&leaf, after), Vec::len, limit + 1);
        let leaves = looked_at.context(|| format!("backend '{}': listing objects/", self.id))?;
        let mut looked_at = leaves.into_iter().flatten();
        let mut page =
            ObjectPage { objects: Vec::with_capacity(limit.min(IN_PROCESS_LIST_PAGE_LEN)), next_after: None };
        let mut last = None;
        for (address, info) in looked_at.by_ref().take(limit) {
            last = Some(address);
            match info {
                Ok(info) if request.touched_before.is_none_or(|before| info.touched_at < before) => {
                    page.objects.push(info)
                }
                Ok(_) => {}
                // Deleted since the walk saw its name: not listed.
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if looked_at.next().is_some() {
            page.next_after = last;
        }
        Ok(page)
    }

    /// The catalogue entries of the objects in one leaf directory after `after`, each with its
    /// address, ascending.
    fn leaf_infos(
        &self,
        leaf: &listing::Leaf,
        after: Option<&ContentAddress>,
    ) -> io::Result<Vec<(ContentAddress, Result<ObjectInfo>)>> {
        let Some(read) = leaf.read(after)? else { return Ok(Vec::new()) };
        Ok(read.addresses.iter().map(|address| (*address, self.info_in(&read, address))).collect())
    }

    /// Removes the index entry of a deleted object.
    fn forget(&self, address: &ContentAddress, recorded: Option<Recorded>, path: &Path) -> io::Result<()> {
        self.remove_tree(address)?;
        match recorded {
            Some(recorded) if catalogue::indexed(address) => {
                catalogue::remove_index(&self.root, &recorded.sha256, address, path)
            }
            _ => Ok(()),
        }
    }
    fn open_object(&self, address: &ContentAddress) -> Result<(File, u64, String)> {
        match self.find_object(address)? {
            Found::File(file, size, locator) => Ok((file, size, locator)),
            Found::NotAnObject(what) => Err(Error::io(what, io::Error::from(io::ErrorKind::InvalidData))),
        }
    }

    /// Opens a stored object without following symlinks.
    fn find_object(&self, address: &ContentAddress) -> Result<Found> {
        let locator = object_locator(address);
        let path = self.root.join(&locator);
        let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound { address: address.to_string(), backend: self.id.clone() })
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Ok(Found::NotAnObject(format!("{locator} is a symlink, not a regular file")))
            }
            Err(e) => return Err(Error::io(format!("opening {locator}"), e)),
        };
        let metadata = file.metadata().context(|| format!("reading the metadata of {locator}"))?;
        if !metadata.is_file() {
            return Ok(Found::NotAnObject(format!("{locator} is not a regular file")));
        }
        Ok(Found::File(file, metadata.len(), locator))
    }

    /// Writes a file under the root (an anonymous one: nothing to leave behind); returns free and
    /// total bytes of its filesystem.
    fn probe(&self) -> Result<(u64, u64)> {
        let written = TempFile::create(&self.tmp).and_then(|mut temp| {
            temp.file.write_all(b"probe")?;
            if self.durable {
                temp.file.sync_data()?;
            }
            Ok(())
        });
        written.context(|| format!("backend '{}': cannot write under {}", self.id, self.root.display()))?;
        filesystem_space(&self.root).context(|| format!("backend '{}': statvfs {}", self.id, self.root.display()))
    }
}

fn digest_file(mut file: File, address: &ContentAddress, locator: &str) -> Result<Digests> {
    let mut hasher = DualHasher::new(address.algorithm);
    let buffers = BufferPool::new(CHUNK_LEN);
    while let Some(chunk) = buffers.read_chunk(&mut file).context(|| format!("reading {locator}"))? {
        hasher.update(&chunk);
    }
    Ok(hasher.finalize())
}

fn filesystem_space(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let block = stat.f_frsize as u64;
    Ok((stat.f_bavail as u64 * block, stat.f_blocks as u64 * block))
}

struct FsWriter {
    store: Arc<Store>,
    temp: TempFile,
    /// No object was at the address a moment ago: commit need not look again before linking.
    checked_absent: bool,
}

impl ObjectWriter for FsWriter {
    fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.temp
            .file
            .write_all(&chunk)
            .context(|| format!("writing to a temporary file in {}", self.store.tmp.display()))
    }

    fn commit(self: Box<Self>, address: &ContentAddress, digests: &Digests) -> Result<Committed> {
        let link_as = |path: &Path| self.temp.link_as(path);
        self.store.commit_file(&self.temp.file, &link_as, self.checked_absent, address, digests)
    }
}

/// How many times a commit links its file while objects found in its place keep vanishing (each
/// a conditional delete's doing) before it gives up.
const LINK_ATTEMPTS: u32 = 8;

impl Store {
    /// Makes a fully written file the object at `address`, `link_as` giving it its name under
    /// `objects/`. Touches an object already there first, then looks (so that a conditional
    /// delete running at the same time either sees the touch or has moved the object away: see
    /// `Store::delete`); otherwise records the catalogue's facts, links the file into place and
    /// checks the index. `checked_absent`: no object was at the address a moment ago.
    fn commit_file(
        &self,
        file: &File,
        link_as: &dyn Fn(&Path) -> io::Result<()>,
        checked_absent: bool,
        address: &ContentAddress,
        digests: &Digests,
    ) -> Result<Committed> {
        let locator = object_locator(address);
        let path = self.root.join(&locator);
        let context = || format!("backend '{}': storing {locator}", self.id);
        if !checked_absent {
            if let Some(stored_at) = self.touch_existing(&path, digests).context(context)? {
                return Ok(Committed { locator, stored_at, deduplicated: true });
            }
        }
        let stored_at = SystemTime::now();
        if catalogue::names_another(address) {
            // From now on the SHA-256 names this object, not a BLAKE3 one found for it before.
            self.primaries.forget(address);
        }
        catalogue::record(file, &Recorded { sha256: digests.sha256.bytes, stored_at }).context(context)?;
        if self.durable {
            file.sync_data().context(context)?;
        }
        self.index(address, digests).context(context)?;
        for attempt in 1.. {
            match self.link(link_as, &path) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < LINK_ATTEMPTS => {
                    if let Some(stored_at) = self.touch_existing(&path, digests).context(context)? {
                        return Ok(Committed { locator, stored_at, deduplicated: true });
                    }
                    // Gone since the link found it (a conditional delete moved it away), or not
                    // whole (and removed): this file takes its place.
                }
                Err(e) => return Err(Error::io(context(), e)),
            }
        }
        // A conditional delete of an older copy may have removed the entry meanwhile.
        if catalogue::indexed(address) {
            catalogue::ensure_index(&self.root, &digests.sha256.bytes, address).context(context)?;
        }
        if self.durable {
            if let Err(e) = sync_dir(path.parent().expect("objects have a parent")) {
                // Not durable, so not stored: no later ingest may deduplicate against it.
                let _ = fs::remove_file(&path);
                return Err(Error::io(context(), e));
            }
        }
        Ok(Committed { locator, stored_at, deduplicated: false })
    }

    /// Links a file as `path` with `link_as`, creating the shard directories on first use.
    fn link(&self, link_as: &dyn Fn(&Path) -> io::Result<()>, path: &Path) -> io::Result<()> {
        match link_as(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.create_shard_dirs(path.parent().expect("objects have a parent"))?;
                link_as(path)
            }
            other => other,
        }
    }

    fn create_shard_dirs(&self, dir: &Path) -> io::Result<()> {
        let parent = dir.parent().expect("shard directories have a parent");
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.create_shard_dirs(parent)?;
                return self.create_shard_dirs(dir);
            }
            Err(e) => return Err(e),
        }
        if self.durable {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("looking up {}", path.display()), e)),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a file; one already gone is as good.
fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
