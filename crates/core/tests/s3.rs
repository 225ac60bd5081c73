//! The S3 backend against a real S3 server: versitygw, started by `scripts/s3-server.mjs` for each
//! test. A server that cannot start fails the test with the reason; nothing here is skipped.

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use artifactstore_core::{
    BackendOptions, Bytes, ContentAddress, DataPlane, DeleteRequest, Error, Expectations, FindMissingRequest,
    IngestHints, IngestRequest, IngestResult, ListRequest, ObjectReader, PlaneConfig, ServeRequest, StatRequest,
    VerifyRequest,
};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::Digest as _;

const MIB: usize = 1 << 20;
const PREFIX: &str = "cas/";

#[derive(Clone, Debug)]
struct ServerConfig {
    endpoint: String,
    region: String,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
}

/// A versitygw server, stopped (and its data removed) when dropped.
struct S3Server {
    node: Child,
    config: ServerConfig,
}

impl S3Server {
    fn start() -> S3Server {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/s3-server.mjs");
        let stderr = tempfile::tempfile().expect("a temporary file for the server's stderr");
        let mut command = Command::new("node");
        command.arg(script).arg("start").stdout(Stdio::piped()).stderr(stderr.try_clone().unwrap());
        // If this test thread dies without dropping the server, the server goes too.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut node = command.spawn().unwrap_or_else(|e| panic!("cannot run `node {script} start`: {e}"));
        let mut line = String::new();
        BufReader::new(node.stdout.take().unwrap()).read_line(&mut line).expect("reading the server's config");
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            let status = node.wait().ok();
            let mut output = String::new();
            let mut stderr = stderr;
            use std::io::Seek;
            stderr.seek(std::io::SeekFrom::Start(0)).unwrap();
            stderr.read_to_string(&mut output).unwrap();
            panic!("the S3 server did not start ({status:?}); stdout: {line:?}; stderr:\n{output}")
        });
        let field = |name: &str| json[name].as_str().unwrap_or_else(|| panic!("no {name} in {line}")).to_owned();
        let config = ServerConfig {
            endpoint: field("endpoint"),
            region: field("region"),
            bucket: field("bucket"),
            access_key_id: field("accessKeyId"),
            secret_access_key: field("secretAccessKey"),
        };
        S3Server { node, config }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the script then stops versitygw and removes its data directory.
        unsafe { libc::kill(self.node.id() as i32, libc::SIGTERM) };
        let _ = self.node.wait();
    }
}

/// Runs `test` on a multi-threaded runtime against a fresh server.
fn with_server<F, Fut>(test: F)
where
    F: FnOnce(ServerConfig) -> Fut,
    Fut: Future<Output = ()>,
{
    let server = S3Server::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(test(server.config.clone()));
    drop(runtime);
    drop(server);
}

fn backend_options(config: &ServerConfig) -> BackendOptions {
    BackendOptions {
        id: Some("bucket".into()),
        kind: Some("s3".into()),
        bucket: Some(config.bucket.clone()),
        prefix: Some(PREFIX.into()),
        endpoint: Some(config.endpoint.clone()),
        region: Some(config.region.clone()),
        access_key_id: Some(config.access_key_id.clone()),
        secret_access_key: Some(config.secret_access_key.clone()),
        ..Default::default()
    }
}

async fn open_plane(options: BackendOptions) -> DataPlane {
    DataPlane::open(PlaneConfig::new(vec![options], None).unwrap()).await.unwrap()
}

/// Direct access to the bucket, around the data plane.
fn raw_bucket(config: &ServerConfig) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(&config.endpoint)
        .with_allow_http(true)
        .with_region(&config.region)
        .with_bucket_name(&config.bucket)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(&config.secret_access_key)
        .build()
        .unwrap()
}

async fn keys_under(bucket: &AmazonS3, prefix: &str) -> Vec<String> {
    let listing: Vec<_> = bucket.list(Some(&Path::from(prefix))).try_collect().await.unwrap();
    listing.into_iter().map(|meta| meta.location.to_string()).collect()
}

/// Bytes that differ at every offset that matters: a misplaced range or part shows.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).wrapping_add(seed as u32).to_le_bytes()[1]).collect()
}

