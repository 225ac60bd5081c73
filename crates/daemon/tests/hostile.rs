//! Hostile peers against the real binary: each kind of garbage ends only its own connection
//! (GOAWAY when the daemon can say why), while a well-behaved client on another connection keeps
//! being served; timeouts and limits cut slow and idle peers.

mod support;

use std::time::{Duration, Instant};

use artifactstore_core::wire::cbor;
use artifactstore_core::wire::Wire;
use artifactstore_daemon::frame::{Frame, Kind, END, OPEN};
use artifactstore_daemon::message::ErrorBody;
use support::{no_args, pseudo_random, request_payload, Daemon, Peer, FAST_LIMITS, WINDOW};

fn header(length: u32, stream: u32, kind: u8, flags: u8) -> Vec<u8> {
    [&length.to_be_bytes()[..], &stream.to_be_bytes(), &[kind, flags, 0, 0]].concat()
}

fn fast_daemon() -> Daemon {
    Daemon::start(&format!(r#""limits": {FAST_LIMITS}"#))
}

/// Runs `attack` on a fresh connection and checks that the daemon closed it with a GOAWAY whose
/// message contains `expected`, while `good` is served before and after.
fn ends_only_its_connection(daemon: &Daemon, good: &mut Peer, expected: &str, attack: impl FnOnce(&mut Peer)) {
    good.healthy();
    let mut hostile = Peer::raw(&daemon.socket);
    attack(&mut hostile);
    let goaway = hostile.goaway();
    assert_eq!(goaway.code, "INVALID_ARGUMENT", "{goaway:?}");
    assert!(goaway.message.contains(expected), "{expected:?} not in {goaway:?}");
    good.healthy();
}

fn with_hello(peer: &mut Peer) {
    peer.send_hello(&[1]);
    assert_eq!(peer.recv().unwrap().kind, Kind::Hello);
}

#[test]
fn malformed_frames_end_only_their_connection() {
    let daemon = fast_daemon();
    let mut good = daemon.connect();
    type Attack = Box<dyn FnOnce(&mut Peer)>;
    let cases: Vec<(&str, Attack)> = vec![
        ("exceeds the limit of 65536", Box::new(|p: &mut Peer| _ = p.send_bytes(&header(0xFFFF_FFFF, 0, 1, 0)))),
        (
            "exceeds the limit of 1048576",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send_bytes(&header(0xFFFF_FFFF, 1, 4, 0));
            }),
        ),
        (
            "unknown frame type 11",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send_bytes(&header(0, 1, 11, 0));
            }),
        ),
        (
            "unknown flags 0x80 on a REQUEST",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send_bytes(&header(0, 1, 2, 0x80));
            }),
        ),
        (
            "reserved header bits",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send_bytes(&[0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 1]);
            }),
        ),
        (
            "expected HELLO on stream 0 first, got REQUEST on stream 1",
            Box::new(|p: &mut Peer| {
                p.send(Frame::new(Kind::Request, 1, 0, request_payload("backend_health", no_args())));
            }),
        ),
        (
            "ids only grow",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                let payload = request_payload("backend_health", no_args());
                p.send(Frame::new(Kind::Request, 5, 0, payload.clone()));
                p.send(Frame::new(Kind::Request, 5, 0, payload));
            }),
        ),
        (
            "calls use odd stream ids",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send(Frame::new(Kind::Request, 2, 0, request_payload("backend_health", no_args())));
            }),
        ),
        (
            "DATA for stream 9, which no REQUEST opened",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send(Frame::new(Kind::Data, 9, 0, b"who?".to_vec()));
            }),
        ),
        (
            "WINDOW for stream 7, which no REQUEST opened",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send(Frame::new(Kind::Window, 7, 0, 1u32.to_be_bytes().to_vec()));
            }),
        ),
        (
            "beyond its credit",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send(Frame::new(Kind::Request, 1, OPEN, request_payload("ingest_stream", cbor::map(vec![]))));
                // Both frames in one write: the second spends credit the daemon has not granted.
                let mut both = header(WINDOW as u32, 1, 4, 0);
                both.extend(pseudo_random(WINDOW, 5));
                both.extend(header(1, 1, 4, END));
                both.push(0);
                p.send_bytes(&both);
            }),
        ),
        (
            "nested deeper than 64 levels",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                let mut deep = vec![0x81u8; 10_000];
                deep.push(0);
                p.send(Frame::new(Kind::Request, 1, 0, deep));
            }),
        ),
        (
            "nested deeper than 64 levels",
            Box::new(|p: &mut Peer| {
                let mut deep = vec![0x81u8; 10_000];
                deep.push(0);
                p.send(Frame::new(Kind::Hello, 0, 0, deep));
            }),
        ),
        (
            "REQUEST: CBOR decode",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send(Frame::new(Kind::Request, 1, 0, vec![0xff, 0x00]));
            }),
        ),
        (
            "RESPONSE is sent by the server only",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send(Frame::new(Kind::Response, 1, 0, Vec::new()));
            }),
        ),
        (
            "a second HELLO",
            Box::new(|p: &mut Peer| {
                with_hello(p);
                p.send_hello(&[1]);
            }),
        ),
        (
            "magic",
            Box::new(|p: &mut Peer| {
                let stranger =
                    cbor::map(vec![("magic", cbor::text("GET / HTTP/1.1")), ("versions", cbor::array(vec![]))]);
                p.send(Frame::new(Kind::Hello, 0, 0, stranger));
            }),
        ),
    ];
    for (expected, attack) in cases {
        ends_only_its_connection(&daemon, &mut good, expected, attack);
    }
}

