//! What the fs backend reads of an object's inode, from a path's metadata or by its name in a leaf
//! directory the listing holds open: one `statx` relative to the directory, with no walk of the
//! path from the root.

use std::ffi::CStr;
use std::fs::Metadata;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, StatxFlags, StatxTimestamp};

use super::memo::FileId;

/// An object's inode, as far as the catalogue needs it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stat {
    /// A regular file (anything else in an object's place is no object).
    pub is_file: bool,
    pub size: u64,
    /// Its mtime: when it was last touched.
    pub modified: SystemTime,
    /// `None` where the filesystem does not say when the file was born.
    pub file: Option<FileId>,
}

impl From<&Metadata> for Stat {
    fn from(metadata: &Metadata) -> Self {
        Stat {
            is_file: metadata.is_file(),
            size: metadata.len(),
            modified: since_epoch(metadata.mtime(), metadata.mtime_nsec()),
            file: FileId::of(metadata),
        }
    }
}

/// The inode named `name` in `dir`, not following a symlink; `None` when there is none.
pub(super) fn stat_in(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Stat>> {
    let wanted = StatxFlags::TYPE | StatxFlags::SIZE | StatxFlags::MTIME | StatxFlags::INO | StatxFlags::BTIME;
    let statx = match rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, wanted) {
        Ok(statx) => statx,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let born = StatxFlags::from_bits_retain(statx.stx_mask).contains(StatxFlags::BTIME);
    Ok(Some(Stat {
        is_file: FileType::from_raw_mode(statx.stx_mode.into()) == FileType::RegularFile,
        size: statx.stx_size,
        modified: timestamp(statx.stx_mtime),
        file: born.then(|| FileId::new(statx.stx_ino, timestamp(statx.stx_btime))),
    }))
}

fn timestamp(time: StatxTimestamp) -> SystemTime {
    since_epoch(time.tv_sec, time.tv_nsec.into())
}

/// A file time as a `SystemTime`, a time before the epoch (an mtime someone set so) as the epoch:
/// an object was stored after it, and only such times have an RFC 3339 form here.
fn since_epoch(seconds: i64, nanoseconds: i64) -> SystemTime {
    match u64::try_from(seconds) {
        Ok(seconds) => UNIX_EPOCH + Duration::new(seconds, nanoseconds.clamp(0, 999_999_999) as u32),
        Err(_) => UNIX_EPOCH,
    }
}
