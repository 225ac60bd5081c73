//! One pass over the bytes yields the primary digest and SHA-256.
//!
//! SHA-256 (about 1.8 GB/s with SHA-NI) is the slowest stage of an ingest, so once an object grows
//! past a few hundred KiB its SHA-256 moves to a thread of its own, while BLAKE3 and the write run on
//! the caller's thread: an ingest then costs max(SHA-256, BLAKE3 + write), not their sum. Small
//! objects stay on one thread, where starting another would cost more than it saves.
//!
//! BLAKE3 runs for every object, whatever its primary: its pass also builds the object's tree
//! ([`crate::tree`]), which verified serving checks ranges against.

use std::thread::JoinHandle;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::chunk_queue::{chunk_queue, ChunkSender};
use crate::identity::{Digest, HashAlgorithm};
use crate::tree::{GroupTree, Outboard};

/// Bytes hashed inline before SHA-256 moves to its own thread.
const OFFLOAD_AFTER_BYTES: u64 = 256 * 1024;
/// Bytes queued for the SHA-256 thread; bounds the memory an ingest holds while SHA-256 catches up.
const SHA256_QUEUE_BYTES: u32 = 8 * 1024 * 1024;

/// The digests of one byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digests {
    pub primary: Digest,
    pub sha256: Digest,
    pub size_bytes: u64,
}

pub struct DualHasher {
    primary: HashAlgorithm,
    /// Taken at the end.
    blake3: Option<GroupTree>,
    sha256: Sha256Lane,
    size_bytes: u64,
}

enum Sha256Lane {
    Inline(Sha256),
    Offloaded { queue: ChunkSender, worker: JoinHandle<Sha256> },
    Taken,
}

impl DualHasher {
    pub fn new(primary: HashAlgorithm) -> Self {
        DualHasher::resume(primary, GroupTree::new(), Sha256::new(), 0)
    }

    pub fn finalize(self) -> Digests {
        self.finalize_with_tree().0
    }

    /// The digests, and the tree the BLAKE3 pass built (its root is the BLAKE3 hash whatever the
    /// primary).
    pub fn finalize_with_tree(mut self) -> (Digests, Outboard) {
        let (tree, sha256, size_bytes) = self.take_states();
        let tree = tree.expect("a new hasher runs BLAKE3").finish();
        let sha256 = Digest::new(HashAlgorithm::Sha256, sha256.finalize().into());
        let primary = match self.primary {
            HashAlgorithm::Blake3 => Digest::new(HashAlgorithm::Blake3, *tree.root.as_bytes()),
            HashAlgorithm::Sha256 => sha256,
        };
        (Digests { primary, sha256, size_bytes }, tree)
    }
}

impl DualHasher {
    /// Goes on from states that have hashed `size_bytes` bytes.
    pub fn resume(primary: HashAlgorithm, blake3: GroupTree, sha256: Sha256, size_bytes: u64) -> Self {
        DualHasher { primary, blake3: Some(blake3), sha256: Sha256Lane::Inline(sha256), size_bytes }
    }

    /// The states as they stand, once the SHA-256 thread (if any) has caught up.
    pub fn into_states(mut self) -> (Option<GroupTree>, Sha256, u64) {
        self.take_states()
    }

    fn take_states(&mut self) -> (Option<GroupTree>, Sha256, u64) {
        let sha256 = match std::mem::replace(&mut self.sha256, Sha256Lane::Taken) {
            Sha256Lane::Inline(state) => state,
            Sha256Lane::Offloaded { queue, worker } => {
                drop(queue);
                worker.join().expect("the SHA-256 thread does not panic")
            }
            Sha256Lane::Taken => unreachable!("finalize twice"),
        };
        (self.blake3.take(), sha256, self.size_bytes)
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn update(&mut self, chunk: &Bytes) {
        self.size_bytes += chunk.len() as u64;
        if self.size_bytes > OFFLOAD_AFTER_BYTES {
            self.offload_sha256();
        }
        match &mut self.sha256 {
            Sha256Lane::Inline(state) => state.update(chunk),
            Sha256Lane::Offloaded { queue, .. } => {
                assert!(queue.blocking_send(chunk.clone()), "the SHA-256 thread outlives its queue")
            }
            Sha256Lane::Taken => unreachable!("update after finalize"),
        }
        if let Some(blake3) = &mut self.blake3 {
            blake3.update(chunk);
        }
    }

    fn offload_sha256(&mut self) {
        if !matches!(self.sha256, Sha256Lane::Inline(_)) {
            return;
        }
        let Sha256Lane::Inline(mut state) = std::mem::replace(&mut self.sha256, Sha256Lane::Taken) else {
            unreachable!()
        };
        let (queue, mut chunks) = chunk_queue(SHA256_QUEUE_BYTES);
        let worker = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                while let Some(chunk) = chunks.blocking_recv() {
                    state.update(&chunk);
                }
                state
            })
            .expect("spawn the SHA-256 thread");
        self.sha256 = Sha256Lane::Offloaded { queue, worker };
    }
}