/// Streams `bytes` into an ingest in 1 MiB chunks, as a caller would.
async fn ingest_streaming(plane: &DataPlane, bytes: &[u8], options: IngestRequest) -> Result<IngestResult, Error> {
    let ingest = plane.begin_ingest(options)?;
    for chunk in bytes.chunks(MIB) {
        if !ingest.write(Bytes::copy_from_slice(chunk)).await {
            break;
        }
    }
    ingest.finish().await
}

async fn read_all(mut reader: Box<dyn ObjectReader>) -> Vec<u8> {
    let mut bytes = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        assert!(!chunk.is_empty() && chunk.len() <= MIB, "chunks are 1 byte to 1 MiB, got {}", chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    assert_eq!(bytes.len() as u64, reader.size_bytes());
    bytes
}

fn serve_request(address: &ContentAddress, range: Option<(u64, u64)>) -> ServeRequest {
    match range {
        Some((start, end)) => ServeRequest::range(*address, start, end),
        None => ServeRequest::from(*address),
    }
}

async fn serve(plane: &DataPlane, address: &ContentAddress, range: Option<(u64, u64)>) -> Vec<u8> {
    read_all(plane.serve(&serve_request(address, range)).await.unwrap().reader).await
}

fn code<T>(result: Result<T, Error>) -> (&'static str, String) {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => (e.code(), e.to_string()),
    }
}

#[test]
fn small_objects_are_put_once_and_served_in_ranges() {
    with_server(|config| async move {
        let plane = open_plane(backend_options(&config)).await;
        let bytes = content(300 * 1024, 1);
        let stored = plane.ingest_bytes(Bytes::from(bytes.clone()), IngestRequest::default()).await.unwrap();
        let address = stored.primary_digest;
        let hex = address.hex();
        assert_eq!(stored.receipt.locator, format!("{PREFIX}objects/blake3/{}/{}/{hex}", &hex[0..2], &hex[2..4]));
        assert_eq!((stored.size_bytes, stored.receipt.deduplicated), (bytes.len() as u64, false));
        assert_eq!(serve(&plane, &address, None).await, bytes);

        let again = ingest_streaming(&plane, &bytes, IngestRequest::default()).await.unwrap();
        assert!(again.receipt.deduplicated, "the same content again is deduplicated");
        assert_eq!(again.receipt.locator, stored.receipt.locator);

        assert_eq!(serve(&plane, &address, Some((1000, 200_000))).await, &bytes[1000..200_000]);
        assert_eq!(serve(&plane, &address, Some((5, 5))).await, b"");
        let whole = plane.serve(&serve_request(&address, Some((0, bytes.len() as u64)))).await.unwrap();
        assert_eq!((whole.head.size_bytes, whole.head.total_size_bytes), (bytes.len() as u64, bytes.len() as u64));
        let (code_, message) = code(plane.serve(&serve_request(&address, Some((10, bytes.len() as u64 + 1)))).await);
        assert_eq!(code_, "INVALID_RANGE", "{message}");

        let empty = plane.ingest_bytes(Bytes::new(), IngestRequest::default()).await.unwrap();
        assert_eq!(serve(&plane, &empty.primary_digest, None).await, b"");
        assert!(plane.verify(&VerifyRequest::from(empty.primary_digest)).await.unwrap().verified);

        let bucket = raw_bucket(&config);
        assert_eq!(keys_under(&bucket, &format!("{PREFIX}staging")).await, Vec::<String>::new());
    });
}

