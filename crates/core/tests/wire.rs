//! The daemon's CBOR (`artifactstore_core::wire`) against the SPEC:
//! - every golden vector of `../shared/cbor-vectors.json` encodes to exactly its bytes and decodes back;
//! - every type round-trips with and without its optional fields, integers at every width;
//! - strict decoding rejects everything outside the deterministic form, naming the byte offset;
//! - for the same values, the bytes equal those of the TypeScript `encodeCbor` (run with `node`; the
//!   package must be built in `dist/`), and its `decodeCbor` reads Rust's bytes back to the value.

use std::fmt::Debug;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use artifactstore_core::wire::Wire;
use artifactstore_core::{
    BackendHealth, BackendKind, BackendStatus, DeletionResult, Digest, Expectations, HashAlgorithm, IngestHints,
    IngestResult, ObjectInfo, ScrubProgress, ScrubReport, StorageReceipt, UploadStatus, VerifyResult,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

const BLAKE3_ABC: &str = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";
const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden_cases() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cbor-vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let vectors: Value = serde_json::from_str(&text).unwrap();
    vectors["cases"].as_array().expect("a \"cases\" array").clone()
}

// ---------------------------------------------------------------------------------------------
// The SPEC's JSON form of each type (camelCase, digests as {algorithm, hex}), read into Rust.

trait FromJson: Wire + PartialEq + Debug {
    fn from_json(v: &Value) -> Self;
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_owned()
}

fn optional_text(v: &Value, key: &str) -> Option<String> {
    v.get(key).map(|_| text(v, key))
}

