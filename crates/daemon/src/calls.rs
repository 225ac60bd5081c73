//! Each call as a task of its own, so that a slow disk or a paused reader stalls only its call:
//! a unary call answers once; an ingest feeds the client's DATA to the core and grants credit as
//! the core accepts it; a serve sends the reader's chunks as DATA within the client's credit.
//! Every call ends with exactly one final frame, and a CANCEL (or the connection's end) stops it.

use std::sync::Arc;

use std::collections::VecDeque;

use artifactstore_core::wire::Wire;
use artifactstore_core::{AppendRequest, Bytes, DataPlane, Ingest, IngestRequest, IngestResult, Served};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::credit::{Inbound, Outbound};
use crate::dispatch::{BytesIn, Pending};
use crate::frame::{Frame, Kind, END, MAX_DATA_PAYLOAD, MORE};
use crate::message::{core_error_frame, error_frame};
use crate::outbound::Outbox;

/// A call's task, as the connection spawns it.
pub type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// What the connection's reader hands an ingest.
pub enum Upload {
    Chunk(Bytes),
    /// The client's DATA with END: the stream is complete.
    End,
}

/// What every call has: its stream, the way out, and its cancellation.
pub struct CallContext {
    pub stream_id: u32,
    pub outbox: Outbox,
    pub cancel: CancellationToken,
    pub window: u32,
}

impl CallContext {
    async fn send(&self, frame: Frame) {
        // A closed outbox means the connection is gone and `cancel` fires soon.
        let _ = self.outbox.send(frame).await;
    }

    async fn aborted(&self) {
        self.send(error_frame(self.stream_id, "ABORTED", "the call was cancelled")).await;
    }

    async fn respond(&self, flags: u8, payload: Vec<u8>) {
        self.send(Frame::new(Kind::Response, self.stream_id, flags, payload)).await;
    }

    async fn fail(&self, error: &artifactstore_core::Error) {
        self.send(core_error_frame(self.stream_id, error)).await;
    }
}

pub async fn unary(ctx: CallContext, call: Pending<Vec<u8>>) {
    tokio::select! {
        result = call => match result {
            Ok(payload) => ctx.respond(0, payload).await,
            Err(error) => ctx.fail(&error).await,
        },
        _ = ctx.cancel.cancelled() => ctx.aborted().await,
    }
}

enum Fed {
    End,
    /// The core stopped taking chunks: `finish` says why.
    Stopped,
    Cancelled,
}

/// The client's DATA of one ingest, as the connection's reader passes it on.
pub struct Uploads {
    /// Taken from `rest` while looking for a whole object, not yet fed.
    early: VecDeque<Upload>,
    rest: mpsc::UnboundedReceiver<Upload>,
}

impl Uploads {
    pub fn new(rest: mpsc::UnboundedReceiver<Upload>) -> Self {
        Uploads { early: VecDeque::new(), rest }
    }

    async fn next(&mut self) -> Option<Upload> {
        match self.early.pop_front() {
            Some(upload) => Some(upload),
            None => self.rest.recv().await,
        }
    }

    /// The whole object, when its first DATA was also its last (what a client sends for anything
    /// up to a window): `Ok(None)` otherwise, `Err(())` when the connection is gone.
    async fn whole_object(&mut self) -> Result<Option<Bytes>, ()> {
        let first = self.rest.recv().await.ok_or(())?;
        let chunk = match first {
            Upload::End => return Ok(Some(Bytes::new())),
            Upload::Chunk(chunk) => chunk,
        };
        match self.rest.try_recv() {
            Ok(Upload::End) => Ok(Some(chunk)),
            Ok(second) => {
                self.early.extend([Upload::Chunk(chunk), second]);
                Ok(None)
            }
            Err(mpsc::error::TryRecvError::Empty) => {
                self.early.push_back(Upload::Chunk(chunk));
                Ok(None)
            }
            Err(mpsc::error::TryRecvError::Disconnected) => Err(()),
        }
    }
}

/// A call whose bytes the client sends: an ingest or an upload's append.
pub async fn ingest(ctx: CallContext, plane: Arc<DataPlane>, request: BytesIn, uploads: Uploads, credit: Arc<Inbound>) {
    match request {
        BytesIn::Object(request) => ingest_object(ctx, plane, request, uploads, credit).await,
        BytesIn::Append(request) => append(ctx, plane, request, uploads, credit).await,
    }
}

/// An append: the upload is locked and its offset checked first, then the client's bytes are fed
/// in; a cancelled append still saves what it took.
async fn append(
    ctx: CallContext,
    plane: Arc<DataPlane>,
    request: AppendRequest,
    uploads: Uploads,
    credit: Arc<Inbound>,
) {
    let begun = tokio::select! {
        begun = plane.begin_append(request) => begun,
        _ = ctx.cancel.cancelled() => return ctx.aborted().await,
    };
    let outcome = match begun {
        Err(error) => Err(error),
        Ok(append) => match streamed(&ctx, append, uploads, &credit).await {
            Some(outcome) => outcome,
            None => return,
        },
    };
    answer(&ctx, outcome).await
}

