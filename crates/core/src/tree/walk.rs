//! Walking a tree from its root down to the groups of a range, checking every pair on the way: each
//! group then comes with the chaining value its bytes must hash to. The walk reads no file itself;
//! it says which pairs it needs next and is handed them, so the same walk serves a file, an S3 key
//! or a tree in memory.

use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode};
use bytes::Bytes;

use super::{group_count, left_groups, GROUP_LOG, PAIR_LEN};

/// Pairs read in one go when a subtree lies wholly inside the range: all of them are needed, and in
/// post-order they are contiguous. 4,096 pairs (256 KiB) cover 64 MiB of object.
const BLOCK_PAIRS: u64 = 4096;

/// What one group's bytes must hash to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCheck {
    pub group: u64,
    expected: ChainingValue,
    /// The object is this one group: its hash is the root.
    is_root: bool,
}

impl GroupCheck {
    /// Whether `bytes` are this group's.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        if self.is_root {
            return blake3::hash(bytes).as_bytes() == &self.expected;
        }
        let offset = self.group << GROUP_LOG;
        blake3::Hasher::new().set_input_offset(offset).update(bytes).finalize_non_root() == self.expected
    }
}

/// The next thing a walk needs or gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Check the next group of the range with this.
    Check(GroupCheck),
    /// Supply these pairs (by index in the outboard), then step again.
    Read { first_pair: u64, pairs: u64 },
    /// Every group of the range was handed out.
    Done,
}

/// A pair that does not hash to what its parent says: the tree, not the object, is damaged there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DamagedPair(pub u64);

/// A subtree still to visit: groups `[first, first + groups)`, its pairs from `first_pair` in the
/// outboard, and what it must hash to.
#[derive(Clone, Copy, Debug)]
struct Subtree {
    first: u64,
    groups: u64,
    first_pair: u64,
    expected: ChainingValue,
    is_root: bool,
}

impl Subtree {
    /// Its own pair comes after its children's pairs.
    fn own_pair(&self) -> u64 {
        self.first_pair + self.groups - 2
    }
}

pub struct TreeWalk {
    /// The range's groups, `[start, end)`.
    start: u64,
    end: u64,
    /// Subtrees still to visit, the next on top.
    pending: Vec<Subtree>,
    /// The pairs last supplied: the index of the first, and their bytes.
    window: (u64, Bytes),
}

impl TreeWalk {
    /// A walk over the groups `[start, end)` of an object of `size_bytes` whose BLAKE3 hash is `root`.
    pub fn new(root: blake3::Hash, size_bytes: u64, start: u64, end: u64) -> Self {
        let top = Subtree {
            first: 0,
            groups: group_count(size_bytes),
            first_pair: 0,
            expected: *root.as_bytes(),
            is_root: true,
        };
        let pending = if start < end { vec![top] } else { Vec::new() };
        TreeWalk { start, end, pending, window: (0, Bytes::new()) }
    }

    /// Hands the walk the pairs it asked for.
    pub fn supply(&mut self, first_pair: u64, bytes: Bytes) {
        self.window = (first_pair, bytes);
    }

    pub fn step(&mut self) -> Result<Step, DamagedPair> {
        loop {
            let Some(&subtree) = self.pending.last() else { return Ok(Step::Done) };
            if subtree.groups == 1 {
                self.pending.pop();
                let check = GroupCheck { group: subtree.first, expected: subtree.expected, is_root: subtree.is_root };
                return Ok(Step::Check(check));
            }
            let Some((left, right)) = self.pair(subtree.own_pair()) else { return Ok(self.read_for(&subtree)) };
            let merged = if subtree.is_root {
                *merge_subtrees_root(&left, &right, Mode::Hash).as_bytes()
            } else {
                merge_subtrees_non_root(&left, &right, Mode::Hash)
            };
            if merged != subtree.expected {
                return Err(DamagedPair(subtree.own_pair()));
            }
            self.pending.pop();
            let left_len = left_groups(subtree.groups);
            let children = [
                Subtree {
                    first: subtree.first + left_len,
                    groups: subtree.groups - left_len,
                    first_pair: subtree.first_pair + left_len - 1,
                    expected: right,
                    is_root: false,
                },
                Subtree {
                    first: subtree.first,
                    groups: left_len,
                    first_pair: subtree.first_pair,
                    expected: left,
                    is_root: false,
                },
            ];
            for child in children {
                if self.overlaps(&child) {
                    self.pending.push(child);
                }
            }
        }
    }

    fn overlaps(&self, subtree: &Subtree) -> bool {
        subtree.first < self.end && subtree.first + subtree.groups > self.start
    }

    fn pair(&self, index: u64) -> Option<(ChainingValue, ChainingValue)> {
        let (first, bytes) = &self.window;
        let at = index.checked_sub(*first)?.checked_mul(PAIR_LEN)? as usize;
        let pair = bytes.get(at..at + PAIR_LEN as usize)?;
        Some((pair[..32].try_into().unwrap(), pair[32..].try_into().unwrap()))
    }

