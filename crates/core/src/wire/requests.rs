//! The wire form of each operation's request (see [`crate::api`]). Addresses travel as their text
//! form, so a bad one is `INVALID_ADDRESS` with the message an in-process call gives.

use std::time::SystemTime;

use crate::api::{
    AppendRequest, ByteRange, CommitUploadRequest, DeleteRequest, Expectations, FindMissingRequest, HealthRequest,
    IngestHints, IngestRequest, ListRequest, ListUploadsRequest, MetricsRequest, ObjectPage, PurgeUploadsRequest,
    ScrubPage, ScrubRequest, ServeHead, ServeRequest, StatRequest, TouchRequest, UploadPage, UploadRequest,
    VerifyRequest,
};
use crate::error::Result;
use crate::identity::ContentAddress;
use crate::results::rfc3339_millis;

use super::cbor;
use super::fields::{Field, Fields, MapCodec};
use super::types::{push_optional, Entries};

fn address(field: Field) -> Result<ContentAddress> {
    ContentAddress::parse(&field.text()?)
}

fn address_text(address: &ContentAddress) -> Vec<u8> {
    cbor::text(&address.to_string())
}

/// `[start, end]`, two unsigned integers.
fn byte_range(field: Field) -> Result<ByteRange> {
    let rejected = field.rejected("a byte range must be [start, end]");
    let [start, end]: [Field; 2] = field.array()?.try_into().map_err(|_| rejected)?;
    Ok(ByteRange { start: start.unsigned()?, end: end.unsigned()? })
}

fn optional_text(fields: &mut Fields, key: &str) -> Result<Option<String>> {
    fields.optional(key).map(Field::text).transpose()
}

impl MapCodec for IngestRequest {
    const NAME: &'static str = "IngestRequest";

    fn encode(&self) -> Vec<u8> {
        let mut entries = Entries::new();
        let hints = (self.hints != IngestHints::default()).then_some(&self.hints);
        push_optional(&mut entries, "hints", hints, MapCodec::encode);
        let expect = (self.expect != Expectations::default()).then_some(&self.expect);
        push_optional(&mut entries, "expect", expect, MapCodec::encode);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let hints = fields.optional("hints").map(Field::decode::<CallerHints>).transpose()?;
        let expect = fields.optional("expect").map(Field::decode::<CallerExpectations>).transpose()?;
        Ok(IngestRequest {
            hints: hints.map(|h| h.0).unwrap_or_default(),
            expect: expect.map(|e| e.0).unwrap_or_default(),
        })
    }
}

/// Hints as a caller sends them with an ingest: an algorithm it names but we lack is
/// `UNSUPPORTED_ALGORITHM`, as in-process (where the type is strict, for results, it is a CBOR error).
struct CallerHints(IngestHints);

impl MapCodec for CallerHints {
    const NAME: &'static str = "IngestHints";

    fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(CallerHints(IngestHints {
            size_hint: fields.optional("size_hint").map(Field::unsigned).transpose()?,
            primary_algorithm: optional_text(fields, "primary_algorithm")?.map(|a| a.parse()).transpose()?,
            backend_id: optional_text(fields, "backend_id")?,
        }))
    }
}

/// Expectations as a caller sends them: their digests checked with the messages an in-process
/// ingest gives (`expect.sha256 "…" is not 64 lowercase hex digits`).
struct CallerExpectations(Expectations);

impl MapCodec for CallerExpectations {
    const NAME: &'static str = "IngestExpectations";

    fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let size_bytes = fields.optional("size_bytes").map(Field::unsigned).transpose()?;
        let sha256 = optional_text(fields, "sha256")?;
        let primary = optional_text(fields, "primary")?;
        Expectations::parse(size_bytes, sha256.as_deref(), primary.as_deref()).map(CallerExpectations)
    }
}

impl MapCodec for ServeRequest {
    const NAME: &'static str = "ServeRequest";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![("address", address_text(&self.address))];
        push_optional(&mut entries, "byte_range", self.byte_range, |range| {
            cbor::array(vec![cbor::unsigned(range.start), cbor::unsigned(range.end)])
        });
        push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
        push_optional(&mut entries, "verify", (!self.verify).then_some(false), cbor::boolean);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(ServeRequest {
            address: address(fields.required("address")?)?,
            byte_range: fields.optional("byte_range").map(byte_range).transpose()?,
            backend_id: optional_text(fields, "backend_id")?,
            verify: fields.optional("verify").map(Field::boolean).transpose()?.unwrap_or(true),
        })
    }
}