#[test]
fn large_objects_go_by_multipart_upload_and_deduplicate() {
    with_server(|config| async move {
        let plane = open_plane(backend_options(&config)).await;
        let bytes = content(2 * 8 * MIB + 12_345, 2);
        // No size hint: the writer switches to multipart once a part's worth is buffered.
        let stored = ingest_streaming(&plane, &bytes, IngestRequest::default()).await.unwrap();
        assert!(!stored.receipt.deduplicated);
        let address = stored.primary_digest;
        assert_eq!(serve(&plane, &address, None).await, bytes, "the whole object, in order");
        let across_parts = (8 * MIB as u64 - 100, 16 * MIB as u64 + 5000);
        let range = &bytes[across_parts.0 as usize..across_parts.1 as usize];
        assert_eq!(serve(&plane, &address, Some(across_parts)).await, range);
        assert!(plane.verify(&VerifyRequest::from(address)).await.unwrap().verified);

        let hinted = IngestRequest {
            hints: IngestHints { size_hint: Some(bytes.len() as u64), ..Default::default() },
            ..Default::default()
        };
        let again = ingest_streaming(&plane, &bytes, hinted).await.unwrap();
        assert!(again.receipt.deduplicated, "the same large content again is deduplicated");
        let whole = plane.ingest_bytes(Bytes::from(bytes.clone()), IngestRequest::default()).await.unwrap();
        assert!(whole.receipt.deduplicated, "and so it is when whole in memory");

        // One chunk larger than a part, as `ingest_bytes` hands it over.
        let other = content(9 * MIB, 3);
        let stored_other = plane.ingest_bytes(Bytes::from(other.clone()), IngestRequest::default()).await.unwrap();
        assert_eq!(serve(&plane, &stored_other.primary_digest, None).await, other);

        let bucket = raw_bucket(&config);
        assert_eq!(keys_under(&bucket, &format!("{PREFIX}staging")).await, Vec::<String>::new());
        let objects = keys_under(&bucket, &format!("{PREFIX}objects")).await;
        assert_eq!(objects.len(), 2, "{objects:?}");
    });
}

#[test]
fn concurrent_ingests_of_the_same_content_leave_one_intact_object() {
    with_server(|config| async move {
        let plane = Arc::new(open_plane(backend_options(&config)).await);
        for len in [100 * 1024, 17 * MIB] {
            let bytes = Arc::new(content(len, 4));
            let ingests = (0..3).map(|_| {
                let (plane, bytes) = (plane.clone(), bytes.clone());
                tokio::spawn(async move { ingest_streaming(&plane, &bytes, IngestRequest::default()).await })
            });
            let results: Vec<_> = futures::future::join_all(ingests).await;
            let results: Vec<_> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
            assert!(results.iter().all(|r| r.primary_digest == results[0].primary_digest));
            let verified = plane.verify(&VerifyRequest::from(results[0].primary_digest)).await.unwrap();
            assert!(verified.verified, "{verified:?}");
        }
        assert_eq!(keys_under(&raw_bucket(&config), &format!("{PREFIX}staging")).await, Vec::<String>::new());
    });
}

