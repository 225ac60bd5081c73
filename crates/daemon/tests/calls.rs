//! The five operations over the socket, against the real binary: results as in-process, errors
//! with the SPEC's codes, several calls at once on one connection with their own credit, CANCEL.

mod support;

use artifactstore_core::wire::cbor;
use artifactstore_core::wire::Wire;
use artifactstore_core::ServeHead;
use artifactstore_core::{DeletionResult, IngestResult, ObjectInfo, VerifyResult};
use artifactstore_daemon::frame::{Frame, Kind, END, OPEN};
use support::{no_args, object_args, pseudo_random, Daemon, WINDOW};

fn serve_args(address: &str, range: Option<(u64, u64)>) -> Vec<u8> {
    let mut entries = vec![("address", cbor::text(address))];
    if let Some((start, end)) = range {
        entries.push(("byte_range", cbor::array(vec![cbor::unsigned(start), cbor::unsigned(end)])));
    }
    cbor::map(entries)
}

/// Files below the store's tmp/ (ingests in progress).
fn temporaries(daemon: &Daemon) -> usize {
    std::fs::read_dir(daemon.store().join("tmp")).map_or(0, |dir| dir.count())
}

#[test]
fn ingest_serve_verify_delete_and_health_round_trip() {
    let daemon = Daemon::start("");
    let mut peer = daemon.connect();
    let hello = peer.hello.clone().unwrap();
    assert_eq!((hello.version, hello.max_frame_bytes, hello.window_bytes, hello.max_calls), (1, 1 << 20, 1 << 20, 64));
    assert_eq!(hello.boot_id.len(), 32);

    let bytes = pseudo_random(3 * WINDOW + 12345, 1);
    let result = IngestResult::from_cbor(&peer.ingest(&bytes, cbor::map(vec![])).unwrap()).unwrap();
    assert_eq!(result.primary_digest.bytes, *blake3::hash(&bytes).as_bytes());
    assert_eq!(result.size_bytes, bytes.len() as u64);
    assert!(!result.receipt.deduplicated);
    let address = result.primary_digest.to_string();
    let again = IngestResult::from_cbor(&peer.ingest(&bytes, cbor::map(vec![])).unwrap()).unwrap();
    assert!(again.receipt.deduplicated);

    let (head, served) = peer.serve(serve_args(&address, None)).unwrap();
    let head = ServeHead::from_cbor(&head).unwrap();
    assert_eq!(
        (head.content_address, head.size_bytes, head.total_size_bytes),
        (result.primary_digest, bytes.len() as u64, bytes.len() as u64)
    );
    assert!(served == bytes, "the served bytes differ");
    let (head, range) = peer.serve(serve_args(&address, Some((100, 1_500_000)))).unwrap();
    assert_eq!(ServeHead::from_cbor(&head).unwrap().size_bytes, 1_499_900);
    assert!(range == bytes[100..1_500_000]);

    // Operations beyond the first five come through the same table, with no daemon code of their own.
    let info = ObjectInfo::from_cbor(&peer.call("stat_object", object_args(&address)).unwrap()).unwrap();
    assert_eq!((info.content_address, info.size_bytes), (result.primary_digest, bytes.len() as u64));
    let verified = VerifyResult::from_cbor(&peer.call("verify_object", object_args(&address)).unwrap()).unwrap();
    assert!(verified.verified && verified.actual_size_bytes == bytes.len() as u64, "{verified:?}");
    let deleted = DeletionResult::from_cbor(&peer.call("delete_object", object_args(&address)).unwrap()).unwrap();
    assert!(deleted.deleted && deleted.backend_id == "local");
    let absent = DeletionResult::from_cbor(&peer.call("delete_object", object_args(&address)).unwrap()).unwrap();
    assert!(!absent.deleted);
    peer.healthy();
    assert_eq!(temporaries(&daemon), 0);
}

#[test]
fn errors_carry_the_cores_codes_and_messages_and_leave_the_connection_usable() {
    let daemon = Daemon::start("");
    let mut peer = daemon.connect();
    let missing = format!("blake3:{}", "ab".repeat(32));
    let err = peer.call("verify_object", object_args(&missing)).unwrap_err();
    assert_eq!(err.code, "NOT_FOUND");
    assert_eq!(err.message, format!("no object {missing} in backend 'local'"));
    let err = peer.call("verify_object", object_args("blake3:xyz")).unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        ("INVALID_ADDRESS", "invalid content address \"blake3:xyz\": expected 64 lowercase hex digits")
    );
    let err = peer.serve(serve_args(&missing, None)).unwrap_err();
    assert_eq!(err.code, "NOT_FOUND");
    let stored = IngestResult::from_cbor(&peer.ingest(b"ten bytes!", cbor::map(vec![])).unwrap()).unwrap();
    let err = peer.serve(serve_args(&stored.primary_digest.to_string(), Some((4, 11)))).unwrap_err();
    assert_eq!(err.code, "INVALID_RANGE");
    assert!(err.message.contains("[4, 11)"), "{}", err.message);
    let err = peer.call("scrub_everything", no_args()).unwrap_err();
    assert_eq!(err.code, "INVALID_ARGUMENT");
    assert!(err.message.contains("\"scrub_everything\""), "{}", err.message);
    let err = peer.call("verify_object", cbor::map(vec![("adress", cbor::text(&missing))])).unwrap_err();
    assert_eq!(err.code, "INVALID_ARGUMENT");
    assert!(err.message.contains("\"address\""), "{}", err.message);
    let hints = cbor::map(vec![("backend_id", cbor::text("elsewhere"))]);
    let err = peer.ingest(b"x", cbor::map(vec![("hints", hints)])).unwrap_err();
    assert_eq!((err.code.as_str(), err.message.as_str()), ("UNKNOWN_BACKEND", "unknown backend \"elsewhere\""));
    let expect = cbor::map(vec![("size_bytes", cbor::unsigned(3))]);
    let err = peer.ingest(b"four", cbor::map(vec![("expect", expect)])).unwrap_err();
    assert_eq!(err.code, "INTEGRITY_MISMATCH");
    let err = peer.call("ingest_stream", cbor::map(vec![])).unwrap_err();
    assert!(err.code == "INVALID_ARGUMENT" && err.message.contains("OPEN"), "{err:?}");
    peer.healthy();
    assert_eq!(temporaries(&daemon), 0);
}

