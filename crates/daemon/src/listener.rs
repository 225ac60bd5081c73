//! The listening socket: a stale socket file is replaced, a live daemon on the path is refused,
//! the file gets the configured mode; each accepted connection's send buffer; and the check of
//! each peer's uid (`SO_PEERCRED`).

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use tokio::net::{UnixListener, UnixStream};

/// Binds `path`, replacing a socket file nothing listens on, and applies `mode` to it.
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, String> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot use the socket path {shown}: {e}")),
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(format!("{shown} exists and is not a socket; not replacing it"))
        }
        Ok(_) => replace_stale(path)?,
    }
    let listener =
        std::os::unix::net::UnixListener::bind(path).map_err(|e| format!("cannot listen on {shown}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set mode {mode:o} on {shown}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| format!("cannot listen on {shown}: {e}"))?;
    UnixListener::from_std(listener).map_err(|e| format!("cannot listen on {shown}: {e}"))
}

fn replace_stale(path: &Path) -> Result<(), String> {
    let shown = path.display();
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(format!("another artifactstore-daemon is already listening on {shown}")),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(|e| format!("cannot remove the stale socket {shown}: {e}"))
        }
        Err(e) => Err(format!("cannot tell whether a daemon listens on {shown}: {e}")),
    }
}

/// The send buffer each connection asks the kernel for. The default (about 208 KiB) holds less
/// than one served DATA frame, so the client reads a serve in pieces of at most that and the
/// daemon waits for room more often; a call never has more than its credit (1 MiB) in flight,
/// so the larger buffer adds nothing to what the protocol's limits allow.
const SEND_BUFFER_BYTES: usize = 1 << 20;

/// Sets an accepted connection's socket options; a kernel that refuses keeps its defaults.
pub fn tune(stream: &UnixStream) {
    let _ = socket2::SockRef::from(stream).set_send_buffer_size(SEND_BUFFER_BYTES);
}

/// Who may connect: root, the daemon's own uid and the configured `allowedUids`.
#[derive(Clone, Debug)]
pub struct PeerPolicy {
    pub own_uid: u32,
    pub allowed_uids: Vec<u32>,
}

impl PeerPolicy {
    pub fn new(allowed_uids: Vec<u32>) -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let own_uid = unsafe { libc::geteuid() };
        PeerPolicy { own_uid, allowed_uids }
    }

    /// The peer's uid when it may not connect (or cannot be read: refused as uid `u32::MAX`).
    pub fn refused_uid(&self, stream: &UnixStream) -> Option<u32> {
        let uid = stream.peer_cred().map_or(u32::MAX, |cred| cred.uid());
        let allowed = uid == 0 || uid == self.own_uid || self.allowed_uids.contains(&uid);
        (!allowed).then_some(uid)
    }
}
