//! The daemon as a whole: the data plane, the accept loop with its connection limit, and the
//! graceful shutdown (GOAWAY everywhere, calls under way finish within the drain timeout, the
//! socket file goes).

use std::path::PathBuf;
use std::sync::Arc;

use artifactstore_core::DataPlane;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Limits};
use crate::connection;
use crate::listener::{self, PeerPolicy};
use crate::message::error_frame;
use crate::metrics::{self, Connections};

/// What every connection shares.
#[derive(Debug)]
pub struct Daemon {
    pub plane: Arc<DataPlane>,
    pub limits: Limits,
    pub peers: PeerPolicy,
    /// Named in PERMISSION_DENIED messages.
    pub config_source: PathBuf,
    /// Random per start, so that a client can tell a restarted daemon.
    pub boot_id: String,
    /// Cancelled on SIGTERM/SIGINT: GOAWAY, no new calls.
    pub shutdown: CancellationToken,
    /// Cancelled when the drain timeout is over: every call still under way is cut.
    pub abort: CancellationToken,
}

/// Opens the data plane, listens, and serves until SIGTERM or SIGINT; `ready` is called once
/// connections are accepted. Errors are for the operator: they name the field or the path.
pub async fn run(config: Config, ready: impl FnOnce(&std::path::Path)) -> Result<(), String> {
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let plane = DataPlane::open(config.plane.clone()).await.map_err(|e| format!("cannot open the data plane: {e}"))?;
    let listener = listener::bind(&config.socket_path, config.socket_mode)?;
    let daemon = Arc::new(Daemon {
        plane: Arc::new(plane),
        limits: config.limits.clone(),
        peers: PeerPolicy::new(config.allowed_uids.clone()),
        config_source: config.source.clone(),
        boot_id: boot_id()?,
        shutdown: CancellationToken::new(),
        abort: CancellationToken::new(),
    });
    let counted = Connections::register(&daemon.plane);
    if let Some(address) = config.metrics_address {
        let bound = metrics::serve(address, daemon.plane.clone(), daemon.shutdown.clone()).await?;
        eprintln!("artifactstore-daemon metrics on http://{bound}/metrics");
    }
    ready(&config.socket_path);
    let connections = TaskTracker::new();
    tokio::select! {
        () = accept(&listener, &daemon, &connections, &counted) => {}
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    drop(listener);
    daemon.shutdown.cancel();
    connections.close();
    if tokio::time::timeout(daemon.limits.drain_timeout, connections.wait()).await.is_err() {
        daemon.abort.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), connections.wait()).await;
    }
    daemon.plane.close();
    std::fs::remove_file(&config.socket_path)
        .map_err(|e| format!("cannot remove the socket {}: {e}", config.socket_path.display()))
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(kind).map_err(|e| format!("cannot handle signals: {e}"))
}

fn boot_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot make a boot id: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn accept(listener: &UnixListener, daemon: &Arc<Daemon>, connections: &TaskTracker, counted: &Connections) {
    let slots = Arc::new(Semaphore::new(daemon.limits.max_connections as usize));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: let connections end before accepting more.
                eprintln!("artifactstore-daemon: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let (daemon, open) = (daemon.clone(), counted.open());
                connections.spawn(async move {
                    connection::run(stream, daemon, slot).await;
                    drop(open);
                });
            }
            Err(_) => {
                let max = daemon.limits.max_connections;
                connections.spawn(refuse(stream, format!("too many connections at once ({max})")));
            }
        }
    }
}

/// Tells a connection over the limit why it is closed.
async fn refuse(stream: UnixStream, message: String) {
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::Encoder;
    let mut wire = bytes::BytesMut::new();
    let mut codec = crate::frame::FrameCodec::before_hello();
    if codec.encode(error_frame(0, "BACKEND_UNAVAILABLE", message), &mut wire).is_ok() {
        let mut stream = stream;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), stream.write_all(&wire)).await;
        let _ = stream.shutdown().await;
    }
}
