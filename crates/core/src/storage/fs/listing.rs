//! Walking `objects/` in ascending order of the address text, one leaf directory at a time, so a
//! listing holds at most one directory's names whatever the store's size.
//!
//! `blake3:…` sorts before `sha256:…`, and within an algorithm the shard directories `aa/bb/` are
//! the first four hex digits: walking algorithms, then shards, in name order, then sorting each
//! leaf's names, yields addresses in order.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::identity::{parse_hex_digest, ContentAddress, HashAlgorithm};

/// In the order of their names.
const ALGORITHMS: [HashAlgorithm; 2] = [HashAlgorithm::Blake3, HashAlgorithm::Sha256];

/// The addresses under `objects/`, ascending, starting after `after` when given. Names that are
/// not addresses (nothing the store writes) are passed over.
pub(super) struct Walk {
    after: Option<ContentAddress>,
    /// `after`'s digest in hex, which the shard directories' names spell the start of.
    after_hex: String,
    /// Directories still to visit, the next one last; each with its algorithm and the hex digits
    /// its path below the algorithm's directory spells (none, `aa`, or `aabb` for a leaf).
    pending: Vec<(PathBuf, HashAlgorithm, String)>,
    /// The sorted addresses of the leaf being yielded, the next one last.
    leaf: Vec<ContentAddress>,
}

impl Walk {
    pub(super) fn new(root: &Path, after: Option<&ContentAddress>) -> Self {
        let objects = root.join("objects");
        let mut walk = Walk {
            after: after.copied(),
            after_hex: after.map(|a| a.hex()).unwrap_or_default(),
            pending: Vec::new(),
            leaf: Vec::new(),
        };
        let algorithms = ALGORITHMS.iter().rev().filter(|&&algorithm| !walk.all_earlier(algorithm, ""));
        walk.pending =
            algorithms.map(|&algorithm| (objects.join(algorithm.as_str()), algorithm, String::new())).collect();
        walk
    }

    /// Whether every address whose hex starts with `prefix` comes no later than `after`: a
    /// directory that holds only those is not visited.
    fn all_earlier(&self, algorithm: HashAlgorithm, prefix: &str) -> bool {
        let Some(after) = &self.after else { return false };
        (algorithm.as_str(), prefix) < (after.algorithm.as_str(), &self.after_hex[..prefix.len()])
    }

    /// The names in `dir`, none if it is gone.
    fn names(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
        match fs::read_dir(dir) {
            Ok(entries) => entries.map(|entry| entry.map(|e| e.file_name())).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn visit(&mut self, dir: PathBuf, algorithm: HashAlgorithm, prefix: String) -> io::Result<()> {
        let names = Self::names(&dir)?;
        if prefix.len() < 4 {
            let mut shards: Vec<_> = names
                .into_iter()
                .filter_map(|name| name.into_string().ok())
                .filter(|name| name.len() == 2)
                .map(|name| (prefix.clone() + &name, name))
                .filter(|(below, _)| !self.all_earlier(algorithm, below))
                .collect();
            shards.sort_unstable_by(|a, b| b.0.cmp(&a.0));
            self.pending.extend(shards.into_iter().map(|(below, name)| (dir.join(name), algorithm, below)));
            return Ok(());
        }
        let after = self.after.map(|after| (after.algorithm.as_str(), after.bytes));
        self.leaf = names
            .iter()
            .filter_map(|name| parse_hex_digest(name.to_str()?))
            .filter(|bytes| after.is_none_or(|after| (algorithm.as_str(), *bytes) > after))
            .map(|bytes| ContentAddress::new(algorithm, bytes))
            .collect();
        // Lowercase hex sorts as the bytes it spells; the next address goes last.
        self.leaf.sort_unstable_by(|a, b| b.bytes.cmp(&a.bytes));
        Ok(())
    }
}

impl Iterator for Walk {
    type Item = io::Result<ContentAddress>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(address) = self.leaf.pop() {
                return Some(Ok(address));
            }
            let (dir, algorithm, prefix) = self.pending.pop()?;
            if let Err(e) = self.visit(dir, algorithm, prefix) {
                return Some(Err(e));
            }
        }
    }
}
