//! What the fs backend remembers of objects, in bounded memory, so that looking up an object seen
//! before costs one system call (`statx`) and not two or three: what its attribute records (see
//! [`super::catalogue`]), and which BLAKE3-primary object a SHA-256 names.
//!
//! A record holds for the very file it was read from: the same inode born at the same moment. An
//! object's attribute is written before the object is linked and never changed after, so while that
//! file is at the object's path, its attribute is still what was read. A file put there since (the
//! object deleted and stored again, by this process or another) is another inode or was born later,
//! and is read afresh. Where the filesystem gives no birth time nothing is remembered: an inode
//! number alone is reused after a delete.
//!
//! Which object a SHA-256 names is a fact of the content (the BLAKE3 of the bytes with that
//! SHA-256), true whether or not the object is still stored: a caller still looks at the object.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::time::SystemTime;

use super::catalogue::Recorded;
use crate::identity::ContentAddress;

/// How many addresses a [`Memo`] holds (`SETS` x `WAYS`): about 3.5 MiB of records, and enough for a
/// registry's busy blobs.
const SETS: usize = 4_096;
/// The places an address may take in its set. With eight, 5,000 random addresses looked up in turn
/// nearly all stay (a set of nine or more is rare); with four, about one in 25 fell in a set already
/// full, and was pushed out or pushed out another on every pass.
const WAYS: usize = 8;

/// The file an attribute was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileId {
    inode: u64,
    born: SystemTime,
}

impl FileId {
    pub(super) fn new(inode: u64, born: SystemTime) -> Self {
        FileId { inode, born }
    }

    /// `None` when the filesystem does not say when the file was born.
    pub(super) fn of(metadata: &Metadata) -> Option<Self> {
        Some(FileId::new(metadata.ino(), metadata.created().ok()?))
    }
}

/// What a file's attribute recorded, with the file it was read from.
pub(super) type FileRecord = (FileId, Recorded);

/// A bounded map from addresses to what was learnt of them. Set-associative: an address belongs to
/// one set (its digest is uniformly random already), the most recently used entry first, and a new
/// entry pushes out the set's least recently used.
#[derive(Debug)]
pub(super) struct Memo<V> {
    sets: Box<[Mutex<[Option<(ContentAddress, V)>; WAYS]>]>,
}

impl<V: Copy> Default for Memo<V> {
    fn default() -> Self {
        Memo { sets: (0..SETS).map(|_| Mutex::new([None; WAYS])).collect() }
    }
}

impl<V: Copy> Memo<V> {
    pub(super) fn get(&self, address: &ContentAddress) -> Option<V> {
        let mut set = self.set(address).lock().ok()?;
        let way = set.iter().position(|entry| entry.is_some_and(|(held, _)| held == *address))?;
        set[..=way].rotate_right(1);
        set[0].map(|(_, value)| value)
    }

    pub(super) fn put(&self, address: &ContentAddress, value: V) {
        let Ok(mut set) = self.set(address).lock() else { return };
        let way = set.iter().position(|entry| entry.is_some_and(|(held, _)| held == *address)).unwrap_or(WAYS - 1);
        set[..=way].rotate_right(1);
        set[0] = Some((*address, value));
    }

    pub(super) fn forget(&self, address: &ContentAddress) {
        let Ok(mut set) = self.set(address).lock() else { return };
        if let Some(way) = set.iter().position(|entry| entry.is_some_and(|(held, _)| held == *address)) {
            set[way..].rotate_left(1);
            set[WAYS - 1] = None;
        }
    }

    fn set(&self, address: &ContentAddress) -> &Mutex<[Option<(ContentAddress, V)>; WAYS]> {
        // The digest's last bytes: uniform as all of it is, and unlike its first bytes, not shared
        // by the neighbours a listing gives, which a caller may then look up one after another.
        let bits = u64::from_le_bytes(address.bytes[24..].try_into().expect("a digest has 32 bytes"));
        &self.sets[(bits % SETS as u64) as usize]
    }
}