#[test]
fn verify_reports_corruption_and_a_new_ingest_repairs_it() {
    with_server(|config| async move {
        let plane = open_plane(backend_options(&config)).await;
        let bucket = raw_bucket(&config);
        for len in [4096, 10 * MIB] {
            let bytes = content(len, 5);
            let stored = plane.ingest_bytes(Bytes::from(bytes.clone()), IngestRequest::default()).await.unwrap();
            let address = stored.primary_digest;
            assert!(plane.verify(&VerifyRequest::from(address)).await.unwrap().verified);

            let mut corrupted = bytes.clone();
            corrupted[len / 2] ^= 0xff;
            let key = Path::from(stored.receipt.locator.as_str());
            bucket.put(&key, Bytes::from(corrupted).into()).await.unwrap();
            let result = plane.verify(&VerifyRequest::from(address)).await.unwrap();
            assert!(!result.verified);
            assert_eq!(result.actual_size_bytes, len as u64);
            assert_ne!(result.actual_primary_digest, address);
            assert!(result.mismatch.is_some());

            // A truncated copy has the wrong size, so the next ingest of the content replaces it.
            bucket.put(&key, Bytes::from(bytes[..len / 2].to_vec()).into()).await.unwrap();
            let repaired = plane.ingest_bytes(Bytes::from(bytes.clone()), IngestRequest::default()).await.unwrap();
            assert!(!repaired.receipt.deduplicated);
            assert!(plane.verify(&VerifyRequest::from(address)).await.unwrap().verified);
        }
        let missing: ContentAddress = format!("blake3:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(code(plane.verify(&VerifyRequest::from(missing)).await).0, "NOT_FOUND");
        assert_eq!(code(plane.serve(&serve_request(&missing, None)).await).0, "NOT_FOUND");
        assert_eq!(code(plane.serve(&serve_request(&missing, Some((0, 1)))).await).0, "NOT_FOUND");
    });
}

#[test]
fn deleting_twice_reports_the_object_gone() {
    with_server(|config| async move {
        let plane = open_plane(backend_options(&config)).await;
        for len in [1000, 9 * MIB] {
            let stored = plane.ingest_bytes(Bytes::from(content(len, 6)), IngestRequest::default()).await.unwrap();
            let address = stored.primary_digest;
            let first = plane.delete(&DeleteRequest::from(address)).await.unwrap();
            assert!(first.deleted);
            assert_eq!(first.backend_id, "bucket");
            assert!(!plane.delete(&DeleteRequest::from(address)).await.unwrap().deleted);
            assert_eq!(code(plane.serve(&serve_request(&address, None)).await).0, "NOT_FOUND");
        }
    });
}

#[test]
fn failed_and_abandoned_ingests_leave_nothing_behind() {
    with_server(|config| async move {
        let plane = open_plane(backend_options(&config)).await;
        let bucket = raw_bucket(&config);
        let bytes = content(20 * MIB, 7);

        let ingest = plane.begin_ingest(IngestRequest::default()).unwrap();
        for chunk in bytes.chunks(MIB) {
            assert!(ingest.write(Bytes::copy_from_slice(chunk)).await);
        }
        ingest.abort().await;

        for size_hint in [None, Some(bytes.len() as u64)] {
            let expect = Expectations::parse(None, Some(&"00".repeat(32)), None).unwrap();
            let options = IngestRequest { expect, hints: IngestHints { size_hint, ..Default::default() } };
            let (code_, message) = code(ingest_streaming(&plane, &bytes, options).await);
            assert_eq!(code_, "INTEGRITY_MISMATCH", "{message}");
        }
        let small = IngestRequest { expect: Expectations::parse(Some(10), None, None).unwrap(), ..Default::default() };
        assert_eq!(code(plane.ingest_bytes(Bytes::from(content(100, 8)), small).await).0, "INTEGRITY_MISMATCH");

        // Only the open's mark that the (empty) bucket is catalogued may be there.
        let mut keys = keys_under(&bucket, PREFIX).await;
        keys.retain(|key| *key != format!("{PREFIX}index/complete"));
        assert_eq!(keys, Vec::<String>::new(), "no staging data, no object");
    });
}

#[test]
fn health_probes_the_bucket_and_the_sweep_spares_fresh_staging_data() {
    with_server(|config| async move {
        let plane = open_plane(backend_options(&config)).await;
        let status = plane.health().await.unwrap();
        assert!(status.healthy, "{status:?}");
        let health = &status.backends[0];
        assert_eq!((health.backend_id.as_str(), health.kind.as_str()), ("bucket", "s3"));
        assert!(health.latency_micros > 0 && health.detail.is_none(), "{health:?}");

        let bucket = raw_bucket(&config);
        let in_progress = format!("{PREFIX}staging/in-progress");
        bucket.put(&Path::from(in_progress.as_str()), Bytes::from_static(b"x").into()).await.unwrap();
        let backend = plane.backend(None).unwrap();
        assert_eq!(backend.sweep().await.unwrap(), 0, "a fresh staging object may belong to a live ingest");
        assert_eq!(keys_under(&bucket, &format!("{PREFIX}staging")).await, vec![in_progress]);
    });
}

/// Every operation against a backend that cannot serve fails with BACKEND_UNAVAILABLE naming the
/// cause, and health reports it unhealthy with the same cause.
async fn assert_unavailable(options: BackendOptions, cause: &str) {
    let plane = open_plane(options).await;
    let status = plane.health().await.unwrap();
    assert!(!status.healthy);
    let detail = status.backends[0].detail.clone().expect("an unhealthy backend says why");
    assert!(detail.contains(cause), "health detail {detail:?} should name {cause:?}");

    let address: ContentAddress = format!("blake3:{}", "cd".repeat(32)).parse().unwrap();
    let outcomes = [
        ("ingest small", code(plane.ingest_bytes(Bytes::from_static(b"hello"), IngestRequest::default()).await)),
        ("ingest large", code(plane.ingest_bytes(Bytes::from(content(9 * MIB, 9)), IngestRequest::default()).await)),
        ("serve", code(plane.serve(&serve_request(&address, None)).await)),
        ("serve a range", code(plane.serve(&serve_request(&address, Some((0, 1)))).await)),
        ("verify", code(plane.verify(&VerifyRequest::from(address)).await)),
        ("delete", code(plane.delete(&DeleteRequest::from(address)).await)),
    ];
    for (operation, (code_, message)) in outcomes {
        assert_eq!(code_, "BACKEND_UNAVAILABLE", "{operation}: {message}");
        assert!(message.contains(cause), "{operation}: {message:?} should name {cause:?}");
    }
}

#[test]
fn wrong_credentials_and_a_missing_bucket_make_the_backend_unavailable() {
    with_server(|config| async move {
        let wrong_secret =
            BackendOptions { secret_access_key: Some("not-the-secret".into()), ..backend_options(&config) };
        assert_unavailable(wrong_secret, "SignatureDoesNotMatch").await;
        let unknown_key = BackendOptions { access_key_id: Some("nobody".into()), ..backend_options(&config) };
        // versitygw says XAdminUserNotFound where AWS says InvalidAccessKeyId; both name the key.
        assert_unavailable(unknown_key, "access key").await;
        let no_bucket = BackendOptions { bucket: Some("no-such-bucket".into()), ..backend_options(&config) };
        assert_unavailable(no_bucket, "NoSuchBucket").await;
    });
}

#[test]
fn an_unreachable_endpoint_makes_the_backend_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = ServerConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        region: "us-east-1".into(),
        bucket: "artifacts".into(),
        access_key_id: "key".into(),
        secret_access_key: "secret".into(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let started = std::time::Instant::now();
        assert_unavailable(backend_options(&config), "Connection refused").await;
        assert!(started.elapsed() < Duration::from_secs(60), "failures come promptly: {:?}", started.elapsed());
    });
}