/// An ingest: stored in one step when its bytes came whole, streamed into the core otherwise.
async fn ingest_object(
    ctx: CallContext,
    plane: Arc<DataPlane>,
    request: IngestRequest,
    mut uploads: Uploads,
    credit: Arc<Inbound>,
) {
    let whole = tokio::select! {
        whole = uploads.whole_object() => whole,
        _ = ctx.cancel.cancelled() => Err(()),
    };
    let outcome = match whole {
        Err(()) => return ctx.aborted().await,
        Ok(Some(bytes)) => store_whole(&plane, bytes, request).await,
        Ok(None) => match plane.begin_ingest(request) {
            Err(error) => Err(error),
            Ok(ingest) => match streamed(&ctx, ingest, uploads, &credit).await {
                Some(outcome) => outcome,
                None => return,
            },
        },
    };
    answer(&ctx, outcome).await
}

/// Feeds the client's DATA to a streaming call and waits for its outcome; `None` when the call
/// was cancelled (then its work is abandoned and ABORTED sent).
async fn streamed<T: Send + 'static>(
    ctx: &CallContext,
    ingest: Ingest<T>,
    uploads: Uploads,
    credit: &Inbound,
) -> Option<artifactstore_core::Result<T>> {
    match feed(ctx, &ingest, uploads, credit).await {
        Fed::End | Fed::Stopped => Some(ingest.finish().await),
        Fed::Cancelled => {
            ingest.abort().await;
            ctx.aborted().await;
            None
        }
    }
}

/// The call's last frame: its result, or its error.
async fn answer<T: Wire>(ctx: &CallContext, outcome: artifactstore_core::Result<T>) {
    match outcome {
        Ok(result) => ctx.respond(0, result.to_cbor()).await,
        Err(error) => ctx.fail(&error).await,
    }
}

/// An object whole in memory: stored here, on the connection's thread, when that takes
/// microseconds (a small object, a local disk; handing it to another thread would cost more than
/// storing it), else on a blocking thread.
async fn store_whole(
    plane: &Arc<DataPlane>,
    bytes: Bytes,
    request: IngestRequest,
) -> artifactstore_core::Result<IngestResult> {
    if plane.stores_quickly(&bytes, &request) {
        return plane.ingest_bytes_blocking(bytes, request);
    }
    plane.ingest_bytes(bytes, request).await
}

/// Moves chunks into the core, returning credit to the client each time half the window is used.
async fn feed<T: Send + 'static>(ctx: &CallContext, ingest: &Ingest<T>, mut uploads: Uploads, credit: &Inbound) -> Fed {
    let mut consumed = 0u64;
    loop {
        let chunk = tokio::select! {
            upload = uploads.next() => match upload {
                Some(Upload::Chunk(chunk)) => chunk,
                Some(Upload::End) => return Fed::End,
                None => return Fed::Cancelled,
            },
            _ = ctx.cancel.cancelled() => return Fed::Cancelled,
        };
        let length = chunk.len() as u64;
        tokio::select! {
            accepted = ingest.write(chunk) => if !accepted { return Fed::Stopped },
            _ = ctx.cancel.cancelled() => return Fed::Cancelled,
        }
        consumed += length;
        if consumed >= u64::from(ctx.window / 2) {
            credit.grant(consumed);
            let increment = u32::try_from(consumed).unwrap_or(u32::MAX);
            ctx.send(Frame::new(Kind::Window, ctx.stream_id, 0, increment.to_be_bytes().to_vec())).await;
            consumed = 0;
        }
    }
}

pub async fn serve(ctx: CallContext, opening: Pending<Served>, credit: Arc<Outbound>) {
    let opened = tokio::select! {
        opened = opening => opened,
        _ = ctx.cancel.cancelled() => return ctx.aborted().await,
    };
    let Served { head, mut reader } = match opened {
        Ok(served) => served,
        Err(error) => return ctx.fail(&error).await,
    };
    ctx.respond(MORE, head.to_cbor()).await;
    loop {
        let chunk = tokio::select! {
            chunk = reader.next_chunk() => chunk,
            _ = ctx.cancel.cancelled() => return release_then_abort(&ctx, reader).await,
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                // Closed before the client hears the end, as in-process: a client whose loop has
                // ended finds the object released.
                let _ = tokio::task::spawn_blocking(move || drop(reader)).await;
                return ctx.send(Frame::new(Kind::Data, ctx.stream_id, END, Bytes::new())).await;
            }
            Err(error) => return ctx.fail(&error).await,
        };
        for start in (0..chunk.len()).step_by(MAX_DATA_PAYLOAD) {
            let piece = chunk.slice(start..chunk.len().min(start + MAX_DATA_PAYLOAD));
            tokio::select! {
                () = credit.spend(piece.len() as u32) => {}
                _ = ctx.cancel.cancelled() => return release_then_abort(&ctx, reader).await,
            }
            ctx.send(Frame::new(Kind::Data, ctx.stream_id, 0, piece)).await;
        }
    }
}

/// A cancelled serve closes its file (or connection) before it says so, so that a client whose
/// `break` waits for the answer finds the object released, as in-process. Dropping a reader may
/// wait for a read under way: not on an async thread.
async fn release_then_abort(ctx: &CallContext, reader: Box<dyn artifactstore_core::ObjectReader>) {
    let _ = tokio::task::spawn_blocking(move || drop(reader)).await;
    ctx.aborted().await
}
