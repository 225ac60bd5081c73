//! Serving with `verify` (SPEC Part 2, "Verified serving"): the backend reads the range widened to
//! whole 16 KiB groups, and each group is checked against the object's tree (or, for an object of
//! one group, against its address) before any of its bytes is handed out, in the very buffer that
//! was hashed. An object whose tree is missing or damaged is checked whole against its address
//! before serving goes on, and its tree is written again.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use sha2::{Digest as _, Sha256};

use crate::api::ServeRequest;
use crate::blocking::run_blocking;
use crate::error::{Error, Result};
use crate::identity::{ContentAddress, HashAlgorithm};
use crate::ingest::put_tree;
use crate::storage::{digest_reader_with_tree, read_range, resolve_range, Backend, ObjectReader, TreeFile, CHUNK_LEN};
use crate::tree::{
    groups_covering, has_tree, header_len, outboard_len, DamagedPair, GroupCheck, Step, TreeWalk, GROUP_LEN, GROUP_LOG,
    PAIR_LEN, ROOT_LEN,
};

/// Groups in one chunk from which the check of a serve read in one chunk runs on two threads
/// (256 KiB). A longer serve is read ahead on a thread of its own while a chunk is checked, which
/// keeps the second core busy already.
const PARALLEL_GROUPS: usize = 16;

pub(crate) struct VerifiedReader {
    backend: Arc<dyn Backend>,
    address: ContentAddress,
    inner: Box<dyn ObjectReader>,
    total: u64,
    /// The bytes asked for; `inner` yields them widened to whole groups.
    wanted: Range<u64>,
    /// Where the next byte from `inner` sits in the object, and where its last one ends.
    next: u64,
    read_end: u64,
    /// The last group the range covers, plus one.
    end_group: u64,
    checks: Checks,
    /// A group begun in one chunk and not yet ended.
    partial: BytesMut,
    /// Checked bytes not yet handed out.
    ready: VecDeque<Bytes>,
    /// Ends the stream once the bytes checked before it are out.
    failure: Option<Error>,
    exhausted: bool,
}

enum Checks {
    /// An object of one group, checked against its address.
    Whole,
    Tree {
        walk: TreeWalk,
        pairs: Pairs,
    },
}

enum Pairs {
    /// The stored tree file, open since the serve was, whose pairs begin at this offset in it.
    Stored(Box<dyn TreeFile>, u64),
    /// A tree rebuilt from the object's bytes.
    Rebuilt(Bytes),
}

impl VerifiedReader {
    /// Opens the object `request` names (by its primary address) for a verified serve.
    pub(crate) async fn open(backend: Arc<dyn Backend>, request: &ServeRequest) -> Result<Self> {
        let inner = backend.open(request).await?;
        let total = inner.total_size_bytes();
        let wanted = resolve_range(request.byte_range, total)?;
        let read = read_range(request, total)?;
        let (start_group, end_group) = groups_covering(read.start, read.end);
        let mut reader = VerifiedReader {
            backend,
            address: request.address,
            inner,
            total,
            wanted,
            next: read.start,
            read_end: read.end,
            end_group,
            checks: Checks::Whole,
            partial: BytesMut::new(),
            ready: VecDeque::new(),
            failure: None,
            exhausted: false,
        };
        if has_tree(total) && start_group < end_group {
            reader.checks = reader.stored_tree(start_group).await?;
        }
        Ok(reader)
    }

    /// The checks of the stored tree, or of one rebuilt now when it is missing or the wrong length.
    async fn stored_tree(&mut self, start_group: u64) -> Result<Checks> {
        let header = header_len(self.address.algorithm);
        let Some(mut tree) = self.backend.open_tree(&self.address).await? else {
            return self.rebuild(start_group, "has no tree").await;
        };
        if tree.file_len() != header + outboard_len(self.total) {
            return self.rebuild(start_group, "has a tree of the wrong length").await;
        }
        let root = match header {
            0 => blake3::Hash::from_bytes(self.address.bytes),
            _ => match tree.read_at(0, ROOT_LEN).await.map(|root| <[u8; 32]>::try_from(&root[..])) {
                Ok(Ok(root)) => blake3::Hash::from_bytes(root),
                _ => return self.rebuild(start_group, "has a tree whose root could not be read").await,
            },
        };
        let walk = TreeWalk::new(root, self.total, start_group, self.end_group);
        Ok(Checks::Tree { walk, pairs: Pairs::Stored(tree, header) })
    }