    /// A subtree wholly inside the range needs all its pairs: read them at once when they are few.
    fn read_for(&self, subtree: &Subtree) -> Step {
        let inside = subtree.first >= self.start && subtree.first + subtree.groups <= self.end;
        if inside && subtree.groups - 1 <= BLOCK_PAIRS {
            return Step::Read { first_pair: subtree.first_pair, pairs: subtree.groups - 1 };
        }
        Step::Read { first_pair: subtree.own_pair(), pairs: 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::super::build::tree_of;
    use super::super::{groups_covering, GROUP_LEN};
    use super::*;

    /// Walks `[start, end)` of `bytes` over `pairs`, counting the reads; the checks it hands out, or
    /// the first damaged pair.
    fn walk(bytes: &[u8], pairs: &Bytes, start: u64, end: u64) -> (Result<Vec<GroupCheck>, DamagedPair>, usize) {
        let (first, last) = groups_covering(start, end);
        let mut walk = TreeWalk::new(blake3::hash(bytes), bytes.len() as u64, first, last);
        let (mut checks, mut reads) = (Vec::new(), 0);
        loop {
            match walk.step() {
                Err(damaged) => return (Err(damaged), reads),
                Ok(Step::Done) => return (Ok(checks), reads),
                Ok(Step::Check(check)) => checks.push(check),
                Ok(Step::Read { first_pair, pairs: count }) => {
                    reads += 1;
                    let at = (first_pair * PAIR_LEN) as usize;
                    walk.supply(first_pair, pairs.slice(at..at + (count * PAIR_LEN) as usize));
                }
            }
        }
    }

    fn group_of(bytes: &[u8], group: u64) -> &[u8] {
        let start = (group * GROUP_LEN) as usize;
        &bytes[start..bytes.len().min(start + GROUP_LEN as usize)]
    }

    #[test]
    fn every_range_gets_exactly_its_groups_each_matching_its_bytes() {
        for len in [1, 5000, 16384, 16385, 3 * 16384 + 1, 8 * 16384, 9 * 16384 - 3, 100 * 16384 + 17] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let tree = tree_of(&bytes);
            let size = len as u64;
            for (start, end) in
                [(0, size), (0, 1), (size - 1, size), (16383.min(size - 1), size.min(16385)), (size / 3, size / 2 + 1)]
            {
                let (checks, _) = walk(&bytes, &tree.pairs, start, end);
                let checks = checks.expect("an undamaged tree");
                let (first, last) = groups_covering(start, end);
                assert_eq!(checks.iter().map(|c| c.group).collect::<Vec<_>>(), (first..last).collect::<Vec<_>>());
                for check in &checks {
                    assert!(check.matches(group_of(&bytes, check.group)), "len {len} group {}", check.group);
                    assert!(!check.matches(&[0u8; 3]));
                }
            }
            assert_eq!(walk(&bytes, &tree.pairs, 7, 7).0.unwrap(), vec![]);
        }
    }

    #[test]
    fn a_flipped_pair_is_found_on_the_walks_that_pass_through_it() {
        let bytes: Vec<u8> = (0..64 * 16384 + 9).map(|i| (i % 253) as u8).collect();
        let tree = tree_of(&bytes);
        for pair in [0, 31, tree.pairs.len() as u64 / 64 - 1] {
            let mut damaged = tree.pairs.to_vec();
            damaged[(pair * 64 + 5) as usize] ^= 1;
            let damaged = Bytes::from(damaged);
            let (whole, _) = walk(&bytes, &damaged, 0, bytes.len() as u64);
            assert_eq!(whole.unwrap_err(), DamagedPair(pair));
        }
        // Pair 0 joins groups 0 and 1: a walk of the last group never reads it.
        let mut damaged = tree.pairs.to_vec();
        damaged[3] ^= 1;
        let size = bytes.len() as u64;
        assert!(walk(&bytes, &Bytes::from(damaged), size - 1, size).0.is_ok());
    }

    #[test]
    fn a_whole_serve_reads_the_tree_in_few_large_pieces_and_a_range_in_few_small_ones() {
        let bytes = vec![7u8; 1 << 27]; // 128 MiB, 8,192 groups
        let tree = tree_of(&bytes);
        let (checks, reads) = walk(&bytes, &tree.pairs, 0, bytes.len() as u64);
        assert_eq!(checks.unwrap().len(), 8192);
        assert!(reads <= 3, "{reads} reads");
        let (checks, reads) = walk(&bytes, &tree.pairs, 5 << 20, 6 << 20);
        assert_eq!(checks.unwrap().len(), 64);
        assert!(reads <= 14, "{reads} reads");
    }
}