impl Drop for DualHasher {
    fn drop(&mut self) {
        // An abandoned ingest still joins its SHA-256 thread, so no thread outlives the hasher.
        if let Sha256Lane::Offloaded { queue, worker } = std::mem::replace(&mut self.sha256, Sha256Lane::Taken) {
            drop(queue);
            let _ = worker.join();
        }
    }
}

/// Hashes one contiguous buffer, splitting it into chunks so large inputs use both threads.
pub fn digest_bytes(primary: HashAlgorithm, bytes: &Bytes, chunk_len: usize) -> Digests {
    digest_bytes_with_tree(primary, bytes, chunk_len).0
}

/// [`digest_bytes`], and the buffer's tree.
pub fn digest_bytes_with_tree(primary: HashAlgorithm, bytes: &Bytes, chunk_len: usize) -> (Digests, Outboard) {
    let mut hasher = DualHasher::new(primary);
    let mut offset = 0;
    while offset < bytes.len() {
        let end = bytes.len().min(offset + chunk_len);
        hasher.update(&bytes.slice(offset..end));
        offset = end;
    }
    hasher.finalize_with_tree()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: Digest) -> String {
        d.hex()
    }

    /// The input of the official BLAKE3 test vectors: bytes 0, 1, ..., 250, 0, 1, ...
    fn vector_input(len: usize) -> Bytes {
        (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>().into()
    }

    // From BLAKE3-team/BLAKE3 test_vectors/test_vectors.json (first 32 bytes of each "hash").
    const BLAKE3_VECTORS: &[(usize, &str)] = &[
        (0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
        (1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"),
        (1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"),
        (1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"),
        (1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"),
        (31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"),
        (102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"),
    ];

    #[test]
    fn blake3_matches_the_published_vectors_at_every_chunking() {
        for &(len, expected) in BLAKE3_VECTORS {
            let input = vector_input(len);
            for chunk_len in [1, 7, 1024, 65536, usize::MAX / 2] {
                let digests = digest_bytes(HashAlgorithm::Blake3, &input, chunk_len);
                assert_eq!(hex(digests.primary), expected, "len {len} chunk {chunk_len}");
                assert_eq!(digests.size_bytes, len as u64);
            }
        }
    }

    #[test]
    fn sha256_matches_known_inputs() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
        ];
        for &(input, expected) in cases {
            let digests = digest_bytes(HashAlgorithm::Blake3, &Bytes::from_static(input), 2);
            assert_eq!(hex(digests.sha256), expected);
        }
    }

    #[test]
    fn sha256_of_a_million_a_survives_the_move_to_its_own_thread() {
        let input = Bytes::from(vec![b'a'; 1_000_000]);
        for chunk_len in [1000, 65536, 300_000] {
            let digests = digest_bytes(HashAlgorithm::Blake3, &input, chunk_len);
            assert_eq!(hex(digests.sha256), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        }
    }

    #[test]
    fn a_sha256_primary_is_the_sha256_digest() {
        let digests = digest_bytes(HashAlgorithm::Sha256, &Bytes::from_static(b"abc"), 64);
        assert_eq!(digests.primary, digests.sha256);
        assert_eq!(digests.primary.algorithm, HashAlgorithm::Sha256);
    }

    #[test]
    fn an_abandoned_hasher_joins_its_thread() {
        let mut hasher = DualHasher::new(HashAlgorithm::Blake3);
        hasher.update(&Bytes::from(vec![0u8; 1 << 20]));
        drop(hasher);
    }
}
