//! What the fs backend keeps about each object besides its bytes, and how it finds an object by
//! its SHA-256.
//!
//! ```text
//! objects/<alg>/<aa>/<bb>/<hex>               the object; the extended attribute
//!                                             `user.artifactstore.object` holds its SHA-256 and
//!                                             the time it was first stored; its mtime, the last
//!                                             time it was touched after that
//! index/sha256/<aa>/<sha256 hex>              a symlink whose target is `blake3:<hex>`: the
//!                                             BLAKE3-primary object with that SHA-256
//! ```
//! The index fans out once (256 directories, as git's loose objects do): its entries are small, and
//! a fresh store's first objects would otherwise each make a directory of their own.
//! The attribute is set on the temporary file before it is linked, so an object never lacks it
//! (unless the filesystem refuses extended attributes, or the object predates them: then its
//! SHA-256 is computed from its bytes once, and written). An index entry is written before its
//! object becomes visible and checked again after, and removed only after the object is gone and
//! put back if the object reappeared: whatever the interleaving, an object under `objects/` has its
//! entry, and an entry without its object is harmless (lookups check the object).

use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, File};
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::remove_if_present;
use super::stat::Stat;
use crate::identity::{ContentAddress, Digest, HashAlgorithm, DIGEST_LEN};

const OBJECT_ATTRIBUTE: &std::ffi::CStr = c"user.artifactstore.object";
/// The attribute's value: the SHA-256, then the time first stored in milliseconds since the epoch
/// (u64, big-endian).
const ATTRIBUTE_LEN: usize = DIGEST_LEN + 8;