#[test]
fn random_bytes_and_cut_frames_end_only_their_connection() {
    let daemon = fast_daemon();
    let mut good = daemon.connect();
    for seed in 0..20 {
        let mut hostile = Peer::raw(&daemon.socket);
        let garbage = pseudo_random(4096, seed);
        if seed % 2 == 1 {
            with_hello(&mut hostile);
        }
        hostile.send_bytes(&garbage);
        let started = Instant::now();
        hostile.until_closed();
        assert!(started.elapsed() < Duration::from_secs(5));
        good.healthy();
    }
    // A frame cut off mid-way by the peer's end of the stream.
    let mut cut = Peer::raw(&daemon.socket);
    with_hello(&mut cut);
    let payload = request_payload("backend_health", no_args());
    cut.send_bytes(&[&header(payload.len() as u32, 1, 2, 0)[..], &payload[..3]].concat());
    cut.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(cut.until_closed().is_empty());
    good.healthy();
}

#[test]
fn no_common_version_is_backend_unavailable_naming_both() {
    let daemon = fast_daemon();
    let mut peer = Peer::raw(&daemon.socket);
    peer.send_hello(&[7, 8]);
    let frames = peer.until_closed();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!((frames[0].kind, frames[0].stream_id), (Kind::Error, 0));
    let error = ErrorBody::from_cbor(&frames[0].payload).unwrap();
    assert_eq!(error.code, "BACKEND_UNAVAILABLE");
    assert_eq!(error.message, "no common protocol version: the client speaks [7, 8], this daemon [1]");
}

#[test]
fn silent_and_slow_peers_are_cut_by_the_timeouts_while_a_good_client_is_served() {
    let daemon = fast_daemon();
    let mut good = daemon.connect();
    let started = Instant::now();
    let mut silent = Peer::raw(&daemon.socket);
    // One byte a second: before HELLO the handshake timeout cuts it, after HELLO the frame timeout.
    let mut slow_hello = Peer::raw(&daemon.socket);
    let mut slow_frame = Peer::raw(&daemon.socket);
    with_hello(&mut slow_frame);
    let hello_bytes = [0u8, 0, 0, 40, 0, 0, 0, 0, 1, 0, 0, 0, 0xa2];
    let frame_bytes = header(200, 1, 2, 0);
    let mut ended = [false; 2];
    for second in 0..6 {
        for (index, (peer, bytes)) in
            [(&mut slow_hello, &hello_bytes[..]), (&mut slow_frame, &frame_bytes[..])].into_iter().enumerate()
        {
            if !ended[index] && second < bytes.len() {
                ended[index] = !peer.send_bytes(&bytes[second..second + 1]);
            }
        }
        good.healthy();
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(silent.goaway().message.contains("no HELLO within 1000 ms"));
    assert!(slow_hello.goaway().message.contains("no HELLO within 1000 ms"));
    assert!(slow_frame.goaway().message.contains("not completed within 1500 ms"));
    assert!(started.elapsed() < Duration::from_secs(8));
    good.healthy();
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let daemon = Daemon::start(r#""limits": {"idleTimeoutMs": 700}"#);
    let started = Instant::now();
    let mut idle = daemon.connect();
    let goaway = idle.goaway();
    assert_eq!(goaway.code, "CLOSED");
    assert!(goaway.message.contains("idle for 700 ms"), "{goaway:?}");
    assert!(started.elapsed() >= Duration::from_millis(700));
}

#[test]
fn a_thousand_idle_connections_are_cut_by_the_limits_while_a_good_client_is_served() {
    let daemon = fast_daemon();
    let mut good = daemon.connect();
    let descriptors_before = daemon.open_descriptors();
    let mut idle: Vec<Peer> = (0..1000).map(|_| Peer::raw(&daemon.socket)).collect();
    for _ in 0..10 {
        good.healthy();
    }
    let mut refused = 0;
    let mut timed_out = 0;
    for peer in &mut idle {
        let frames = peer.until_closed();
        match frames.as_slice() {
            [frame] if frame.kind == Kind::Error => {
                let error = ErrorBody::from_cbor(&frame.payload).unwrap();
                assert_eq!(
                    (error.code.as_str(), error.message.as_str()),
                    ("BACKEND_UNAVAILABLE", "too many connections at once (256)")
                );
                refused += 1;
            }
            [frame] if frame.kind == Kind::GoAway => timed_out += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // 255 slots were free besides the good client's: the others were refused at once (a slot
    // freed by a timeout while the thousand were still connecting may have taken one more).
    assert_eq!(refused + timed_out, 1000);
    assert!(timed_out >= 255 && refused >= 500, "refused {refused}, timed out {timed_out}");
    drop(idle);
    good.healthy();
    admitted_soon(&daemon).healthy();
    let deadline = Instant::now() + Duration::from_secs(5);
    while daemon.open_descriptors() > descriptors_before + 1 {
        assert!(
            Instant::now() < deadline,
            "descriptors: {} before, {} now",
            descriptors_before,
            daemon.open_descriptors()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A new connection once the daemon has a slot for it: a connection's slot is given back a moment
/// after its peer has seen it end.
fn admitted_soon(daemon: &Daemon) -> Peer {
    for _ in 0..50 {
        let mut peer = Peer::raw(&daemon.socket);
        peer.send_hello(&[1]);
        match peer.recv() {
            Some(frame) if frame.kind == Kind::Hello => {
                peer.hello = Some(artifactstore_daemon::handshake::ServerHello::from_cbor(&frame.payload).unwrap());
                return peer;
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    panic!("no slot for a new connection within a second");
}
