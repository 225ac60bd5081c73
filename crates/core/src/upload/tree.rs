//! BLAKE3 that can stop and go on in another process: `blake3::Hasher` cannot be saved, so an
//! upload hashes its bytes as aligned subtrees (`blake3::hazmat`) and keeps the chaining values of
//! the complete ones, plus the last 1..=1024 bytes unhashed. Every byte is hashed once, and the
//! root comes from those values alone (no re-read). The last chunk stays unhashed because the root
//! of an input of one chunk (or of one complete subtree) must be finalized as a root.

use blake3::hazmat::{max_subtree_len, merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode};
use blake3::CHUNK_LEN;
use bytes::{Bytes, BytesMut};

use crate::hashing::Blake3Lane;

/// The largest subtree hashed in one go: big enough for BLAKE3's SIMD to run at full width.
const SUBTREE_MAX: u64 = 1 << 20;

/// A BLAKE3 state that can be saved between appends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blake3Tree {
    /// The complete subtrees hashed so far, left to right, each with its length: always the binary
    /// decomposition of `hashed` (in chunks), largest first.
    stack: Vec<(ChainingValue, u64)>,
    /// Bytes the stack covers: a multiple of the chunk length.
    hashed: u64,
    /// Bytes after `hashed`, not hashed yet.
    pending: Vec<Bytes>,
    pending_len: u64,
}

/// What a saved tree holds: the stack's chaining values and the unhashed tail (1..=1024 bytes
/// whenever anything was hashed, so that the root can be finalized as a root).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedTree {
    pub chaining_values: Vec<ChainingValue>,
    pub tail: Vec<u8>,
}

impl Blake3Tree {
    /// The tree of `size_bytes` bytes saved as `saved`; `None` when the two do not fit together.
    pub fn restore(saved: SavedTree, size_bytes: u64) -> Option<Self> {
        let hashed = size_bytes.checked_sub(saved.tail.len() as u64)?;
        let sizes = subtree_sizes(hashed);
        let well_formed = hashed % CHUNK_LEN as u64 == 0
            && sizes.len() == saved.chaining_values.len()
            && saved.tail.len() <= CHUNK_LEN
            && (saved.tail.is_empty() == (size_bytes == 0));
        if !well_formed {
            return None;
        }
        let stack = saved.chaining_values.into_iter().zip(sizes).collect();
        let pending_len = saved.tail.len() as u64;
        let pending = if saved.tail.is_empty() { Vec::new() } else { vec![Bytes::from(saved.tail)] };
        Some(Blake3Tree { stack, hashed, pending, pending_len })
    }

    /// Hashes all but the last 1..=1024 bytes and hands over what stands for them.
    pub fn save(&mut self) -> SavedTree {
        while self.pending_len > CHUNK_LEN as u64 {
            // The largest aligned subtree that leaves at least one byte behind.
            let below = 1u64 << (63 - (self.pending_len - 1).leading_zeros());
            self.hash_front(below.min(self.alignment()));
        }
        let mut tail = BytesMut::with_capacity(self.pending_len as usize);
        self.pending.iter().for_each(|piece| tail.extend_from_slice(piece));
        self.pending = vec![tail.clone().freeze()];
        if self.pending_len == 0 {
            self.pending.clear();
        }
        SavedTree { chaining_values: self.stack.iter().map(|(cv, _)| *cv).collect(), tail: tail.to_vec() }
    }

    pub fn finalize(mut self) -> blake3::Hash {
        let SavedTree { chaining_values, tail } = self.save();
        let Some((first, rest)) = chaining_values.split_first() else { return blake3::hash(&tail) };
        let mut right = blake3::Hasher::new().set_input_offset(self.hashed).update(&tail).finalize_non_root();
        for cv in rest.iter().rev() {
            right = merge_subtrees_non_root(cv, &right, Mode::Hash);
        }
        merge_subtrees_root(first, &right, Mode::Hash)
    }

    /// The largest subtree that may start at `hashed`, capped at [`SUBTREE_MAX`].
    fn alignment(&self) -> u64 {
        max_subtree_len(self.hashed).map_or(SUBTREE_MAX, |len| len.min(SUBTREE_MAX))
    }

    /// Hashes the first `len` pending bytes (a whole subtree) and pushes its chaining value.
    fn hash_front(&mut self, len: u64) {
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(self.hashed);
        let mut left = len as usize;
        while left > 0 {
            let piece = &mut self.pending[0];
            let take = left.min(piece.len());
            hasher.update(&piece[..take]);
            if take == piece.len() {
                self.pending.remove(0);
            } else {
                *piece = piece.slice(take..);
            }
            left -= take;
        }
        self.pending_len -= len;
        self.hashed += len;
        self.stack.push((hasher.finalize_non_root(), len));
        while let [.., (left_cv, left_len), (right_cv, right_len)] = self.stack[..] {
            if left_len != right_len {
                break;
            }
            self.stack.truncate(self.stack.len() - 2);
            self.stack.push((merge_subtrees_non_root(&left_cv, &right_cv, Mode::Hash), left_len * 2));
        }
    }
}

impl Blake3Lane for Blake3Tree {
    fn update(&mut self, chunk: &Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.pending.push(chunk.clone());
        self.pending_len += chunk.len() as u64;
        // Strictly more than a subtree: its last byte must not be the input's last.
        while self.pending_len > self.alignment() {
            self.hash_front(self.alignment());
        }
    }
}

/// The lengths of the complete subtrees covering `hashed` bytes: its binary decomposition in
/// chunks, largest first.
fn subtree_sizes(hashed: u64) -> Vec<u64> {
    (0..64).rev().map(|bit| 1u64 << bit).filter(|&size| size >= CHUNK_LEN as u64 && hashed & size != 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Feeds `bytes` in pieces cut at `cuts`, saving and restoring the tree at every cut.
    fn resumed_hash(bytes: &[u8], cuts: &[usize]) -> blake3::Hash {
        let mut tree = Blake3Tree::default();
        let mut at = 0;
        for &cut in cuts.iter().chain([bytes.len()].iter()) {
            tree.update(&Bytes::copy_from_slice(&bytes[at..cut]));
            at = cut;
            let saved = tree.save();
            tree = Blake3Tree::restore(saved, at as u64).expect("a saved tree restores");
        }
        tree.finalize()
    }

    #[test]
    fn resumed_hashes_equal_one_shot_hashes_at_awkward_cuts() {
        let lengths = [0, 1, 1023, 1024, 1025, 2048, 2049, 16383, 16384, 16385, 1 << 20, (1 << 20) + 1, 3 << 20];
        for len in lengths {
            let bytes = input(len);
            let expected = blake3::hash(&bytes);
            let cuts: Vec<Vec<usize>> = vec![
                vec![],
                vec![0, 0],
                [1, 1023, 1024, 1025, 16383, 16384, 16385, (1 << 20) + 3].into_iter().filter(|&c| c <= len).collect(),
                (0..len).step_by(7777).collect(),
                vec![len / 2],
            ];
            for cuts in cuts {
                assert_eq!(resumed_hash(&bytes, &cuts), expected, "len {len} cuts {cuts:?}");
            }
        }
    }

    #[test]
    fn a_saved_tree_that_does_not_fit_its_size_is_refused() {
        let mut tree = Blake3Tree::default();
        tree.update(&Bytes::from(input(5000)));
        let saved = tree.save();
        assert!(Blake3Tree::restore(saved.clone(), 5000).is_some());
        assert!(Blake3Tree::restore(saved.clone(), 6000).is_none());
        assert!(Blake3Tree::restore(saved, 5001).is_none());
    }
}