#[test]
fn a_paused_serve_stalls_only_its_own_call() {
    let daemon = Daemon::start("");
    let mut peer = daemon.connect();
    let bytes = pseudo_random(4 * WINDOW, 2);
    let stored = IngestResult::from_cbor(&peer.ingest(&bytes, cbor::map(vec![])).unwrap()).unwrap();
    let serve = peer.request("serve_object", serve_args(&stored.primary_digest.to_string(), None), 0);
    // Without WINDOW from us the serve sends its first window and waits; other calls go on. The
    // serve's frames may come at any point among the other calls' answers.
    let mut received = 0;
    let mut healths = 0;
    let mut health = peer.request("backend_health", no_args(), 0);
    while healths < 6 {
        let frame = peer.recv().unwrap();
        if serve_progress(&frame, serve, &mut received) {
            continue;
        }
        assert_eq!((frame.kind, frame.stream_id), (Kind::Response, health), "unexpected {frame:?}");
        healths += 1;
        health = peer.request("backend_health", no_args(), 0);
    }
    assert!(received <= WINDOW, "{received} bytes sent beyond the window");
    // Credit for the rest lets the serve finish.
    peer.send(Frame::new(Kind::Window, serve, 0, (bytes.len() as u32).to_be_bytes().to_vec()));
    loop {
        let frame = peer.recv().unwrap();
        if frame.kind == Kind::Response && frame.stream_id == health {
            continue;
        }
        assert!(serve_progress(&frame, serve, &mut received), "unexpected {frame:?}");
        if frame.kind == Kind::Data && frame.has(END) {
            break;
        }
    }
    assert_eq!(received, bytes.len());
}

/// Counts a serve's DATA into `received`; `false` for a frame of another call. Its RESPONSE
/// says more is coming.
fn serve_progress(frame: &Frame, serve: u32, received: &mut usize) -> bool {
    if frame.stream_id != serve {
        return false;
    }
    match frame.kind {
        Kind::Response => assert!(frame.has(artifactstore_daemon::frame::MORE), "{frame:?}"),
        Kind::Data => *received += frame.payload.len(),
        _ => panic!("unexpected {frame:?}"),
    }
    true
}

#[test]
fn cancel_ends_an_ingest_storing_nothing_and_a_serve_at_once() {
    let daemon = Daemon::start("");
    let mut peer = daemon.connect();
    let bytes = pseudo_random(WINDOW / 2, 3);
    let ingest = peer.request("ingest_stream", cbor::map(vec![]), OPEN);
    peer.send(Frame::new(Kind::Data, ingest, 0, bytes.clone()));
    peer.send(Frame::new(Kind::Cancel, ingest, 0, Vec::new()));
    // A straggler after CANCEL is dropped, not a violation.
    peer.send(Frame::new(Kind::Data, ingest, END, Vec::new()));
    let err = peer.outcome(ingest).unwrap_err();
    assert_eq!(err.code, "ABORTED");
    let address = format!("blake3:{}", blake3::hash(&bytes).to_hex());
    assert_eq!(peer.call("verify_object", object_args(&address)).unwrap_err().code, "NOT_FOUND");
    assert_eq!(temporaries(&daemon), 0);

    let big = pseudo_random(3 * WINDOW, 4);
    let stored = IngestResult::from_cbor(&peer.ingest(&big, cbor::map(vec![])).unwrap()).unwrap();
    let serve = peer.request("serve_object", serve_args(&stored.primary_digest.to_string(), None), 0);
    assert!(peer.outcome(serve).is_ok());
    peer.send(Frame::new(Kind::Cancel, serve, 0, Vec::new()));
    let last = std::iter::from_fn(|| peer.recv()).find(|frame| frame.kind != Kind::Data).unwrap();
    assert_eq!(last.kind, Kind::Error);
    assert_eq!(artifactstore_daemon::message::ErrorBody::from_cbor(&last.payload).unwrap().code, "ABORTED");
    peer.healthy();
}

#[test]
fn calls_beyond_max_calls_are_refused_one_by_one() {
    let daemon = Daemon::start(r#""limits": {"maxCalls": 2}"#);
    let mut peer = daemon.connect();
    assert_eq!(peer.hello.as_ref().unwrap().max_calls, 2);
    let first = peer.request("ingest_stream", cbor::map(vec![]), OPEN);
    let second = peer.request("ingest_stream", cbor::map(vec![]), OPEN);
    let err = peer.call("backend_health", no_args()).unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        ("BACKEND_UNAVAILABLE", "too many calls at once on one connection (2)")
    );
    for id in [first, second] {
        peer.send(Frame::new(Kind::Data, id, END, b"x".to_vec()));
        assert!(peer.outcome(id).is_ok());
    }
    peer.healthy();
}
