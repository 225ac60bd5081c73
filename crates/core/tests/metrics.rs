//! The plane's figures after known traffic: calls by operation and outcome, bytes in and out,
//! calls in flight, and the backends' health, as the text format says them.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use artifactstore_core::wire::{cbor, Wire};
use artifactstore_core::{Bytes, DataPlane, Expectations, IngestRequest, ServeRequest, StatRequest};

mod support;

async fn open(root: &std::path::Path, metrics: bool) -> DataPlane {
    let mut config = support::fs_config(root);
    config.metrics = metrics;
    DataPlane::open(config).await.unwrap()
}

/// The value of the sample `name{labels}` (labels as the text format writes them, in order).
fn sample(text: &str, series: &str) -> f64 {
    let line = text.lines().find(|line| line.split_once(' ').is_some_and(|(name, _)| name == series));
    let line = line.unwrap_or_else(|| panic!("no sample {series} in\n{text}"));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

#[tokio::test]
async fn calls_bytes_and_health_are_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path(), true).await;
    let stored = plane.ingest_bytes(Bytes::from_static(b"four"), IngestRequest::default()).await.unwrap();
    plane.ingest_bytes_blocking(Bytes::from_static(b"and six"), IngestRequest::default()).unwrap();
    let wrong =
        IngestRequest { expect: Expectations { size_bytes: Some(1), ..Default::default() }, ..Default::default() };
    assert!(plane.ingest_bytes(Bytes::from_static(b"xyz"), wrong).await.is_err());
    let file = dir.path().join("source");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    plane.ingest_file(file, IngestRequest::default(), Arc::new(AtomicBool::new(false))).await.unwrap();

    let mut served = plane.serve(&ServeRequest::range(stored.primary_digest, 1, 3)).await.unwrap();
    while served.reader.next_chunk().await.unwrap().is_some() {}
    let stat = StatRequest::from(stored.sha256_digest).to_cbor();
    artifactstore_core::dispatch::call(&plane, "stat_object", &stat).await.unwrap();
    let absent = StatRequest::from(
        plane.ingest_bytes(Bytes::from_static(b"gone"), IngestRequest::default()).await.unwrap().primary_digest,
    );
    plane.delete(&absent.address.into()).await.unwrap();
    let error = artifactstore_core::dispatch::call(&plane, "stat_object", &absent.to_cbor()).await.unwrap_err();
    assert_eq!(error.code(), "NOT_FOUND");

    let text = plane.metrics().await.unwrap();
    let via_call = artifactstore_core::dispatch::call(&plane, "metrics", &cbor::map(Vec::new())).await.unwrap();
    let cbor::Value::Text(via_call) = cbor::decode(&via_call).unwrap().value else { panic!("metrics is text") };
    assert!(via_call.contains("# TYPE artifactstore_calls_total counter"), "{via_call}");
    assert_eq!(sample(&text, r#"artifactstore_calls_total{code="OK",operation="ingest_stream"}"#), 3.0);
    assert_eq!(sample(&text, r#"artifactstore_calls_total{code="INTEGRITY_MISMATCH",operation="ingest_stream"}"#), 1.0);
    assert_eq!(sample(&text, r#"artifactstore_calls_total{code="OK",operation="ingest_file"}"#), 1.0);
    assert_eq!(sample(&text, r#"artifactstore_calls_total{code="OK",operation="serve_object"}"#), 1.0);
    assert_eq!(sample(&text, r#"artifactstore_calls_total{code="OK",operation="stat_object"}"#), 1.0);
    assert_eq!(sample(&text, r#"artifactstore_calls_total{code="NOT_FOUND",operation="stat_object"}"#), 1.0);
    // delete() was called directly, not through a front end's dispatch: not a call of the plane's.
    assert_eq!(sample(&text, r#"artifactstore_calls_total{code="OK",operation="delete_object"}"#), 0.0);
    assert_eq!(sample(&text, r#"artifactstore_call_duration_seconds_count{operation="ingest_stream"}"#), 4.0);
    assert_eq!(sample(&text, r#"artifactstore_calls_in_flight{operation="ingest_stream"}"#), 0.0);
    assert_eq!(
        sample(&text, r#"artifactstore_ingested_bytes_total{backend="local"}"#),
        (4 + 7 + 3 + 100_000 + 4) as f64
    );
    assert_eq!(sample(&text, r#"artifactstore_served_bytes_total{backend="local"}"#), 2.0);
    assert_eq!(sample(&text, r#"artifactstore_backend_up{backend="local",kind="fs"}"#), 1.0);
    assert!(sample(&text, r#"artifactstore_backend_free_bytes{backend="local"}"#) > 0.0);
    assert!(!text.contains(r#"operation="metrics""#), "reading the figures is not counted");
}

#[tokio::test]
async fn an_ingest_dropped_unfinished_counts_as_aborted_and_leaves_nothing_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path(), true).await;
    let ingest = plane.begin_ingest(IngestRequest::default()).unwrap();
    assert!(ingest.write(Bytes::from_static(b"half")).await);
    let during = plane.metrics().await.unwrap();
    assert_eq!(sample(&during, r#"artifactstore_calls_in_flight{operation="ingest_stream"}"#), 1.0);
    ingest.abort().await;
    let after = plane.metrics().await.unwrap();
    assert_eq!(sample(&after, r#"artifactstore_calls_in_flight{operation="ingest_stream"}"#), 0.0);
    assert_eq!(sample(&after, r#"artifactstore_calls_total{code="ABORTED",operation="ingest_stream"}"#), 1.0);
    assert_eq!(sample(&after, r#"artifactstore_ingested_bytes_total{backend="local"}"#), 4.0);
}

#[tokio::test]
async fn a_plane_opened_with_metrics_off_counts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open(dir.path(), false).await;
    plane.ingest_bytes(Bytes::from_static(b"quiet"), IngestRequest::default()).await.unwrap();
    assert_eq!(plane.metrics().await.unwrap(), "");
}
