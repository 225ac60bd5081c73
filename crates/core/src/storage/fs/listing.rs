//! Walking `objects/` in ascending order of the address text, one leaf directory at a time, so a
//! listing holds at most one directory's names whatever the store's size.
//!
//! `blake3:…` sorts before `sha256:…`, and within an algorithm the shard directories `aa/bb/` are
//! the first four hex digits: walking algorithms, then shards, in name order, then sorting each
//! leaf's names, yields addresses in order.

use std::ffi::CStr;
use std::fs;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Dir, Mode, OFlags};

use crate::identity::{parse_hex_digest, ContentAddress, HashAlgorithm, DIGEST_LEN};

/// In the order of their names.
const ALGORITHMS: [HashAlgorithm; 2] = [HashAlgorithm::Blake3, HashAlgorithm::Sha256];

/// A leaf directory, `objects/<alg>/<aa>/<bb>/`: its names are the objects' digests.
pub(super) struct Leaf {
    dir: PathBuf,
    algorithm: HashAlgorithm,
}

/// A leaf directory as read: open, so that its objects can be looked up by their names in it.
pub(super) struct ReadLeaf<'a> {
    dir: Dir,
    path: &'a Path,
    /// The addresses after the walk's start, ascending.
    pub addresses: Vec<ContentAddress>,
}

impl ReadLeaf<'_> {
    pub(super) fn fd(&self) -> io::Result<BorrowedFd<'_>> {
        Ok(self.dir.fd()?)
    }

    pub(super) fn path(&self) -> &Path {
        self.path
    }
}

/// An object's name in its leaf directory: its digest in hex, as a C string.
pub(super) struct LeafName([u8; DIGEST_LEN * 2 + 1]);

impl LeafName {
    pub(super) fn of(address: &ContentAddress) -> Self {
        let mut name = [0u8; DIGEST_LEN * 2 + 1];
        hex::encode_to_slice(address.bytes, &mut name[..DIGEST_LEN * 2]).expect("two hex digits a byte");
        LeafName(name)
    }

    pub(super) fn as_c_str(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.0).expect("hex digits, then a NUL")
    }
}

impl Leaf {
    /// The addresses in this leaf that come after `after`, ascending.
    pub(super) fn addresses(&self, after: Option<&ContentAddress>) -> io::Result<Vec<ContentAddress>> {
        Ok(self.read(after)?.map_or_else(Vec::new, |leaf| leaf.addresses))
    }

    /// The leaf, read: its addresses after `after`; `None` if it is gone. Names that are not
    /// addresses (nothing the store writes) are passed over.
    pub(super) fn read(&self, after: Option<&ContentAddress>) -> io::Result<Option<ReadLeaf<'_>>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut dir = match rustix::fs::open(&self.dir, flags, Mode::empty()) {
            Ok(fd) => Dir::new(fd)?,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let after = after.map(|after| (after.algorithm.as_str(), after.bytes));
        let mut addresses = Vec::new();
        while let Some(entry) = dir.read() {
            let Some(bytes) = entry?.file_name().to_str().ok().and_then(parse_hex_digest) else { continue };
            if after.is_none_or(|after| (self.algorithm.as_str(), bytes) > after) {
                addresses.push(ContentAddress::new(self.algorithm, bytes));
            }
        }
        // Lowercase hex sorts as the bytes it spells.
        addresses.sort_unstable_by_key(|address| address.bytes);
        Ok(Some(ReadLeaf { dir, path: &self.dir, addresses }))
    }
}

/// The leaf directories under `objects/` that may hold addresses after `after`, in order; reads
/// only the directories above them.
pub(super) struct Leaves {
    after: Option<ContentAddress>,
    /// `after`'s digest in hex, which the shard directories' names spell the start of.
    after_hex: String,
    /// Directories still to visit, the next one last; each with its algorithm and the hex digits
    /// its path below the algorithm's directory spells (none, `aa`, or `aabb` for a leaf).
    pending: Vec<(PathBuf, HashAlgorithm, String)>,
}

