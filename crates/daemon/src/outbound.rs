//! The connection's way out: frames from the connection and from every call reach the socket one
//! whole frame after another, never interleaved, and a peer that reads nothing costs a bounded
//! queue and, after the stall timeout, its connection. A frame sent while nothing else waits to be
//! written goes to the socket at once from the sender's task (a small call's answer then wakes no
//! other task); otherwise it joins the writer task's queue, whose frames leave in vectored writes.
//! A DATA payload goes to the socket as the `Bytes` the core produced, beside its header: never
//! copied.

use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot, Mutex};
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

/// The connection is gone: the frame was not sent.
#[derive(Debug)]
pub struct Gone;

/// The socket's write half, and what a sender's task could not write of its frame at once.
struct Socket {
    half: OwnedWriteHalf,
    /// The end of a frame begun by a sender's task; written before anything else.
    rest: Vec<Bytes>,
}

/// What the senders and the writer task share.
struct Shared {
    socket: Mutex<Socket>,
    /// Frames sent and not yet written in full. A frame goes to the socket at once only when this
    /// is 0, so no frame overtakes one sent before it.
    unwritten: AtomicUsize,
    /// The last frame has been taken: nothing more is written.
    closed: AtomicBool,
}

/// What the writer task is handed.
enum Outgoing {
    Frame(Frame),
    /// A sender's task left the end of its frame in [`Socket::rest`].
    Rest,
}

/// Where a call (or the connection) sends its frames.
#[derive(Clone)]
pub struct Outbox {
    queue: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
}

impl Outbox {
    /// Sends `frame`, written whole before any frame sent after it; waits while the queue is full.
    pub async fn send(&self, frame: Frame) -> Result<(), Gone> {
        let Some(frame) = self.write_now(frame) else { return Ok(()) };
        self.shared.unwritten.fetch_add(1, Ordering::AcqRel);
        if self.queue.send(Outgoing::Frame(frame)).await.is_err() {
            self.shared.unwritten.fetch_sub(1, Ordering::AcqRel);
            return Err(Gone);
        }
        Ok(())
    }

    /// Writes `frame` from this task, as much as the socket takes without waiting, when nothing
    /// waits to be written and no write is under way (what it does not take is the writer's);
    /// gives the frame back otherwise. Never waits, so a send dropped unfinished leaves no part
    /// of a frame behind.
    fn write_now(&self, frame: Frame) -> Option<Frame> {
        let shared = &self.shared;
        let Ok(mut socket) = shared.socket.try_lock() else { return Some(frame) };
        if shared.unwritten.load(Ordering::Acquire) != 0 {
            return Some(frame);
        }
        if shared.closed.load(Ordering::Acquire) {
            return None; // as a frame queued after the last one: dropped
        }
        let mut pieces = pieces(frame);
        let slices: Vec<IoSlice<'_>> = pieces.iter().map(|piece| IoSlice::new(piece)).collect();
        let written = socket.half.try_write_vectored(&slices).unwrap_or(0);
        advance(&mut pieces, written);
        if !pieces.is_empty() {
            socket.rest = pieces;
            shared.unwritten.fetch_add(1, Ordering::AcqRel);
            // A full queue holds frames already, and the writer writes the rest before them.
            let _ = self.queue.try_send(Outgoing::Rest);
        }
        None
    }
}

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
    let (queue, frames) = mpsc::channel(QUEUE_FRAMES);
    let (last, last_frame) = oneshot::channel();
    let shared = Arc::new(Shared {
        socket: Mutex::new(Socket { half: socket, rest: Vec::new() }),
        unwritten: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
    });
    let task = tokio::spawn(write(shared.clone(), frames, last_frame, stall, failed));
    Writer { outbox: Outbox { queue, shared }, last, task }
}

