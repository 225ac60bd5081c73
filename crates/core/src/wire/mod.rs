//! The daemon's wire format: deterministic CBOR for every SPEC type the core has, byte for byte
//! what `encodeCbor` in `lib/cbor.ts` produces for the same value.
//!
//! - Map keys are the snake_case field names, sorted by their encoded bytes (RFC 8949 §4.2.1:
//!   shorter keys first, then bytewise); absent optional fields are left out, never null.
//! - A digest is the map `{algorithm: text, digest: bytes(32)}`.
//! - Every number is an unsigned CBOR integer in its shortest form, at any size up to `u64::MAX`
//!   (`lib/cbor.ts` itself stops at 2^53 - 1, beyond any size or latency the data plane reports).
//! - `stored_at` travels as the text `StorageReceipt::stored_at_rfc3339` gives (UTC, milliseconds),
//!   so a receipt comes back with its time truncated to the millisecond.
//!
//! Decoding is strict: it accepts only what encoding produces, so whatever it accepts re-encodes
//! to the same bytes. Indefinite lengths, non-shortest forms, unsorted or duplicate keys, unknown or
//! missing fields, floats, null, tags, negative integers, trailing or missing bytes and nesting
//! deeper than 64 containers are all rejected with `INVALID_ARGUMENT`, naming the byte offset.

pub mod cbor;
pub mod fields;
mod requests;
mod types;

use crate::error::Result;
use crate::identity::Digest;

use fields::{Field, MapCodec};

/// A type with a CBOR form on the wire.
pub trait Wire: Sized {
    fn to_cbor(&self) -> Vec<u8>;
    fn from_cbor(bytes: &[u8]) -> Result<Self>;
}

impl<T: MapCodec> Wire for T {
    fn to_cbor(&self) -> Vec<u8> {
        self.encode()
    }

    fn from_cbor(bytes: &[u8]) -> Result<Self> {
        Field::root(T::NAME, cbor::decode(bytes)?).decode()
    }
}

/// A list of addresses (what `findMissing` returns): an array of digests.
impl Wire for Vec<Digest> {
    fn to_cbor(&self) -> Vec<u8> {
        cbor::array(self.iter().map(MapCodec::encode).collect())
    }

    fn from_cbor(bytes: &[u8]) -> Result<Self> {
        let items = Field::root("addresses", cbor::decode(bytes)?).array()?;
        items.into_iter().map(Field::decode).collect()
    }
}