    /// Checks the object whole against its address, keeps the tree that pass built, and goes on
    /// with it from `group`. `INTEGRITY_MISMATCH` when the object itself is not what its address says.
    async fn rebuild(&mut self, group: u64, why: &str) -> Result<Checks> {
        let mut whole = self.backend.open(&ServeRequest { verify: false, ..ServeRequest::from(self.address) }).await?;
        let (digests, tree) = digest_reader_with_tree(whole.as_mut(), self.address.algorithm).await?;
        if digests.primary != self.address || digests.size_bytes != self.total {
            return Err(Error::IntegrityMismatch(format!(
                "{}: the object {why}, and its {} bytes digest to {}, not to its address",
                self.address, digests.size_bytes, digests.primary
            )));
        }
        let (backend, address, stored) = (self.backend.clone(), self.address, tree.clone());
        // A store that cannot take the tree (read-only, full) still serves from the one in memory.
        let _ = run_blocking(move || put_tree(backend.as_ref(), &address, &stored, true)).await;
        let walk = TreeWalk::new(tree.root, self.total, group, self.end_group);
        Ok(Checks::Tree { walk, pairs: Pairs::Rebuilt(tree.pairs) })
    }

    /// What the bytes of `group` must hash to (the walk reads and checks the pairs on the way).
    async fn expected(&mut self, group: u64) -> Result<Expected> {
        loop {
            let step = match &mut self.checks {
                Checks::Whole => return Ok(Expected::Address(self.address)),
                Checks::Tree { walk, .. } => walk.step(),
            };
            match step {
                Ok(Step::Check(check)) => {
                    debug_assert_eq!(check.group, group);
                    return Ok(Expected::Group(check));
                }
                Ok(Step::Read { first_pair, pairs }) => {
                    if let Err(why) = self.supply(first_pair, pairs).await {
                        self.checks = self.rebuild(group, &why).await?;
                    }
                }
                Ok(Step::Done) => unreachable!("a walk covers every group of its range"),
                Err(DamagedPair(pair)) => {
                    self.checks = self.rebuild(group, &format!("has a tree damaged at pair {pair}")).await?;
                }
            }
        }
    }

    /// Hands the walk the pairs it asked for; what went wrong when they cannot be read.
    async fn supply(&mut self, first_pair: u64, pairs: u64) -> std::result::Result<(), String> {
        let Checks::Tree { walk, pairs: source } = &mut self.checks else { unreachable!("only a tree asks for pairs") };
        let (offset, len) = (first_pair * PAIR_LEN, pairs * PAIR_LEN);
        let bytes = match source {
            Pairs::Rebuilt(all) => all.slice(offset as usize..(offset + len) as usize),
            Pairs::Stored(tree, header) => {
                let read = tree.read_at(*header + offset, len).await;
                read.map_err(|e| format!("has a tree that could not be read ({e})"))?
            }
        };
        if bytes.len() as u64 != len {
            return Err("has a tree shorter than when it was looked up".into());
        }
        walk.supply(first_pair, bytes);
        Ok(())
    }

    fn mismatch(&self, group: u64) -> Error {
        let start = group << GROUP_LOG;
        let end = (start + GROUP_LEN).min(self.total);
        Error::IntegrityMismatch(format!(
            "{}: bytes [{start}, {end}) (group {group}) do not match the object's address; nothing from byte {start} on was served",
            self.address
        ))
    }

    /// Where the group holding the next byte from `inner` ends.
    fn group_end(&self, group_start: u64) -> u64 {
        (group_start + GROUP_LEN).min(self.total)
    }

    /// Splits a chunk from `inner` into groups and checks each; whole groups in the chunk are
    /// handed out as one piece of it, a group cut across chunks from a copy.
    async fn take(&mut self, mut chunk: Bytes) {
        while !chunk.is_empty() && self.failure.is_none() {
            let group_start = self.next - self.partial.len() as u64;
            if !self.partial.is_empty() {
                let take = ((self.group_end(group_start) - self.next) as usize).min(chunk.len());
                self.partial.extend_from_slice(&chunk.split_to(take));
                self.next += take as u64;
                if self.next == self.group_end(group_start) {
                    let group = self.partial.split().freeze();
                    let checked = self.check_groups(group_start, &group).await;
                    self.hand_out(group_start, group.slice(..checked));
                }
                continue;
            }
            let whole = self.whole_groups_len(chunk.len());
            let at = self.next;
            let checked = self.check_groups(at, &chunk[..whole]).await;
            self.next += whole as u64;
            self.hand_out(at, chunk.split_to(checked));
            if self.failure.is_none() {
                let rest = chunk.split_off(whole - checked);
                self.next += rest.len() as u64;
                self.partial.extend_from_slice(&rest);
                chunk.clear();
            }
        }
    }