async fn write(
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<Outgoing>,
    mut last_frame: oneshot::Receiver<Frame>,
    stall: Duration,
    failed: CancellationToken,
) {
    let mut last_may_come = true;
    loop {
        let first = tokio::select! {
            biased;
            last = &mut last_frame, if last_may_come => match last {
                Ok(frame) => {
                    let mut socket = shared.socket.lock().await;
                    shared.closed.store(true, Ordering::Release);
                    let mut batch = std::mem::take(&mut socket.rest);
                    batch.extend(pieces(frame));
                    let _ = tokio::time::timeout(stall, write_pieces(&mut socket.half, batch)).await;
                    break;
                }
                Err(_) => {
                    last_may_come = false;
                    continue;
                }
            },
            outgoing = queue.recv() => match outgoing {
                Some(outgoing) => outgoing,
                None => break,
            },
        };
        let (mut batch, mut frames) = (Vec::new(), 0);
        let mut next = Some(first);
        while let Some(outgoing) = next {
            if let Outgoing::Frame(frame) = outgoing {
                batch.extend(pieces(frame));
                frames += 1;
            }
            next = if batch.len() < PIECES_PER_WRITE { queue.try_recv().ok() } else { None };
        }
        let mut socket = shared.socket.lock().await;
        let mut pieces = std::mem::take(&mut socket.rest);
        let count = frames + usize::from(!pieces.is_empty());
        pieces.extend(batch);
        let written = tokio::time::timeout(stall, write_pieces(&mut socket.half, pieces)).await;
        shared.unwritten.fetch_sub(count, Ordering::AcqRel);
        if !matches!(written, Ok(Ok(()))) {
            shared.closed.store(true, Ordering::Release);
            failed.cancel();
            return;
        }
    }
    let mut socket = shared.socket.lock().await;
    shared.closed.store(true, Ordering::Release);
    let rest = std::mem::take(&mut socket.rest);
    let _ = tokio::time::timeout(stall, async {
        write_pieces(&mut socket.half, rest).await?;
        socket.half.shutdown().await
    })
    .await;
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

/// Drops the first `written` bytes of `pieces`, and the pieces thereby emptied.
fn advance(pieces: &mut Vec<Bytes>, mut written: usize) {
    let mut emptied = 0;
    for piece in pieces.iter_mut() {
        let taken = written.min(piece.len());
        piece.advance(taken);
        written -= taken;
        if !piece.is_empty() {
            break;
        }
        emptied += 1;
    }
    pieces.drain(..emptied);
}

async fn write_pieces(socket: &mut OwnedWriteHalf, mut pieces: Vec<Bytes>) -> std::io::Result<()> {
    while !pieces.is_empty() {
        let slices: Vec<IoSlice<'_>> = pieces.iter().map(|piece| IoSlice::new(piece)).collect();
        let written = socket.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        advance(&mut pieces, written);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio_util::codec::FramedRead;

    use super::*;
    use crate::frame::Kind;

    /// Calls sending at once, small and large frames, to a peer that reads slowly: the frames
    /// written at once and the queued ones never overtake one another within a stream, and every
    /// frame arrives whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_of_each_stream_arrive_whole_and_in_order() {
        const STREAMS: u32 = 4;
        const FRAMES: u32 = 200;
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let (_read, write) = ours.into_split();
        let writer = start(write, Duration::from_secs(10), CancellationToken::new());
        let senders: Vec<_> = (0..STREAMS)
            .map(|stream| {
                let outbox = writer.outbox.clone();
                tokio::spawn(async move {
                    for seq in 0..FRAMES {
                        // Every seventh frame large enough to fill the socket and be written in part.
                        let size = if seq % 7 == 0 { 300_000 } else { 40 };
                        let mut payload = vec![stream as u8; size];
                        payload[..4].copy_from_slice(&seq.to_be_bytes());
                        outbox.send(Frame::new(Kind::Data, stream * 2 + 1, 0, payload)).await.unwrap();
                    }
                })
            })
            .collect();
        drop(writer.outbox);
        drop(writer.last);
        let mut frames = FramedRead::new(theirs, FrameCodec { max_payload: MAX_FRAME_BYTES });
        let mut next = vec![0u32; STREAMS as usize];
        while let Some(frame) = frames.next().await {
            let frame = frame.unwrap();
            let stream = (frame.stream_id - 1) / 2;
            let seq = u32::from_be_bytes(frame.payload[..4].try_into().unwrap());
            assert_eq!(seq, next[stream as usize], "stream {stream} out of order");
            assert!(
                frame.payload[4..].iter().all(|&b| b == stream as u8),
                "a frame of stream {stream} mixed with another"
            );
            next[stream as usize] += 1;
            if seq % 5 == 0 {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        assert_eq!(next, vec![FRAMES; STREAMS as usize]);
        for sender in senders {
            sender.await.unwrap();
        }
        writer.task.await.unwrap();
    }
}