impl MapCodec for ServeHead {
    const NAME: &'static str = "ServeHead";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![
            ("content_address", self.content_address.encode()),
            ("size_bytes", cbor::unsigned(self.size_bytes)),
            ("total_size_bytes", cbor::unsigned(self.total_size_bytes)),
        ])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(ServeHead {
            content_address: fields.required("content_address")?.decode()?,
            size_bytes: fields.required("size_bytes")?.unsigned()?,
            total_size_bytes: fields.required("total_size_bytes")?.unsigned()?,
        })
    }
}

/// The requests that name one object and, optionally, its backend.
macro_rules! address_request {
    ($request:ident) => {
        impl MapCodec for $request {
            const NAME: &'static str = stringify!($request);

            fn encode(&self) -> Vec<u8> {
                let mut entries = vec![("address", address_text(&self.address))];
                push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
                cbor::map(entries)
            }

            fn decode(fields: &mut Fields) -> Result<Self> {
                Ok($request {
                    address: address(fields.required("address")?)?,
                    backend_id: optional_text(fields, "backend_id")?,
                })
            }
        }
    };
}

address_request!(VerifyRequest);
address_request!(StatRequest);
address_request!(TouchRequest);

/// A time a caller gives: any RFC 3339 form (`2026-12-01T08:30:00Z`, `2026-12-01T09:30:00.5+01:00`).
fn request_time(field: Field) -> Result<SystemTime> {
    field.parsed_text("an RFC 3339 time, like \"2026-12-01T08:30:00.000Z\"", |s| {
        chrono::DateTime::parse_from_rfc3339(s).ok().map(SystemTime::from)
    })
}

impl MapCodec for DeleteRequest {
    const NAME: &'static str = "DeleteRequest";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![("address", address_text(&self.address))];
        push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
        push_optional(&mut entries, "unless_touched_since", self.unless_touched_since, |t| {
            cbor::text(&rfc3339_millis(t))
        });
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(DeleteRequest {
            address: address(fields.required("address")?)?,
            backend_id: optional_text(fields, "backend_id")?,
            unless_touched_since: fields.optional("unless_touched_since").map(request_time).transpose()?,
        })
    }
}

impl MapCodec for FindMissingRequest {
    const NAME: &'static str = "FindMissingRequest";

    fn encode(&self) -> Vec<u8> {
        let addresses = self.addresses.iter().map(address_text).collect();
        let mut entries = vec![("addresses", cbor::array(addresses))];
        push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let addresses = fields.required("addresses")?.array()?;
        Ok(FindMissingRequest {
            addresses: addresses.into_iter().map(address).collect::<Result<_>>()?,
            backend_id: optional_text(fields, "backend_id")?,
        })
    }
}

/// The requests that take nothing: an empty map.
macro_rules! empty_request {
    ($($request:ident),*) => {$(
        impl MapCodec for $request {
            const NAME: &'static str = stringify!($request);

            fn encode(&self) -> Vec<u8> {
                cbor::map(Vec::new())
            }

            fn decode(_fields: &mut Fields) -> Result<Self> {
                Ok($request {})
            }
        }
    )*};
}

empty_request!(HealthRequest, MetricsRequest);

impl MapCodec for ListRequest {
    const NAME: &'static str = "ListRequest";

    fn encode(&self) -> Vec<u8> {
        let mut entries = Entries::new();
        push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
        push_optional(&mut entries, "after", self.after.as_ref(), address_text);
        push_optional(&mut entries, "limit", self.limit, cbor::unsigned);
        push_optional(&mut entries, "touched_before", self.touched_before, |t| cbor::text(&rfc3339_millis(t)));
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(ListRequest {
            backend_id: optional_text(fields, "backend_id")?,
            after: fields.optional("after").map(address).transpose()?,
            limit: fields.optional("limit").map(Field::unsigned).transpose()?,
            touched_before: fields.optional("touched_before").map(request_time).transpose()?,
        })
    }
}

impl MapCodec for ObjectPage {
    const NAME: &'static str = "ObjectPage";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![("objects", cbor::array(self.objects.iter().map(MapCodec::encode).collect()))];
        push_optional(&mut entries, "next_after", self.next_after.as_ref(), address_text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let objects = fields.required("objects")?.array()?;
        Ok(ObjectPage {
            objects: objects.into_iter().map(Field::decode).collect::<Result<_>>()?,
            next_after: fields.optional("next_after").map(address).transpose()?,
        })
    }
}

impl MapCodec for ScrubRequest {
    const NAME: &'static str = "ScrubRequest";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![("quarantine", cbor::boolean(self.quarantine))];
        push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
        push_optional(&mut entries, "after", self.after.as_ref(), address_text);
        push_optional(&mut entries, "bytes_per_second", self.bytes_per_second, cbor::unsigned);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(ScrubRequest {
            backend_id: optional_text(fields, "backend_id")?,
            after: fields.optional("after").map(address).transpose()?,
            quarantine: fields.optional("quarantine").map(Field::boolean).transpose()?.unwrap_or(false),
            bytes_per_second: fields.optional("bytes_per_second").map(Field::unsigned).transpose()?,
        })
    }
}

