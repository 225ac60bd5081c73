//! The arguments of each operation as a daemon client sends them in a REQUEST (`PROTOCOL.md`):
//! snake_case keys as everywhere on the wire, addresses as text so that the core parses them with
//! the same messages as in-process.

use crate::error::Result;
use crate::identity::ContentAddress;
use crate::ingest::{Expectations, IngestOptions};

use super::cbor::{self, invalid};
use super::fields::{Field, Fields, MapCodec};
use super::types::{push_optional, Entries};
use super::IngestHints;

/// `ingest_stream {hints?, expect?}`; the bytes follow as DATA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestStreamArgs {
    pub hints: Option<IngestHints>,
    pub expect: Option<Expectations>,
}

impl IngestStreamArgs {
    pub fn into_options(self) -> IngestOptions {
        let hints = self.hints.unwrap_or_default();
        IngestOptions {
            backend_id: hints.backend_id,
            primary: hints.primary_algorithm,
            size_hint: hints.size_hint,
            expect: self.expect.unwrap_or_default(),
        }
    }
}

impl MapCodec for IngestStreamArgs {
    const NAME: &'static str = "ingest_stream.args";

    fn encode(&self) -> Vec<u8> {
        let mut entries = Entries::new();
        push_optional(&mut entries, "hints", self.hints.as_ref(), MapCodec::encode);
        push_optional(&mut entries, "expect", self.expect.as_ref(), MapCodec::encode);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(IngestStreamArgs {
            hints: fields.optional("hints").map(Field::decode).transpose()?,
            expect: fields.optional("expect").map(Field::decode).transpose()?,
        })
    }
}

/// `serve_object {address, byte_range?: [start, end], backend_id?}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeObjectArgs {
    pub address: String,
    pub byte_range: Option<(u64, u64)>,
    pub backend_id: Option<String>,
}

impl ServeObjectArgs {
    pub fn address(&self) -> Result<ContentAddress> {
        ContentAddress::parse(&self.address)
    }
}

fn byte_range(field: Field) -> Result<(u64, u64)> {
    let items = field.array()?;
    let count = items.len();
    let [start, end]: [Field; 2] = items
        .try_into()
        .map_err(|_| invalid(format!("serve_object.args.byte_range must be [start, end], not {count} item(s)")))?;
    Ok((start.unsigned()?, end.unsigned()?))
}

impl MapCodec for ServeObjectArgs {
    const NAME: &'static str = "serve_object.args";

    fn encode(&self) -> Vec<u8> {
        let mut entries: Entries = vec![("address", cbor::text(&self.address))];
        let range = |(start, end)| cbor::array(vec![cbor::unsigned(start), cbor::unsigned(end)]);
        push_optional(&mut entries, "byte_range", self.byte_range, range);
        push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(ServeObjectArgs {
            address: fields.required("address")?.text()?,
            byte_range: fields.optional("byte_range").map(byte_range).transpose()?,
            backend_id: fields.optional("backend_id").map(Field::text).transpose()?,
        })
    }
}

/// `verify_object` and `delete_object`: `{address, backend_id?}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectArgs {
    pub address: String,
    pub backend_id: Option<String>,
}

impl ObjectArgs {
    pub fn address(&self) -> Result<ContentAddress> {
        ContentAddress::parse(&self.address)
    }
}

impl MapCodec for ObjectArgs {
    const NAME: &'static str = "args";

    fn encode(&self) -> Vec<u8> {
        let mut entries: Entries = vec![("address", cbor::text(&self.address))];
        push_optional(&mut entries, "backend_id", self.backend_id.as_deref(), cbor::text);
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(ObjectArgs {
            address: fields.required("address")?.text()?,
            backend_id: fields.optional("backend_id").map(Field::text).transpose()?,
        })
    }
}

/// `backend_health {}`: an operation without arguments still gets (and checks) an empty map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoArgs;

impl MapCodec for NoArgs {
    const NAME: &'static str = "args";

    fn encode(&self) -> Vec<u8> {
        cbor::map(Vec::new())
    }

    fn decode(_fields: &mut Fields) -> Result<Self> {
        Ok(NoArgs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Wire;

    #[test]
    fn arguments_round_trip_and_reject_what_they_do_not_know() {
        let serve = ServeObjectArgs { address: "blake3:00".into(), byte_range: Some((3, 9)), backend_id: None };
        assert_eq!(ServeObjectArgs::from_cbor(&serve.to_cbor()).unwrap(), serve);
        let ingest =
            IngestStreamArgs { hints: Some(IngestHints { size_hint: Some(5), ..Default::default() }), expect: None };
        assert_eq!(IngestStreamArgs::from_cbor(&ingest.to_cbor()).unwrap(), ingest);
        let extra = cbor::map(vec![("address", cbor::text("x")), ("bogus", cbor::unsigned(1))]);
        let err = ObjectArgs::from_cbor(&extra).unwrap_err();
        assert!(err.to_string().contains("\"bogus\""), "{err}");
        let short_range =
            cbor::map(vec![("address", cbor::text("x")), ("byte_range", cbor::array(vec![cbor::unsigned(1)]))]);
        let err = ServeObjectArgs::from_cbor(&short_range).unwrap_err();
        assert!(err.to_string().contains("byte_range must be [start, end], not 1 item(s)"), "{err}");
    }
}