impl Leaves {
    pub(super) fn new(root: &Path, after: Option<&ContentAddress>) -> Self {
        let objects = root.join("objects");
        let mut leaves = Leaves {
            after: after.copied(),
            after_hex: after.map(|a| a.hex()).unwrap_or_default(),
            pending: Vec::new(),
        };
        let algorithms = ALGORITHMS.iter().rev().filter(|&&algorithm| !leaves.all_earlier(algorithm, ""));
        leaves.pending =
            algorithms.map(|&algorithm| (objects.join(algorithm.as_str()), algorithm, String::new())).collect();
        leaves
    }

    /// Whether every address whose hex starts with `prefix` comes no later than `after`: a
    /// directory that holds only those is not visited.
    fn all_earlier(&self, algorithm: HashAlgorithm, prefix: &str) -> bool {
        let Some(after) = &self.after else { return false };
        (algorithm.as_str(), prefix) < (after.algorithm.as_str(), &self.after_hex[..prefix.len()])
    }

    /// Puts the shard directories of `dir` on the list, the first one last.
    fn visit(&mut self, dir: PathBuf, algorithm: HashAlgorithm, prefix: String) -> io::Result<()> {
        let mut shards: Vec<_> = shard_names(&dir)?
            .into_iter()
            .map(|name| (prefix.clone() + &name, name))
            .filter(|(below, _)| !self.all_earlier(algorithm, below))
            .collect();
        shards.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        self.pending.extend(shards.into_iter().map(|(below, name)| (dir.join(name), algorithm, below)));
        Ok(())
    }
}

impl Iterator for Leaves {
    type Item = io::Result<Leaf>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (dir, algorithm, prefix) = self.pending.pop()?;
            if prefix.len() == 4 {
                return Some(Ok(Leaf { dir, algorithm }));
            }
            if let Err(e) = self.visit(dir, algorithm, prefix) {
                return Some(Err(e));
            }
        }
    }
}

/// The addresses under `objects/`, ascending, starting after `after` when given.
pub(super) struct Walk {
    after: Option<ContentAddress>,
    leaves: Leaves,
    /// The addresses of the leaf being yielded, the next one last.
    leaf: Vec<ContentAddress>,
}

impl Walk {
    pub(super) fn new(root: &Path, after: Option<&ContentAddress>) -> Self {
        Walk { after: after.copied(), leaves: Leaves::new(root, after), leaf: Vec::new() }
    }
}

impl Iterator for Walk {
    type Item = io::Result<ContentAddress>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(address) = self.leaf.pop() {
                return Some(Ok(address));
            }
            match self.leaves.next()?.and_then(|leaf| leaf.addresses(self.after.as_ref())) {
                Ok(mut addresses) => {
                    addresses.reverse();
                    self.leaf = addresses;
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// How many shard directories a directory above the leaves holds at most: one per two hex digits.
const SHARDS: u64 = 256;

/// The shard directories' names in `dir`, none if it is gone. Where its link count says it holds
/// all of them (each subdirectory links it once, besides its own two links), as a full store's
/// directories do, they are not read: a listing's every page starts at the top again, and these
/// reads were a third of its directory reads. A name spelled here that is not there (on a
/// filesystem that counts links otherwise) is passed over when its leaf is read.
fn shard_names(dir: &Path) -> io::Result<Vec<String>> {
    match fs::metadata(dir) {
        Ok(metadata) if metadata.nlink() == 2 + SHARDS => return Ok((0..SHARDS).map(|n| format!("{n:02x}")).collect()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    let names = names(dir)?.into_iter().filter_map(|name| name.into_string().ok());
    Ok(names.filter(|name| name.len() == 2).collect())
}

/// The names in `dir`, none if it is gone.
fn names(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
