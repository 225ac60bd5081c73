//! BLAKE3 hash trees kept beside objects, so that every 16 KiB group of a served range can be
//! checked against the object's address for the cost of hashing the bytes served.
//!
//! A tree is a bao outboard in `bao-tree`'s post-order format with 16 KiB groups (chunk log 4): one
//! 64-byte pair `left ‖ right` of chaining values per parent above the group level, children before
//! parents, no header. Post-order is what a single pass over bytes of unknown length writes in
//! order, so nothing is flipped or held back at the end. An object of one group (at most 16 KiB)
//! has an empty tree: it is checked as a whole, and no tree is stored for it.
//!
//! A stored tree file is the outboard itself for a BLAKE3-primary object (its root is the
//! address); for a SHA-256-primary object the BLAKE3 root recorded at ingest comes first.

mod build;
mod walk;

pub use build::{GroupTree, SavedTree};
pub use walk::{DamagedPair, GroupCheck, Step, TreeWalk};

use bytes::Bytes;

use crate::identity::HashAlgorithm;

/// log2 of the group size in bytes: 16 chunks of 1 KiB.
pub const GROUP_LOG: u32 = 14;
/// The bytes of one group, the unit a verified serve reads and checks.
pub const GROUP_LEN: u64 = 1 << GROUP_LOG;
/// One parent: the chaining values of its left and right children.
pub const PAIR_LEN: u64 = 64;
/// A tree file's suffix: it names the group size (chunk log 4), as `bao-tree` and iroh-blobs do.
pub const TREE_SUFFIX: &str = ".obao4";
/// The BLAKE3 root at the front of a SHA-256-primary object's tree file.
pub const ROOT_LEN: u64 = 32;

/// The bytes before the pairs in the tree file of an object of this primary: none when the address
/// is the root.
pub fn header_len(primary: HashAlgorithm) -> u64 {
    match primary {
        HashAlgorithm::Blake3 => 0,
        HashAlgorithm::Sha256 => ROOT_LEN,
    }
}

/// The groups of an object of `size_bytes` (at least one, even when empty).
pub fn group_count(size_bytes: u64) -> u64 {
    size_bytes.div_ceil(GROUP_LEN).max(1)
}

/// The bytes of the outboard of an object of `size_bytes`.
pub fn outboard_len(size_bytes: u64) -> u64 {
    (group_count(size_bytes) - 1) * PAIR_LEN
}

/// Whether an object of this size is checked against a stored tree (more than one group).
pub fn has_tree(size_bytes: u64) -> bool {
    size_bytes > GROUP_LEN
}

/// The groups `[first, last)` that hold the bytes `[start, end)` (none for an empty range).
pub fn groups_covering(start: u64, end: u64) -> (u64, u64) {
    if start >= end {
        return (start >> GROUP_LOG, start >> GROUP_LOG);
    }
    (start >> GROUP_LOG, (end - 1) / GROUP_LEN + 1)
}

/// The largest power of two below `groups` (at least 2): how many groups a left subtree holds, as
/// BLAKE3 splits its input.
fn left_groups(groups: u64) -> u64 {
    debug_assert!(groups >= 2);
    1 << (63 - (groups - 1).leading_zeros())
}

/// The tree of one object, built at ingest or rebuilt from its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outboard {
    pub root: blake3::Hash,
    pub size_bytes: u64,
    /// The post-order pairs: [`outboard_len`] bytes.
    pub pairs: Bytes,
}

impl Outboard {
    /// The tree file's bytes for an object of this primary: the pairs, behind the BLAKE3 root when
    /// the address is not that root.
    pub fn file_bytes(&self, primary: HashAlgorithm) -> Bytes {
        if header_len(primary) == 0 {
            return self.pairs.clone();
        }
        let mut bytes = Vec::with_capacity(ROOT_LEN as usize + self.pairs.len());
        bytes.extend_from_slice(self.root.as_bytes());
        bytes.extend_from_slice(&self.pairs);
        bytes.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_left_subtree_is_the_largest_power_of_two_below() {
        assert_eq!([2, 3, 4, 5, 8, 9, 1025].map(left_groups), [1, 2, 2, 4, 4, 8, 1024]);
    }

    #[test]
    fn groups_and_outboards_follow_the_size() {
        assert_eq!([0, 1, GROUP_LEN, GROUP_LEN + 1, 3 * GROUP_LEN].map(group_count), [1, 1, 1, 2, 3]);
        assert_eq!([0, GROUP_LEN, GROUP_LEN + 1, 1 << 30].map(outboard_len), [0, 0, 64, 65535 * 64]);
        assert_eq!(groups_covering(0, 0), (0, 0));
        assert_eq!(groups_covering(GROUP_LEN - 1, GROUP_LEN + 1), (0, 2));
        assert_eq!(groups_covering(GROUP_LEN, 2 * GROUP_LEN), (1, 2));
    }
}
