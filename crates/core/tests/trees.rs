//! Trees on the fs backend, through the data plane: what ingests write beside their objects is
//! bao-tree's post-order outboard (16 KiB groups), and a tree left without its object is swept when
//! the store is opened.

mod support;

use artifactstore_core::{
    Bytes, ContentAddress, DeleteRequest, HashAlgorithm, IngestHints, IngestRequest, ServeRequest,
};
use bao_tree::io::outboard::PostOrderMemOutboard;
use bao_tree::BlockSize;

fn content(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 11) as u8).collect()
}

fn tree_path(root: &std::path::Path, address: &ContentAddress) -> std::path::PathBuf {
    let hex = address.hex();
    root.join(format!("trees/{}/{}/{hex}.obao4", address.algorithm, &hex[0..2]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_write_bao_trees_outboard_beside_objects_of_more_than_one_group() {
    let root = tempfile::tempdir().unwrap();
    let plane = support::open_fs(root.path()).await;
    for (len, seed) in
        [(16 * 1024, 1), (16 * 1024 + 1, 2), (1 << 20, 3), ((1 << 20) + 7, 4), (3 * (1 << 20) + 12345, 5)]
    {
        let bytes = content(len, seed);
        let expected = PostOrderMemOutboard::create(&bytes, BlockSize::from_chunk_log(4));
        let streamed = plane.begin_ingest(IngestRequest::default()).unwrap();
        for chunk in bytes.chunks(100_000) {
            assert!(streamed.write(Bytes::copy_from_slice(chunk)).await);
        }
        let stored = streamed.finish().await.unwrap();
        assert_eq!(stored.primary_digest.bytes, *expected.root.as_bytes());
        let tree = std::fs::read(tree_path(root.path(), &stored.primary_digest));
        match len <= 16 * 1024 {
            true => assert!(tree.is_err(), "an object of one group has no tree"),
            false => assert!(tree.unwrap() == expected.data, "the tree of {len} bytes"),
        }
        // A SHA-256-primary object's tree starts with its BLAKE3 root; the rest is the same.
        let hints = IngestHints { primary_algorithm: Some(HashAlgorithm::Sha256), ..Default::default() };
        let request = IngestRequest { hints, ..Default::default() };
        let sha256 = plane.ingest_bytes(Bytes::from(bytes.clone()), request).await.unwrap();
        if len > 16 * 1024 {
            let tree = std::fs::read(tree_path(root.path(), &sha256.primary_digest)).unwrap();
            assert_eq!(&tree[..32], expected.root.as_bytes());
            assert!(tree[32..] == expected.data[..]);
            assert!((tree.len() as f64) < 0.004 * len as f64 + 32.0, "{} bytes of tree for {len}", tree.len());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_without_its_object_is_swept_at_open_and_one_with_it_or_fresh_is_kept() {
    let root = tempfile::tempdir().unwrap();
    let plane = support::open_fs(root.path()).await;
    let kept = plane.ingest_bytes(Bytes::from(content(100_000, 7)), IngestRequest::default()).await.unwrap();
    let gone = plane.ingest_bytes(Bytes::from(content(100_000, 8)), IngestRequest::default()).await.unwrap();
    let orphan = tree_path(root.path(), &gone.primary_digest);
    let tree = std::fs::read(&orphan).unwrap();
    plane.delete(&DeleteRequest::from(gone.primary_digest)).await.unwrap();
    assert!(!orphan.exists(), "a delete removes the tree");
    plane.close();
    drop(plane);
    // What a crash between linking the tree and linking the object leaves, a while ago; and a tree
    // just written, whose ingest (in another process, say) has not linked its object yet.
    std::fs::write(&orphan, &tree).unwrap();
    let a_while_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options().write(true).open(&orphan).unwrap().set_modified(a_while_ago).unwrap();
    let in_flight = tree_path(root.path(), &ContentAddress::new(HashAlgorithm::Blake3, [7; 32]));
    std::fs::create_dir_all(in_flight.parent().unwrap()).unwrap();
    std::fs::write(&in_flight, &tree).unwrap();
    let plane = support::open_fs(root.path()).await;
    assert!(!orphan.exists(), "swept at open");
    assert!(in_flight.exists(), "a tree younger than a minute is spared");
    assert!(tree_path(root.path(), &kept.primary_digest).exists());
    let served = plane.serve(&ServeRequest::from(kept.primary_digest)).await.unwrap();
    assert_eq!(served.head.size_bytes, 100_000);
}
