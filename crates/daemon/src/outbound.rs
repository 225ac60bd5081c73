//! The connection's one writer: frames from the connection and from every call go through one
//! queue to the socket, so they never interleave, and a peer that reads nothing costs a bounded
//! queue and, after the stall timeout, its connection. A DATA payload goes to the socket as the
//! `Bytes` the core produced, beside its header in one vectored write: never copied.

use std::io::IoSlice;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Encoder;
use tokio_util::sync::CancellationToken;

use crate::frame::{header, Frame, FrameCodec, MAX_FRAME_BYTES};

/// Frames queued for the socket per connection; calls wait for room (each call's DATA is also
/// bounded by its credit).
pub const QUEUE_FRAMES: usize = 16;
/// Payloads up to this size are copied beside their header; larger ones are written in place.
const COPIED_PAYLOAD: usize = 4096;
/// At most this many pieces go into one vectored write (well under the kernel's IOV_MAX).
const PIECES_PER_WRITE: usize = 64;

pub type Outbox = mpsc::Sender<Frame>;

pub struct Writer {
    pub outbox: Outbox,
    /// A frame sent here is the connection's last (GOAWAY, a connection ERROR): nothing queued
    /// after or still queued is written. Dropped unused, the writer writes all that is queued.
    pub last: oneshot::Sender<Frame>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the writer; `failed` is cancelled when the socket cannot be written to in time. The
/// writer ends, shutting down its half of the socket, after the last frame or once every
/// [`Outbox`] is dropped.
pub fn start(socket: OwnedWriteHalf, stall: Duration, failed: CancellationToken) -> Writer {
    let (outbox, frames) = mpsc::channel(QUEUE_FRAMES);
    let (last, last_frame) = oneshot::channel();
    Writer { outbox, last, task: tokio::spawn(write(socket, frames, last_frame, stall, failed)) }
}

async fn write(
    mut socket: OwnedWriteHalf,
    mut frames: mpsc::Receiver<Frame>,
    mut last_frame: oneshot::Receiver<Frame>,
    stall: Duration,
    failed: CancellationToken,
) {
    let mut last_may_come = true;
    loop {
        let frame = tokio::select! {
            biased;
            last = &mut last_frame, if last_may_come => match last {
                Ok(frame) => {
                    let _ = tokio::time::timeout(stall, write_pieces(&mut socket, pieces(frame))).await;
                    break;
                }
                Err(_) => {
                    last_may_come = false;
                    continue;
                }
            },
            frame = frames.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
        };
        let mut batch = pieces(frame);
        while batch.len() < PIECES_PER_WRITE {
            let Ok(frame) = frames.try_recv() else { break };
            batch.extend(pieces(frame));
        }
        if !matches!(tokio::time::timeout(stall, write_pieces(&mut socket, batch)).await, Ok(Ok(()))) {
            failed.cancel();
            return;
        }
    }
    let _ = tokio::time::timeout(stall, socket.shutdown()).await;
}

/// A frame as the pieces it is written in: header and small payload together, a large payload
/// on its own.
fn pieces(frame: Frame) -> Vec<Bytes> {
    if frame.payload.len() <= COPIED_PAYLOAD {
        let mut wire = BytesMut::new();
        let mut codec = FrameCodec { max_payload: MAX_FRAME_BYTES };
        // Only payloads of our own making come here, none over the limit.
        if codec.encode(frame, &mut wire).is_err() {
            return Vec::new();
        }
        return vec![wire.freeze()];
    }
    let length = u32::try_from(frame.payload.len()).unwrap_or(u32::MAX);
    vec![Bytes::copy_from_slice(&header(&frame, length)), frame.payload]
}

async fn write_pieces(socket: &mut OwnedWriteHalf, mut pieces: Vec<Bytes>) -> std::io::Result<()> {
    let mut first = 0;
    while first < pieces.len() {
        let slices: Vec<IoSlice<'_>> = pieces[first..].iter().map(|piece| IoSlice::new(piece)).collect();
        let mut written = socket.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let piece = &mut pieces[first];
            let taken = written.min(piece.len());
            piece.advance(taken);
            written -= taken;
            if piece.is_empty() {
                first += 1;
            }
        }
    }
    Ok(())
}
