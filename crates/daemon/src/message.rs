//! The CBOR payloads of the server's control frames ERROR and GOAWAY, in the SPEC's wire form.

use artifactstore_core::wire::cbor;
use artifactstore_core::wire::fields::{Fields, MapCodec};
use artifactstore_core::wire::Wire;

use crate::frame::{Frame, Kind};

/// `ERROR {code, message}`: a call's (or, on stream 0, the connection's) end, with a SPEC code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl MapCodec for ErrorBody {
    const NAME: &'static str = "ERROR";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![("code", cbor::text(&self.code)), ("message", cbor::text(&self.message))])
    }

    fn decode(fields: &mut Fields) -> artifactstore_core::Result<Self> {
        Ok(ErrorBody { code: fields.required("code")?.text()?, message: fields.required("message")?.text()? })
    }
}

/// `GOAWAY {code, message, last_stream_id}`: the connection takes no more calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    pub code: String,
    pub message: String,
    pub last_stream_id: u32,
}

impl MapCodec for GoAway {
    const NAME: &'static str = "GOAWAY";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![
            ("code", cbor::text(&self.code)),
            ("message", cbor::text(&self.message)),
            ("last_stream_id", cbor::unsigned(u64::from(self.last_stream_id))),
        ])
    }

    fn decode(fields: &mut Fields) -> artifactstore_core::Result<Self> {
        let code = fields.required("code")?.text()?;
        let message = fields.required("message")?.text()?;
        let last = fields.required("last_stream_id")?;
        let last_stream_id = u32::try_from(last.unsigned()?).unwrap_or(u32::MAX);
        Ok(GoAway { code, message, last_stream_id })
    }
}

pub fn error_frame(stream_id: u32, code: &str, message: impl Into<String>) -> Frame {
    let body = ErrorBody { code: code.to_owned(), message: message.into() };
    Frame::new(Kind::Error, stream_id, 0, body.to_cbor())
}

/// The ERROR frame for a core error: its code and message verbatim, as in-process.
pub fn core_error_frame(stream_id: u32, error: &artifactstore_core::Error) -> Frame {
    error_frame(stream_id, error.code(), error.to_string())
}

pub fn goaway_frame(code: &str, message: impl Into<String>, last_stream_id: u32) -> Frame {
    let body = GoAway { code: code.to_owned(), message: message.into(), last_stream_id };
    Frame::new(Kind::GoAway, 0, 0, body.to_cbor())
}
