//! The daemon's life as an operator sees it, against the real binary: the command line, configs
//! it refuses, the socket file (stale, live, mode), who may connect, and SIGTERM draining.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use artifactstore_core::wire::cbor;
use artifactstore_core::wire::Wire;
use artifactstore_daemon::frame::{Frame, FrameCodec, Kind, END, MAX_FRAME_BYTES, OPEN};
use artifactstore_daemon::message::{ErrorBody, GoAway};
use support::{pseudo_random, spawn, write_config, Daemon, Peer, BIN};
use tokio_util::codec::Decoder;

const NOBODY: u32 = 65534;

#[test]
fn help_and_version_say_what_they_should() {
    let version = Command::new(BIN).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("artifactstore-daemon {}", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    assert!(help.contains("--config <FILE>") && help.contains("--socket <PATH>"), "{help}");
}

#[test]
fn a_config_it_cannot_honour_exits_non_zero_naming_the_field_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, field) in [
        (r#""socketMode": "rw-rw----""#, "socketMode \"rw-rw----\""),
        (r#""defaultBackend": "nowhere""#, "defaultBackend \"nowhere\""),
        (r#""allowedUids": [-1]"#, "allowedUids[0]"),
    ] {
        let config = write_config(dir.path(), extra);
        let (mut child, stderr) = spawn(&config, &[]);
        assert!(!child.wait().unwrap().success());
        let message: Vec<String> = stderr.iter().collect();
        assert!(message.iter().any(|line| line.contains(field)), "{field}: {message:?}");
        assert!(!dir.path().join("d.sock").exists());
    }
}

#[test]
fn the_socket_gets_the_configured_mode_and_socket_overrides_the_path() {
    let daemon = Daemon::start("");
    let mode = std::fs::metadata(&daemon.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), r#""socketMode": "600""#);
    let other = dir.path().join("other.sock");
    let (_child, stderr) = spawn(&config, &["--socket", other.to_str().unwrap()]);
    let ready = stderr.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(ready, format!("artifactstore-daemon listening on {}", other.display()));
    assert_eq!(std::fs::metadata(&other).unwrap().permissions().mode() & 0o777, 0o600);
    Peer::connect(&other).healthy();
    let mut child = _child;
    let _ = child.kill();
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_daemon_is_not() {
    let dir = tempfile::tempdir().unwrap();
    drop(std::os::unix::net::UnixListener::bind(dir.path().join("d.sock")).unwrap());
    let daemon = Daemon::spawn_in(dir, "");
    daemon.connect().healthy();

    let (mut second, stderr) = spawn(&daemon.config, &[]);
    assert!(!second.wait().unwrap().success());
    let message: Vec<String> = stderr.iter().collect();
    let expected = format!("another artifactstore-daemon is already listening on {}", daemon.socket.display());
    assert!(message.iter().any(|line| line.contains(&expected)), "{message:?}");
    daemon.connect().healthy();
}

#[test]
fn sigterm_sends_goaway_lets_calls_finish_and_removes_the_socket() {
    let mut daemon = Daemon::start("");
    let mut busy = daemon.connect();
    let mut idle = daemon.connect();
    let bytes = pseudo_random(300_000, 9);
    let ingest = busy.request("ingest_stream", cbor::map(vec![]), OPEN);
    busy.send(Frame::new(Kind::Data, ingest, 0, bytes[..100_000].to_vec()));
    busy.healthy();
    daemon.signal(libc::SIGTERM);
    let goaway = GoAway::from_cbor(&busy.recv().unwrap().payload).unwrap();
    assert_eq!((goaway.code.as_str(), goaway.last_stream_id), ("CLOSED", 3));
    // The call under way finishes; the idle connection is closed after its GOAWAY.
    busy.send(Frame::new(Kind::Data, ingest, END, bytes[100_000..].to_vec()));
    let result = artifactstore_core::IngestResult::from_cbor(&busy.outcome(ingest).unwrap()).unwrap();
    assert_eq!(result.size_bytes, bytes.len() as u64);
    assert_eq!(idle.goaway().code, "CLOSED");
    assert!(busy.until_closed().is_empty());
    assert!(daemon.wait_exit(Duration::from_secs(10)).success());
    assert!(!daemon.socket.exists());
}

#[test]
fn the_drain_timeout_cuts_calls_that_do_not_finish() {
    let mut daemon = Daemon::start(r#""limits": {"drainTimeoutMs": 500}"#);
    let mut stuck = daemon.connect();
    let ingest = stuck.request("ingest_stream", cbor::map(vec![]), OPEN);
    stuck.send(Frame::new(Kind::Data, ingest, 0, vec![7; 1000]));
    stuck.healthy();
    daemon.signal(libc::SIGINT);
    assert_eq!(stuck.recv().unwrap().kind, Kind::GoAway);
    let err = stuck.outcome(ingest).unwrap_err();
    assert_eq!(err.code, "ABORTED");
    assert!(daemon.wait_exit(Duration::from_secs(10)).success());
    assert!(!daemon.socket.exists());
    assert_eq!(std::fs::read_dir(daemon.store().join("tmp")).unwrap().count(), 0);
}

/// What a client process running as `uid` receives from the daemon, until it closes.
fn frames_seen_by(uid: u32, daemon: &Daemon) -> Vec<Frame> {
    let hello = artifactstore_daemon::handshake::ClientHello {
        magic: artifactstore_daemon::handshake::MAGIC.into(),
        versions: vec![1],
    };
    let mut hello_frame = [&(hello.to_cbor().len() as u32).to_be_bytes()[..], &[0, 0, 0, 0, 1, 0, 0, 0]].concat();
    hello_frame.extend(hello.to_cbor());
    let script = r#"
        const socket = require('net').connect(process.argv[1]);
        const seen = [];
        socket.on('connect', () => socket.write(Buffer.from(process.argv[2], 'hex')));
        socket.on('data', (data) => { seen.push(data); if (Buffer.concat(seen).length > 12) socket.end(); });
        socket.on('error', (e) => { console.error(e.message); process.exitCode = 2; });
        socket.on('close', () => process.stdout.write(Buffer.concat(seen).toString('hex')));
    "#;
    let output = Command::new("node")
        .args(["-e", script, daemon.socket.to_str().unwrap(), &hex::encode(&hello_frame)])
        .uid(uid)
        .gid(uid)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut wire = bytes::BytesMut::from(&hex::decode(output.stdout.trim_ascii()).unwrap()[..]);
    let mut codec = FrameCodec { max_payload: MAX_FRAME_BYTES };
    std::iter::from_fn(|| codec.decode(&mut wire).unwrap()).collect()
}

fn daemon_nobody_can_reach(extra: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    Daemon::spawn_in(dir, &format!(r#""socketMode": "666"{extra}"#))
}

#[test]
fn a_uid_not_allowed_gets_permission_denied_and_an_allowed_one_is_served() {
    let refused = daemon_nobody_can_reach("");
    let frames = frames_seen_by(NOBODY, &refused);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!((frames[0].kind, frames[0].stream_id), (Kind::Error, 0));
    let error = ErrorBody::from_cbor(&frames[0].payload).unwrap();
    assert_eq!(error.code, "PERMISSION_DENIED");
    assert_eq!(
        error.message,
        format!("uid {NOBODY} may not use this daemon (allowedUids in {})", refused.config.display())
    );
    refused.connect().healthy();

    let allowed = daemon_nobody_can_reach(&format!(r#", "allowedUids": [{NOBODY}]"#));
    let frames = frames_seen_by(NOBODY, &allowed);
    assert_eq!(frames.first().map(|f| f.kind), Some(Kind::Hello), "{frames:?}");
}

/// `npx artifactstore-daemon` runs bin/artifactstore-daemon.js, which must find the binary, pass
/// the arguments and stdio, forward SIGTERM and exit as the daemon exits.
#[test]
fn the_npm_launcher_runs_the_daemon_and_forwards_sigterm() {
    let launcher = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bin/artifactstore-daemon.js");
    let version =
        Command::new("node").arg(launcher).arg("--version").env("ARTIFACTSTORE_DAEMON_BIN", BIN).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("artifactstore-daemon {}", env!("CARGO_PKG_VERSION"))
    );
    // In a package without any binary it says where it looked; with native/ it finds that one.
    let package = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(package.path().join("bin")).unwrap();
    let copied = package.path().join("bin/artifactstore-daemon.js");
    std::fs::copy(launcher, &copied).unwrap();
    let missing = Command::new("node").arg(&copied).env_remove("ARTIFACTSTORE_DAEMON_BIN").output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let looked = String::from_utf8_lossy(&missing.stderr).into_owned();
    for place in
        ["native/artifactstore-daemon", "npm/linux-x64-gnu/artifactstore-daemon", "target/release/artifactstore-daemon"]
    {
        assert!(looked.contains(&package.path().join(place).display().to_string()), "{place}: {looked}");
    }
    std::fs::create_dir_all(package.path().join("native")).unwrap();
    std::os::unix::fs::symlink(BIN, package.path().join("native/artifactstore-daemon")).unwrap();
    let found =
        Command::new("node").arg(&copied).arg("--version").env_remove("ARTIFACTSTORE_DAEMON_BIN").output().unwrap();
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut child = Command::new("node")
        .arg(launcher)
        .arg("--config")
        .arg(&config)
        .env("ARTIFACTSTORE_DAEMON_BIN", BIN)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.starts_with("artifactstore-daemon listening on "), "{line}");
    Peer::connect(&dir.path().join("d.sock")).healthy();
    // SAFETY: kill on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    assert!(child.wait().unwrap().success());
    assert!(!dir.path().join("d.sock").exists());
}
