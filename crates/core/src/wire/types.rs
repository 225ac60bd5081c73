//! The wire form of each SPEC type: snake_case keys, digests as `{algorithm, digest: bytes(32)}`,
//! absent optional fields left out.

use std::time::SystemTime;

use crate::api::{Expectations, IngestHints};
use crate::error::Result;
use crate::identity::{parse_hex_digest, Digest, HashAlgorithm, DIGEST_LEN};
use crate::results::{
    rfc3339_millis, AbortedUpload, BackendHealth, BackendKind, BackendStatus, DeletionResult, IngestResult, ObjectInfo,
    PurgedUploads, ScrubProgress, ScrubReport, StorageReceipt, UploadStatus, VerifyResult,
};

use super::cbor;
use super::fields::{Field, Fields, MapCodec};

pub(super) type Entries = Vec<(&'static str, Vec<u8>)>;

/// Adds `key` only when the value is present.
pub(super) fn push_optional<T>(
    entries: &mut Entries,
    key: &'static str,
    value: Option<T>,
    encode: impl FnOnce(T) -> Vec<u8>,
) {
    if let Some(value) = value {
        entries.push((key, encode(value)));
    }
}

fn algorithm(field: Field) -> Result<HashAlgorithm> {
    field.parsed_text("\"blake3\" or \"sha256\"", |s| s.parse().ok())
}

fn hex_digest(field: Field) -> Result<[u8; DIGEST_LEN]> {
    field.parsed_text("64 lowercase hex digits", parse_hex_digest)
}

fn time_text(time: SystemTime) -> Vec<u8> {
    cbor::text(&rfc3339_millis(time))
}

/// Only the form `rfc3339_millis` writes (UTC, milliseconds), so that it re-encodes unchanged.
fn time(field: Field) -> Result<SystemTime> {
    let canonical = |s: &str| {
        let time = humantime::parse_rfc3339(s).ok()?;
        (rfc3339_millis(time) == s).then_some(time)
    };
    field.parsed_text("an RFC 3339 UTC time with milliseconds, like \"2026-11-24T04:06:36.000Z\"", canonical)
}

impl MapCodec for Digest {
    const NAME: &'static str = "Digest";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![("algorithm", cbor::text(self.algorithm.as_str())), ("digest", cbor::bytes(&self.bytes))])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let algorithm = algorithm(fields.required("algorithm")?)?;
        let bytes = fields.required("digest")?.byte_array()?;
        Ok(Digest { algorithm, bytes })
    }
}

impl MapCodec for IngestHints {
    const NAME: &'static str = "IngestHints";

    fn encode(&self) -> Vec<u8> {
        let mut entries = Entries::new();
        push_optional(&mut entries, "size_hint", self.size_hint, cbor::unsigned);
        push_optional(&mut entries, "primary_algorithm", self.primary_algorithm, |a| cbor::text(a.as_str()));
        push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(IngestHints {
            size_hint: fields.optional("size_hint").map(Field::unsigned).transpose()?,
            primary_algorithm: fields.optional("primary_algorithm").map(algorithm).transpose()?,
            backend_id: fields.optional("backend_id").map(Field::text).transpose()?,
        })
    }
}

/// The SPEC's `IngestExpectations`: the expected digests travel as hex text, as callers give them.
impl MapCodec for Expectations {
    const NAME: &'static str = "IngestExpectations";

    fn encode(&self) -> Vec<u8> {
        let mut entries = Entries::new();
        push_optional(&mut entries, "size_bytes", self.size_bytes, cbor::unsigned);
        push_optional(&mut entries, "sha256", self.sha256, |d| cbor::text(&hex::encode(d)));
        push_optional(&mut entries, "primary", self.primary, |d| cbor::text(&hex::encode(d)));
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(Expectations {
            size_bytes: fields.optional("size_bytes").map(Field::unsigned).transpose()?,
            sha256: fields.optional("sha256").map(hex_digest).transpose()?,
            primary: fields.optional("primary").map(hex_digest).transpose()?,
        })
    }
}

impl MapCodec for StorageReceipt {
    const NAME: &'static str = "StorageReceipt";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![
            ("backend_id", cbor::text(&self.backend_id)),
            ("locator", cbor::text(&self.locator)),
            ("size_bytes", cbor::unsigned(self.size_bytes)),
            ("stored_at", time_text(self.stored_at)),
            ("deduplicated", cbor::boolean(self.deduplicated)),
        ])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(StorageReceipt {
            backend_id: fields.required("backend_id")?.text()?,
            locator: fields.required("locator")?.text()?,
            size_bytes: fields.required("size_bytes")?.unsigned()?,
            stored_at: time(fields.required("stored_at")?)?,
            deduplicated: fields.required("deduplicated")?.boolean()?,
        })
    }
}

