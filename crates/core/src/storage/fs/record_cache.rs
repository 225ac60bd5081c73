//! A bounded memory of what objects' attributes record (see [`super::catalogue`]), so that looking
//! up an object seen before costs one system call (`statx`) and not two.
//!
//! An entry holds for the very file it was read from: the same inode born at the same moment. An
//! object's attribute is written before the object is linked and never changed after, so while that
//! file is at the object's path, its attribute is still what was read. A file put there since (the
//! object deleted and stored again, by this process or another) is another inode or was born later,
//! and is read afresh. Where the filesystem gives no birth time nothing is remembered: an inode
//! number alone is reused after a delete.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::time::SystemTime;

use super::catalogue::Recorded;
use crate::identity::ContentAddress;

/// How many objects are remembered: about 1.5 MiB, and enough for a registry's busy blobs.
const SLOTS: usize = 16_384;

/// The file an attribute was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileId {
    inode: u64,
    born: SystemTime,
}

impl FileId {
    /// `None` when the filesystem does not say when the file was born.
    pub(super) fn of(metadata: &Metadata) -> Option<Self> {
        Some(FileId { inode: metadata.ino(), born: metadata.created().ok()? })
    }
}

#[derive(Debug)]
struct Entry {
    address: ContentAddress,
    file: FileId,
    recorded: Recorded,
}

/// Direct-mapped: an address has one slot (its digest is uniformly random already), and a newer
/// entry for that slot replaces the older.
#[derive(Debug)]
pub(super) struct RecordCache {
    slots: Box<[Mutex<Option<Entry>>]>,
}

impl Default for RecordCache {
    fn default() -> Self {
        RecordCache { slots: (0..SLOTS).map(|_| Mutex::new(None)).collect() }
    }
}

impl RecordCache {
    /// What `file`, found at `address`'s path, records, if it was read before.
    pub(super) fn get(&self, address: &ContentAddress, file: FileId) -> Option<Recorded> {
        let slot = self.slot(address).lock().ok()?;
        slot.as_ref().filter(|entry| entry.address == *address && entry.file == file).map(|entry| entry.recorded)
    }

    pub(super) fn put(&self, address: &ContentAddress, file: FileId, recorded: Recorded) {
        if let Ok(mut slot) = self.slot(address).lock() {
            *slot = Some(Entry { address: *address, file, recorded });
        }
    }

    fn slot(&self, address: &ContentAddress) -> &Mutex<Option<Entry>> {
        let bits = u64::from_le_bytes(address.bytes[..8].try_into().expect("a digest has 8 bytes"));
        &self.slots[(bits % SLOTS as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::HashAlgorithm;
    use std::time::Duration;

    fn address(first: u8) -> ContentAddress {
        let mut bytes = [7u8; 32];
        bytes[0] = first;
        ContentAddress::new(HashAlgorithm::Blake3, bytes)
    }

    fn recorded(millis: u64) -> Recorded {
        Recorded { sha256: [1; 32], stored_at: SystemTime::UNIX_EPOCH + Duration::from_millis(millis) }
    }

    #[test]
    fn an_entry_holds_only_for_the_file_it_was_read_from() {
        let cache = RecordCache::default();
        let born = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        let file = FileId { inode: 9, born };
        cache.put(&address(1), file, recorded(3));
        assert_eq!(cache.get(&address(1), file), Some(recorded(3)));
        assert_eq!(cache.get(&address(1), FileId { inode: 10, born }), None, "another inode");
        assert_eq!(cache.get(&address(1), FileId { inode: 9, born: born + Duration::from_nanos(1) }), None, "reborn");
        assert_eq!(cache.get(&address(2), file), None, "another address");
    }

    #[test]
    fn an_address_sharing_a_slot_replaces_the_older() {
        let cache = RecordCache::default();
        let file = FileId { inode: 1, born: SystemTime::UNIX_EPOCH };
        let first = address(1);
        let mut second = first;
        second.bytes[31] ^= 0xff; // the same first 8 bytes: the same slot
        cache.put(&first, file, recorded(1));
        cache.put(&second, file, recorded(2));
        assert_eq!(cache.get(&first, file), None);
        assert_eq!(cache.get(&second, file), Some(recorded(2)));
    }
}
