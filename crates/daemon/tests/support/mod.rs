//! What the daemon's tests share: the real binary started on a temp socket with a temp fs store,
//! and a small blocking client that speaks the protocol frame by frame (so that tests can also
//! speak it wrongly).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use artifactstore_core::wire::cbor;
use artifactstore_core::wire::Wire;
use artifactstore_daemon::frame::{Frame, FrameCodec, Kind, END, MAX_FRAME_BYTES, OPEN};
use artifactstore_daemon::handshake::{ClientHello, ServerHello, MAGIC};
use artifactstore_daemon::message::{ErrorBody, GoAway};
use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

pub const BIN: &str = env!("CARGO_BIN_EXE_artifactstore-daemon");
pub const WINDOW: usize = 1 << 20;
pub const DATA_PIECE: usize = 256 << 10;

/// Short timeouts so that the tests of the limits take seconds, not minutes.
pub const FAST_LIMITS: &str =
    r#"{"handshakeTimeoutMs": 1000, "frameTimeoutMs": 1500, "idleTimeoutMs": 20000, "drainTimeoutMs": 10000}"#;

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub child: Child,
    pub stderr: mpsc::Receiver<String>,
}

impl Daemon {
    /// Starts the daemon with `extra` config fields (JSON members, e.g. `"socketMode": "600"`).
    pub fn start(extra: &str) -> Daemon {
        Daemon::spawn_in(tempfile::tempdir().unwrap(), extra)
    }

    pub fn spawn_in(dir: tempfile::TempDir, extra: &str) -> Daemon {
        let socket = dir.path().join("d.sock");
        let config = write_config(dir.path(), extra);
        let (child, stderr) = spawn(&config, &[]);
        let mut daemon = Daemon { dir, socket, config, child, stderr };
        daemon.wait_ready();
        daemon
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn wait_ready(&mut self) {
        let line = self.stderr.recv_timeout(Duration::from_secs(20)).expect("the daemon said nothing");
        assert_eq!(line, format!("artifactstore-daemon listening on {}", self.socket.display()));
    }

    pub fn connect(&self) -> Peer {
        Peer::connect(&self.socket)
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, signal) }, 0);
    }

    /// Waits for the daemon to exit; its status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the daemon did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Descriptors the daemon has open.
    pub fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).unwrap().count()
    }

    /// The daemon's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the daemon's stderr: {:#?}", self.stderr_lines());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let store = dir.join("store");
    let socket = dir.join("d.sock");
    let extra = if extra.is_empty() { String::new() } else { format!(", {extra}") };
    let text = format!(
        r#"{{"socketPath": {socket:?}, "backends": [{{"id": "local", "kind": "fs", "root": {store:?}, "durable": false}}]{extra}}}"#
    );
    let config = dir.join("daemon.json");
    std::fs::write(&config, text).unwrap();
    config
}

/// Starts the binary; its stderr lines arrive on the receiver.
pub fn spawn(config: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, receiver) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    (child, receiver)
}

/// Bytes that look random, the same on every run.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

pub fn request_payload(op: &str, args: Vec<u8>) -> Vec<u8> {
    cbor::map(vec![("op", cbor::text(op)), ("args", args)])
}

pub fn object_args(address: &str) -> Vec<u8> {
    cbor::map(vec![("address", cbor::text(address))])
}

pub fn no_args() -> Vec<u8> {
    cbor::map(vec![])
}

/// One connection, spoken to frame by frame.
pub struct Peer {
    pub stream: UnixStream,
    buffer: BytesMut,
    codec: FrameCodec,
    pub hello: Option<ServerHello>,
    next_stream: u32,
}

impl Peer {
    /// A connection without a handshake.
    pub fn raw(socket: &Path) -> Peer {
        let stream = UnixStream::connect(socket).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Peer {
            stream,
            buffer: BytesMut::new(),
            codec: FrameCodec { max_payload: MAX_FRAME_BYTES },
            hello: None,
            next_stream: 1,
        }
    }

    pub fn connect(socket: &Path) -> Peer {
        let mut peer = Peer::raw(socket);
        peer.send_hello(&[1]);
        let hello = peer.recv().expect("no HELLO from the daemon");
        assert_eq!((hello.kind, hello.stream_id), (Kind::Hello, 0), "{hello:?}");
        peer.hello = Some(ServerHello::from_cbor(&hello.payload).unwrap());
        peer
    }

    pub fn send_hello(&mut self, versions: &[u64]) {
        let hello = ClientHello { magic: MAGIC.into(), versions: versions.to_vec() };
        self.send(Frame::new(Kind::Hello, 0, 0, hello.to_cbor()));
    }

    /// The next odd stream id.
    pub fn stream_id(&mut self) -> u32 {
        let id = self.next_stream;
        self.next_stream += 2;
        id
    }

