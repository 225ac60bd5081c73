//! Looking at a path only as far as the kernel answers from memory: `openat2` with
//! `RESOLVE_CACHED` fails, rather than wait, unless every component of the path is in the kernel's
//! lookup cache and needs no revalidation (which a network or FUSE filesystem always does), and the
//! attributes of a file whose path resolved so come from its in-memory inode. A caller that must
//! never wait for a device (an event loop's thread) may look so, and asks elsewhere when told
//! [`Cached::Unknown`].

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// What the kernel's caches say of a path.
#[derive(Debug)]
pub(super) enum Cached {
    /// Its own metadata (a symlink's own, not its target's).
    Found(Metadata),
    /// Nothing is there (a remembered absence of it or of a directory on the way).
    Absent,
    /// The caches cannot tell without waiting (or the kernel has no `RESOLVE_CACHED`).
    Unknown,
}

/// A directory the lookups start from, held open: a path below it is walked from there, not
/// from `/` (each component walked is a lookup in the kernel's cache).
#[derive(Debug)]
pub(super) struct Base(OwnedFd);

impl Base {
    pub(super) fn open(dir: &Path) -> io::Result<Self> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(Base(rustix::fs::open(dir, flags, Mode::empty())?))
    }
}

/// `fs::symlink_metadata` of `relative` below `base`, answered from the kernel's caches or not at
/// all.
pub(super) fn symlink_metadata(base: &Base, relative: &Path) -> Cached {
    let Ok(path) = CString::new(relative.as_os_str().as_bytes()) else { return Cached::Unknown };
    // SAFETY: open_how is plain integers, for which zero is valid (and means "no more options").
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_CACHED;
    // SAFETY: a NUL-terminated path and an open_how of the size passed, both alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            base.0.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return match io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOENT) => Cached::Absent,
            _ => Cached::Unknown, // EAGAIN: not all cached; ENOSYS or EINVAL: an older kernel
        };
    }
    // SAFETY: a descriptor openat2 has just opened, owned from here on.
    let file = unsafe { File::from_raw_fd(fd as i32) };
    file.metadata().map_or(Cached::Unknown, Cached::Found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_just_made_is_found_and_a_missing_one_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("object");
        std::fs::write(&path, b"bytes").unwrap();
        let _ = std::fs::symlink_metadata(&path); // in the caches now, if it was not already
        let base = Base::open(dir.path()).unwrap();
        match symlink_metadata(&base, Path::new("object")) {
            Cached::Found(metadata) => assert_eq!(metadata.len(), 5),
            other => panic!("expected the file's metadata, got {other:?}"),
        }
        let _ = std::fs::symlink_metadata(dir.path().join("missing"));
        assert!(matches!(symlink_metadata(&base, Path::new("missing")), Cached::Absent | Cached::Unknown));
        assert!(matches!(symlink_metadata(&base, Path::new("no-dir/object")), Cached::Absent | Cached::Unknown));
    }

    #[test]
    fn a_symlink_is_its_own_metadata() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("target"), b"bytes").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("target", &link).unwrap();
        let _ = std::fs::symlink_metadata(&link);
        match symlink_metadata(&Base::open(dir.path()).unwrap(), Path::new("link")) {
            Cached::Found(metadata) => assert!(metadata.file_type().is_symlink()),
            other => panic!("expected the link's metadata, got {other:?}"),
        }
    }
}