#[test]
fn the_catalogue_finds_objects_by_either_digest_and_deletes_only_what_was_not_touched() {
    with_server(|config| async move {
        let plane = open_plane(backend_options(&config)).await;
        // One PUT (SHA-256 in the object's metadata) and one multipart upload (in its record).
        for len in [1000, 9 * MIB] {
            let bytes = content(len, 9);
            let stored = plane.ingest_bytes(Bytes::from(bytes.clone()), IngestRequest::default()).await.unwrap();
            let by_blake3 = plane.stat(&StatRequest::from(stored.primary_digest)).await.unwrap();
            let by_sha256 = plane.stat(&StatRequest::from(stored.sha256_digest)).await.unwrap();
            assert_eq!(by_blake3, by_sha256, "{len} bytes");
            assert_eq!(by_blake3.sha256_digest, stored.sha256_digest);
            assert_eq!(by_blake3.size_bytes, len as u64);
            assert_eq!(by_blake3.locator, stored.receipt.locator);
            assert_eq!(serve(&plane, &stored.sha256_digest, Some((1, 11))).await, &bytes[1..11]);

            let since = std::time::SystemTime::now();
            let again = ingest_streaming(&plane, &bytes, IngestRequest::default()).await.unwrap();
            assert!(again.receipt.deduplicated);
            let unless =
                DeleteRequest { unless_touched_since: Some(since), ..DeleteRequest::from(stored.sha256_digest) };
            let kept = plane.delete(&unless).await.unwrap();
            assert!(!kept.deleted && kept.touched_at.unwrap() >= since, "{kept:?}");
            assert!(plane.verify(&VerifyRequest::from(stored.primary_digest)).await.unwrap().verified);

            let later = std::time::SystemTime::now() + std::time::Duration::from_millis(1);
            let unless =
                DeleteRequest { unless_touched_since: Some(later), ..DeleteRequest::from(stored.primary_digest) };
            assert!(plane.delete(&unless).await.unwrap().deleted);
            assert_eq!(code(plane.stat(&StatRequest::from(stored.sha256_digest)).await).0, "NOT_FOUND");
            let missing =
                FindMissingRequest { addresses: vec![stored.sha256_digest, stored.primary_digest], backend_id: None };
            assert_eq!(plane.find_missing(&missing).await.unwrap().len(), 2);
        }
        let bucket = raw_bucket(&config);
        assert_eq!(keys_under(&bucket, &format!("{PREFIX}deleting")).await, Vec::<String>::new());
    });
}

