//! The file an ingest writes before its name is known, kept outside `objects/`.
//!
//! Where the filesystem allows, it is an anonymous `O_TMPFILE`: it has no name until `link_as`
//! gives it its final one, so a crash leaves nothing behind at all. Elsewhere it is a named file in
//! `tmp/`, locked with `flock` while its ingest lives; `sweep_stale` removes those whose lock is free,
//! i.e. whose process died, and never one that a live ingest in any process still holds.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// A named temporary file is created under [`CREATING_SUFFIX`], locked, then renamed to carry
/// [`NAMED_SUFFIX`]: a file with that suffix is locked from the moment it has it, so the sweep may
/// take any unlocked one at once, without a grace period that would spare a fresh crash's leftover.
const NAMED_SUFFIX: &str = ".ingest";
const CREATING_SUFFIX: &str = ".creating";
/// A `.creating` file outlives its creation by microseconds; one this old belongs to no one.
const CREATING_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

pub struct TempFile {
    pub file: File,
    /// `None` for an anonymous file.
    path: Option<PathBuf>,
}

impl TempFile {
    pub fn create(tmp_dir: &Path) -> io::Result<Self> {
        match open_anonymous(tmp_dir) {
            Ok(file) => Ok(TempFile { file, path: None }),
            Err(e) if anonymous_unsupported(&e) => create_named(tmp_dir),
            Err(e) => Err(e),
        }
    }

    /// Gives the file the name `target`, failing with `AlreadyExists` if that name is taken.
    pub fn link_as(&self, target: &Path) -> io::Result<()> {
        match &self.path {
            Some(path) => fs::hard_link(path, target),
            None => link_anonymous(&self.file, target),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = fs::remove_file(path);
        }
    }
}

fn open_anonymous(dir: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).mode(0o644).custom_flags(libc::O_TMPFILE).open(dir)
}

fn anonymous_unsupported(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL))
}

/// Whether `linkat(AT_EMPTY_PATH)` works for this process: 0 not tried yet, 1 yes, 2 no.
static EMPTY_PATH_LINKS: AtomicU8 = AtomicU8::new(0);

fn link_anonymous(file: &File, target: &Path) -> io::Result<()> {
    let target = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH and saves a walk through /proc; without the
    // capability it fails (EPERM, or ENOENT on older kernels) and the /proc/self/fd path works.
    if EMPTY_PATH_LINKS.load(Ordering::Relaxed) != 2 {
        let status = unsafe {
            libc::linkat(file.as_raw_fd(), c"".as_ptr(), libc::AT_FDCWD, target.as_ptr(), libc::AT_EMPTY_PATH)
        };
        let error = io::Error::last_os_error();
        let refused = match error.raw_os_error() {
            _ if status == 0 => false,
            Some(libc::EPERM) => true,
            Some(libc::ENOENT) => EMPTY_PATH_LINKS.load(Ordering::Relaxed) == 0 && parent_exists(&target),
            _ => false,
        };
        if !refused {
            if status == 0 {
                EMPTY_PATH_LINKS.store(1, Ordering::Relaxed);
                return Ok(());
            }
            return Err(error);
        }
        EMPTY_PATH_LINKS.store(2, Ordering::Relaxed);
    }
    let source = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL");
    let status = unsafe {
        libc::linkat(libc::AT_FDCWD, source.as_ptr(), libc::AT_FDCWD, target.as_ptr(), libc::AT_SYMLINK_FOLLOW)
    };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn parent_exists(target: &CString) -> bool {
    let path = Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()));
    path.parent().is_some_and(Path::is_dir)
}

fn create_named(dir: &Path) -> io::Result<TempFile> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    loop {
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("{}-{sequence}-{nanos:08x}", std::process::id());
        let creating = dir.join(format!("{name}{CREATING_SUFFIX}"));
        match OpenOptions::new().read(true).write(true).create_new(true).mode(0o644).open(&creating) {
            Ok(file) => {
                let path = dir.join(format!("{name}{NAMED_SUFFIX}"));
                let locked = lock(&file, libc::LOCK_EX).and_then(|()| fs::rename(&creating, &path));
                if let Err(e) = locked {
                    let _ = fs::remove_file(&creating);
                    return Err(e);
                }
                return Ok(TempFile { file, path: Some(path) });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn lock(file: &File, operation: libc::c_int) -> io::Result<()> {
    if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Removes the named temporary files of ingests that died; returns how many it removed.
pub fn sweep_stale(tmp_dir: &Path) -> io::Result<u64> {
    let mut removed = 0;
    for entry in fs::read_dir(tmp_dir)? {
        let path = entry?.path();
        let name = path.to_string_lossy();
        let grace = if name.ends_with(NAMED_SUFFIX) {
            std::time::Duration::ZERO
        } else if name.ends_with(CREATING_SUFFIX) {
            // Unlocked for a moment after its creation: only its creator's death settles it early.
            if creator_alive(&path) {
                CREATING_GRACE
            } else {
                std::time::Duration::ZERO
            }
        } else {
            continue;
        };
        let Ok(file) = File::open(&path) else { continue };
        // A live ingest holds its lock; a dead one's lock went with its process.
        if lock(&file, libc::LOCK_EX | libc::LOCK_NB).is_ok() && age(&file) >= grace && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether the process whose id starts the file's name (`<pid>-…`) is alive; true when unsure.
fn creator_alive(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.split('-').next().and_then(|pid| pid.parse().ok()).is_none_or(process_alive)
}

/// Whether a process with this id is alive; true when unsure.
pub(super) fn process_alive(pid: u32) -> bool {
    match libc::pid_t::try_from(pid) {
        Ok(pid) if pid > 0 => unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() != libc::ESRCH },
        _ => true,
    }
}

fn age(file: &File) -> std::time::Duration {
    let modified = file.metadata().and_then(|m| m.modified());
    modified.ok().and_then(|t| t.elapsed().ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_anonymous_file_gets_its_name_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut temp = TempFile::create(dir.path()).unwrap();
        temp.file.write_all(b"hello").unwrap();
        let target = dir.path().join("object");
        temp.link_as(&target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"hello");
        assert_eq!(temp.link_as(&target).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        drop(temp);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "only the linked object remains");
    }

    #[test]
    fn the_sweep_removes_dead_named_files_and_spares_locked_ones() {
        let dir = tempfile::tempdir().unwrap();
        let live = create_named(dir.path()).unwrap();
        let dead = dir.path().join("4242-0-0.ingest");
        fs::write(&dead, b"left by a crash").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        File::options().write(true).open(&dead).unwrap().set_modified(old).unwrap();
        live.file.set_modified(old).unwrap();
        assert_eq!(sweep_stale(dir.path()).unwrap(), 1);
        assert!(!dead.exists());
        assert!(live.path.as_ref().unwrap().exists(), "a locked file belongs to a live ingest");
        let live_path = live.path.clone().unwrap();
        drop(live);
        assert!(!live_path.exists(), "dropping a named temp file removes it");
    }
}
