//! The catalogue of the fs backend through `DataPlane` (SPEC Part 2, The catalogue): lookups by
//! either digest, touch times, listing order, conditional deletes racing ingests, and stores
//! written before the catalogue existed. (The same rules run over every plane and backend in the
//! ava suite.)

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use artifactstore_core::{
    Bytes, ContentAddress, DataPlane, DeleteRequest, Digest, FindMissingRequest, HashAlgorithm, IngestHints,
    IngestRequest, ListRequest, ScrubRequest, StatRequest, TouchRequest, VerifyRequest,
};

mod support;
use support::open_fs as open;

fn sha256_primary() -> IngestRequest {
    IngestRequest {
        hints: IngestHints { primary_algorithm: Some(HashAlgorithm::Sha256), ..Default::default() },
        ..Default::default()
    }
}

async fn ingest(plane: &DataPlane, bytes: &[u8]) -> artifactstore_core::IngestResult {
    plane.ingest_bytes(Bytes::copy_from_slice(bytes), IngestRequest::default()).await.unwrap()
}

#[tokio::test]
async fn objects_are_found_by_either_digest_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let stored = ingest(&plane, b"hello catalogue").await;
    let by_blake3 = plane.stat(&StatRequest::from(stored.primary_digest)).await.unwrap();
    let by_sha256 = plane.stat(&StatRequest::from(stored.sha256_digest)).await.unwrap();
    assert_eq!(by_blake3, by_sha256);
    assert_eq!(by_blake3.content_address, stored.primary_digest, "named by the primary address");
    assert_eq!(by_blake3.sha256_digest, stored.sha256_digest);
    assert_eq!(by_blake3.size_bytes, 15);
    assert_eq!(by_blake3.locator, stored.receipt.locator);
    assert_eq!(by_blake3.touched_at, by_blake3.stored_at.max(by_blake3.touched_at));
    let verified = plane.verify(&VerifyRequest::from(stored.sha256_digest)).await.unwrap();
    assert!(verified.verified);
    assert_eq!(verified.content_address, stored.primary_digest);

    let sha_primary = plane.ingest_bytes(Bytes::from_static(b"sha first"), sha256_primary()).await.unwrap();
    let info = plane.stat(&StatRequest::from(sha_primary.primary_digest)).await.unwrap();
    assert_eq!(info.content_address.algorithm, HashAlgorithm::Sha256);
    assert_eq!(info.sha256_digest, sha_primary.primary_digest);

    let missing = Digest::new(HashAlgorithm::Sha256, [7; 32]);
    assert_eq!(plane.stat(&StatRequest::from(missing)).await.unwrap_err().code(), "NOT_FOUND");
}

#[tokio::test]
async fn find_missing_keeps_the_order_and_the_duplicates_given() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let a = ingest(&plane, b"a").await;
    let absent = [Digest::new(HashAlgorithm::Blake3, [1; 32]), Digest::new(HashAlgorithm::Sha256, [2; 32])];
    let asked = vec![absent[1], a.primary_digest, absent[0], a.sha256_digest, absent[1]];
    let request = FindMissingRequest { addresses: asked, backend_id: None };
    assert_eq!(plane.find_missing(&request).await.unwrap(), vec![absent[1], absent[0], absent[1]]);
}

#[tokio::test]
async fn a_touch_or_a_deduplicated_ingest_moves_the_touch_time_and_not_the_store_time() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let stored = ingest(&plane, b"touch me").await;
    let first = plane.stat(&StatRequest::from(stored.primary_digest)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let touched = plane.touch(&TouchRequest::from(stored.sha256_digest)).await.unwrap();
    assert!(touched.touched_at > first.touched_at);
    assert_eq!(touched.stored_at, first.stored_at);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = ingest(&plane, b"touch me").await;
    assert!(again.receipt.deduplicated);
    let after = plane.stat(&StatRequest::from(stored.primary_digest)).await.unwrap();
    assert!(after.touched_at > touched.touched_at);
    assert_eq!(again.receipt.stored_at, first.stored_at, "the receipt says when it was first stored");
    let absent = Digest::new(HashAlgorithm::Blake3, [3; 32]);
    assert_eq!(plane.touch(&TouchRequest::from(absent)).await.unwrap_err().code(), "NOT_FOUND");
}

