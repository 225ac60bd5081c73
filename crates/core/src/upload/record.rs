//! An upload's record as a backend stores it: the project's canonical CBOR, so it is read back
//! strictly (a damaged record is an error, never a wrong digest).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::digest::common::hazmat::SerializableState;
use sha2::Sha256;

use crate::api::Expectations;
use crate::error::Result;
use crate::identity::HashAlgorithm;
use crate::tree::SavedTree;
use crate::wire::cbor;
use crate::wire::fields::{Field, Fields, MapCodec};

/// What an upload is, apart from its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    /// Bytes appended so far; the hash states below are of exactly these.
    pub offset: u64,
    pub created_at: SystemTime,
    pub primary: HashAlgorithm,
    /// Given at create; checked again at commit.
    pub expect: Expectations,
    /// SHA-256's serialized state (sha2's `SerializableState`, stable within sha2 0.11).
    pub sha256: Vec<u8>,
    /// BLAKE3, whatever the primary: the state of the object's tree (see [`crate::tree`]).
    pub tree: SavedTree,
    /// Bytes of the tree's pairs the backend keeps for this upload so far.
    pub tree_len: u64,
}

pub(super) fn saved_sha256(state: &Sha256) -> Vec<u8> {
    state.serialize().to_vec()
}

pub(super) fn sha256_state(saved: &[u8]) -> Option<Sha256> {
    Sha256::deserialize(saved.try_into().ok()?).ok()
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl MapCodec for SavedTree {
    const NAME: &'static str = "SavedTree";

    fn encode(&self) -> Vec<u8> {
        let values = self.chaining_values.iter().map(|cv| cbor::bytes(cv)).collect();
        cbor::map(vec![("chaining_values", cbor::array(values)), ("open", cbor::bytes(&self.open))])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let values = fields.required("chaining_values")?.array()?;
        Ok(SavedTree {
            chaining_values: values.into_iter().map(Field::byte_array).collect::<Result<_>>()?,
            open: fields.required("open")?.bytes()?,
        })
    }
}

impl MapCodec for UploadRecord {
    const NAME: &'static str = "UploadRecord";

    fn encode(&self) -> Vec<u8> {
        let mut entries = vec![
            ("offset", cbor::unsigned(self.offset)),
            ("created_at_ms", cbor::unsigned(millis(self.created_at))),
            ("primary", cbor::text(self.primary.as_str())),
            ("sha256_state", cbor::bytes(&self.sha256)),
        ];
        if self.expect != Expectations::default() {
            entries.push(("expect", self.expect.encode()));
        }
        // Keys new with trees: a record of an earlier version (`blake3_state`) is refused, never misread.
        entries.push(("tree_state", self.tree.encode()));
        entries.push(("tree_len", cbor::unsigned(self.tree_len)));
        cbor::map(entries)
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        let created_ms = fields.required("created_at_ms")?.unsigned()?;
        Ok(UploadRecord {
            offset: fields.required("offset")?.unsigned()?,
            created_at: UNIX_EPOCH + Duration::from_millis(created_ms),
            primary: fields.required("primary")?.parsed_text("\"blake3\" or \"sha256\"", |s| s.parse().ok())?,
            expect: fields.optional("expect").map(Field::decode).transpose()?.unwrap_or_default(),
            sha256: fields.required("sha256_state")?.bytes()?,
            tree: fields.required("tree_state")?.decode()?,
            tree_len: fields.required("tree_len")?.unsigned()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Wire;

    #[test]
    fn a_record_round_trips() {
        let expect = Expectations { size_bytes: Some(7), sha256: Some([3; 32]), primary: None };
        let mut record = UploadRecord::new(HashAlgorithm::Blake3, expect, UNIX_EPOCH + Duration::from_millis(1234));
        record.offset = 5;
        record.tree = SavedTree { chaining_values: vec![], open: b"hello".to_vec() };
        record.tree_len = 64;
        assert_eq!(UploadRecord::from_cbor(&record.to_cbor()).unwrap(), record);
        let plain = UploadRecord::new(HashAlgorithm::Sha256, Expectations::default(), UNIX_EPOCH);
        assert_eq!(UploadRecord::from_cbor(&plain.to_cbor()).unwrap(), plain);
    }
}
