//! The connection's one writer: frames from the connection and from every call go through one
//! queue to the socket, so they never interleave, and a peer that reads nothing costs a bounded
//! queue and, after the stall timeout, its connection.

use std::time::Duration;

use futures::SinkExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedWrite;
use tokio_util::sync::CancellationToken;

use crate::frame::{Frame, FrameCodec, MAX_FRAME_BYTES};

/// Frames queued for the socket per connection; calls wait for room (each call's DATA is also
/// bounded by its credit).
pub const QUEUE_FRAMES: usize = 16;

pub type Outbox = mpsc::Sender<Frame>;
type Sink = FramedWrite<OwnedWriteHalf, FrameCodec>;

pub struct Writer {
    pub outbox: Outbox,
    /// A frame sent here is the connection's last (GOAWAY, a connection ERROR): nothing queued
    /// after or still queued is written. Dropped unused, the writer writes all that is queued.
    pub last: oneshot::Sender<Frame>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the writer; `failed` is cancelled when the socket cannot be written to in time. The
/// writer ends, closing its half of the socket, after the last frame or once every [`Outbox`]
/// is dropped.
pub fn start(socket: OwnedWriteHalf, stall: Duration, failed: CancellationToken) -> Writer {
    let (outbox, frames) = mpsc::channel(QUEUE_FRAMES);
    let (last, last_frame) = oneshot::channel();
    let sink = FramedWrite::new(socket, FrameCodec { max_payload: MAX_FRAME_BYTES });
    Writer { outbox, last, task: tokio::spawn(write(sink, frames, last_frame, stall, failed)) }
}

async fn write(
    mut sink: Sink,
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
                    let _ = tokio::time::timeout(stall, sink.send(frame)).await;
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
        if !matches!(tokio::time::timeout(stall, write_batch(&mut sink, &mut frames, frame)).await, Ok(Ok(()))) {
            failed.cancel();
            return;
        }
    }
    let _ = tokio::time::timeout(stall, sink.close()).await;
}

/// Writes `first` and whatever else is queued already, then flushes once.
async fn write_batch(sink: &mut Sink, frames: &mut mpsc::Receiver<Frame>, first: Frame) -> std::io::Result<()> {
    sink.feed(first).await?;
    while let Ok(frame) = frames.try_recv() {
        sink.feed(frame).await?;
    }
    sink.flush().await
}