    /// The bytes of the whole groups at the front of a chunk of `len` bytes starting at `self.next`.
    fn whole_groups_len(&self, len: usize) -> usize {
        let end = self.next + len as u64;
        let whole_end = if end == self.total { end } else { end - end % GROUP_LEN };
        whole_end.saturating_sub(self.next) as usize
    }

    /// Checks the whole groups in `bytes` (from `at` in the object); returns how many bytes of them
    /// passed, and sets the failure at the first that did not.
    async fn check_groups(&mut self, at: u64, bytes: &[u8]) -> usize {
        let mut expected = Vec::with_capacity(bytes.len().div_ceil(GROUP_LEN as usize));
        for group in (0..bytes.len()).step_by(GROUP_LEN as usize) {
            match self.expected((at + group as u64) >> GROUP_LOG).await {
                Ok(one) => expected.push(one),
                Err(e) => {
                    self.failure = Some(e);
                    return 0;
                }
            }
        }
        let parallel = self.inner.size_bytes() <= CHUNK_LEN as u64 && expected.len() >= PARALLEL_GROUPS;
        let passed = leading_matches(&expected, bytes, parallel);
        if passed < expected.len() {
            self.failure = Some(self.mismatch((at >> GROUP_LOG) + passed as u64));
        }
        (passed * GROUP_LEN as usize).min(bytes.len())
    }

    /// Queues the part of checked bytes (from `at` in the object) that the caller asked for.
    fn hand_out(&mut self, at: u64, bytes: Bytes) {
        let start = self.wanted.start.max(at);
        let end = self.wanted.end.min(at + bytes.len() as u64);
        if start < end {
            self.ready.push_back(bytes.slice((start - at) as usize..(end - at) as usize));
        }
    }
}

/// What one group's bytes must hash to.
enum Expected {
    /// As its place in the tree says.
    Group(GroupCheck),
    /// The object is this one group: its address, whatever the algorithm.
    Address(ContentAddress),
}

impl Expected {
    fn matches(&self, bytes: &[u8]) -> bool {
        match self {
            Expected::Group(check) => check.matches(bytes),
            Expected::Address(address) => matches_address(address, bytes),
        }
    }
}

/// How many of the groups in `bytes` (one per `expected`, 16 KiB each, the last maybe shorter)
/// match, from the first; hashed on two threads when `parallel` (a 1 MiB range then costs half the
/// hashing time on its way out).
fn leading_matches(expected: &[Expected], bytes: &[u8], parallel: bool) -> usize {
    let groups = bytes.chunks(GROUP_LEN as usize);
    if !parallel {
        return expected.iter().zip(groups).take_while(|(expected, group)| expected.matches(group)).count();
    }
    let results: Vec<bool> = {
        let half = expected.len() / 2;
        let (front, back) = bytes.split_at(half * GROUP_LEN as usize);
        let check = |expected: &[Expected], bytes: &[u8]| -> Vec<bool> {
            expected
                .iter()
                .zip(bytes.chunks(GROUP_LEN as usize))
                .map(|(expected, group)| expected.matches(group))
                .collect()
        };
        std::thread::scope(|scope| {
            let second = scope.spawn(|| check(&expected[half..], back));
            let mut first = check(&expected[..half], front);
            first.extend(second.join().expect("hashing does not panic"));
            first
        })
    };
    results.iter().take_while(|&&matched| matched).count()
}

fn matches_address(address: &ContentAddress, bytes: &[u8]) -> bool {
    match address.algorithm {
        HashAlgorithm::Blake3 => blake3::hash(bytes).as_bytes() == &address.bytes,
        HashAlgorithm::Sha256 => Sha256::digest(bytes)[..] == address.bytes,
    }
}

#[async_trait]
impl ObjectReader for VerifiedReader {
    fn size_bytes(&self) -> u64 {
        self.wanted.end - self.wanted.start
    }

    fn total_size_bytes(&self) -> u64 {
        self.total
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(piece) = self.ready.pop_front() {
                return Ok(Some(piece));
            }
            if let Some(failure) = self.failure.take() {
                self.exhausted = true;
                return Err(failure);
            }
            if self.exhausted {
                return Ok(None);
            }
            match self.inner.next_chunk().await? {
                Some(chunk) => self.take(chunk).await,
                None => {
                    self.exhausted = true;
                    if self.next != self.read_end {
                        return Err(Error::IntegrityMismatch(format!(
                            "{}: the object ended at byte {}, before byte {} that the serve reads to",
                            self.address, self.next, self.read_end
                        )));
                    }
                }
            }
        }
    }
}
