//! Walking `objects/` in ascending order of the address text, one leaf directory at a time, so a
//! listing holds at most one directory's names whatever the store's size.
//!
//! `blake3:…` sorts before `sha256:…`, and within an algorithm the shard directories `aa/bb/` are
//! the first four hex digits: walking algorithms, then shards, in name order, then sorting each
//! leaf's names, yields addresses in order.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::identity::ContentAddress;

const ALGORITHMS: [&str; 2] = ["blake3", "sha256"];

/// The addresses under `objects/`, ascending, starting after `after` when given. Names that are
/// not addresses (nothing the store writes) are passed over.
pub(super) struct Walk {
    objects: PathBuf,
    after: Option<String>,
    /// Directories still to visit, the next one last; each with its algorithm and its depth below
    /// `objects/`.
    pending: Vec<(PathBuf, &'static str, usize)>,
    /// The sorted addresses of the leaf being yielded, the next one last.
    leaf: Vec<ContentAddress>,
}

impl Walk {
    pub(super) fn new(root: &Path, after: Option<&ContentAddress>) -> Self {
        let objects = root.join("objects");
        let pending = ALGORITHMS.iter().rev().map(|&algorithm| (objects.join(algorithm), algorithm, 1)).collect();
        Walk { objects, after: after.map(ToString::to_string), pending, leaf: Vec::new() }
    }

    /// Whether nothing below `dir` can come after `after`: every address there starts with the
    /// prefix the directory's path spells, and a prefix below `after`'s own is all earlier.
    fn skippable(&self, dir: &Path) -> bool {
        let Some(after) = &self.after else { return false };
        let Ok(relative) = dir.strip_prefix(&self.objects) else { return false };
        let mut parts = relative.iter().map(|p| p.to_string_lossy());
        let Some(algorithm) = parts.next() else { return false };
        let prefix = format!("{algorithm}:{}", parts.collect::<String>());
        let comparable = &after[..prefix.len().min(after.len())];
        prefix.as_str() < comparable
    }

    fn sorted_names(dir: &Path) -> io::Result<Vec<String>> {
        let mut names = match fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<io::Result<Vec<_>>>()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        names.sort_unstable();
        Ok(names)
    }

    fn visit(&mut self, dir: PathBuf, algorithm: &'static str, depth: usize) -> io::Result<()> {
        let names = Self::sorted_names(&dir)?;
        if depth < 3 {
            let shards = names.into_iter().filter(|n| n.len() == 2).rev();
            self.pending.extend(shards.map(|name| (dir.join(name), algorithm, depth + 1)));
            return Ok(());
        }
        let after = self.after.as_deref();
        self.leaf = names
            .iter()
            .rev()
            .filter_map(|name| ContentAddress::parse(&format!("{algorithm}:{name}")).ok())
            .filter(|address| after.is_none_or(|after| address.to_string().as_str() > after))
            .collect();
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
