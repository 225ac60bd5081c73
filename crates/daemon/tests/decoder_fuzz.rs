//! Property tests over what a peer's bytes meet first: the frame decoder, the HELLO and REQUEST
//! decoders. Whatever the bytes and however they are split, nothing panics, every frame respects
//! the limit, and the decoder's buffer never grows past one frame.

use artifactstore_daemon::dispatch;
use artifactstore_daemon::frame::{Frame, FrameCodec, HEADER_LEN, MAX_FRAME_BYTES, MAX_FRAME_BYTES_BEFORE_HELLO};
use artifactstore_daemon::handshake;
use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

/// Feeds `bytes` in pieces of the given sizes and decodes what it can; the frames, and whether
/// the decoder refused the stream.
fn decode_all(bytes: &[u8], pieces: &[usize], max_payload: u32) -> (Vec<Frame>, bool) {
    let mut codec = FrameCodec { max_payload };
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = bytes;
    for &size in pieces.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        buffer.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
        let bound = HEADER_LEN + max_payload as usize + 2 * bytes.len() + 64;
        assert!(buffer.capacity() <= bound, "buffer of {} bytes for {} fed", buffer.capacity(), bytes.len());
    }
    (frames, false)
}

/// What the daemon does with a frame's payload before any call starts.
fn interpret(frame: &Frame) {
    let _ = handshake::negotiate(frame);
    let _ = handshake::ClientHello::decode(&frame.payload);
    let _ = dispatch::request(&frame.payload);
}

/// Bytes that CBOR decoders find interesting: heads of every major type, long and indefinite
/// lengths, deep nesting, floats, tags (half of the bytes drawn from these).
fn cbor_ish() -> impl Strategy<Value = Vec<u8>> {
    const HEADS: [u8; 16] =
        [0x81, 0x9f, 0xa1, 0xbf, 0x61, 0x78, 0x1b, 0x5a, 0xff, 0xfb, 0xf6, 0xc0, 0x20, 0x00, 0xf5, 0x99];
    vec(any::<u8>(), 0..200).prop_map(|raw| {
        raw.chunks(2)
            .map(|pair| if pair[0] & 1 == 0 { HEADS[usize::from(pair[0] >> 4)] } else { *pair.last().unwrap_or(&0) })
            .collect()
    })
}

fn framed(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut wire = (payload.len() as u32).to_be_bytes().to_vec();
    wire.extend(stream.to_be_bytes());
    wire.extend([kind, flags, 0, 0]);
    wire.extend(payload);
    wire
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_and_never_grow_the_buffer_past_a_frame(
        bytes in vec(any::<u8>(), 0..4096),
        pieces in vec(1usize..700, 1..12),
        before_hello in any::<bool>(),
    ) {
        let max = if before_hello { MAX_FRAME_BYTES_BEFORE_HELLO } else { MAX_FRAME_BYTES };
        let (frames, _) = decode_all(&bytes, &pieces, max);
        for frame in &frames {
            prop_assert!(frame.payload.len() <= max as usize);
            interpret(frame);
        }
    }

    #[test]
    fn well_framed_random_payloads_never_panic_the_hello_and_request_decoders(
        frames in vec((1u8..=10, 0u8..=3, 0u32..8, cbor_ish()), 1..8),
        pieces in vec(1usize..64, 1..6),
    ) {
        let wire: Vec<u8> = frames.iter().flat_map(|(kind, flags, stream, payload)| framed(*kind, *flags, *stream, payload)).collect();
        let (decoded, _) = decode_all(&wire, &pieces, MAX_FRAME_BYTES);
        decoded.iter().for_each(interpret);
    }
}