impl Memo<FileRecord> {
    /// What `file`, found at `address`'s path, records, if it was read before.
    pub(super) fn record(&self, address: &ContentAddress, file: FileId) -> Option<Recorded> {
        self.get(address).filter(|(held, _)| *held == file).map(|(_, recorded)| recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::HashAlgorithm;
    use std::time::Duration;

    fn address(last: u8) -> ContentAddress {
        let mut bytes = [7u8; 32];
        bytes[31] = last;
        ContentAddress::new(HashAlgorithm::Blake3, bytes)
    }

    /// An address of the same set as `address(0)`.
    fn in_the_set_of_0(n: u8) -> ContentAddress {
        let mut same_set = address(0);
        same_set.bytes[0] = n; // the same last 8 bytes: the same set
        same_set
    }

    fn recorded(millis: u64) -> Recorded {
        Recorded { sha256: [1; 32], stored_at: SystemTime::UNIX_EPOCH + Duration::from_millis(millis) }
    }

    #[test]
    fn a_record_holds_only_for_the_file_it_was_read_from() {
        let memo = Memo::<FileRecord>::default();
        let born = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        let file = FileId { inode: 9, born };
        memo.put(&address(1), (file, recorded(3)));
        assert_eq!(memo.record(&address(1), file), Some(recorded(3)));
        assert_eq!(memo.record(&address(1), FileId { inode: 10, born }), None, "another inode");
        assert_eq!(memo.record(&address(1), FileId { inode: 9, born: born + Duration::from_nanos(1) }), None, "reborn");
        assert_eq!(memo.record(&address(2), file), None, "another address");
    }

    #[test]
    fn a_full_set_pushes_out_the_least_recently_used() {
        let memo = Memo::<u32>::default();
        let ways = WAYS as u8;
        for n in 0..ways {
            memo.put(&in_the_set_of_0(n), u32::from(n));
        }
        assert_eq!(memo.get(&in_the_set_of_0(0)), Some(0), "used again: now the most recent");
        memo.put(&in_the_set_of_0(ways), u32::from(ways));
        assert_eq!(memo.get(&in_the_set_of_0(1)), None, "the least recently used, pushed out");
        for n in (0..=ways).filter(|&n| n != 1) {
            assert_eq!(memo.get(&in_the_set_of_0(n)), Some(u32::from(n)));
        }
    }

    #[test]
    fn thousands_of_addresses_looked_up_in_turn_all_stay() {
        let memo = Memo::<u32>::default();
        let random = |n: u32| ContentAddress::new(HashAlgorithm::Blake3, *blake3::hash(&n.to_le_bytes()).as_bytes());
        for n in 0..5_000 {
            memo.put(&random(n), n);
        }
        let kept = (0..5_000).filter(|&n| memo.get(&random(n)) == Some(n)).count();
        // With four ways, 41 were pushed out (and every pass would push out about 200 again).
        assert!(kept >= 4_990, "{} of 5,000 addresses pushed out by others of their set", 5_000 - kept);
    }

    #[test]
    fn neighbours_in_a_listing_do_not_push_out_one_another() {
        let memo = Memo::<u32>::default();
        // Addresses listed one after another share their first bytes.
        let neighbour = |n: u8| {
            let mut bytes = [0u8; 32];
            bytes[24] = n;
            ContentAddress::new(HashAlgorithm::Blake3, bytes)
        };
        for n in 0..64 {
            memo.put(&neighbour(n), u32::from(n));
        }
        for n in 0..64 {
            assert_eq!(memo.get(&neighbour(n)), Some(u32::from(n)), "neighbour {n}");
        }
    }

    #[test]
    fn a_new_value_replaces_the_old_and_forget_removes_it() {
        let memo = Memo::<u32>::default();
        memo.put(&address(1), 1);
        memo.put(&address(1), 2);
        assert_eq!(memo.get(&address(1)), Some(2));
        memo.forget(&address(1));
        assert_eq!(memo.get(&address(1)), None);
    }
}
