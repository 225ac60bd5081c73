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
    objects: PathBuf,
    after: Option<ContentAddress>,
    /// `after`'s text form, which the directories' paths spell a prefix of.
    after_text: Option<String>,
    /// Directories still to visit, the next one last; each with its algorithm and its depth below
    /// `objects/`.
    pending: Vec<(PathBuf, HashAlgorithm, usize)>,
    /// The sorted addresses of the leaf being yielded, the next one last.
    leaf: Vec<ContentAddress>,
}

impl Walk {
    pub(super) fn new(root: &Path, after: Option<&ContentAddress>) -> Self {
        let objects = root.join("objects");
        let pending =
            ALGORITHMS.iter().rev().map(|&algorithm| (objects.join(algorithm.as_str()), algorithm, 1)).collect();
        Walk { objects, after: after.copied(), after_text: after.map(ToString::to_string), pending, leaf: Vec::new() }
    }

    /// Whether nothing below `dir` can come after `after`: every address there starts with the
    /// prefix the directory's path spells, and a prefix below `after`'s own is all earlier.
    fn skippable(&self, dir: &Path) -> bool {
        let Some(after) = &self.after_text else { return false };
        let Ok(relative) = dir.strip_prefix(&self.objects) else { return false };
        let mut parts = relative.iter().map(|p| p.to_string_lossy());
        let Some(algorithm) = parts.next() else { return false };
        let prefix = format!("{algorithm}:{}", parts.collect::<String>());
        let comparable = &after[..prefix.len().min(after.len())];
        prefix.as_str() < comparable
    }

    /// The names in `dir`, none if it is gone.
    fn names(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
        match fs::read_dir(dir) {
            Ok(entries) => entries.map(|entry| entry.map(|e| e.file_name())).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn visit(&mut self, dir: PathBuf, algorithm: HashAlgorithm, depth: usize) -> io::Result<()> {
        let names = Self::names(&dir)?;
        if depth < 3 {
            let mut shards: Vec<_> = names.into_iter().filter(|n| n.len() == 2).collect();
            shards.sort_unstable_by(|a, b| b.cmp(a));
            self.pending.extend(shards.into_iter().map(|name| (dir.join(name), algorithm, depth + 1)));
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
            let (dir, algorithm, depth) = self.pending.pop()?;
            if self.skippable(&dir) {
                continue;
            }
            if let Err(e) = self.visit(dir, algorithm, depth) {
                return Some(Err(e));
            }
        }
    }
}
