//! Frames: a 12-byte header (`u32 length | u32 stream_id | u8 type | u8 flags | u16 reserved`,
//! big-endian) and `length` bytes of payload, read and written by a tokio-util codec. The decoder
//! checks the whole header -- type, flags, reserved bits, length against the limit -- before it
//! reserves room for a payload, so a hostile length costs nothing. What a frame means is not its
//! business (see `connection`).

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

pub const HEADER_LEN: usize = 12;
/// The largest payload after HELLO (the server's `max_frame_bytes`).
pub const MAX_FRAME_BYTES: u32 = 1 << 20;
/// The largest payload before HELLO: a HELLO is a few dozen bytes.
pub const MAX_FRAME_BYTES_BEFORE_HELLO: u32 = 64 << 10;
/// The server cuts served chunks into DATA frames of at most this many bytes.
pub const MAX_DATA_PAYLOAD: usize = 256 << 10;

/// `END` on DATA: the last DATA frame of this direction of this call.
pub const END: u8 = 0x01;
/// `OPEN` on REQUEST: the client sends DATA for this call.
pub const OPEN: u8 = 0x02;
/// `MORE` on RESPONSE: DATA follows.
pub const MORE: u8 = 0x02;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Hello = 1,
    Request = 2,
    Response = 3,
    Data = 4,
    Error = 5,
    Cancel = 6,
    Window = 7,
    GoAway = 8,
    Ping = 9,
    Pong = 10,
}

impl Kind {
    pub fn from_u8(value: u8) -> Option<Kind> {
        const ALL: [Kind; 10] = [
            Kind::Hello,
            Kind::Request,
            Kind::Response,
            Kind::Data,
            Kind::Error,
            Kind::Cancel,
            Kind::Window,
            Kind::GoAway,
            Kind::Ping,
            Kind::Pong,
        ];
        ALL.into_iter().find(|kind| *kind as u8 == value)
    }