#[test]
fn a_bucket_written_before_the_catalogue_is_catalogued_and_its_objects_found_by_sha256() {
    with_server(|config| async move {
        // What the data plane wrote before the catalogue: objects under objects/, with no
        // metadata, no record, no index entry, no index/complete.
        let bucket = raw_bucket(&config);
        let mut expected = Vec::new();
        for (len, seed) in [(10, 1), (3000, 2), (70_000, 3)] {
            let bytes = content(len, seed);
            let blake3 = ContentAddress::parse(&format!("blake3:{}", blake3::hash(&bytes).to_hex())).unwrap();
            let sha256 =
                ContentAddress::parse(&format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))).unwrap();
            let hex = blake3.hex();
            let key = Path::from(format!("{PREFIX}objects/blake3/{}/{}/{hex}", &hex[0..2], &hex[2..4]));
            bucket.put(&key, Bytes::from(bytes.clone()).into()).await.unwrap();
            expected.push((blake3, sha256, bytes));
        }
        let plane = open_plane(backend_options(&config)).await;
        for (blake3, sha256, bytes) in &expected {
            let info = plane.stat(&StatRequest::from(*sha256)).await.unwrap();
            assert_eq!(info.content_address, *blake3);
            assert_eq!(info.sha256_digest.hex(), sha256.hex());
            assert_eq!(serve(&plane, sha256, None).await, *bytes);
        }
        let missing =
            FindMissingRequest { addresses: expected.iter().map(|(_, sha256, _)| *sha256).collect(), backend_id: None };
        assert_eq!(plane.find_missing(&missing).await.unwrap(), Vec::new());
        let index = keys_under(&bucket, &format!("{PREFIX}index/")).await;
        assert!(index.contains(&format!("{PREFIX}index/complete")), "{index:?}");
        assert_eq!(index.len(), expected.len() + 1, "one entry per object, and index/complete: {index:?}");
    });
}