fn number(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn optional_number(v: &Value, key: &str) -> Option<u64> {
    v.get(key).map(|_| number(v, key))
}

fn time(v: &Value, key: &str) -> SystemTime {
    humantime::parse_rfc3339(&text(v, key)).unwrap_or_else(|e| panic!("{key} in {v}: {e}"))
}

fn optional_time(v: &Value, key: &str) -> Option<SystemTime> {
    v.get(key).map(|_| time(v, key))
}

fn boolean(v: &Value, key: &str) -> bool {
    v[key].as_bool().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn hex32(hex: &str) -> [u8; 32] {
    hex::decode(hex).unwrap().try_into().unwrap()
}

impl FromJson for Digest {
    fn from_json(v: &Value) -> Self {
        Digest::parse(&format!("{}:{}", text(v, "algorithm"), text(v, "hex"))).unwrap()
    }
}

impl FromJson for IngestHints {
    fn from_json(v: &Value) -> Self {
        IngestHints {
            size_hint: optional_number(v, "sizeHint"),
            primary_algorithm: optional_text(v, "primaryAlgorithm").map(|a| a.parse().unwrap()),
            backend_id: optional_text(v, "backendId"),
        }
    }
}

impl FromJson for Expectations {
    fn from_json(v: &Value) -> Self {
        Expectations {
            size_bytes: optional_number(v, "sizeBytes"),
            sha256: optional_text(v, "sha256").map(|h| hex32(&h)),
            primary: optional_text(v, "primary").map(|h| hex32(&h)),
        }
    }
}

impl FromJson for StorageReceipt {
    fn from_json(v: &Value) -> Self {
        StorageReceipt {
            backend_id: text(v, "backendId"),
            locator: text(v, "locator"),
            size_bytes: number(v, "sizeBytes"),
            stored_at: time(v, "storedAt"),
            deduplicated: boolean(v, "deduplicated"),
        }
    }
}

impl FromJson for IngestResult {
    fn from_json(v: &Value) -> Self {
        IngestResult {
            primary_digest: Digest::from_json(&v["primaryDigest"]),
            sha256_digest: Digest::from_json(&v["sha256Digest"]),
            size_bytes: number(v, "sizeBytes"),
            receipt: StorageReceipt::from_json(&v["receipt"]),
        }
    }
}

impl FromJson for VerifyResult {
    fn from_json(v: &Value) -> Self {
        VerifyResult {
            content_address: Digest::from_json(&v["contentAddress"]),
            verified: boolean(v, "verified"),
            actual_primary_digest: Digest::from_json(&v["actualPrimaryDigest"]),
            actual_sha256_digest: Digest::from_json(&v["actualSha256Digest"]),
            actual_size_bytes: number(v, "actualSizeBytes"),
            mismatch: optional_text(v, "mismatch"),
        }
    }
}

impl FromJson for DeletionResult {
    fn from_json(v: &Value) -> Self {
        DeletionResult {
            content_address: Digest::from_json(&v["contentAddress"]),
            backend_id: text(v, "backendId"),
            deleted: boolean(v, "deleted"),
            touched_at: optional_time(v, "touchedAt"),
        }
    }
}

impl FromJson for ObjectInfo {
    fn from_json(v: &Value) -> Self {
        ObjectInfo {
            content_address: Digest::from_json(&v["contentAddress"]),
            sha256_digest: Digest::from_json(&v["sha256Digest"]),
            size_bytes: number(v, "sizeBytes"),
            backend_id: text(v, "backendId"),
            locator: text(v, "locator"),
            stored_at: time(v, "storedAt"),
            touched_at: time(v, "touchedAt"),
        }
    }
}

impl FromJson for UploadStatus {
    fn from_json(v: &Value) -> Self {
        UploadStatus {
            upload_id: text(v, "uploadId"),
            backend_id: text(v, "backendId"),
            offset: number(v, "offset"),
            created_at: time(v, "createdAt"),
            updated_at: time(v, "updatedAt"),
        }
    }
}

impl FromJson for ScrubProgress {
    fn from_json(v: &Value) -> Self {
        ScrubProgress {
            checked_objects: number(v, "checkedObjects"),
            checked_bytes: number(v, "checkedBytes"),
            corrupt_objects: number(v, "corruptObjects"),
            last_address: optional_text(v, "lastAddress"),
        }
    }
}

impl FromJson for ScrubReport {
    fn from_json(v: &Value) -> Self {
        ScrubReport {
            backend_id: text(v, "backendId"),
            checked_objects: number(v, "checkedObjects"),
            checked_bytes: number(v, "checkedBytes"),
            corrupt: v["corrupt"].as_array().unwrap().iter().map(VerifyResult::from_json).collect(),
            quarantined: number(v, "quarantined"),
            complete: boolean(v, "complete"),
            resume_after: optional_text(v, "resumeAfter"),
            started_at: time(v, "startedAt"),
            finished_at: time(v, "finishedAt"),
        }
    }
}

impl FromJson for BackendHealth {
    fn from_json(v: &Value) -> Self {
        BackendHealth {
            backend_id: text(v, "backendId"),
            kind: if text(v, "kind") == "fs" { BackendKind::Fs } else { BackendKind::S3 },
            healthy: boolean(v, "healthy"),
            latency_micros: number(v, "latencyMicros"),
            detail: optional_text(v, "detail"),
            free_bytes: optional_number(v, "freeBytes"),
            total_bytes: optional_number(v, "totalBytes"),
        }
    }
}

impl FromJson for BackendStatus {
    fn from_json(v: &Value) -> Self {
        let backends = v["backends"].as_array().unwrap().iter().map(BackendHealth::from_json).collect();
        BackendStatus { healthy: boolean(v, "healthy"), backends }
    }
}

/// Runs `$check::<T>($args)` for the type a golden case (or a cross-check value) is named after.
macro_rules! by_type_name {
    ($name:expr, $check:ident ( $($arg:expr),* )) => {{
        let name: &str = $name;
        if name == "digest" || name.starts_with("digest,") { $check::<Digest>($($arg),*) }
        else if name.starts_with("ingest hints") { $check::<IngestHints>($($arg),*) }
        else if name.starts_with("ingest expectations") { $check::<Expectations>($($arg),*) }
        else if name.starts_with("ingest result") { $check::<IngestResult>($($arg),*) }
        else if name.starts_with("storage receipt") { $check::<StorageReceipt>($($arg),*) }
        else if name.starts_with("verify result") { $check::<VerifyResult>($($arg),*) }
        else if name.starts_with("deletion result") { $check::<DeletionResult>($($arg),*) }
        else if name.starts_with("backend health") { $check::<BackendHealth>($($arg),*) }
        else if name.starts_with("backend status") { $check::<BackendStatus>($($arg),*) }
        else if name.starts_with("object info") { $check::<ObjectInfo>($($arg),*) }
        else if name.starts_with("upload status") { $check::<UploadStatus>($($arg),*) }
        else if name.starts_with("scrub progress") { $check::<ScrubProgress>($($arg),*) }
        else if name.starts_with("scrub report") { $check::<ScrubReport>($($arg),*) }
        else { panic!("no Rust type for the case {name:?}") }
    }};
}

// ---------------------------------------------------------------------------------------------
// Golden vectors

fn check_golden<T: FromJson>(name: &str, value: &Value, cbor_hex: &str) {
    let expected = T::from_json(value);
    assert_eq!(hex::encode(expected.to_cbor()), cbor_hex, "encoding of {name:?}");
    let decoded = T::from_cbor(&hex::decode(cbor_hex).unwrap()).unwrap_or_else(|e| panic!("{name:?}: {e}"));
    assert_eq!(decoded, expected, "decoding of {name:?}");
}

#[test]
fn every_golden_vector_encodes_to_its_bytes_and_decodes_back() {
    let cases = golden_cases();
    assert!(cases.len() >= 8, "expected the SPEC's golden cases, found {}", cases.len());
    for case in &cases {
        let (name, value, cbor) = (case["name"].as_str().unwrap(), &case["value"], case["cbor"].as_str().unwrap());
        by_type_name!(name, check_golden(name, value, cbor));
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips

fn round_trip<T: Wire + PartialEq + Debug>(value: T) -> Vec<u8> {
    let bytes = value.to_cbor();
    let decoded = T::from_cbor(&bytes).unwrap_or_else(|e| panic!("{value:?} does not decode: {e}"));
    assert_eq!(decoded, value);
    assert_eq!(decoded.to_cbor(), bytes, "re-encoding {value:?}");
    bytes
}

fn digest(algorithm: HashAlgorithm, hex: &str) -> Digest {
    Digest::new(algorithm, hex32(hex))
}

fn at_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

fn receipt(size_bytes: u64) -> StorageReceipt {
    StorageReceipt {
        backend_id: "local".into(),
        locator: format!("objects/blake3/64/37/{BLAKE3_ABC}"),
        size_bytes,
        stored_at: at_millis(1_795_493_196_123),
        deduplicated: false,
    }
}

fn health(detail: Option<&str>, free_bytes: Option<u64>, total_bytes: Option<u64>) -> BackendHealth {
    BackendHealth {
        backend_id: "bucket".into(),
        kind: BackendKind::S3,
        healthy: detail.is_none(),
        latency_micros: 1234,
        detail: detail.map(String::from),
        free_bytes,
        total_bytes,
    }
}

fn verify(mismatch: Option<&str>) -> VerifyResult {
    VerifyResult {
        content_address: digest(HashAlgorithm::Blake3, BLAKE3_ABC),
        verified: mismatch.is_none(),
        actual_primary_digest: digest(HashAlgorithm::Blake3, BLAKE3_ABC),
        actual_sha256_digest: digest(HashAlgorithm::Sha256, SHA256_ABC),
        actual_size_bytes: 3,
        mismatch: mismatch.map(String::from),
    }
}

#[test]
fn every_type_round_trips_with_and_without_its_optional_fields() {
    round_trip(digest(HashAlgorithm::Sha256, SHA256_ABC));
    round_trip(IngestHints::default());
    let hints = IngestHints {
        size_hint: Some(7),
        primary_algorithm: Some(HashAlgorithm::Blake3),
        backend_id: Some("bucket".into()),
    };
    round_trip(hints);
    round_trip(IngestHints { backend_id: Some("only".into()), ..IngestHints::default() });
    round_trip(Expectations::default());
    round_trip(Expectations { size_bytes: Some(3), sha256: Some(hex32(SHA256_ABC)), primary: Some(hex32(BLAKE3_ABC)) });
    round_trip(receipt(0));
    round_trip(StorageReceipt { deduplicated: true, stored_at: UNIX_EPOCH, ..receipt(u64::MAX) });
    let ingest = IngestResult {
        primary_digest: digest(HashAlgorithm::Sha256, SHA256_ABC),
        sha256_digest: digest(HashAlgorithm::Sha256, SHA256_ABC),
        size_bytes: 3,
        receipt: receipt(3),
    };
    round_trip(ingest);
    round_trip(verify(None));
    round_trip(verify(Some("size 0, expected digest differs — «é»")));
    let deletion = DeletionResult {
        content_address: digest(HashAlgorithm::Blake3, BLAKE3_ABC),
        backend_id: "".into(),
        deleted: false,
        touched_at: None,
    };
    round_trip(deletion.clone());
    round_trip(DeletionResult { touched_at: Some(at_millis(1_795_493_196_123)), ..deletion });
    round_trip(health(None, None, None));
    round_trip(health(Some("connection refused"), Some(1 << 40), Some(u64::MAX)));
    round_trip(BackendStatus { healthy: true, backends: vec![] });
    let backends = vec![health(None, Some(5), None), health(Some("down"), None, Some(6))];
    round_trip(BackendStatus { healthy: false, backends });
}

#[test]
fn absent_optional_fields_are_left_out_not_null() {
    assert_eq!(IngestHints::default().to_cbor(), [0xa0]);
    assert_eq!(Expectations::default().to_cbor(), [0xa0]);
    let bytes = health(None, None, None).to_cbor();
    assert_eq!(bytes[0], 0xa4, "four fields: backend_id, kind, healthy, latency_micros");
    assert!(!bytes.contains(&0xf6) && !bytes.contains(&0xf7), "no null or undefined");
    assert_eq!(verify(None).to_cbor()[0], 0xa5);
    assert_eq!(verify(Some("x")).to_cbor()[0], 0xa6);
}

fn size_hint_bytes(n: u64) -> String {
    let encoded = hex::encode(IngestHints { size_hint: Some(n), ..IngestHints::default() }.to_cbor());
    let prefix = format!("a169{}", hex::encode("size_hint"));
    encoded.strip_prefix(&prefix).unwrap_or_else(|| panic!("{encoded}")).to_owned()
}

#[test]
fn integers_take_the_shortest_form_at_every_width() {
    let cases: [(u64, &str); 12] = [
        (0, "00"),
        (23, "17"),
        (24, "1818"),
        (255, "18ff"),
        (256, "190100"),
        (65535, "19ffff"),
        (65536, "1a00010000"),
        (u32::MAX as u64, "1affffffff"),
        (1 << 32, "1b0000000100000000"),
        ((1 << 40) + 3, "1b0000010000000003"),
        ((1 << 53) - 1, "1b001fffffffffffff"),
        (u64::MAX, "1bffffffffffffffff"),
    ];
    for (n, expected) in cases {
        assert_eq!(size_hint_bytes(n), expected, "{n}");
        round_trip(IngestHints { size_hint: Some(n), ..IngestHints::default() });
    }
}

#[test]
fn a_size_above_2_pow_32_is_a_major_type_0_integer_with_an_8_byte_argument() {
    let size = (1u64 << 32) * 3 + 5;
    let bytes = round_trip(receipt(size));
    let key_and_value = [hex::encode([0x6a]), hex::encode("size_bytes"), format!("1b{size:016x}")].concat();
    assert!(hex::encode(&bytes).contains(&key_and_value), "{}", hex::encode(&bytes));
    assert_eq!(StorageReceipt::from_cbor(&bytes).unwrap().size_bytes, size);
}

#[test]
fn stored_at_travels_as_rfc3339_with_milliseconds() {
    let bytes = receipt(1).to_cbor();
    let stored_at = [hex::encode([0x78, 24]), hex::encode("2026-11-24T04:06:36.123Z")].concat();
    assert!(hex::encode(&bytes).contains(&stored_at), "{}", hex::encode(&bytes));
    let precise = StorageReceipt { stored_at: at_millis(1_000) + Duration::from_nanos(999_999), ..receipt(1) };
    let decoded = StorageReceipt::from_cbor(&precise.to_cbor()).unwrap();
    assert_eq!(decoded.stored_at, at_millis(1_000), "truncated to the millisecond");
}

// ---------------------------------------------------------------------------------------------
// Strict decoding

fn hex_of(parts: &[&str]) -> Vec<u8> {
    hex::decode(parts.concat()).unwrap()
}

fn golden_bytes(name: &str) -> String {
    let case = golden_cases().into_iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no case {name:?}"));
    case["cbor"].as_str().unwrap().to_owned()
}

fn assert_rejected<T: Wire + Debug>(bytes: &[u8], expected_message: &str) {
    let err = T::from_cbor(bytes).expect_err(&format!("{} must be rejected", hex::encode(bytes)));
    assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    let message = err.to_string();
    assert!(
        message.contains(expected_message),
        "{} gave {message:?}, expected {expected_message:?}",
        hex::encode(bytes)
    );
    assert!(message.contains("byte "), "the message names the position: {message}");
}

const SIZE_HINT_KEY: &str = "6973697a655f68696e74"; // text "size_hint"
const BACKEND_ID_KEY: &str = "6a6261636b656e645f6964"; // text "backend_id"

#[test]
fn syntax_outside_the_deterministic_form_is_rejected_with_its_position() {
    let cases: &[(&[&str], &str)] = &[
        (&[""], "unexpected end of input at byte 0"),
        (&["a1", SIZE_HINT_KEY], "unexpected end of input at byte 11"),
        (&["a1", SIZE_HINT_KEY, "1a0001"], "4 byte(s) needed at byte 12"),
        (&["a0", "00"], "1 trailing byte(s) after the value, at byte 1"),
        (&["bf", SIZE_HINT_KEY, "01", "ff"], "indefinite length at byte 0"),
        (&["a1", SIZE_HINT_KEY, "5f41014102ff"], "indefinite length at byte 11"),
        (&["a1", SIZE_HINT_KEY, "1805"], "5 at byte 11 is not in shortest form"),
        (&["a1", SIZE_HINT_KEY, "1900ff"], "255 at byte 11 is not in shortest form"),
        (&["a1", SIZE_HINT_KEY, "1a0000ffff"], "65535 at byte 11 is not in shortest form"),
        (&["a1", SIZE_HINT_KEY, "1b00000000ffffffff"], "4294967295 at byte 11 is not in shortest form"),
        (&["b80101", "01"], "1 at byte 0 is not in shortest form"),
        (&["a1", "7809", &SIZE_HINT_KEY[2..], "01"], "9 at byte 1 is not in shortest form"),
        (&["a2", BACKEND_ID_KEY, "6161", SIZE_HINT_KEY, "01"], "map key \"size_hint\" at byte 14 is out of order"),
        (&["a2", SIZE_HINT_KEY, "01", SIZE_HINT_KEY, "02"], "duplicate map key \"size_hint\" at byte 12"),
        (&["a1", SIZE_HINT_KEY, "f93c00"], "a float at byte 11 is not allowed"),
        (&["a1", SIZE_HINT_KEY, "fa3f800000"], "a float at byte 11 is not allowed"),
        (&["a1", SIZE_HINT_KEY, "fb3ff0000000000000"], "a float at byte 11 is not allowed"),
        (&["a1", SIZE_HINT_KEY, "f6"], "null at byte 11 is not allowed"),
        (&["a1", SIZE_HINT_KEY, "f7"], "undefined at byte 11 is not allowed"),
        (&["a1", SIZE_HINT_KEY, "f0"], "simple value (additional information 16) at byte 11"),
        (&["ff"], "a break outside an indefinite-length item at byte 0"),
        (&["a1", SIZE_HINT_KEY, "c24101"], "tag 2 at byte 11 is not allowed"),
        (&["c0", "74", &hex::encode("2013-03-21T20:04:00Z")], "tag 0 at byte 0 is not allowed"),
        (&["a1", SIZE_HINT_KEY, "20"], "negative integer at byte 11 is not allowed"),
        (&["1c"], "reserved additional information 28 at byte 0"),
        (&["a1", BACKEND_ID_KEY, "5affffffff00"], "4294967295 byte(s) needed at byte 17"),
        (&["a1", BACKEND_ID_KEY, "7b0000000100000000"], "4294967296 byte(s) needed at byte 21"),
        (&["9b0000000100000000"], "container at byte 0 declares more items than the 0 byte(s) left can hold"),
        (&["a5", "00000000"], "container at byte 0 declares more items than the 4 byte(s) left can hold"),
        (&["bbffffffffffffffff"], "container at byte 0 declares more items"),
        (&["a1", BACKEND_ID_KEY, "62c328"], "text string at byte 12 is not valid UTF-8"),
        (&["a1", BACKEND_ID_KEY, "63eda080"], "text string at byte 12 is not valid UTF-8"),
        (&["a10101"], "map key at byte 1 is not a text string"),
        (&["a1", "41", "61", "01"], "map key at byte 1 is not a text string"),
    ];
    for (parts, message) in cases {
        assert_rejected::<IngestHints>(&hex_of(parts), message);
    }
}

#[test]
fn nesting_deeper_than_64_containers_is_rejected_before_recursing() {
    let nested = |levels: usize| [vec![0x81; levels - 1], vec![0x80]].concat();
    assert_rejected::<BackendStatus>(&nested(65), "container at byte 64 is nested deeper than 64 levels");
    assert_rejected::<BackendStatus>(&nested(64), "BackendStatus at byte 0 must be a map, not an array");
    assert_rejected::<BackendStatus>(&vec![0x81; 100_000], "container at byte 64 is nested deeper than 64 levels");
}

fn assert_truncation_rejected<T: Wire + Debug>(bytes: &[u8]) {
    let err = T::from_cbor(bytes).expect_err(&format!("{} must be rejected", hex::encode(bytes)));
    let message = err.to_string();
    let names_the_end = message.contains("unexpected end of input at byte") || message.contains("declares more items");
    assert!(err.code() == "INVALID_ARGUMENT" && names_the_end, "{}: {message}", hex::encode(bytes));
}

#[test]
fn every_truncation_of_every_golden_vector_is_rejected() {
    for case in golden_cases() {
        let bytes = hex::decode(case["cbor"].as_str().unwrap()).unwrap();
        let name = case["name"].as_str().unwrap().to_owned();
        for len in 0..bytes.len() {
            by_type_name!(&name, assert_truncation_rejected(&bytes[..len]));
        }
    }
}

/// A short text string (< 256 bytes), as hex.
fn text_hex(s: &str) -> String {
    let head = if s.len() < 24 { format!("{:02x}", 0x60 + s.len()) } else { format!("78{:02x}", s.len()) };
    head + &hex::encode(s)
}

#[test]
fn values_outside_the_schema_are_rejected_with_their_field_and_position() {
    let deletion = golden_bytes("deletion result");
    let without_deleted = format!("a2{}", deletion.strip_prefix("a36764656c65746564f5").unwrap());
    let message = "DeletionResult (map at byte 0) lacks the field \"deleted\"";
    assert_rejected::<DeletionResult>(&hex_of(&[&without_deleted]), message);

    let unknown = ["a1", &text_hex("sizehint"), "01"];
    let message = "IngestHints has no field \"sizehint\" (its value is at byte 10)";
    assert_rejected::<IngestHints>(&hex_of(&unknown), message);
    let as_text = ["a1", SIZE_HINT_KEY, &text_hex("5")];
    let message = "IngestHints.size_hint at byte 11 must be an unsigned integer, not a text string";
    assert_rejected::<IngestHints>(&hex_of(&as_text), message);
    let algorithm = ["a1", &text_hex("primary_algorithm"), &text_hex("md5")];
    let message = "IngestHints.primary_algorithm at byte 19: \"md5\" is not \"blake3\" or \"sha256\"";
    assert_rejected::<IngestHints>(&hex_of(&algorithm), message);
    assert_rejected::<IngestHints>(&hex_of(&["80"]), "IngestHints at byte 0 must be a map, not an array");

    let short = ["a2", &text_hex("digest"), "581f", &BLAKE3_ABC[2..], &text_hex("algorithm"), &text_hex("blake3")];
    assert_rejected::<Digest>(&hex_of(&short), "Digest.digest at byte 8: 31 bytes, expected 32");
    let digest = golden_bytes("digest");
    let blake4 = digest.replacen(&text_hex("blake3"), &text_hex("blake4"), 1);
    let message = "Digest.algorithm at byte 52: \"blake4\" is not \"blake3\" or \"sha256\"";
    assert_rejected::<Digest>(&hex_of(&[&blake4]), message);
    let hex_key = digest.replacen(&text_hex("digest"), &text_hex("hexhex"), 1);
    assert_rejected::<Digest>(&hex_of(&[&hex_key]), "Digest (map at byte 0) lacks the field \"digest\"");

    let status = golden_bytes("backend status");
    let kind =
        status.replacen(&[text_hex("kind"), text_hex("fs")].concat(), &[text_hex("kind"), text_hex("ft")].concat(), 1);
    let message = "BackendStatus.backends[0].kind at byte 26: \"ft\" is not \"fs\" or \"s3\"";
    assert_rejected::<BackendStatus>(&hex_of(&[&kind]), message);
    let deduplicated = text_hex("deduplicated");
    let ingest = golden_bytes("ingest result").replacen(&format!("{deduplicated}f4"), &format!("{deduplicated}01"), 1);
    let message = "IngestResult.receipt.deduplicated at byte 183 must be a boolean, not an unsigned integer";
    assert_rejected::<IngestResult>(&hex_of(&[&ingest]), message);

    let expect_sha = ["a1", &text_hex("sha256"), &text_hex("abc")];
    let message = "IngestExpectations.sha256 at byte 8: \"abc\" is not 64 lowercase hex digits";
    assert_rejected::<Expectations>(&hex_of(&expect_sha), message);
    let upper = ["a1", &text_hex("sha256"), "7840", &hex::encode(SHA256_ABC.to_uppercase())];
    assert_rejected::<Expectations>(&hex_of(&upper), "is not 64 lowercase hex digits");
}

#[test]
fn stored_at_must_be_the_form_the_encoder_writes() {
    let golden = golden_bytes("storage receipt, size above 2^32");
    let stored_at = text_hex("2026-11-24T04:06:36.000Z");
    assert!(golden.contains(&stored_at));
    let others = [
        "2026-11-24T04:06:36Z",
        "2026-11-24T04:06:36.0000Z",
        "2026-11-24T04:06:36.000+00:00",
        "2026-13-24T04:06:36.000Z",
        "yesterday",
    ];
    for other in others {
        let bytes = hex_of(&[&golden.replacen(&stored_at, &text_hex(other), 1)]);
        let message =
            format!("StorageReceipt.stored_at at byte 106: {other:?} is not an RFC 3339 UTC time with milliseconds");
        assert_rejected::<StorageReceipt>(&bytes, &message);
    }
}

/// Decoding is the inverse of encoding: of any corrupted golden vector, what is accepted re-encodes
/// to exactly the same bytes (and nothing panics).
#[test]
fn whatever_decodes_re_encodes_to_the_same_bytes() {
    fn accepted_re_encodes<T: Wire>(bytes: &[u8]) -> bool {
        T::from_cbor(bytes).map_or(true, |value| value.to_cbor() == bytes)
    }
    let config = Config { cases: 512, failure_persistence: None, ..Config::default() };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, b"artifactstore-wire-mutations-001"));
    let cases = golden_cases();
    let corruptions = (0..cases.len(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4));
    runner
        .run(&corruptions, |(case, edits)| {
            let name = cases[case]["name"].as_str().unwrap();
            let mut bytes = hex::decode(cases[case]["cbor"].as_str().unwrap()).unwrap();
            for (index, byte) in edits {
                let i = index.index(bytes.len());
                bytes[i] = byte;
            }
            prop_assert!(by_type_name!(name, accepted_re_encodes(&bytes)), "{name}: {}", hex::encode(&bytes));
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Against the TypeScript codec

fn rust_bytes<T: FromJson>(value: &Value) -> Vec<u8> {
    T::from_json(value).to_cbor()
}

/// Runs the built package's `encodeCbor` on each value and `decodeCbor` on each of Rust's encodings.
fn typescript_codec(values: &[Value], rust_hex: &[String]) -> Value {
    let script = "import {encodeCbor, decodeCbor} from '@artifactstore/data-plane';
        const [values, rustHex] = JSON.parse(process.argv[1]);
        const decoded = rustHex.map((h) => decodeCbor(Buffer.from(h, 'hex')));
        const encoded = values.map((v) => encodeCbor(v).toString('hex'));
        console.log(JSON.stringify({encoded, decoded}));";
    let input = json!([values, rust_hex]).to_string();
    let output = Command::new("node")
        .args(["--input-type=module", "-e", script, &input])
        .current_dir(repo_root())
        .output()
        .expect("running node (Node.js 20+ must be installed for this test)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node failed (is the package built in dist/?): {stderr}");
    serde_json::from_slice(&output.stdout).expect("node printed JSON")
}

fn cross_check_values() -> Vec<(String, Value)> {
    let mut values: Vec<(String, Value)> =
        golden_cases().iter().map(|c| (c["name"].as_str().unwrap().to_owned(), c["value"].clone())).collect();
    let digest = json!({"algorithm": "sha256", "hex": SHA256_ABC});
    let more = [
        ("ingest hints, empty", json!({})),
        ("ingest hints, size only", json!({"sizeHint": 24})),
        ("ingest expectations", json!({"sizeBytes": 65536, "sha256": SHA256_ABC, "primary": BLAKE3_ABC})),
        (
            "storage receipt",
            json!({
                "backendId": "é✓🦀", "locator": "k", "sizeBytes": 4294967295u64,
                "storedAt": "1970-01-01T00:00:00.000Z", "deduplicated": true,
            }),
        ),
        (
            "verify result, unicode mismatch",
            json!({
                "contentAddress": digest, "verified": false, "actualPrimaryDigest": digest,
                "actualSha256Digest": digest, "actualSizeBytes": 9007199254740991u64,
                "mismatch": "ünïcödé \u{feff} ".repeat(20),
            }),
        ),
        (
            "backend health",
            json!({"backendId": "b", "kind": "fs", "healthy": true, "latencyMicros": 0, "totalBytes": 256}),
        ),
        ("backend status, none", json!({"healthy": true, "backends": []})),
    ];
    values.extend(more.into_iter().map(|(name, value)| (name.to_owned(), value)));
    values
}

#[test]
fn rust_and_typescript_give_the_same_bytes_and_read_each_other() {
    let values = cross_check_values();
    let rust_hex: Vec<String> =
        values.iter().map(|(name, v)| hex::encode(by_type_name!(name, rust_bytes(v)))).collect();
    let json_values: Vec<Value> = values.iter().map(|(_, v)| v.clone()).collect();
    let typescript = typescript_codec(&json_values, &rust_hex);
    for (i, (name, value)) in values.iter().enumerate() {
        assert_eq!(typescript["encoded"][i].as_str().unwrap(), rust_hex[i], "encodeCbor vs Rust for {name:?}");
        assert_eq!(&typescript["decoded"][i], value, "decodeCbor of Rust's bytes for {name:?}");
    }
}
