//! HELLO both ways and the choice of protocol version. The client's HELLO may carry fields a later
//! version adds; this version reads `magic` and `versions` and ignores the rest.

use artifactstore_core::wire::cbor::{self, Value};
use artifactstore_core::wire::fields::{Field, Fields, MapCodec};

use crate::frame::{Frame, Kind};

pub const MAGIC: &str = "artifactstore-data-plane";
/// The protocol versions this daemon speaks, oldest first.
pub const VERSIONS: [u64; 1] = [1];
/// At most this many versions are read from a client's HELLO.
const MAX_CLIENT_VERSIONS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    pub magic: String,
    pub versions: Vec<u64>,
}

/// The server's HELLO: the chosen version and the limits the client must keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    pub version: u64,
    pub max_frame_bytes: u32,
    pub window_bytes: u32,
    pub max_calls: u32,
    pub boot_id: String,
}

/// Why a handshake failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not our protocol: the connection ends with GOAWAY.
    Violation(String),
    /// Our protocol, but no version in common: ERROR `BACKEND_UNAVAILABLE` on stream 0.
    NoCommonVersion(String),
}

impl ClientHello {
    pub fn decode(payload: &[u8]) -> Result<Self, String> {
        let item = cbor::decode(payload).map_err(|e| format!("HELLO: {e}"))?;
        let Value::Map(entries) = item.value else { return Err("HELLO must be a CBOR map".into()) };
        let (mut magic, mut versions) = (None, None);
        for (key, item) in entries {
            let field = Field::root(&format!("HELLO.{key}"), item);
            match key.as_str() {
                "magic" => magic = Some(field.text().map_err(|e| e.to_string())?),
                "versions" => versions = Some(versions_of(field).map_err(|e| e.to_string())?),
                _ => {}
            }
        }
        let magic = magic.ok_or("HELLO lacks the field \"magic\"")?;
        let versions = versions.ok_or("HELLO lacks the field \"versions\"")?;
        Ok(ClientHello { magic, versions })
    }
}

fn versions_of(field: Field) -> artifactstore_core::Result<Vec<u64>> {
    field.array()?.into_iter().take(MAX_CLIENT_VERSIONS).map(Field::unsigned).collect()
}

/// Checks the first frame of a connection and picks the newest version both sides speak.
pub fn negotiate(first: &Frame) -> Result<u64, Refusal> {
    if first.kind != Kind::Hello || first.stream_id != 0 {
        let (kind, stream) = (first.kind.name(), first.stream_id);
        return Err(Refusal::Violation(format!("expected HELLO on stream 0 first, got {kind} on stream {stream}")));
    }
    let hello = ClientHello::decode(&first.payload).map_err(Refusal::Violation)?;
    if hello.magic != MAGIC {
        return Err(Refusal::Violation(format!("HELLO magic {:?} is not {MAGIC:?}", hello.magic)));
    }
    VERSIONS.iter().rev().copied().find(|v| hello.versions.contains(v)).ok_or_else(|| {
        Refusal::NoCommonVersion(format!(
            "no common protocol version: the client speaks {:?}, this daemon {:?}",
            hello.versions, VERSIONS
        ))
    })
}

impl MapCodec for ClientHello {
    const NAME: &'static str = "HELLO";

    fn encode(&self) -> Vec<u8> {
        let versions = self.versions.iter().map(|&v| cbor::unsigned(v)).collect();
        cbor::map(vec![("magic", cbor::text(&self.magic)), ("versions", cbor::array(versions))])
    }

    fn decode(fields: &mut Fields) -> artifactstore_core::Result<Self> {
        let magic = fields.required("magic")?.text()?;
        let versions = versions_of(fields.required("versions")?)?;
        Ok(ClientHello { magic, versions })
    }
}

impl MapCodec for ServerHello {
    const NAME: &'static str = "HELLO";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![
            ("version", cbor::unsigned(self.version)),
            ("max_frame_bytes", cbor::unsigned(self.max_frame_bytes.into())),
            ("window_bytes", cbor::unsigned(self.window_bytes.into())),
            ("max_calls", cbor::unsigned(self.max_calls.into())),
            ("boot_id", cbor::text(&self.boot_id)),
        ])
    }

    fn decode(fields: &mut Fields) -> artifactstore_core::Result<Self> {
        let small = |field: Field| -> artifactstore_core::Result<u32> {
            let value = field.unsigned()?;
            Ok(u32::try_from(value).unwrap_or(u32::MAX))
        };
        Ok(ServerHello {
            version: fields.required("version")?.unsigned()?,
            max_frame_bytes: small(fields.required("max_frame_bytes")?)?,
            window_bytes: small(fields.required("window_bytes")?)?,
            max_calls: small(fields.required("max_calls")?)?,
            boot_id: fields.required("boot_id")?.text()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artifactstore_core::wire::Wire;

    fn hello(versions: Vec<u64>) -> Frame {
        Frame::new(Kind::Hello, 0, 0, ClientHello { magic: MAGIC.into(), versions }.to_cbor())
    }

    #[test]
    fn the_newest_common_version_is_chosen() {
        assert_eq!(negotiate(&hello(vec![1, 2])), Ok(1));
        let Err(Refusal::NoCommonVersion(message)) = negotiate(&hello(vec![2, 3])) else { panic!() };
        assert_eq!(message, "no common protocol version: the client speaks [2, 3], this daemon [1]");
    }

    #[test]
    fn anything_but_our_hello_first_is_a_violation() {
        let request = Frame::new(Kind::Request, 1, 0, &b""[..]);
        let Err(Refusal::Violation(message)) = negotiate(&request) else { panic!() };
        assert_eq!(message, "expected HELLO on stream 0 first, got REQUEST on stream 1");
        let stranger = ClientHello { magic: "http".into(), versions: vec![1] }.to_cbor();
        assert!(matches!(negotiate(&Frame::new(Kind::Hello, 0, 0, stranger)), Err(Refusal::Violation(_))));
        assert!(matches!(negotiate(&Frame::new(Kind::Hello, 0, 0, vec![0xff])), Err(Refusal::Violation(_))));
    }

    #[test]
    fn fields_of_later_versions_are_ignored() {
        let later = cbor::map(vec![
            ("magic", cbor::text(MAGIC)),
            ("versions", cbor::array(vec![cbor::unsigned(1)])),
            ("features", cbor::array(vec![cbor::text("fd_serve")])),
        ]);
        assert_eq!(negotiate(&Frame::new(Kind::Hello, 0, 0, later)), Ok(1));
    }
}
