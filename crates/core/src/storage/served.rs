//! An object being served: what every backend's reader becomes once it has opened the object.

use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::ObjectReader;
use crate::error::Result;

/// Chunks a producer reads ahead of the consumer.
pub(crate) const READ_AHEAD_CHUNKS: usize = 2;

/// A served range and its chunks: read while opening when the range is small, otherwise produced
/// ahead of the consumer by a thread or task that stops when the reader goes away.
pub(crate) struct ServedObject {
    size_bytes: u64,
    total_size_bytes: u64,
    chunks: Chunks,
    /// A producing thread, joined when the reader goes, so that the file it reads is closed by then.
    producer: Option<JoinHandle<()>>,
}

enum Chunks {
    Ready(Option<Bytes>),
    ReadAhead(mpsc::Receiver<Result<Bytes>>),
}

impl ServedObject {
    /// A range read whole while opening: `range` holds all of it.
    pub(crate) fn ready(range: Bytes, total_size_bytes: u64) -> Self {
        let size_bytes = range.len() as u64;
        let chunks = Chunks::Ready((!range.is_empty()).then_some(range));
        ServedObject { size_bytes, total_size_bytes, chunks, producer: None }
    }

    /// A range of `size_bytes` whose chunks arrive on `chunks`, from `producer` if it is a thread.
    pub(crate) fn read_ahead(
        size_bytes: u64,
        total_size_bytes: u64,
        chunks: mpsc::Receiver<Result<Bytes>>,
        producer: Option<JoinHandle<()>>,
    ) -> Self {
        ServedObject { size_bytes, total_size_bytes, chunks: Chunks::ReadAhead(chunks), producer }
    }
}

#[async_trait]
impl ObjectReader for ServedObject {
    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn total_size_bytes(&self) -> u64 {
        self.total_size_bytes
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        match &mut self.chunks {
            Chunks::Ready(chunk) => Ok(chunk.take()),
            Chunks::ReadAhead(chunks) => chunks.recv().await.transpose(),
        }
    }
}

impl Drop for ServedObject {
    /// Tells the producer to stop (chunks already produced are dropped with the receiver) and
    /// waits for a producing thread.
    fn drop(&mut self) {
        if let Chunks::ReadAhead(chunks) = &mut self.chunks {
            chunks.close();
        }
        if let Some(producer) = self.producer.take() {
            let _ = producer.join();
        }
    }
}