impl MapCodec for ScrubPage {
    const NAME: &'static str = "ScrubPage";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![
            ("backend_id", cbor::text(&self.backend_id)),
            ("checked_objects", cbor::unsigned(self.checked_objects)),
            ("checked_bytes", cbor::unsigned(self.checked_bytes)),
            ("corrupt", cbor::array(self.corrupt.iter().map(MapCodec::encode).collect())),
            ("quarantined", cbor::unsigned(self.quarantined)),
        ];
        push_optional(&mut entries, "last_address", self.last_address.as_ref(), address_text);
        push_optional(&mut entries, "next_after", self.next_after.as_ref(), address_text);
        push_optional(&mut entries, "pause_ms", (self.pause_ms > 0).then_some(self.pause_ms), cbor::unsigned);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let corrupt = fields.required("corrupt")?.array()?;
        Ok(ScrubPage {
            backend_id: fields.required("backend_id")?.text()?,
            checked_objects: fields.required("checked_objects")?.unsigned()?,
            checked_bytes: fields.required("checked_bytes")?.unsigned()?,
            corrupt: corrupt.into_iter().map(Field::decode).collect::<Result<_>>()?,
            quarantined: fields.required("quarantined")?.unsigned()?,
            last_address: fields.optional("last_address").map(address).transpose()?,
            next_after: fields.optional("next_after").map(address).transpose()?,
            pause_ms: fields.optional("pause_ms").map(Field::unsigned).transpose()?.unwrap_or(0),
        })
    }
}

impl MapCodec for AppendRequest {
    const NAME: &'static str = "AppendRequest";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![("upload_id", cbor::text(&self.upload_id)), ("offset", cbor::unsigned(self.offset))])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(AppendRequest {
            upload_id: fields.required("upload_id")?.text()?,
            offset: fields.required("offset")?.unsigned()?,
        })
    }
}

impl MapCodec for UploadRequest {
    const NAME: &'static str = "UploadRequest";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![("upload_id", cbor::text(&self.upload_id))])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(UploadRequest { upload_id: fields.required("upload_id")?.text()? })
    }
}

impl MapCodec for CommitUploadRequest {
    const NAME: &'static str = "CommitUploadRequest";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![("upload_id", cbor::text(&self.upload_id))];
        let expect = (self.expect != Expectations::default()).then_some(&self.expect);
        push_optional(&mut entries, "expect", expect, MapCodec::encode);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let expect = fields.optional("expect").map(Field::decode::<CallerExpectations>).transpose()?;
        Ok(CommitUploadRequest {
            upload_id: fields.required("upload_id")?.text()?,
            expect: expect.map(|e| e.0).unwrap_or_default(),
        })
    }
}

impl MapCodec for ListUploadsRequest {
    const NAME: &'static str = "ListUploadsRequest";

    fn encode(&self) -> Vec<u8> {
        let mut entries = Entries::new();
        push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
        push_optional(&mut entries, "updated_before", self.updated_before, |t| cbor::text(&rfc3339_millis(t)));
        push_optional(&mut entries, "after", self.after.as_deref(), cbor::text);
        push_optional(&mut entries, "limit", self.limit, cbor::unsigned);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(ListUploadsRequest {
            backend_id: optional_text(fields, "backend_id")?,
            updated_before: fields.optional("updated_before").map(request_time).transpose()?,
            after: optional_text(fields, "after")?,
            limit: fields.optional("limit").map(Field::unsigned).transpose()?,
        })
    }
}

impl MapCodec for UploadPage {
    const NAME: &'static str = "UploadPage";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![("uploads", cbor::array(self.uploads.iter().map(MapCodec::encode).collect()))];
        push_optional(&mut entries, "next_after", self.next_after.as_deref(), cbor::text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let uploads = fields.required("uploads")?.array()?;
        Ok(UploadPage {
            uploads: uploads.into_iter().map(Field::decode).collect::<Result<_>>()?,
            next_after: optional_text(fields, "next_after")?,
        })
    }
}

impl MapCodec for PurgeUploadsRequest {
    const NAME: &'static str = "PurgeUploadsRequest";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![("updated_before", cbor::text(&rfc3339_millis(self.updated_before)))];
        push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(PurgeUploadsRequest {
            updated_before: request_time(fields.required("updated_before")?)?,
            backend_id: optional_text(fields, "backend_id")?,
        })
    }
}