#[tokio::test]
async fn listing_is_ascending_by_address_text_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let mut expected = Vec::new();
    for i in 0..40u32 {
        expected.push(ingest(&plane, &i.to_le_bytes()).await.primary_digest.to_string());
    }
    for i in 0..5u32 {
        let r = plane.ingest_bytes(Bytes::copy_from_slice(&i.to_be_bytes()), sha256_primary()).await.unwrap();
        expected.push(r.primary_digest.to_string());
    }
    expected.sort();
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = plane.list(&ListRequest { after, limit: Some(7), ..Default::default() }).await.unwrap();
        assert!(page.objects.len() <= 7);
        listed.extend(page.objects.iter().map(|o| o.content_address.to_string()));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, expected);
    let from: ContentAddress = expected[10].parse().unwrap();
    let page = plane.list(&ListRequest { after: Some(from), limit: Some(3), ..Default::default() }).await.unwrap();
    let names: Vec<_> = page.objects.iter().map(|o| o.content_address.to_string()).collect();
    assert_eq!(names, expected[11..14]);
    let untouched = ListRequest { touched_before: Some(SystemTime::UNIX_EPOCH), ..Default::default() };
    assert!(plane.list(&untouched).await.unwrap().objects.is_empty());
}

#[tokio::test]
async fn an_object_from_before_the_catalogue_whose_mtime_is_before_1970_was_stored_at_the_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let stored = ingest(&plane, b"from the sixties").await;
    drop(plane);
    // No attribute, as before the catalogue, and an mtime someone set to 1960.
    let path = dir.path().join(&stored.receipt.locator);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let sixties = std::fs::FileTimes::new().set_modified(SystemTime::UNIX_EPOCH - Duration::from_secs(300_000_000));
    std::fs::File::options().write(true).open(&path).unwrap().set_times(sixties).unwrap();
    let plane = open(dir.path()).await;
    let info = plane.stat(&StatRequest::from(stored.primary_digest)).await.unwrap();
    assert_eq!(artifactstore_core::results::rfc3339_millis(info.stored_at), "1970-01-01T00:00:00.000Z");
    assert_eq!(info.touched_at, info.stored_at);
    let page = plane.list(&ListRequest::default()).await.unwrap();
    assert_eq!(page.objects, vec![info]);
}

#[tokio::test]
async fn a_conditional_delete_keeps_what_was_touched_since_and_deletes_what_was_not() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let stored = ingest(&plane, b"maybe garbage").await;
    let before_touch = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    ingest(&plane, b"maybe garbage").await;
    let request =
        DeleteRequest { unless_touched_since: Some(before_touch), ..DeleteRequest::from(stored.sha256_digest) };
    let kept = plane.delete(&request).await.unwrap();
    assert!(!kept.deleted);
    assert!(kept.touched_at.unwrap() >= before_touch);
    assert_eq!(kept.content_address, stored.primary_digest);
    let later =
        DeleteRequest { unless_touched_since: Some(SystemTime::now()), ..DeleteRequest::from(stored.primary_digest) };
    let deleted = plane.delete(&later).await.unwrap();
    assert!(deleted.deleted && deleted.touched_at.is_none(), "{deleted:?} at {:?}", later.unless_touched_since);
    assert_eq!(plane.stat(&StatRequest::from(stored.sha256_digest)).await.unwrap_err().code(), "NOT_FOUND");
    assert!(!plane.delete(&later).await.unwrap().deleted, "absent");
}

