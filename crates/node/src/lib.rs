//! The Node.js binding of artifactstore-core: classes and functions that translate between
//! JavaScript and the core, and nothing else.

mod chunk;
mod convert;
mod ingest;
mod plane;
mod reader;

use napi_derive::napi;

pub use convert::NativeDigest;

/// Parses `"<algorithm>:<hex>"`; throws `"INVALID_ADDRESS: ..."` for anything else.
#[napi]
pub fn parse_address(address: String) -> napi::Result<NativeDigest> {
    convert::parse_address(&address).map(NativeDigest::from)
}
