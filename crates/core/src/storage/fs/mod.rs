//! The local-directory backend.
//!
//! ```text
//! <root>/objects/<algorithm>/<hex[0:2]>/<hex[2:4]>/<hex>   whole objects, and nothing else
//! <root>/tmp/                                              ingests in progress, health probes
//! ```
//! An object appears under `objects/` by a single `link` of a fully written temporary file, so it
//! is never visible half-written; with `durable` the file is flushed before and its directory after.

mod reader;
mod temp;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;

use self::temp::TempFile;
use super::{object_locator, resolve_range, Backend, Committed, HeldObject, ObjectReader, ObjectWriter, CHUNK_LEN};
use crate::api::{DeleteRequest, IngestRequest, ServeRequest};
use crate::blocking::run_blocking;
use crate::buffers::BufferPool;
use crate::config::FsConfig;
use crate::error::{Error, IoContext, Result};
use crate::hashing::{Digests, DualHasher};
use crate::identity::ContentAddress;
use crate::results::{BackendHealth, BackendKind};

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
}

impl FsBackend {
    /// Opens (creating if needed) a store under `config.root` and sweeps what dead ingests left.
    /// Blocking.
    pub fn open(id: String, config: &FsConfig) -> Result<Self> {
        let root = config.root.clone();
        let tmp = root.join("tmp");
        for dir in [root.join("objects"), tmp.clone()] {
            fs::create_dir_all(&dir).context(|| format!("backend '{id}': creating {}", dir.display()))?;
        }
        temp::sweep_stale(&tmp).context(|| format!("backend '{id}': sweeping {}", tmp.display()))?;
        Ok(FsBackend { store: Arc::new(Store { id, root, tmp, durable: config.durable }) })
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
        // Known content: a copy already stored costs one stat, not a temporary file.
        let locator = object_locator(address);
        let existing = existing_whole_object(&self.store.root.join(&locator), digests.size_bytes);
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
        let (address, range) = (request.address, request.byte_range);
        self.blocking(move |store| {
            let (file, size, locator) = store.open_object(&address)?;
            let range = resolve_range(range, size)?;
            Ok(Box::new(reader::serve_file(file, range, size, locator)?) as Box<dyn ObjectReader>)
        })
        .await
    }

    async fn digest(&self, address: &ContentAddress) -> Result<HeldObject> {
        let address = *address;
        self.blocking(move |store| match store.find_object(&address)? {
            Found::File(file, _, locator) => Ok(HeldObject::Digested(digest_file(file, &address, &locator)?)),
            Found::NotAnObject(what) => Ok(HeldObject::NotAnObject(what)),
        })
        .await
    }

    async fn delete(&self, request: &DeleteRequest) -> Result<bool> {
        let address = request.address;
        self.blocking(move |store| {
            let locator = object_locator(&address);
            match fs::remove_file(store.root.join(&locator)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::io(format!("backend '{}': deleting {locator}", store.id), e)),
            }
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
        self.blocking(|store| temp::sweep_stale(&store.tmp).context(|| format!("sweeping {}", store.tmp.display())))
            .await
    }
}

/// What sits at an object's path.
enum Found {
    /// The object's file, its size and its locator.
    File(File, u64, String),
    /// Something else: a directory, a symlink, a device. Says what.
    NotAnObject(String),
}

impl Store {
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
        let locator = object_locator(address);
        let path = self.store.root.join(&locator);
        let context = || format!("backend '{}': storing {locator}", self.store.id);
        if !self.checked_absent {
            if let Some(stored_at) = existing_whole_object(&path, digests.size_bytes).context(context)? {
                return Ok(Committed { locator, stored_at, deduplicated: true });
            }
        }
        if self.store.durable {
            self.temp.file.sync_data().context(context)?;
        }
        match self.link(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let stored_at = existing_whole_object(&path, digests.size_bytes).context(context)?;
                return Ok(Committed {
                    locator,
                    stored_at: stored_at.unwrap_or_else(SystemTime::now),
                    deduplicated: true,
                });
            }
            Err(e) => return Err(Error::io(context(), e)),
        }
        if self.store.durable {
            if let Err(e) = sync_dir(path.parent().expect("objects have a parent")) {
                // Not durable, so not stored: no later ingest may deduplicate against it.
                let _ = fs::remove_file(&path);
                return Err(Error::io(context(), e));
            }
        }
        Ok(Committed { locator, stored_at: SystemTime::now(), deduplicated: false })
    }
}

impl FsWriter {
    /// Links the temporary file as `path`, creating the shard directories on first use.
    fn link(&self, path: &Path) -> io::Result<()> {
        match self.temp.link_as(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.create_shard_dirs(path.parent().expect("objects have a parent"))?;
                self.temp.link_as(path)
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
        if self.store.durable {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

/// The time an intact object at `path` was stored, `None` when there is none. Anything else found
/// there (a file of the wrong size, left by corruption) is removed, so the new copy takes its place.
fn existing_whole_object(path: &Path, size_bytes: u64) -> io::Result<Option<SystemTime>> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.size() == size_bytes => Ok(Some(m.modified()?)),
        Ok(m) if m.is_dir() => {
            Err(io::Error::new(io::ErrorKind::AlreadyExists, "a directory is in the object's place"))
        }
        Ok(_) => fs::remove_file(path).map(|()| None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