/// What an object's attribute records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Recorded {
    pub sha256: [u8; DIGEST_LEN],
    pub stored_at: SystemTime,
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Records an object's SHA-256 and store time on its (still temporary) file. A filesystem without
/// extended attributes is not an error: the SHA-256 is then computed when it is asked for.
pub(super) fn record(file: &File, recorded: &Recorded) -> io::Result<()> {
    let mut value = [0u8; ATTRIBUTE_LEN];
    value[..DIGEST_LEN].copy_from_slice(&recorded.sha256);
    value[DIGEST_LEN..].copy_from_slice(&millis(recorded.stored_at).to_be_bytes());
    let status =
        unsafe { libc::fsetxattr(file.as_raw_fd(), OBJECT_ATTRIBUTE.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    match status {
        0 => Ok(()),
        _ => ignore_unsupported(io::Error::last_os_error()),
    }
}

/// [`record`] for a file known by its path (an object stored before attributes were kept).
pub(super) fn record_at(path: &Path, recorded: &Recorded) -> io::Result<()> {
    let file = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    record(&file, recorded)
}

fn ignore_unsupported(error: io::Error) -> io::Result<()> {
    match error.raw_os_error() {
        Some(libc::ENOTSUP) => Ok(()),
        _ => Err(error),
    }
}

/// What the object at `path` records, `None` when it records nothing (or is not there).
pub(super) fn recorded(path: &Path) -> io::Result<Option<Recorded>> {
    let path = c_path(path)?;
    let mut value = [0u8; ATTRIBUTE_LEN];
    let len =
        unsafe { libc::lgetxattr(path.as_ptr(), OBJECT_ATTRIBUTE.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
    recorded_from(len, &value)
}

/// Linux's `getxattrat` (6.13 and later), which the libc crate does not name yet.
const SYS_GETXATTRAT: libc::c_long = 464;
static NO_GETXATTRAT: AtomicBool = AtomicBool::new(false);

/// `getxattrat`'s `struct xattr_args`.
#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// [`recorded`] of the object named `name` in the directory `dir` (whose path is `dir_path`),
/// without walking the path from the root where the kernel can.
pub(super) fn recorded_in(dir: BorrowedFd<'_>, name: &CStr, dir_path: &Path) -> io::Result<Option<Recorded>> {
    if NO_GETXATTRAT.load(Ordering::Relaxed) {
        return recorded_by_path(dir_path, name);
    }
    let mut value = [0u8; ATTRIBUTE_LEN];
    let mut args = XattrArgs { value: value.as_mut_ptr() as u64, size: ATTRIBUTE_LEN as u32, flags: 0 };
    // SAFETY: NUL-terminated names, and an xattr_args naming `value` with its length and of the
    // size passed, all alive for the call.
    let len = unsafe {
        libc::syscall(
            SYS_GETXATTRAT,
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            OBJECT_ATTRIBUTE.as_ptr(),
            &mut args as *mut XattrArgs,
            std::mem::size_of::<XattrArgs>(),
        )
    };
    // ENOSYS before Linux 6.13; EPERM from a seccomp filter that does not know the call yet.
    if len < 0 && matches!(io::Error::last_os_error().raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
        NO_GETXATTRAT.store(true, Ordering::Relaxed);
        return recorded_in(dir, name, dir_path);
    }
    recorded_from(len as isize, &value)
}

fn recorded_by_path(dir_path: &Path, name: &CStr) -> io::Result<Option<Recorded>> {
    recorded(&dir_path.join(OsStr::from_bytes(name.to_bytes())))
}

/// The attribute's value as `getxattr` gave it (`len` bytes of `value`, or an error when negative).
fn recorded_from(len: isize, value: &[u8; ATTRIBUTE_LEN]) -> io::Result<Option<Recorded>> {
    if len < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ENODATA | libc::ENOTSUP | libc::ENOENT | libc::ERANGE) => Ok(None),
            _ => Err(error),
        };
    }
    if len as usize != ATTRIBUTE_LEN {
        return Ok(None);
    }
    let sha256 = value[..DIGEST_LEN].try_into().expect("32 bytes");
    let stored_millis = u64::from_be_bytes(value[DIGEST_LEN..].try_into().expect("8 bytes"));
    Ok(Some(Recorded { sha256, stored_at: UNIX_EPOCH + Duration::from_millis(stored_millis) }))
}

/// File times given as now: the clock callers read, not the kernel's coarse file-time clock (which
/// lags it by up to a few milliseconds, so that a touch could seem older than a time read before
/// it).
fn times_now(now: SystemTime) -> [libc::timespec; 2] {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    [
        libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        libc::timespec { tv_sec: since_epoch.as_secs() as libc::time_t, tv_nsec: since_epoch.subsec_nanos() as _ },
    ]
}

/// Sets the object's touch time (its mtime) to now, without following a symlink. `false` when
/// nothing is at `path`: the touch found no object.
pub(super) fn touch(path: &Path) -> io::Result<bool> {
    let path = c_path(path)?;
    let times = times_now(SystemTime::now());
    let status = unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if status == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    match error.kind() {
        io::ErrorKind::NotFound => Ok(false),
        _ => Err(error),
    }
}

/// When an object was last touched: its mtime, or when it was stored if that is later (a fresh
/// object's mtime is the kernel's coarse clock at its last write, a little before its store time).
pub(super) fn touched_at(stat: &Stat, recorded: Option<&Recorded>) -> SystemTime {
    recorded.map_or(stat.modified, |recorded| stat.modified.max(recorded.stored_at))
}

/// Where the index entry for a SHA-256 lives below the root.
pub(super) fn index_path(root: &Path, sha256: &[u8; DIGEST_LEN]) -> PathBuf {
    let hex = hex::encode(sha256);
    root.join(format!("index/sha256/{}/{hex}", &hex[0..2]))
}

/// Points the SHA-256 of a BLAKE3-primary object at it. An entry already there is left alone when
/// it names the same object and replaced otherwise (a leftover of a store that lost the object);
/// one a conditional delete removes meanwhile is written again.
pub(super) fn write_index(root: &Path, sha256: &[u8; DIGEST_LEN], primary: &ContentAddress) -> io::Result<()> {
    let path = index_path(root, sha256);
    let target = primary.to_string();
    loop {
        match std::os::unix::fs::symlink(&target, &path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(path.parent().expect("index entries have a parent"))?
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs::read_link(&path) {
                Ok(existing) if existing.as_os_str().as_bytes() == target.as_bytes() => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                _ => remove_if_present(&path)?,
            },
            Err(e) => return Err(e),
        }
    }
}

/// [`write_index`] for an entry that is most likely there already: one look when it is.
pub(super) fn ensure_index(root: &Path, sha256: &[u8; DIGEST_LEN], primary: &ContentAddress) -> io::Result<()> {
    match fs::symlink_metadata(index_path(root, sha256)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => write_index(root, sha256, primary),
        Err(e) => Err(e),
    }
}

/// The primary address the index names for a SHA-256, if any (whether its object is there is the
/// caller's to check).
pub(super) fn read_index(root: &Path, sha256: &[u8; DIGEST_LEN]) -> io::Result<Option<ContentAddress>> {
    match fs::read_link(index_path(root, sha256)) {
        Ok(target) => Ok(target.to_str().and_then(|text| ContentAddress::parse(text).ok())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the index entry of an object that is gone, then looks again: an ingest that stored the
/// object anew meanwhile gets its entry back.
pub(super) fn remove_index(
    root: &Path,
    sha256: &[u8; DIGEST_LEN],
    primary: &ContentAddress,
    object: &Path,
) -> io::Result<()> {
    match fs::remove_file(index_path(root, sha256)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if fs::symlink_metadata(object).is_ok() {
        write_index(root, sha256, primary)?;
    }
    Ok(())
}

/// Whether an object of this primary algorithm is found through the index (SHA-256-primary
/// objects are found under their own address).
pub(super) fn indexed(primary: &Digest) -> bool {
    primary.algorithm == HashAlgorithm::Blake3
}

/// Whether `address` may name an object stored under another address: a SHA-256 may be the
/// digest of a BLAKE3-primary object.
pub(super) fn names_another(address: &ContentAddress) -> bool {
    address.algorithm == HashAlgorithm::Sha256
}

/// Where a conditional delete moves an object while it looks at its touch time a second time:
/// `deleting/<algorithm>-<hex>-<pid>-<sequence>`, outside `objects/` (so nothing serves it) on the
/// same filesystem (so the move is a rename).
pub(super) fn aside_path(root: &Path, address: &ContentAddress) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    root.join(ASIDE_DIR).join(format!("{}-{}-{}-{sequence}", address.algorithm, address.hex(), std::process::id()))
}

pub(super) const ASIDE_DIR: &str = "deleting";

/// Puts an object moved aside back in its place. If an ingest stored it anew meanwhile, that copy
/// stays and the one aside goes.
pub(super) fn put_back(aside: &Path, object: &Path) -> io::Result<()> {
    match fs::hard_link(aside, object) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(object.parent().expect("objects have a parent"))?;
            return put_back(aside, object);
        }
        Err(e) => return Err(e),
    }
    fs::remove_file(aside)
}

/// Puts back what conditional deletes of dead processes left aside (a crash between the move and
/// the second look): the delete did not happen. Returns how many it put back.
pub(super) fn restore_aside(root: &Path, alive: impl Fn(u32) -> bool) -> io::Result<u64> {
    let mut restored = 0;
    let entries = match fs::read_dir(root.join(ASIDE_DIR)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let aside = entry?.path();
        let name = aside.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut parts = name.split('-');
        let (Some(algorithm), Some(hex), Some(pid)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Ok(address) = ContentAddress::parse(&format!("{algorithm}:{hex}")) else { continue };
        let dead = pid.parse().is_ok_and(|pid| !alive(pid));
        if !dead {
            continue;
        }
        put_back(&aside, &root.join(crate::storage::object_locator(&address)))?;
        restored += 1;
    }
    Ok(restored)
}

/// Moves whatever is at `locator` (a corrupt file, a directory, a symlink) to the same path below
/// `quarantine/`; a name already taken there gets a numbered suffix. `false` when nothing was there.
pub(super) fn quarantine(root: &Path, locator: &str) -> io::Result<bool> {
    let from = root.join(locator);
    let relative = locator.strip_prefix("objects/").unwrap_or(locator);
    let target = root.join("quarantine").join(relative);
    fs::create_dir_all(target.parent().expect("objects have a parent"))?;
    let mut candidate = target.clone();
    for n in 1.. {
        if fs::symlink_metadata(&candidate).is_err() {
            break;
        }
        candidate = target.with_extension(n.to_string());
    }
    match fs::rename(&from, &candidate) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn an_attribute_read_in_a_directory_is_the_one_read_by_path_whichever_way_the_kernel_allows() {
        let dir = tempfile::tempdir().unwrap();
        let recorded =
            Recorded { sha256: [7; DIGEST_LEN], stored_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123) };
        let file = File::create(dir.path().join("object")).unwrap();
        record(&file, &recorded).unwrap();
        File::create(dir.path().join("bare")).unwrap();
        let opened = File::open(dir.path()).unwrap();
        for (name, expected) in [(c"object", Some(recorded)), (c"bare", None), (c"absent", None)] {
            assert_eq!(recorded_in(opened.as_fd(), name, dir.path()).unwrap(), expected, "{name:?}");
            assert_eq!(recorded_by_path(dir.path(), name).unwrap(), expected, "{name:?}");
        }
    }

    /// A conditional delete removes an entry while an ingest writes the same one: the ingest must
    /// neither fail nor leave the entry missing (it found it there, then gone, mid-write).
    #[test]
    fn an_index_entry_removed_while_it_is_written_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let (sha256, primary) = ([9; DIGEST_LEN], ContentAddress::new(HashAlgorithm::Blake3, [3; DIGEST_LEN]));
        let entry = index_path(dir.path(), &sha256);
        write_index(dir.path(), &sha256, &primary).unwrap();
        let done = AtomicBool::new(false);
        let failure = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let _ = fs::remove_file(&entry);
                }
            });
            let failure =
                (0..50_000).find_map(|round| write_index(dir.path(), &sha256, &primary).err().map(|e| (round, e)));
            done.store(true, Ordering::Relaxed);
            failure
        });
        assert!(failure.is_none(), "{failure:?}");
        write_index(dir.path(), &sha256, &primary).unwrap();
        assert_eq!(read_index(dir.path(), &sha256).unwrap(), Some(primary));
    }
}
