//! The connection's one writer: frames from the connection and from every call go through one
//! queue to the socket, so they never interleave, and a peer that reads nothing costs a bounded
//! queue and, after the stall timeout, its connection.

use std::time::Duration;

use futures::SinkExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::codec::FramedWrite;
use tokio_util::sync::CancellationToken;

use crate::frame::{Frame, FrameCodec, MAX_FRAME_BYTES};

/// Frames queued for the socket per connection; calls wait for room (each call's DATA is also
/// bounded by its credit).
pub const QUEUE_FRAMES: usize = 16;

pub type Outbox = mpsc::Sender<Frame>;

/// Starts the writer; `failed` is cancelled when the socket cannot be written to in time. The
/// writer ends, closing its half of the socket, once every [`Outbox`] is dropped.
pub fn start(
    socket: OwnedWriteHalf,
    stall: Duration,
    failed: CancellationToken,
) -> (Outbox, tokio::task::JoinHandle<()>) {
    let (outbox, frames) = mpsc::channel(QUEUE_FRAMES);
    let sink = FramedWrite::new(socket, FrameCodec { max_payload: MAX_FRAME_BYTES });
    (outbox, tokio::spawn(write(sink, frames, stall, failed)))
}

async fn write(
    mut sink: FramedWrite<OwnedWriteHalf, FrameCodec>,
    mut frames: mpsc::Receiver<Frame>,
    stall: Duration,
    failed: CancellationToken,
) {
    while let Some(frame) = frames.recv().await {
        let batch = async {
            sink.feed(frame).await?;
            while let Ok(frame) = frames.try_recv() {
                sink.feed(frame).await?;
            }
            sink.flush().await
        };
        if !matches!(tokio::time::timeout(stall, batch).await, Ok(Ok(()))) {
            failed.cancel();
            return;
        }
    }
    let _ = tokio::time::timeout(stall, sink.close()).await;
}
