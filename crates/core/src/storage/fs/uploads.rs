//! Resumable uploads on the fs backend.
//!
//! ```text
//! uploads/<id>/data      the bytes appended so far (after a crash, perhaps more: cut back to
//!                        the record's offset by the next append)
//! uploads/<id>/record    the upload's record (see `crate::upload::UploadRecord`), replaced by a
//!                        rename after every append; its mtime is the upload's update time
//! uploads/.new-<id>      an upload being created, renamed to `<id>` once whole
//! uploads/.gone-<id>     an upload being removed (committed or aborted), renamed away first so
//!                        that it disappears at once
//! ```
//! An append or a commit holds `flock` on the data file, so a second one, in any process, gets
//! `CONFLICT`, and a killed process's lock goes with it. A commit links the data file as the object
//! (no copy); if it dies before removing the upload, the data file has a second link, which tells
//! the next lock that the upload was committed: no byte may be appended to it, and a commit of it
//! finds the object stored and removes the upload.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{sync_dir, Store};
use crate::error::{Error, IoContext, Result};
use crate::hashing::Digests;
use crate::identity::Digest;
use crate::storage::Committed;
use crate::upload::{UploadId, UploadRecord, UploadSession};
use crate::wire::Wire;

pub(super) const UPLOADS_DIR: &str = "uploads";
const DATA: &str = "data";
const RECORD: &str = "record";
/// The pairs of the object's tree so far (see [`crate::tree`]), as long as the record's `tree_len`
/// says; what a killed append wrote past it is overwritten by the next.
const TREE: &str = "tree";
const NEW_PREFIX: &str = ".new-";
const GONE_PREFIX: &str = ".gone-";
/// A `.new-` directory outlives its creation by microseconds; one this old belongs to no one.
const CREATING_GRACE: Duration = Duration::from_secs(60);

impl Store {
    fn uploads(&self) -> PathBuf {
        self.root.join(UPLOADS_DIR)
    }

    fn upload_dir(&self, id: &UploadId) -> PathBuf {
        self.uploads().join(id.as_str())
    }

    pub(super) fn create_upload(&self, id: &UploadId, record: &UploadRecord) -> Result<SystemTime> {
        let context = || format!("backend '{}': creating upload {id}", self.id);
        let staging = self.uploads().join(format!("{NEW_PREFIX}{id}"));
        fs::create_dir_all(&staging).context(context)?;
        let data = File::create(staging.join(DATA)).context(context)?;
        if self.durable {
            data.sync_all().context(context)?;
        }
        let updated_at = self.write_record(&staging, record).context(context)?;
        fs::rename(&staging, self.upload_dir(id)).context(context)?;
        if self.durable {
            sync_dir(&self.uploads()).context(context)?;
        }
        Ok(updated_at)
    }

    pub(super) fn read_upload(&self, id: &UploadId) -> Result<Option<(UploadRecord, SystemTime)>> {
        read_record(&self.upload_dir(id))
            .context(|| format!("backend '{}': reading upload {id}", self.id))?
            .map_or(Ok(None), |(bytes, updated_at)| Ok(Some((self.decode_record(id, &bytes)?, updated_at))))
    }

    fn decode_record(&self, id: &UploadId, bytes: &[u8]) -> Result<UploadRecord> {
        UploadRecord::from_cbor(bytes).map_err(|e| {
            Error::io(
                format!("backend '{}': reading the record of upload {id}", self.id),
                io::Error::other(e.to_string()),
            )
        })
    }

    /// Writes `record` beside the data file, atomically; returns its update time.
    fn write_record(&self, dir: &Path, record: &UploadRecord) -> io::Result<SystemTime> {
        let temp = dir.join(format!("{RECORD}.{}", std::process::id()));
        let mut file = File::create(&temp)?;
        file.write_all(&record.to_cbor())?;
        if self.durable {
            file.sync_all()?;
        }
        let updated_at = file.metadata()?.modified()?;
        fs::rename(&temp, dir.join(RECORD))?;
        if self.durable {
            sync_dir(dir)?;
        }
        Ok(updated_at)
    }

    pub(super) fn upload_ids(&self) -> Result<Vec<UploadId>> {
        let entries = match fs::read_dir(self.uploads()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("backend '{}': listing uploads/", self.id), e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.context(|| format!("backend '{}': listing uploads/", self.id))?;
            ids.extend(entry.file_name().to_str().and_then(UploadId::from_listed));
        }
        Ok(ids)
    }

    /// Removes the directories of creations and removals that died half way.
    pub(super) fn sweep_uploads(&self) -> io::Result<u64> {
        let entries = match fs::read_dir(self.uploads()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let age = entry.metadata()?.modified()?.elapsed().unwrap_or_default();
            let stale = name.starts_with(GONE_PREFIX) || (name.starts_with(NEW_PREFIX) && age >= CREATING_GRACE);
            if stale && remove_dir(&entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The record's bytes and update time, `None` when the upload is not there.
fn read_record(dir: &Path) -> io::Result<Option<(Vec<u8>, SystemTime)>> {
    let mut file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(dir.join(RECORD)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(Some((bytes, file.metadata()?.modified()?)))
}

fn remove_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The upload's data file, locked; `None` when the upload is not there.
fn lock_data(store: &Store, id: &UploadId, what: &str) -> Result<Option<Locked>> {
    let path = store.upload_dir(id).join(DATA);
    let context = || format!("backend '{}': opening upload {id}", store.id);
    let file = match OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(context(), e)),
    };
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) => Err(id.busy(what)),
            _ => Err(Error::io(context(), error)),
        };
    }
    Ok(Some(Locked(file)))
}