impl MapCodec for IngestResult {
    const NAME: &'static str = "IngestResult";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![
            ("primary_digest", self.primary_digest.encode()),
            ("sha256_digest", self.sha256_digest.encode()),
            ("size_bytes", cbor::unsigned(self.size_bytes)),
            ("receipt", self.receipt.encode()),
        ])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(IngestResult {
            primary_digest: fields.required("primary_digest")?.decode()?,
            sha256_digest: fields.required("sha256_digest")?.decode()?,
            size_bytes: fields.required("size_bytes")?.unsigned()?,
            receipt: fields.required("receipt")?.decode()?,
        })
    }
}

impl MapCodec for VerifyResult {
    const NAME: &'static str = "VerifyResult";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![
            ("content_address", self.content_address.encode()),
            ("verified", cbor::boolean(self.verified)),
            ("actual_primary_digest", self.actual_primary_digest.encode()),
            ("actual_sha256_digest", self.actual_sha256_digest.encode()),
            ("actual_size_bytes", cbor::unsigned(self.actual_size_bytes)),
        ];
        push_optional(&mut entries, "mismatch", self.mismatch.as_deref(), cbor::text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(VerifyResult {
            content_address: fields.required("content_address")?.decode()?,
            verified: fields.required("verified")?.boolean()?,
            actual_primary_digest: fields.required("actual_primary_digest")?.decode()?,
            actual_sha256_digest: fields.required("actual_sha256_digest")?.decode()?,
            actual_size_bytes: fields.required("actual_size_bytes")?.unsigned()?,
            mismatch: fields.optional("mismatch").map(Field::text).transpose()?,
        })
    }
}

impl MapCodec for DeletionResult {
    const NAME: &'static str = "DeletionResult";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![
            ("content_address", self.content_address.encode()),
            ("backend_id", cbor::text(&self.backend_id)),
            ("deleted", cbor::boolean(self.deleted)),
        ];
        push_optional(&mut entries, "touched_at", self.touched_at, time_text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(DeletionResult {
            content_address: fields.required("content_address")?.decode()?,
            backend_id: fields.required("backend_id")?.text()?,
            deleted: fields.required("deleted")?.boolean()?,
            touched_at: fields.optional("touched_at").map(time).transpose()?,
        })
    }
}

impl MapCodec for ObjectInfo {
    const NAME: &'static str = "ObjectInfo";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![
            ("content_address", self.content_address.encode()),
            ("sha256_digest", self.sha256_digest.encode()),
            ("size_bytes", cbor::unsigned(self.size_bytes)),
            ("backend_id", cbor::text(&self.backend_id)),
            ("locator", cbor::text(&self.locator)),
            ("stored_at", time_text(self.stored_at)),
            ("touched_at", time_text(self.touched_at)),
        ])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(ObjectInfo {
            content_address: fields.required("content_address")?.decode()?,
            sha256_digest: fields.required("sha256_digest")?.decode()?,
            size_bytes: fields.required("size_bytes")?.unsigned()?,
            backend_id: fields.required("backend_id")?.text()?,
            locator: fields.required("locator")?.text()?,
            stored_at: time(fields.required("stored_at")?)?,
            touched_at: time(fields.required("touched_at")?)?,
        })
    }
}

impl MapCodec for UploadStatus {
    const NAME: &'static str = "UploadStatus";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![
            ("upload_id", cbor::text(&self.upload_id)),
            ("backend_id", cbor::text(&self.backend_id)),
            ("offset", cbor::unsigned(self.offset)),
            ("created_at", time_text(self.created_at)),
            ("updated_at", time_text(self.updated_at)),
        ])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(UploadStatus {
            upload_id: fields.required("upload_id")?.text()?,
            backend_id: fields.required("backend_id")?.text()?,
            offset: fields.required("offset")?.unsigned()?,
            created_at: time(fields.required("created_at")?)?,
            updated_at: time(fields.required("updated_at")?)?,
        })
    }
}

impl MapCodec for AbortedUpload {
    const NAME: &'static str = "AbortedUpload";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![("upload_id", cbor::text(&self.upload_id)), ("aborted", cbor::boolean(self.aborted))])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(AbortedUpload {
            upload_id: fields.required("upload_id")?.text()?,
            aborted: fields.required("aborted")?.boolean()?,
        })
    }
}