    /// Writes a frame; a daemon that has closed the connection shows in what `recv` gives next.
    pub fn send(&mut self, frame: Frame) {
        let mut wire = BytesMut::new();
        self.codec.encode(frame, &mut wire).unwrap();
        let _ = self.stream.write_all(&wire);
    }

    /// Writes bytes as they are; `false` when the daemon has closed the connection.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// The next frame; `None` once the daemon has closed the connection.
    pub fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buffer).expect("the daemon sent a bad frame") {
                return Some(frame);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading from the daemon: {e}"),
            }
        }
    }

    /// Every frame until the daemon closes the connection.
    pub fn until_closed(&mut self) -> Vec<Frame> {
        std::iter::from_fn(|| self.recv()).collect()
    }

    /// The GOAWAY that ended this connection, after reading it to its end.
    pub fn goaway(&mut self) -> GoAway {
        let frames = self.until_closed();
        let last = frames.last().unwrap_or_else(|| panic!("closed without GOAWAY"));
        assert_eq!(last.kind, Kind::GoAway, "{frames:?}");
        GoAway::from_cbor(&last.payload).unwrap()
    }

    pub fn request(&mut self, op: &str, args: Vec<u8>, flags: u8) -> u32 {
        let id = self.stream_id();
        self.send(Frame::new(Kind::Request, id, flags, request_payload(op, args)));
        id
    }

    /// A unary call: its RESPONSE payload or its ERROR.
    pub fn call(&mut self, op: &str, args: Vec<u8>) -> Result<Vec<u8>, ErrorBody> {
        let id = self.request(op, args, 0);
        self.outcome(id)
    }

    /// Reads until the RESPONSE or ERROR of stream `id`, skipping WINDOW frames.
    pub fn outcome(&mut self, id: u32) -> Result<Vec<u8>, ErrorBody> {
        loop {
            let frame = self.recv().expect("the daemon closed the connection");
            match (frame.kind, frame.stream_id == id) {
                (Kind::Response, true) => return Ok(frame.payload.to_vec()),
                (Kind::Error, true) => return Err(ErrorBody::from_cbor(&frame.payload).unwrap()),
                (Kind::Window, _) => {}
                _ => panic!("unexpected frame while waiting for stream {id}: {frame:?}"),
            }
        }
    }

    /// Sends `bytes` as an ingest within the daemon's credit; its RESPONSE or ERROR.
    pub fn ingest(&mut self, bytes: &[u8], args: Vec<u8>) -> Result<Vec<u8>, ErrorBody> {
        let id = self.request("ingest_stream", args, OPEN);
        let mut credit = WINDOW;
        for piece in bytes.chunks(DATA_PIECE) {
            while credit < piece.len() {
                let frame = self.recv().expect("closed during an ingest");
                match frame.kind {
                    Kind::Window => credit += u32::from_be_bytes(frame.payload[..].try_into().unwrap()) as usize,
                    Kind::Error => return Err(ErrorBody::from_cbor(&frame.payload).unwrap()),
                    _ => panic!("unexpected frame during an ingest: {frame:?}"),
                }
            }
            credit -= piece.len();
            self.send(Frame::new(Kind::Data, id, 0, piece.to_vec()));
        }
        self.send(Frame::new(Kind::Data, id, END, Vec::new()));
        self.outcome(id)
    }

    /// Serves `args` whole: the RESPONSE head and the bytes, granting credit as it reads.
    pub fn serve(&mut self, args: Vec<u8>) -> Result<(Vec<u8>, Vec<u8>), ErrorBody> {
        let id = self.request("serve_object", args, 0);
        let head = self.outcome(id)?;
        let mut bytes = Vec::new();
        let mut unreturned = 0;
        loop {
            let frame = self.recv().expect("closed during a serve");
            assert_eq!(frame.stream_id, id, "{frame:?}");
            match frame.kind {
                Kind::Data => {
                    bytes.extend_from_slice(&frame.payload);
                    unreturned += frame.payload.len();
                    if frame.has(END) {
                        return Ok((head, bytes));
                    }
                    if unreturned >= WINDOW / 2 {
                        self.send(Frame::new(Kind::Window, id, 0, (unreturned as u32).to_be_bytes().to_vec()));
                        unreturned = 0;
                    }
                }
                Kind::Error => return Err(ErrorBody::from_cbor(&frame.payload).unwrap()),
                _ => panic!("unexpected frame during a serve: {frame:?}"),
            }
        }
    }

    /// A round trip that shows the connection is served.
    pub fn healthy(&mut self) {
        let status = self.call("backend_health", no_args()).expect("backend_health failed");
        let status = artifactstore_core::BackendStatus::from_cbor(&status).unwrap();
        assert!(status.healthy, "{status:?}");
    }
}
