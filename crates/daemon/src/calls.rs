//! Each call as a task of its own, so that a slow disk or a paused reader stalls only its call:
//! a unary call answers once; an ingest feeds the client's DATA to the core and grants credit as
//! the core accepts it; a serve sends the reader's chunks as DATA within the client's credit.
//! Every call ends with exactly one final frame, and a CANCEL (or the connection's end) stops it.

use std::sync::Arc;

use artifactstore_core::wire::Wire;
use artifactstore_core::{Bytes, Ingest};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::credit::{Inbound, Outbound};
use crate::dispatch::{Pending, Served};
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

pub async fn ingest(ctx: CallContext, ingest: Ingest, chunks: mpsc::UnboundedReceiver<Upload>, credit: Arc<Inbound>) {
    match feed(&ctx, &ingest, chunks, &credit).await {
        Fed::End | Fed::Stopped => match ingest.finish().await {
            Ok(result) => ctx.respond(0, result.to_cbor()).await,
            Err(error) => ctx.fail(&error).await,
        },
        Fed::Cancelled => {
            ingest.abort().await;
            ctx.aborted().await;
        }
    }
}

/// Moves chunks into the core, returning credit to the client each time half the window is used.
async fn feed(
    ctx: &CallContext,
    ingest: &Ingest,
    mut chunks: mpsc::UnboundedReceiver<Upload>,
    credit: &Inbound,
) -> Fed {
    let mut consumed = 0u64;
    loop {
        let chunk = tokio::select! {
            upload = chunks.recv() => match upload {
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
    ctx.respond(MORE, head).await;
    loop {
        let chunk = tokio::select! {
            chunk = reader.next_chunk() => chunk,
            _ = ctx.cancel.cancelled() => return ctx.aborted().await,
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return ctx.send(Frame::new(Kind::Data, ctx.stream_id, END, Bytes::new())).await,
            Err(error) => return ctx.fail(&error).await,
        };
        for start in (0..chunk.len()).step_by(MAX_DATA_PAYLOAD) {
            let piece = chunk.slice(start..chunk.len().min(start + MAX_DATA_PAYLOAD));
            tokio::select! {
                () = credit.spend(piece.len() as u32) => {}
                _ = ctx.cancel.cancelled() => return ctx.aborted().await,
            }
            ctx.send(Frame::new(Kind::Data, ctx.stream_id, 0, piece)).await;
        }
    }
}
