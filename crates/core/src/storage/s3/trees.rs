//! Trees beside objects (see [`crate::tree`]): `<prefix>trees/<algorithm>/<hex[0:2]>/<hex>.obao4`,
//! put (create-only: trees are deterministic) before the object's commit, so a visible object has
//! its tree. A tree left by a crash before its object's commit is harmless, like an index entry
//! without its object: the next ingest of that object finds it in place, a delete of that address
//! removes it.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode};

use super::Bucket;
use crate::error::Result;
use crate::identity::ContentAddress;
use crate::storage::{object_locator, tree_locator, TreeFile};

pub(super) struct S3Tree {
    bucket: Arc<Bucket>,
    path: Path,
    len: u64,
}

#[async_trait]
impl TreeFile for S3Tree {
    fn file_len(&self) -> u64 {
        self.len
    }

    async fn read_at(&mut self, offset: u64, len: u64) -> Result<Bytes> {
        let range = Some(GetRange::Bounded(offset..offset + len));
        let store = &self.bucket.store;
        let read =
            async { store.get_opts(&self.path, GetOptions { range, ..Default::default() }).await?.bytes().await };
        read.await.map_err(|e| self.bucket.unavailable(format!("reading {}", self.path), &e))
    }
}

impl Bucket {
    fn tree_path(&self, address: &ContentAddress) -> Path {
        self.key(tree_locator(address))
    }

    /// Blocking, like the ingest that calls it.
    pub(super) fn put_tree(&self, address: &ContentAddress, tree_file: Bytes, replace: bool) -> Result<()> {
        let mode = if replace { PutMode::Overwrite } else { PutMode::Create };
        // Refused as already there: the same tree (or a damaged one, which a verified serve replaces).
        let _ = self.put_bytes(&self.tree_path(address), tree_file, mode)?;
        Ok(())
    }

    /// Reads of the tree are ranged GETs of its key, each of the pairs a walk asks for.
    pub(super) async fn open_tree(self: &Arc<Self>, address: &ContentAddress) -> Result<Option<S3Tree>> {
        let path = self.tree_path(address);
        match self.store.get_opts(&path, GetOptions { head: true, ..Default::default() }).await {
            Ok(result) => Ok(Some(S3Tree { bucket: self.clone(), path, len: result.meta.size })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.unavailable(format!("looking up {path}"), &e)),
        }
    }

    pub(super) async fn remove_tree(&self, address: &ContentAddress) -> Result<()> {
        self.delete_key(&self.tree_path(address)).await.map(drop)
    }

    /// Moves a quarantined object's tree below `quarantine/` too.
    pub(super) async fn quarantine_tree(&self, address: &ContentAddress) -> Result<()> {
        let path = self.tree_path(address);
        let target = self.key(format!("quarantine/{}", tree_locator(address)));
        match self.copier.copy(&path, &target).await {
            Ok(()) => self.remove_tree(address).await,
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.unavailable(format!("copying {path} (quarantining {})", object_locator(address)), &e)),
        }
    }
}