    /// The flag bits defined for this type; any other bit is a violation.
    pub fn allowed_flags(self) -> u8 {
        match self {
            Kind::Data => END,
            Kind::Request => OPEN,
            Kind::Response => MORE,
            _ => 0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Hello => "HELLO",
            Kind::Request => "REQUEST",
            Kind::Response => "RESPONSE",
            Kind::Data => "DATA",
            Kind::Error => "ERROR",
            Kind::Cancel => "CANCEL",
            Kind::Window => "WINDOW",
            Kind::GoAway => "GOAWAY",
            Kind::Ping => "PING",
            Kind::Pong => "PONG",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub stream_id: u32,
    pub kind: Kind,
    pub flags: u8,
    pub payload: Bytes,
}

impl Frame {
    pub fn new(kind: Kind, stream_id: u32, flags: u8, payload: impl Into<Bytes>) -> Self {
        Frame { stream_id, kind, flags, payload: payload.into() }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A header the decoder refuses; each one ends the connection.
#[derive(Debug)]
pub enum FrameError {
    TooLong { length: u32, max: u32 },
    UnknownType(u8),
    UnknownFlags { kind: Kind, flags: u8 },
    Reserved(u16),
    Io(std::io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { length, max } => {
                write!(f, "frame length {length} exceeds the limit of {max} bytes")
            }
            FrameError::UnknownType(kind) => write!(f, "unknown frame type {kind}"),
            FrameError::UnknownFlags { kind, flags } => {
                write!(f, "unknown flags 0x{flags:02x} on a {} frame", kind.name())
            }
            FrameError::Reserved(bits) => write!(f, "reserved header bits 0x{bits:04x} are not zero"),
            FrameError::Io(e) => write!(f, "reading a frame: {e}"),
        }
    }
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// The codec for one connection; `max_payload` grows from the pre-HELLO limit once HELLO is done.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    pub max_payload: u32,
}

impl FrameCodec {
    pub fn before_hello() -> Self {
        FrameCodec { max_payload: MAX_FRAME_BYTES_BEFORE_HELLO }
    }
}

struct Header {
    length: u32,
    stream_id: u32,
    kind: Kind,
    flags: u8,
}

impl FrameCodec {
    fn header(&self, mut raw: &[u8]) -> Result<Header, FrameError> {
        let length = raw.get_u32();
        let stream_id = raw.get_u32();
        let (kind, flags, reserved) = (raw.get_u8(), raw.get_u8(), raw.get_u16());
        let kind = Kind::from_u8(kind).ok_or(FrameError::UnknownType(kind))?;
        if flags & !kind.allowed_flags() != 0 {
            return Err(FrameError::UnknownFlags { kind, flags });
        }
        if reserved != 0 {
            return Err(FrameError::Reserved(reserved));
        }
        if length > self.max_payload {
            return Err(FrameError::TooLong { length, max: self.max_payload });
        }
        Ok(Header { length, stream_id, kind, flags })
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(raw) = src.get(..HEADER_LEN) else { return Ok(None) };
        let header = self.header(raw)?;
        let total = HEADER_LEN + header.length as usize;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let payload = src.split_to(header.length as usize).freeze();
        Ok(Some(Frame { stream_id: header.stream_id, kind: header.kind, flags: header.flags, payload }))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        let length = u32::try_from(frame.payload.len())
            .ok()
            .filter(|&length| length <= self.max_payload)
            .ok_or_else(|| std::io::Error::other(format!("a {}-byte payload is too long", frame.payload.len())))?;
        dst.reserve(HEADER_LEN + frame.payload.len());
        dst.put_slice(&header(&frame, length));
        dst.extend_from_slice(&frame.payload);
        Ok(())
    }
}

/// The 12 header bytes of `frame`, whose payload is `length` bytes long.
pub fn header(frame: &Frame, length: u32) -> [u8; HEADER_LEN] {
    let mut raw = [0u8; HEADER_LEN];
    raw[0..4].copy_from_slice(&length.to_be_bytes());
    raw[4..8].copy_from_slice(&frame.stream_id.to_be_bytes());
    raw[8] = frame.kind as u8;
    raw[9] = frame.flags;
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(length: u32, stream: u32, kind: u8, flags: u8, reserved: u16) -> BytesMut {
        let mut raw = BytesMut::new();
        raw.put_u32(length);
        raw.put_u32(stream);
        raw.put_u8(kind);
        raw.put_u8(flags);
        raw.put_u16(reserved);
        raw
    }

    fn decode(raw: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        FrameCodec { max_payload: MAX_FRAME_BYTES }.decode(raw)
    }

    #[test]
    fn a_huge_length_is_refused_before_anything_is_allocated() {
        let mut raw = header(0xFFFF_FFFF, 1, Kind::Data as u8, 0, 0);
        let capacity = raw.capacity();
        let err = decode(&mut raw).unwrap_err();
        assert!(matches!(err, FrameError::TooLong { length: 0xFFFF_FFFF, max: MAX_FRAME_BYTES }), "{err}");
        assert_eq!(raw.capacity(), capacity);
        let mut just_over = header(MAX_FRAME_BYTES + 1, 1, Kind::Data as u8, 0, 0);
        assert!(matches!(decode(&mut just_over), Err(FrameError::TooLong { .. })));
    }

    #[test]
    fn unknown_types_flags_and_reserved_bits_are_refused() {
        for kind in [0u8, 11, 0xFF] {
            let err = decode(&mut header(0, 0, kind, 0, 0)).unwrap_err();
            assert!(matches!(err, FrameError::UnknownType(k) if k == kind), "{err}");
        }
        let err = decode(&mut header(0, 1, Kind::Data as u8, 0x02, 0)).unwrap_err();
        assert_eq!(err.to_string(), "unknown flags 0x02 on a DATA frame");
        let err = decode(&mut header(0, 0, Kind::Ping as u8, END, 0)).unwrap_err();
        assert!(matches!(err, FrameError::UnknownFlags { kind: Kind::Ping, .. }), "{err}");
        let err = decode(&mut header(0, 0, Kind::Hello as u8, 0, 0x0100)).unwrap_err();
        assert!(matches!(err, FrameError::Reserved(0x0100)), "{err}");
    }

    #[test]
    fn frames_round_trip_and_wait_for_their_last_byte() {
        let frame = Frame::new(Kind::Request, 7, OPEN, &b"payload"[..]);
        let mut codec = FrameCodec { max_payload: MAX_FRAME_BYTES };
        let mut wire = BytesMut::new();
        codec.encode(frame.clone(), &mut wire).unwrap();
        assert_eq!(&wire[..HEADER_LEN], &[0, 0, 0, 7, 0, 0, 0, 7, 2, 2, 0, 0]);
        let mut partial = BytesMut::from(&wire[..wire.len() - 1]);
        assert_eq!(codec.decode(&mut partial).unwrap(), None);
        assert_eq!(codec.decode(&mut wire).unwrap(), Some(frame));
        assert!(wire.is_empty());
    }

    #[test]
    fn the_limit_before_hello_is_64_kib() {
        let mut raw = header(MAX_FRAME_BYTES_BEFORE_HELLO + 1, 0, Kind::Hello as u8, 0, 0);
        assert!(matches!(FrameCodec::before_hello().decode(&mut raw), Err(FrameError::TooLong { .. })));
    }
}
