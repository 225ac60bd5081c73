//! Trees beside objects (see [`crate::tree`]): `trees/<algorithm>/<hex[0:2]>/<hex>.obao4`, written
//! through an anonymous temporary file and linked into place before the object itself, so a whole
//! tree is there by the time its object is. Not flushed even on a durable store: a tree lost or torn
//! in a crash is found damaged by the next verified serve, which checks the object whole and writes
//! the tree again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;

use super::temp::TempFile;
use super::{remove_if_present, Store};
use crate::error::{IoContext, Result};
use crate::identity::ContentAddress;
use crate::storage::{object_locator, tree_locator, TreeFile};

/// How long a tree may wait for its object before the sweep takes it for an orphan.
pub(super) const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

impl Store {
    pub(super) fn write_tree(&self, address: &ContentAddress, tree_file: &[u8], replace: bool) -> io::Result<()> {
        let path = self.root.join(tree_locator(address));
        let mut temp = TempFile::create(&self.tmp)?;
        temp.file.write_all(tree_file)?;
        if replace {
            remove_if_present(&path)?;
        }
        match self.link(&|target| temp.link_as(target), &path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }

    pub(super) fn open_tree(&self, address: &ContentAddress) -> io::Result<Option<FsTree>> {
        let locator = tree_locator(address);
        let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(self.root.join(&locator)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
            Err(e) => return Err(e),
        };
        let metadata = file.metadata()?;
        Ok(metadata.is_file().then(|| FsTree { file, len: metadata.len(), locator }))
    }

    pub(super) fn remove_tree(&self, address: &ContentAddress) -> io::Result<()> {
        remove_if_present(&self.root.join(tree_locator(address)))
    }

    /// Removes the trees whose object is gone (a crash between a tree and its object, or between a
    /// delete of an object and of its tree); returns how many. A tree younger than
    /// [`ORPHAN_GRACE`] is spared: its ingest, in this or another process, may be about to link
    /// its object.
    pub(super) fn sweep_orphan_trees(&self) -> io::Result<u64> {
        let mut removed = 0;
        for tree in tree_files(&self.root.join("trees"))? {
            let Some(address) = address_of(&tree) else { continue };
            let young = fs::symlink_metadata(&tree)
                .and_then(|metadata| metadata.modified())
                .map_or(true, |modified| modified.elapsed().unwrap_or_default() < ORPHAN_GRACE);
            if young {
                continue;
            }
            if fs::symlink_metadata(self.root.join(object_locator(&address))).is_err() {
                remove_if_present(&tree)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

pub(super) struct FsTree {
    file: File,
    len: u64,
    locator: String,
}

#[async_trait]
impl TreeFile for FsTree {
    fn file_len(&self) -> u64 {
        self.len
    }

    /// A few KiB from the page cache: not worth a trip to a blocking thread.
    async fn read_at(&mut self, offset: u64, len: u64) -> Result<Bytes> {
        let mut bytes = vec![0u8; len as usize];
        self.file.read_exact_at(&mut bytes, offset).context(|| format!("reading {}", self.locator))?;
        Ok(bytes.into())
    }
}

/// Every file two levels below `trees/<algorithm>/`.
fn tree_files(trees: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for algorithm in read_dir_if_present(trees)? {
        for shard in read_dir_if_present(&algorithm)? {
            files.extend(read_dir_if_present(&shard)?);
        }
    }
    Ok(files)
}

fn read_dir_if_present(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.map(|entry| entry.path())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The object a tree file belongs to, from its path: `.../<algorithm>/<aa>/<hex>.obao4`.
fn address_of(tree: &Path) -> Option<ContentAddress> {
    let hex = tree.file_name()?.to_str()?.strip_suffix(crate::tree::TREE_SUFFIX)?;
    let algorithm = tree.parent()?.parent()?.file_name()?.to_str()?;
    ContentAddress::parse(&format!("{algorithm}:{hex}")).ok()
}
