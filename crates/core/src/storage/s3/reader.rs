//! Serving a stored object: one GET, its body re-cut into chunks of [`CHUNK_LEN`] and read ahead of
//! the consumer by a task of its own. Nothing is buffered beyond the chunks in the queue.

use std::io;

use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResult, ObjectStore, ObjectStoreExt};
use tokio::sync::mpsc;

use super::Bucket;
use crate::api::ServeRequest;
use crate::error::{Error, Result};
use crate::identity::ContentAddress;
use crate::storage::{read_range, ServedObject, CHUNK_LEN, READ_AHEAD_CHUNKS};

/// Opens `range` of an object (the whole object for `None`) for serving. Fails with `NOT_FOUND` or
/// `INVALID_RANGE` before any byte is read.
pub(super) async fn open(bucket: &Bucket, request: &ServeRequest) -> Result<ServedObject> {
    let address = &request.address;
    let path = bucket.object_path(address);
    let (body, wanted, total_size_bytes) = match request.byte_range {
        // One GET both sizes and streams a whole object.
        None => {
            let body = get(bucket, address, &path, None).await?;
            let size = body.meta.size;
            (Some(body), 0..size, size)
        }
        // A range must be checked against the size before it is asked for.
        Some(_) => {
            let meta = match bucket.store.head(&path).await {
                Ok(meta) => meta,
                Err(e) => return Err(bucket.read_failure(address, format!("reading {path}"), e).await),
            };
            let range = read_range(request, meta.size)?;
            let body = match range.is_empty() {
                true => None,
                false => Some(get(bucket, address, &path, Some(GetRange::Bounded(range.clone()))).await?),
            };
            (body, range, meta.size)
        }
    };
    let Some(body) = body else {
        return Ok(ServedObject::ready(Bytes::new(), total_size_bytes));
    };
    let size_bytes = wanted.end - wanted.start;
    let context = Context { backend: bucket.id.clone(), path };
    // The object changed between the HEAD and the GET.
    if body.range != wanted {
        return Err(context.shorter());
    }
    if size_bytes <= CHUNK_LEN as u64 {
        let whole = body.bytes().await.map_err(|e| context.failure(&e))?;
        if whole.len() as u64 != size_bytes {
            return Err(context.shorter());
        }
        return Ok(ServedObject::ready(whole, total_size_bytes));
    }
    let chunks = read_ahead(Rechunker { stream: body.into_stream(), leftover: Bytes::new(), context }, size_bytes);
    Ok(ServedObject::read_ahead(size_bytes, total_size_bytes, chunks, None))
}

async fn get(bucket: &Bucket, address: &ContentAddress, path: &Path, range: Option<GetRange>) -> Result<GetResult> {
    let options = GetOptions { range, ..Default::default() };
    match bucket.store.get_opts(path, options).await {
        Ok(body) => Ok(body),
        Err(e) => Err(bucket.read_failure(address, format!("reading {path}"), e).await),
    }
}

fn read_ahead(mut body: Rechunker, size_bytes: u64) -> mpsc::Receiver<Result<Bytes>> {
    let (sender, receiver) = mpsc::channel(READ_AHEAD_CHUNKS);
    tokio::spawn(async move {
        let mut remaining = size_bytes;
        while remaining > 0 {
            let len = remaining.min(CHUNK_LEN as u64) as usize;
            let chunk = tokio::select! {
                // The consumer went away (a `break` out of its loop): drop the connection now.
                _ = sender.closed() => return,
                chunk = body.next(len) => chunk,
            };
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                return;
            }
            remaining -= len as u64;
        }
    });
    receiver
}

/// What a read failure names.
struct Context {
    backend: String,
    path: Path,
}

impl Context {
    fn failure(&self, error: &object_store::Error) -> Error {
        super::client::unavailable(&self.backend, format!("reading {}", self.path), error)
    }

    fn shorter(&self) -> Error {
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the object is shorter than when opened");
        Error::io(format!("backend '{}': reading {}", self.backend, self.path), eof)
    }
}

/// Cuts a body, which arrives in pieces of whatever size the connection delivers, into chunks of
/// the size asked for: one piece is sliced without a copy, several are gathered into one buffer.
struct Rechunker {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    leftover: Bytes,
    context: Context,
}

impl Rechunker {
    async fn next(&mut self, len: usize) -> Result<Bytes> {
        if self.leftover.is_empty() {
            self.leftover = self.next_piece().await?;
        }
        if self.leftover.len() >= len {
            return Ok(self.leftover.split_to(len));
        }
        let mut chunk = BytesMut::with_capacity(len);
        while chunk.len() < len {
            if self.leftover.is_empty() {
                self.leftover = self.next_piece().await?;
            }
            let take = (len - chunk.len()).min(self.leftover.len());
            chunk.extend_from_slice(&self.leftover.split_to(take));
        }
        Ok(chunk.freeze())
    }

    async fn next_piece(&mut self) -> Result<Bytes> {
        match self.stream.next().await {
            Some(Ok(piece)) => Ok(piece),
            Some(Err(e)) => Err(self.context.failure(&e)),
            None => Err(self.context.shorter()),
        }
    }
}
