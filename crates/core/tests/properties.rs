//! Property tests of the core's pure parts, bad input tried at scale (SPEC: Content address, serveObject):
//! - `Digest::parse` never panics and accepts exactly `(blake3|sha256):<64 lowercase hex>`;
//! - hashing is invariant under chunking: any split of the bytes gives the digests of one update,
//!   and those are the digests of the reference `blake3` and `sha2` crates;
//! - `resolve_range` accepts exactly `0 <= start <= end <= size`.
//!
//! The seeds are fixed (proptest's deterministic RNG), so a failure reproduces on every run;
//! `DP_SOAK=1` runs ten times as many cases.

use std::cell::Cell;

use artifactstore_core::hashing::{digest_bytes, DualHasher};
use artifactstore_core::storage::resolve_range;
use artifactstore_core::{ByteRange, Bytes, Digest, HashAlgorithm};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const SEED: [u8; 32] = *b"artifactstore-properties-seed-01";

fn runner(cases: u32) -> TestRunner {
    let cases = if std::env::var_os("DP_SOAK").is_some() { cases * 10 } else { cases };
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED))
}

/// The SPEC's form, checked independently of the implementation.
fn is_spec_address(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else { return false };
    matches!(algorithm, "blake3" | "sha256")
        && hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Strings close to the valid form: a valid address with one edit, or pieces glued together.
fn address_like() -> impl Strategy<Value = String> {
    let algorithm = prop_oneof![
        Just("blake3".to_owned()),
        Just("sha256".to_owned()),
        Just("BLAKE3".to_owned()),
        Just("md5".to_owned()),
        Just("sha-256".to_owned()),
        Just(String::new()),
        "[a-z0-9]{0,8}",
    ];
    let hex = prop_oneof![
        4 => "[0-9a-f]{64}",
        1 => "[0-9a-fA-F]{60,68}",
        1 => "[0-9a-f]{0,70}",
        1 => "[0-9a-f./%\\\\:\\x00 é]{64}",
    ];
    let separator = prop_oneof![8 => Just(":".to_owned()), 1 => Just("::".to_owned()), 1 => Just(String::new()), 1 => Just("/".to_owned())];
    let suffix = prop_oneof![8 => Just(String::new()), 1 => "[\\x00-\\x7f]{1,3}", 1 => Just("\u{0}".to_owned())];
    (algorithm, separator, hex, suffix).prop_map(|(a, s, h, x)| format!("{a}{s}{h}{x}"))
}

#[test]
fn digest_parse_accepts_exactly_the_spec_form() {
    let (accepted, rejected) = (Cell::new(0u32), Cell::new(0u32));
    let valid = ("blake3|sha256", "[0-9a-f]{64}").prop_map(|(a, h)| format!("{a}:{h}"));
    let strategy = prop_oneof![2 => any::<String>(), 5 => address_like(), 1 => valid];
    let check = |text: String| -> Result<(), TestCaseError> {
        match std::panic::catch_unwind(|| Digest::parse(&text)) {
            Err(_) => return Err(TestCaseError::fail(format!("Digest::parse panicked on {text:?}"))),
            Ok(Ok(digest)) => {
                accepted.set(accepted.get() + 1);
                prop_assert!(is_spec_address(&text), "accepted {text:?}, which is not of the SPEC's form");
                prop_assert_eq!(digest.to_string(), text.clone(), "the text form round-trips");
                let expected = if text.starts_with("blake3:") { HashAlgorithm::Blake3 } else { HashAlgorithm::Sha256 };
                prop_assert_eq!(digest.algorithm, expected);
            }
            Ok(Err(error)) => {
                rejected.set(rejected.get() + 1);
                prop_assert!(!is_spec_address(&text), "rejected the valid address {text:?}: {error}");
                prop_assert_eq!(error.code(), "INVALID_ADDRESS", "{:?}", text);
            }
        }
        Ok(())
    };
    runner(4000).run(&strategy, check).unwrap();
    let (accepted, rejected) = (accepted.get(), rejected.get());
    eprintln!("Digest::parse: {} cases, {accepted} accepted, {rejected} rejected", accepted + rejected);
    assert!(accepted > 200 && rejected > 500, "both outcomes are exercised ({accepted} / {rejected})");
}

/// Random bytes, and cut points splitting them into chunks (including empty chunks).
fn bytes_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    // Mostly small, sometimes past the 256 KiB where SHA-256 moves to its own thread.
    let len = prop_oneof![6 => 0usize..4096, 2 => 4096usize..70_000, 1 => 250_000usize..700_000];
    len.prop_flat_map(|len| {
        let seed = any::<u64>();
        let cuts = proptest::collection::vec(0..=len, 0..12);
        (Just(len), seed, cuts)
    })
    .prop_map(|(len, seed, mut cuts)| {
        // xorshift, fast enough for large buffers
        let mut x = seed | 1;
        let bytes = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        cuts.sort_unstable();
        (bytes, cuts)
    })
}

