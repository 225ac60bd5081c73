//! Building a tree in the same pass as the hash: each whole group is hashed as a non-root subtree at
//! its offset (`blake3::hazmat`), and the chaining values are folded as BLAKE3 folds its chunks.
//! A merge happens only once the next group proves both halves complete, so the pairs come out in
//! post-order and no subtree is finalized as the root too early.

use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode};
use bytes::Bytes;

use super::{outboard_len, Outboard, GROUP_LEN, GROUP_LOG, PAIR_LEN};

/// A BLAKE3 hasher that also writes the object's tree. It can be saved between two appends of an
/// upload ([`GroupTree::save`]) and go on in another process; the pairs it wrote are the caller's
/// to keep ([`GroupTree::take_pairs`]).
#[derive(Debug, Default)]
pub struct GroupTree {
    /// The open group: not hashed until a byte beyond it arrives (the last group of an object of
    /// one group is the root, hashed differently).
    open: Vec<u8>,
    /// Groups hashed so far; their chaining values, folded, are on `stack`.
    closed: u64,
    stack: Vec<ChainingValue>,
    /// Pairs written and not yet taken.
    pairs: Vec<u8>,
    /// Pairs taken, or written before the tree was restored.
    pairs_before: u64,
    size_bytes: u64,
}

/// A tree under construction between two appends: its stack of chaining values and its open
/// group's bytes (1 to 16 KiB once a group was closed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedTree {
    pub chaining_values: Vec<ChainingValue>,
    pub open: Vec<u8>,
}

impl GroupTree {
    pub fn new() -> Self {
        GroupTree::default()
    }

    pub fn save(&self) -> SavedTree {
        SavedTree { chaining_values: self.stack.clone(), open: self.open.clone() }
    }

    /// The tree of `size_bytes` bytes saved as `saved`; `None` when the two do not fit together.
    pub fn restore(saved: SavedTree, size_bytes: u64) -> Option<Self> {
        let SavedTree { chaining_values: stack, open } = saved;
        let closed_bytes = size_bytes.checked_sub(open.len() as u64)?;
        let closed = closed_bytes / GROUP_LEN;
        // After group g - 1 closed, the stack holds one subtree per set bit of g - 1, plus that group.
        let stack_fits = match closed {
            0 => stack.is_empty(),
            _ => !open.is_empty() && stack.len() == (closed - 1).count_ones() as usize + 1,
        };
        if closed_bytes % GROUP_LEN != 0 || open.len() as u64 > GROUP_LEN || !stack_fits {
            return None;
        }
        // Each merge took two subtrees off the stack and wrote their pair.
        let pairs_before = (closed - stack.len() as u64) * PAIR_LEN;
        Some(GroupTree { open, closed, stack, pairs: Vec::new(), pairs_before, size_bytes })
    }

    /// Bytes of pairs written since the tree was new, taken or not.
    pub fn pairs_len(&self) -> u64 {
        self.pairs_before + self.pairs.len() as u64
    }

    /// The pairs written since the tree was made or restored, or since the last take.
    pub fn take_pairs(&mut self) -> Vec<u8> {
        self.pairs_before += self.pairs.len() as u64;
        std::mem::take(&mut self.pairs)
    }

    pub fn update(&mut self, mut input: &[u8]) {
        self.size_bytes += input.len() as u64;
        while !input.is_empty() {
            if self.open.len() as u64 == GROUP_LEN {
                let group = std::mem::take(&mut self.open);
                self.close_group(&group);
                self.open = group;
                self.open.clear();
            }
            if self.open.is_empty() && input.len() as u64 > GROUP_LEN {
                let (group, rest) = input.split_at(GROUP_LEN as usize);
                self.close_group(group);
                input = rest;
                continue;
            }
            let take = input.len().min(GROUP_LEN as usize - self.open.len());
            self.open.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
    }

    /// The root (the BLAKE3 hash of every byte) and the tree.
    pub fn finish(mut self) -> Outboard {
        let size_bytes = self.size_bytes;
        if self.closed == 0 {
            let root = blake3::hash(&self.open);
            return Outboard { root, size_bytes, pairs: Bytes::new() };
        }
        let last = std::mem::take(&mut self.open);
        self.close_group(&last);
        while self.stack.len() > 2 {
            let (left, right) = self.pop_pair();
            self.stack.push(merge_subtrees_non_root(&left, &right, Mode::Hash));
        }
        let (left, right) = self.pop_pair();
        let root = merge_subtrees_root(&left, &right, Mode::Hash);
        debug_assert_eq!(self.pairs_before + self.pairs.len() as u64, outboard_len(size_bytes));
        Outboard { root, size_bytes, pairs: self.pairs.into() }
    }

    fn close_group(&mut self, group: &[u8]) {
        // Before group g joins, the stack holds one subtree per set bit of g: merge the rest.
        while self.stack.len() > self.closed.count_ones() as usize {
            let (left, right) = self.pop_pair();
            self.stack.push(merge_subtrees_non_root(&left, &right, Mode::Hash));
        }
        let cv = blake3::Hasher::new().set_input_offset(self.closed << GROUP_LOG).update(group).finalize_non_root();
        self.stack.push(cv);
        self.closed += 1;
    }

    /// Takes the top two subtrees off the stack and writes their pair.
    fn pop_pair(&mut self) -> (ChainingValue, ChainingValue) {
        let right = self.stack.pop().expect("a right subtree");
        let left = self.stack.pop().expect("a left subtree");
        self.pairs.extend_from_slice(&left);
        self.pairs.extend_from_slice(&right);
        (left, right)
    }
}

/// The tree of bytes whole in memory.
#[cfg(test)]
pub fn tree_of(bytes: &[u8]) -> Outboard {
    let mut tree = GroupTree::new();
    tree.update(bytes);
    tree.finish()
}

#[cfg(test)]
mod tests {
    use bao_tree::io::outboard::PostOrderMemOutboard;
    use bao_tree::BlockSize;