#[test]
fn listing_pages_through_objects_in_address_order() {
    with_server(|config| async move {
        let plane = open_plane(backend_options(&config)).await;
        let mut expected = Vec::new();
        for i in 0..12u8 {
            let bytes = Bytes::from(format!("listed object {i}"));
            let stored = plane.ingest_bytes(bytes, IngestRequest::default()).await.unwrap();
            expected.push(stored.primary_digest.to_string());
        }
        expected.sort();
        let (mut listed, mut after) = (Vec::new(), None);
        loop {
            let page = plane.list(&ListRequest { after, limit: Some(5), ..Default::default() }).await.unwrap();
            listed.extend(page.objects.iter().map(|o| o.content_address.to_string()));
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(listed, expected);
    });
}

#[test]
fn an_ingest_racing_a_conditional_delete_leaves_the_object() {
    with_server(|config| async move {
        let plane = Arc::new(open_plane(backend_options(&config)).await);
        for round in 0..40u8 {
            let bytes = format!("raced object {round}").into_bytes();
            plane.ingest_bytes(Bytes::from(bytes.clone()), IngestRequest::default()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
            let since = std::time::SystemTime::now();
            let stored = plane.ingest_bytes(Bytes::from(bytes.clone()), IngestRequest::default());
            let deleting = {
                let plane = plane.clone();
                let address = artifactstore_core::hashing::digest_bytes(
                    artifactstore_core::HashAlgorithm::Blake3,
                    &Bytes::from(bytes.clone()),
                    MIB,
                )
                .primary;
                let request = DeleteRequest { unless_touched_since: Some(since), ..DeleteRequest::from(address) };
                tokio::spawn(async move { plane.delete(&request).await.unwrap() })
            };
            let stored = stored.await.unwrap();
            let deletion = deleting.await.unwrap();
            let verified = plane.verify(&VerifyRequest::from(stored.primary_digest)).await;
            assert!(verified.is_ok_and(|v| v.verified), "round {round}: {deletion:?}");
        }
    });
}

#[test]
fn a_tree_is_put_before_its_object_and_one_left_by_a_crash_before_the_commit_is_harmless() {
    use bao_tree::io::outboard::PostOrderMemOutboard;
    with_server(|config| async move {
        let plane = open_plane(backend_options(&config)).await;
        let raw = raw_bucket(&config);
        for (len, seed) in [(100 * 1024, 3u8), (5 * MIB + 7, 4)] {
            let bytes = content(len, seed);
            let expected = PostOrderMemOutboard::create(&bytes, bao_tree::BlockSize::from_chunk_log(4));
            let address = ContentAddress::new(artifactstore_core::HashAlgorithm::Blake3, *expected.root.as_bytes());
            let hex = address.hex();
            let tree_key = Path::from(format!("{PREFIX}trees/blake3/{}/{hex}.obao4", &hex[0..2]));
            // What a crash between the tree's PUT and the object's commit leaves: the tree alone.
            raw.put(&tree_key, expected.data.clone().into()).await.unwrap();
            assert_eq!(code(plane.serve(&serve_request(&address, None)).await).0, "NOT_FOUND");
            let stored = ingest_streaming(&plane, &bytes, IngestRequest::default()).await.unwrap();
            assert!(!stored.receipt.deduplicated);
            assert_eq!(stored.primary_digest, address);
            let tree = raw.get(&tree_key).await.unwrap().bytes().await.unwrap();
            assert_eq!(tree.len() as u64, expected.tree.outboard_size());
            assert!(tree[..] == expected.data[..], "the tree of {len} bytes is bao-tree's post-order outboard");
            assert_eq!(serve(&plane, &address, None).await, bytes);
            assert_eq!(serve(&plane, &address, Some((20_000, 70_000))).await, &bytes[20_000..70_000]);
            plane.delete(&DeleteRequest::from(address)).await.unwrap();
            assert!(raw.head(&tree_key).await.is_err(), "the tree goes with its object");
        }
    });
}

#[test]
fn a_committed_upload_has_the_tree_its_appends_kept() {
    use artifactstore_core::{AppendRequest, CommitUploadRequest};
    use bao_tree::io::outboard::PostOrderMemOutboard;
    with_server(|config| async move {
        let plane = open_plane(backend_options(&config)).await;
        let raw = raw_bucket(&config);
        let bytes = content(13 * MIB + 5, 9);
        let created = plane.create_upload(&IngestRequest::default()).await.unwrap();
        let cuts = [0, 1, 16385, 6 * MIB, 6 * MIB + 3, bytes.len()];
        for pair in cuts.windows(2) {
            let append = plane
                .begin_append(AppendRequest { upload_id: created.upload_id.clone(), offset: pair[0] as u64 })
                .await
                .unwrap();
            assert!(append.write(Bytes::copy_from_slice(&bytes[pair[0]..pair[1]])).await);
            append.finish().await.unwrap();
        }
        let commit = CommitUploadRequest { upload_id: created.upload_id.clone(), ..Default::default() };
        let committed = plane.commit_upload(&commit).await.unwrap();
        let expected = PostOrderMemOutboard::create(&bytes, bao_tree::BlockSize::from_chunk_log(4));
        let hex = committed.primary_digest.hex();
        let tree_key = Path::from(format!("{PREFIX}trees/blake3/{}/{hex}.obao4", &hex[0..2]));
        let tree = raw.get(&tree_key).await.unwrap().bytes().await.unwrap();
        assert!(tree[..] == expected.data[..], "the committed upload's tree is bao-tree's outboard");
        assert_eq!(
            serve(&plane, &committed.primary_digest, Some((5 * MIB as u64, 7 * MIB as u64))).await,
            &bytes[5 * MIB..7 * MIB]
        );
        assert!(keys_under(&raw, &format!("{PREFIX}uploads/")).await.is_empty(), "the upload's keys are gone");
    });
}
