//! Resumable uploads on the fs backend through `DataPlane` (SPEC Part 2, Resumable uploads): each
//! append by a plane of its own (as another process would), digests equal to one ingest of the same
//! bytes, the lock, the offset rule and ids that name nothing. (The same rules run over every plane
//! and backend in the ava suite.)

use artifactstore_core::{
    AppendRequest, Bytes, CommitUploadRequest, DataPlane, HashAlgorithm, IngestHints, IngestRequest, UploadRequest,
};

mod support;
use support::open_fs as open;

fn input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn append(plane: &DataPlane, upload_id: &str, offset: u64, bytes: &[u8]) -> artifactstore_core::UploadStatus {
    let append = plane.begin_append(AppendRequest { upload_id: upload_id.into(), offset }).await.unwrap();
    for piece in bytes.chunks(300_000) {
        assert!(append.write(Bytes::copy_from_slice(piece)).await);
    }
    append.finish().await.unwrap()
}

#[tokio::test]
async fn an_upload_appended_by_many_planes_commits_to_the_digests_of_one_ingest() {
    let dir = tempfile::tempdir().unwrap();
    for primary in [HashAlgorithm::Blake3, HashAlgorithm::Sha256] {
        let bytes = input(3 * 1024 * 1024 + 17);
        let request = IngestRequest {
            hints: IngestHints { primary_algorithm: Some(primary), ..Default::default() },
            ..Default::default()
        };
        let created = open(dir.path()).await.create_upload(&request).await.unwrap();
        let cuts = [0, 0, 1, 1023, 1024, 1025, 16383, 16384, 16385, 1 << 20, (1 << 20) + 1, bytes.len()];
        for pair in cuts.windows(2) {
            let plane = open(dir.path()).await;
            let status = append(&plane, &created.upload_id, pair[0] as u64, &bytes[pair[0]..pair[1]]).await;
            assert_eq!(status.offset, pair[1] as u64);
        }
        let plane = open(dir.path()).await;
        let commit = CommitUploadRequest { upload_id: created.upload_id.clone(), ..Default::default() };
        let committed = plane.commit_upload(&commit).await.unwrap();
        // The appends kept the object's tree as they went: the commit stores bao-tree's outboard.
        let expected =
            bao_tree::io::outboard::PostOrderMemOutboard::create(&bytes, bao_tree::BlockSize::from_chunk_log(4));
        let address = committed.primary_digest;
        let hex = address.hex();
        let tree =
            std::fs::read(dir.path().join(format!("trees/{}/{}/{hex}.obao4", address.algorithm, &hex[0..2]))).unwrap();
        let header = if primary == HashAlgorithm::Blake3 { 0 } else { 32 };
        assert_eq!(&tree[..header], &expected.root.as_bytes()[..header]);
        assert!(tree[header..] == expected.data[..], "the committed upload's tree is bao-tree's outboard");
        let ingested = plane.ingest_bytes(Bytes::from(bytes), request).await.unwrap();
        assert_eq!(committed.primary_digest, ingested.primary_digest);
        assert_eq!(committed.sha256_digest, ingested.sha256_digest);
        assert!(ingested.receipt.deduplicated, "the commit stored the object");
        let gone = plane.upload_status(&UploadRequest { upload_id: created.upload_id }).await.unwrap_err();
        assert_eq!(gone.code(), "NOT_FOUND");
    }
}

#[tokio::test]
async fn a_second_append_conflicts_and_a_wrong_offset_names_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let other = open(dir.path()).await;
    let created = plane.create_upload(&IngestRequest::default()).await.unwrap();
    let id = created.upload_id.clone();
    let first = plane.begin_append(AppendRequest { upload_id: id.clone(), offset: 0 }).await.unwrap();
    assert!(first.write(Bytes::from_static(b"hello")).await);
    let second = other.begin_append(AppendRequest { upload_id: id.clone(), offset: 0 }).await.err().unwrap();
    assert_eq!(second.code(), "CONFLICT");
    assert_eq!(first.finish().await.unwrap().offset, 5);
    let wrong = other.begin_append(AppendRequest { upload_id: id.clone(), offset: 3 }).await.err().unwrap();
    assert_eq!(wrong.code(), "INVALID_RANGE");
    assert!(wrong.to_string().contains("which is 5"), "{wrong}");
    for bad in ["../../etc", "", "0123456789abcdef0123456789abcdeF", "0123456789abcdef0123456789abcdef"] {
        let error = plane.upload_status(&UploadRequest { upload_id: bad.into() }).await.unwrap_err();
        assert_eq!(error.code(), "NOT_FOUND", "{bad:?}");
    }
}

#[tokio::test]
async fn a_commit_that_died_after_linking_the_object_is_finished_by_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let bytes = input(5000);
    let created = plane.create_upload(&IngestRequest::default()).await.unwrap();
    let id = created.upload_id.clone();
    append(&plane, &id, 0, &bytes).await;
    // What a commit killed between its link and the upload's removal leaves: the data file linked
    // under objects/ (the documented layout).
    let hex = blake3::hash(&bytes).to_hex().to_string();
    let object = dir.path().join(format!("objects/blake3/{}/{}/{hex}", &hex[0..2], &hex[2..4]));
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    std::fs::hard_link(dir.path().join("uploads").join(&id).join("data"), &object).unwrap();

    let refused = plane.begin_append(AppendRequest { upload_id: id.clone(), offset: 5000 }).await.unwrap();
    assert!(refused.write(Bytes::from_static(b"more")).await);
    assert_eq!(refused.finish().await.unwrap_err().code(), "NOT_FOUND", "no byte is added to an object");
    assert_eq!(std::fs::read(&object).unwrap(), bytes);

    let committed = plane.commit_upload(&CommitUploadRequest { upload_id: id.clone(), ..Default::default() }).await;
    let committed = committed.unwrap();
    assert_eq!(committed.primary_digest.hex(), hex);
    assert!(committed.receipt.deduplicated);
    assert_eq!(plane.upload_status(&UploadRequest { upload_id: id }).await.unwrap_err().code(), "NOT_FOUND");
    assert_eq!(std::fs::read(&object).unwrap(), bytes);
}

#[tokio::test]
async fn a_record_whose_tree_length_does_not_fit_its_tree_is_refused_not_trusted() {
    use artifactstore_core::upload::UploadRecord;
    use artifactstore_core::wire::Wire;
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path()).await;
    let created = plane.create_upload(&IngestRequest::default()).await.unwrap();
    append(&plane, &created.upload_id, 0, &input(100_000)).await;
    let path = dir.path().join("uploads").join(&created.upload_id).join("record");
    let mut record = UploadRecord::from_cbor(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        record.tree_len,
        3 * 64,
        "100,000 bytes close 6 groups; 3 merges so far, the others wait for more groups"
    );
    // A damaged (or hostile) record asking for 2^60 bytes of tree: an error, never an allocation.
    record.tree_len = 1 << 60;
    std::fs::write(&path, record.to_cbor()).unwrap();
    let commit = CommitUploadRequest { upload_id: created.upload_id.clone(), ..Default::default() };
    let refused = plane.commit_upload(&commit).await.unwrap_err();
    assert_eq!(refused.code(), "IO", "{refused}");
    assert!(refused.to_string().contains("does not fit its offset 100000"), "{refused}");
}