#[test]
fn hashing_does_not_depend_on_how_the_bytes_are_split() {
    use sha2::Digest as _;
    let cases = Cell::new(0u32);
    runner(300)
        .run(
            &(bytes_and_cuts(), prop_oneof![Just(HashAlgorithm::Blake3), Just(HashAlgorithm::Sha256)]),
            |((data, cuts), algorithm)| {
                cases.set(cases.get() + 1);
                let whole = Bytes::from(data.clone());
                let mut one = DualHasher::new(algorithm);
                one.update(&whole);
                let one = one.finalize();

                let mut split = DualHasher::new(algorithm);
                let mut start = 0;
                for &cut in cuts.iter().chain(std::iter::once(&data.len())) {
                    split.update(&whole.slice(start..cut));
                    start = cut;
                }
                let split = split.finalize();
                prop_assert_eq!(split, one, "cuts {:?} of {} bytes", cuts, data.len());

                let chunk_len = cuts.first().copied().filter(|&c| c > 0).unwrap_or(1024);
                prop_assert_eq!(digest_bytes(algorithm, &whole, chunk_len), one);

                prop_assert_eq!(one.size_bytes, data.len() as u64);
                let sha256: [u8; 32] = sha2::Sha256::digest(&data).into();
                prop_assert_eq!(one.sha256.bytes, sha256);
                prop_assert_eq!(one.sha256.algorithm, HashAlgorithm::Sha256);
                prop_assert_eq!(one.primary.algorithm, algorithm);
                let primary = match algorithm {
                    HashAlgorithm::Blake3 => *blake3::hash(&data).as_bytes(),
                    HashAlgorithm::Sha256 => sha256,
                };
                prop_assert_eq!(one.primary.bytes, primary);
                Ok(())
            },
        )
        .unwrap();
    eprintln!("hashing chunk invariance: {} cases", cases.get());
}

/// Values near the interesting boundaries (0, each other, u64::MAX) as well as anywhere.
fn boundary_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => 0u64..20,
        1 => Just(u64::MAX),
        1 => (u64::MAX - 20)..=u64::MAX,
        1 => Just(1u64 << 53),
        1 => any::<u64>(),
    ]
}

#[test]
fn resolve_range_accepts_exactly_ordered_ranges_within_the_object() {
    let (accepted, rejected) = (Cell::new(0u32), Cell::new(0u32));
    let range = prop_oneof![
        3 => (boundary_u64(), boundary_u64(), boundary_u64()),
        // size first, then start/end around it, so the valid side is well exercised
        3 => boundary_u64().prop_flat_map(|size| {
            let around = move || prop_oneof![0..=size, Just(size), Just(size.saturating_add(1)), any::<u64>()];
            (around(), around(), Just(size))
        }),
    ];
    runner(5000)
        .run(&range, |(start, end, size)| {
            match resolve_range(Some(ByteRange { start, end }), size) {
                Ok(resolved) => {
                    accepted.set(accepted.get() + 1);
                    prop_assert!(start <= end && end <= size, "accepted [{start}, {end}) of {size}");
                    prop_assert_eq!(resolved, start..end);
                }
                Err(error) => {
                    rejected.set(rejected.get() + 1);
                    prop_assert!(!(start <= end && end <= size), "rejected [{start}, {end}) of {size}: {error}");
                    prop_assert_eq!(error.code(), "INVALID_RANGE");
                    let named = format!("[{start}, {end})");
                    prop_assert!(error.to_string().contains(&named), "the message names the range: {}", error);
                }
            }
            prop_assert_eq!(resolve_range(None, size).unwrap(), 0..size);
            Ok(())
        })
        .unwrap();
    let (accepted, rejected) = (accepted.get(), rejected.get());
    eprintln!("resolve_range: {} cases, {accepted} accepted, {rejected} rejected", accepted + rejected);
    assert!(accepted > 1000 && rejected > 1000, "both outcomes are exercised ({accepted} / {rejected})");
}
