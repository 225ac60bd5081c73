//! Peers and daemons that die mid-call, against the real binary: a client gone mid-ingest or
//! mid-serve costs the daemon nothing (no object, no temporary file, descriptors back to where they
//! were), and a daemon killed mid-ingest restarts on its stale socket with every object intact.

mod support;

use std::time::{Duration, Instant};

use artifactstore_core::wire::cbor;
use artifactstore_core::wire::Wire;
use artifactstore_core::IngestResult;
use artifactstore_daemon::frame::{Frame, Kind, OPEN};
use support::{object_args, pseudo_random, Daemon, WINDOW};

fn temporaries(daemon: &Daemon) -> usize {
    std::fs::read_dir(daemon.store().join("tmp")).map_or(0, |dir| dir.count())
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client that starts an ingest and a serve and vanishes, as when its process is killed.
fn client_gone_mid_call(daemon: &Daemon, keeper: &mut support::Peer, address: &str, round: u64) {
    let partial = pseudo_random(WINDOW / 2 + round as usize * 1000, 100 + round);
    let mut ingesting = daemon.connect();
    let ingest = ingesting.request("ingest_stream", cbor::map(vec![]), OPEN);
    ingesting.send(Frame::new(Kind::Data, ingest, 0, partial.clone()));
    let mut serving = daemon.connect();
    serving.request("serve_object", object_args(address), 0);
    assert_eq!(serving.recv().unwrap().kind, Kind::Response);
    drop(ingesting);
    drop(serving);
    let lost = format!("blake3:{}", blake3::hash(&partial).to_hex());
    assert_eq!(keeper.call("verify_object", object_args(&lost)).unwrap_err().code, "NOT_FOUND");
}

#[test]
fn clients_gone_mid_ingest_and_mid_serve_cost_the_daemon_nothing() {
    let daemon = Daemon::start("");
    let mut keeper = daemon.connect();
    let big = pseudo_random(4 * WINDOW, 11);
    let stored = IngestResult::from_cbor(&keeper.ingest(&big, cbor::map(vec![])).unwrap()).unwrap();
    let address = stored.primary_digest.to_string();
    keeper.healthy();
    let descriptors = daemon.open_descriptors();
    (0..20).for_each(|round| client_gone_mid_call(&daemon, &mut keeper, &address, round));
    eventually("no temporary file left", || temporaries(&daemon) == 0);
    eventually("descriptors back", || daemon.open_descriptors() <= descriptors);
    // The allocator keeps some of what the first twenty used; twenty more must not add to it
    // what they held (over 4 MiB each: 80 MiB if none of it were released).
    let settled = daemon.rss_kib();
    (20..40).for_each(|round| client_gone_mid_call(&daemon, &mut keeper, &address, round));
    eventually("descriptors back again", || daemon.open_descriptors() <= descriptors);
    let grown = daemon.rss_kib().saturating_sub(settled);
    assert!(grown < 24 * 1024, "RSS grew by {grown} KiB over twenty more clients gone mid-call");
    eventually("no temporary file left again", || temporaries(&daemon) == 0);
    keeper.healthy();
}

#[test]
fn a_daemon_killed_mid_ingest_restarts_on_its_stale_socket_with_every_object_intact() {
    let mut daemon = Daemon::start("");
    let mut peer = daemon.connect();
    let kept = pseudo_random(2 * WINDOW, 21);
    let stored = IngestResult::from_cbor(&peer.ingest(&kept, cbor::map(vec![])).unwrap()).unwrap();
    let ingest = peer.request("ingest_stream", cbor::map(vec![]), OPEN);
    peer.send(Frame::new(Kind::Data, ingest, 0, pseudo_random(WINDOW, 22)));
    peer.healthy();
    daemon.signal(libc::SIGKILL);
    daemon.wait_exit(Duration::from_secs(5));
    assert!(peer.recv().is_none(), "the connection outlived the daemon");
    assert!(daemon.socket.exists(), "SIGKILL leaves the socket file behind");

    let dir = std::mem::replace(&mut daemon.dir, tempfile::tempdir().unwrap());
    let restarted = Daemon::spawn_in(dir, "");
    let mut peer = restarted.connect();
    let verified = artifactstore_core::VerifyResult::from_cbor(
        &peer.call("verify_object", object_args(&stored.primary_digest.to_string())).unwrap(),
    )
    .unwrap();
    assert!(verified.verified, "{verified:?}");
    assert_eq!(temporaries(&restarted), 0);
}