/// The race of SPEC "Deletion that cannot race": an ingest of content already present and a
/// delete with `unlessTouchedSince` taken just before the ingest, at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ingest_racing_a_conditional_delete_always_leaves_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let plane = Arc::new(open(dir.path()).await);
    let rounds = 1000;
    let mut deleted_rounds = 0;
    for round in 0..rounds {
        let bytes = format!("round {round}").into_bytes();
        let stored = ingest(&plane, &bytes).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        let since = SystemTime::now();
        let deleting = {
            let plane = plane.clone();
            let request =
                DeleteRequest { unless_touched_since: Some(since), ..DeleteRequest::from(stored.primary_digest) };
            tokio::spawn(async move { plane.delete(&request).await.unwrap() })
        };
        let again = ingest(&plane, &bytes).await;
        let deletion = deleting.await.unwrap();
        deleted_rounds += usize::from(deletion.deleted);
        let verified = plane.verify(&VerifyRequest::from(again.sha256_digest)).await;
        assert!(verified.is_ok_and(|v| v.verified), "round {round}: {deletion:?} {again:?}");
    }
    println!("{rounds} rounds, the delete won {deleted_rounds} of them (and the ingest stored anew)");
}

#[tokio::test]
async fn a_store_written_before_the_catalogue_is_indexed_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let stored = ingest(&plane, b"an old object").await;
    plane.close();
    drop(plane);
    // What a store of the previous layout has: the object, no attribute, no index.
    let path = dir.path().join(&stored.receipt.locator);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, bytes).unwrap();
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let plane = open(dir.path()).await;
    let info = plane.stat(&StatRequest::from(stored.sha256_digest)).await.unwrap();
    assert_eq!(info.content_address, stored.primary_digest);
    assert_eq!(info.sha256_digest, stored.sha256_digest);
}

#[tokio::test]
async fn scrub_reports_each_kind_of_corruption_once_and_quarantines_it() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let mut damaged = Vec::new();
    for (i, damage) in ["flip", "truncate", "directory", "symlink"].into_iter().enumerate() {
        let bytes = vec![i as u8 + 1; 3000];
        let stored = ingest(&plane, &bytes).await;
        let path = dir.path().join(&stored.receipt.locator);
        match damage {
            "flip" => {
                let mut changed = bytes.clone();
                changed[1234] ^= 1;
                std::fs::write(&path, changed).unwrap();
            }
            "truncate" => std::fs::write(&path, &bytes[..100]).unwrap(),
            "directory" => {
                std::fs::remove_file(&path).unwrap();
                std::fs::create_dir(&path).unwrap();
            }
            _ => {
                std::fs::remove_file(&path).unwrap();
                std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
            }
        }
        damaged.push((stored, bytes));
    }
    for i in 0..20u32 {
        ingest(&plane, &i.to_be_bytes()).await;
    }
    let page = plane.scrub(&ScrubRequest { quarantine: true, ..Default::default() }).await.unwrap();
    assert_eq!(page.checked_objects, 24);
    assert_eq!(page.quarantined, 4);
    assert_eq!(page.next_after, None, "one page holds the whole store");
    let mut corrupt: Vec<_> = page.corrupt.iter().map(|v| v.content_address).collect();
    corrupt.sort_by_key(ToString::to_string);
    let mut expected: Vec<_> = damaged.iter().map(|(stored, _)| stored.primary_digest).collect();
    expected.sort_by_key(ToString::to_string);
    assert_eq!(corrupt, expected);
    for (stored, bytes) in &damaged {
        assert_eq!(plane.stat(&StatRequest::from(stored.primary_digest)).await.unwrap_err().code(), "NOT_FOUND");
        let locator = stored.receipt.locator.replacen("objects/", "quarantine/", 1);
        assert!(std::fs::symlink_metadata(dir.path().join(locator)).is_ok(), "kept in quarantine/");
        let healed = ingest(&plane, bytes).await;
        assert!(!healed.receipt.deduplicated);
        assert!(plane.verify(&VerifyRequest::from(stored.sha256_digest)).await.unwrap().verified);
    }
    let again = plane.scrub(&ScrubRequest::default()).await.unwrap();
    assert!(again.corrupt.is_empty() && again.checked_objects == 24);
}