    use super::*;

    const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(4);
    const G: usize = GROUP_LEN as usize;

    fn input(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    fn assert_like_bao_tree(bytes: &[u8], cuts: &[usize]) {
        let mut tree = GroupTree::new();
        let mut at = 0;
        for &cut in cuts.iter().chain([bytes.len()].iter()) {
            tree.update(&bytes[at..cut]);
            at = cut;
        }
        let ours = tree.finish();
        let theirs = PostOrderMemOutboard::create(bytes, BLOCK_SIZE);
        let len = bytes.len();
        assert_eq!(ours.root, blake3::hash(bytes), "root of {len} bytes");
        assert_eq!(ours.root, theirs.root, "bao-tree's root of {len} bytes");
        assert_eq!(ours.pairs.len() as u64, theirs.tree.outboard_size(), "outboard size of {len} bytes");
        assert!(ours.pairs[..] == theirs.data[..], "outboard of {len} bytes cut at {cuts:?}");
        assert_eq!(ours.size_bytes, len as u64);
    }

    #[test]
    fn trees_equal_bao_trees_post_order_outboard_at_every_edge() {
        let mut sizes =
            vec![0, 1, 1023, 1024, 1025, G - 1, G, G + 1, 2 * G, 3 * G + 5, 4 * G, 5 * G - 1, (1 << 20) + 7];
        for k in [1, 2, 3, 5, 7] {
            sizes.extend([(1 << k) * G - 1, (1 << k) * G, (1 << k) * G + 1]);
        }
        for (seed, len) in sizes.into_iter().enumerate() {
            let bytes = input(len, seed as u64);
            assert_like_bao_tree(&bytes, &[]);
            let step = 1 + len / 5;
            assert_like_bao_tree(&bytes, &(0..len).step_by(step).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_tree_saved_and_restored_at_every_awkward_cut_writes_the_same_pairs() {
        for len in [0, 1, 1024, G - 1, G, G + 1, 2 * G, 3 * G + 1, 9 * G + 5, (1 << 20) + 7] {
            let bytes = input(len, len as u64);
            let expected = PostOrderMemOutboard::create(&bytes, BLOCK_SIZE);
            for cuts in
                [vec![], vec![0, 0], vec![1, G - 1, G, G + 1, 2 * G, 5 * G + 3], (0..len).step_by(7777).collect()]
            {
                let cuts: Vec<usize> = cuts.into_iter().filter(|&cut| cut <= len).collect();
                let (mut tree, mut pairs, mut at) = (GroupTree::new(), Vec::new(), 0);
                for &cut in cuts.iter().chain([len].iter()) {
                    tree.update(&bytes[at..cut]);
                    at = cut;
                    pairs.extend(tree.take_pairs());
                    tree = GroupTree::restore(tree.save(), at as u64).expect("a saved tree restores");
                }
                let finished = tree.finish();
                pairs.extend_from_slice(&finished.pairs);
                assert_eq!(finished.root, expected.root, "len {len} cuts {cuts:?}");
                assert!(pairs == expected.data, "len {len} cuts {cuts:?}");
            }
        }
    }

    #[test]
    fn a_saved_tree_that_does_not_fit_its_size_is_refused() {
        let mut tree = GroupTree::new();
        tree.update(&input(5 * G + 100, 9));
        let saved = tree.save();
        assert!(GroupTree::restore(saved.clone(), (5 * G + 100) as u64).is_some());
        assert!(GroupTree::restore(saved.clone(), (6 * G + 100) as u64).is_none());
        assert!(GroupTree::restore(saved.clone(), (5 * G + 101) as u64).is_none());
        let mut shorter = saved;
        shorter.chaining_values.pop();
        assert!(GroupTree::restore(shorter, (5 * G + 100) as u64).is_none());
    }

    #[test]
    fn trees_of_random_sizes_fed_in_random_pieces_equal_bao_trees() {
        for seed in 0..24u64 {
            let noise = input(64, seed + 1000);
            let len = (u32::from_le_bytes(noise[0..4].try_into().unwrap()) % (3 << 20)) as usize;
            let bytes = input(len, seed);
            let mut cuts = Vec::new();
            let mut at = 0;
            for piece in noise[4..].chunks(2) {
                at += 1 + (u16::from_le_bytes([piece[0], piece[1]]) as usize) * 3;
                if at >= len {
                    break;
                }
                cuts.push(at);
            }
            assert_like_bao_tree(&bytes, &cuts);
        }
    }
}
