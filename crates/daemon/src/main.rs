//! The `artifactstore-daemon` command: `--config FILE` (and `--socket PATH`), then serve until
//! SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The artifact store's data plane as a daemon on a Unix socket (protocol: PROTOCOL.md).
#[derive(Parser)]
#[command(name = "artifactstore-daemon", version)]
struct Cli {
    /// The config file (JSON): socketPath, socketMode, allowedUids, backends, defaultBackend.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Listen here instead of the config's socketPath.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics (a bare PORT: on 127.0.0.1).
    #[arg(long, value_name = "HOST:PORT", value_parser = artifactstore_daemon::metrics::parse_address)]
    metrics_address: Option<std::net::SocketAddr>,
}

/// Keeps the memory of freed frames for the next ones instead of giving it back to the kernel:
/// glibc maps each allocation of 128 KiB and more afresh and trims freed memory past 128 KiB, so
/// every DATA payload read from a socket (up to 1 MiB) landed on fresh pages, and their first
/// touch (a page fault, zeroing) cost the ingest through the daemon a tenth of its CPU.
fn keep_freed_memory() {
    const MMAP_THRESHOLD: libc::c_int = 4 << 20;
    const TRIM_THRESHOLD: libc::c_int = 32 << 20;
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let loaded = artifactstore_daemon::Config::load(&cli.config, cli.socket);
    let outcome = loaded.map(|config| artifactstore_daemon::Config { metrics_address: cli.metrics_address, ..config });
    let outcome = outcome.and_then(|config| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        let ready = |path: &std::path::Path| eprintln!("artifactstore-daemon listening on {}", path.display());
        let outcome = runtime.block_on(artifactstore_daemon::run(config, ready));
        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        outcome
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("artifactstore-daemon: {message}");
            ExitCode::FAILURE
        }
    }
}