impl MapCodec for PurgedUploads {
    const NAME: &'static str = "PurgedUploads";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![("purged", cbor::unsigned(self.purged))])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(PurgedUploads { purged: fields.required("purged")?.unsigned()? })
    }
}

impl MapCodec for ScrubProgress {
    const NAME: &'static str = "ScrubProgress";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![
            ("checked_objects", cbor::unsigned(self.checked_objects)),
            ("checked_bytes", cbor::unsigned(self.checked_bytes)),
            ("corrupt_objects", cbor::unsigned(self.corrupt_objects)),
        ];
        push_optional(&mut entries, "last_address", self.last_address.as_deref(), cbor::text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(ScrubProgress {
            checked_objects: fields.required("checked_objects")?.unsigned()?,
            checked_bytes: fields.required("checked_bytes")?.unsigned()?,
            corrupt_objects: fields.required("corrupt_objects")?.unsigned()?,
            last_address: fields.optional("last_address").map(Field::text).transpose()?,
        })
    }
}

impl MapCodec for ScrubReport {
    const NAME: &'static str = "ScrubReport";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![
            ("backend_id", cbor::text(&self.backend_id)),
            ("checked_objects", cbor::unsigned(self.checked_objects)),
            ("checked_bytes", cbor::unsigned(self.checked_bytes)),
            ("corrupt", cbor::array(self.corrupt.iter().map(MapCodec::encode).collect())),
            ("quarantined", cbor::unsigned(self.quarantined)),
            ("complete", cbor::boolean(self.complete)),
            ("started_at", time_text(self.started_at)),
            ("finished_at", time_text(self.finished_at)),
        ];
        push_optional(&mut entries, "resume_after", self.resume_after.as_deref(), cbor::text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let corrupt = fields.required("corrupt")?.array()?;
        Ok(ScrubReport {
            backend_id: fields.required("backend_id")?.text()?,
            checked_objects: fields.required("checked_objects")?.unsigned()?,
            checked_bytes: fields.required("checked_bytes")?.unsigned()?,
            corrupt: corrupt.into_iter().map(Field::decode).collect::<Result<_>>()?,
            quarantined: fields.required("quarantined")?.unsigned()?,
            complete: fields.required("complete")?.boolean()?,
            resume_after: fields.optional("resume_after").map(Field::text).transpose()?,
            started_at: time(fields.required("started_at")?)?,
            finished_at: time(fields.required("finished_at")?)?,
        })
    }
}

fn backend_kind(field: Field) -> Result<BackendKind> {
    let parse = |s: &str| [BackendKind::Fs, BackendKind::S3].into_iter().find(|kind| kind.as_str() == s);
    field.parsed_text("\"fs\" or \"s3\"", parse)
}

impl MapCodec for BackendHealth {
    const NAME: &'static str = "BackendHealth";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![
            ("backend_id", cbor::text(&self.backend_id)),
            ("kind", cbor::text(self.kind.as_str())),
            ("healthy", cbor::boolean(self.healthy)),
            ("latency_micros", cbor::unsigned(self.latency_micros)),
        ];
        push_optional(&mut entries, "detail", self.detail.as_deref(), cbor::text);
        push_optional(&mut entries, "free_bytes", self.free_bytes, cbor::unsigned);
        push_optional(&mut entries, "total_bytes", self.total_bytes, cbor::unsigned);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(BackendHealth {
            backend_id: fields.required("backend_id")?.text()?,
            kind: backend_kind(fields.required("kind")?)?,
            healthy: fields.required("healthy")?.boolean()?,
            latency_micros: fields.required("latency_micros")?.unsigned()?,
            detail: fields.optional("detail").map(Field::text).transpose()?,
            free_bytes: fields.optional("free_bytes").map(Field::unsigned).transpose()?,
            total_bytes: fields.optional("total_bytes").map(Field::unsigned).transpose()?,
        })
    }
}

impl MapCodec for BackendStatus {
    const NAME: &'static str = "BackendStatus";

    fn encode(&self) -> Vec<u8> {
        let backends = self.backends.iter().map(MapCodec::encode).collect();
        cbor::map(vec![("healthy", cbor::boolean(self.healthy)), ("backends", cbor::array(backends))])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let healthy = fields.required("healthy")?.boolean()?;
        let backends = fields.required("backends")?.array()?;
        let backends = backends.into_iter().map(Field::decode).collect::<Result<_>>()?;
        Ok(BackendStatus { healthy, backends })
    }
}