/// An upload's data file, locked until dropped. The lock is given back before the file is closed:
/// a child process forked meanwhile (anywhere in this process) shares the file's open description,
/// and with it the lock, until it execs.
struct Locked(File);

impl Drop for Locked {
    fn drop(&mut self) {
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Locks an upload. One that a commit linked as its object before it died can only be committed
/// (again: the commit finds the object stored, and removes the upload).
pub(super) fn lock(store: &Arc<Store>, id: &UploadId, what: &str) -> Result<Option<Box<dyn UploadSession>>> {
    let Some(data) = lock_data(store, id, what)? else { return Ok(None) };
    // Locked: the record read now is the one the last append or commit left.
    let Some((record, _)) = store.read_upload(id)? else { return Ok(None) };
    let context = || format!("backend '{}': opening upload {id}", store.id);
    let metadata = data.0.metadata().context(context)?;
    let linked = metadata.nlink() > 1;
    if metadata.len() < record.offset {
        let lost = format!("its data has {} bytes, its record says {}", metadata.len(), record.offset);
        return Err(Error::io(context(), io::Error::new(io::ErrorKind::UnexpectedEof, lost)));
    }
    if !linked {
        // Bytes past the offset were written by an append that died before saving its record.
        data.0.set_len(record.offset).context(context)?;
    }
    let mut session = FsUploadSession { store: store.clone(), id: id.clone(), data, record, linked };
    io::Seek::seek(&mut session.data.0, io::SeekFrom::End(0)).context(context)?;
    Ok(Some(Box::new(session)))
}

/// Removes an unlocked upload (`CONFLICT` while locked); `false` when it is not there.
pub(super) fn remove_unlocked(store: &Store, id: &UploadId) -> Result<bool> {
    let Some(_locked) = lock_data(store, id, "abortUpload")? else { return Ok(false) };
    remove(store, id).context(|| format!("backend '{}': removing upload {id}", store.id))?;
    Ok(true)
}

/// Moves the upload out of sight at once, then deletes it.
fn remove(store: &Store, id: &UploadId) -> io::Result<()> {
    let gone = store.uploads().join(format!("{GONE_PREFIX}{id}"));
    fs::rename(store.upload_dir(id), &gone)?;
    remove_dir(&gone)
}

struct FsUploadSession {
    store: Arc<Store>,
    id: UploadId,
    /// Positioned at its end.
    data: Locked,
    record: UploadRecord,
    /// The data file is an object already (a commit died before removing the upload): no byte
    /// may be added to it.
    linked: bool,
}

impl UploadSession for FsUploadSession {
    fn record(&self) -> &UploadRecord {
        &self.record
    }

    fn write(&mut self, chunk: Bytes) -> Result<()> {
        let (store, id) = (&self.store, &self.id);
        if self.linked {
            return Err(Error::UnknownUpload(format!("upload {id:?} was committed: commit it again to remove it")));
        }
        self.data.0.write_all(&chunk).context(|| format!("backend '{}': appending to upload {id}", store.id))
    }

    fn save(&mut self, record: UploadRecord, pairs: &[u8]) -> Result<SystemTime> {
        let (store, id) = (&self.store, &self.id);
        let context = || format!("backend '{}': saving upload {id}", store.id);
        if self.linked {
            return read_record(&store.upload_dir(id))
                .context(context)?
                .map(|(_, at)| at)
                .ok_or_else(|| id.not_found());
        }
        if store.durable {
            self.data.0.sync_data().context(context)?;
        }
        if !pairs.is_empty() {
            let tree =
                OpenOptions::new().create(true).write(true).truncate(false).open(store.upload_dir(id).join(TREE));
            let at = record.tree_len - pairs.len() as u64;
            tree.and_then(|tree| tree.write_all_at(pairs, at)).context(context)?;
        }
        let updated_at = store.write_record(&store.upload_dir(id), &record).context(context)?;
        self.record = record;
        Ok(updated_at)
    }

    fn tree_pairs(&self) -> Result<Vec<u8>> {
        let tree_len = self.record.tree_len;
        if tree_len == 0 {
            return Ok(Vec::new());
        }
        let read = File::open(self.store.upload_dir(&self.id).join(TREE)).and_then(|tree| {
            // Allocated once the file is known to hold them: the record alone does not say so.
            if tree.metadata()?.len() < tree_len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("shorter than the record's {tree_len} bytes"),
                ));
            }
            let mut pairs = vec![0u8; tree_len as usize];
            tree.read_exact_at(&mut pairs, 0).map(|()| pairs)
        });
        read.context(|| format!("backend '{}': reading the tree of upload {}", self.store.id, self.id))
    }

    fn commit(self: Box<Self>, address: &Digest, digests: &Digests) -> Result<Committed> {
        let store = &self.store;
        let data_path = store.upload_dir(&self.id).join(DATA);
        let link_as = |target: &Path| fs::hard_link(&data_path, target);
        let committed = store.commit_file(&self.data.0, &link_as, false, address, digests)?;
        remove(store, &self.id).context(|| format!("backend '{}': removing committed upload {}", store.id, self.id))?;
        Ok(committed)
    }
}
