//! Serving a stored file: large reads into fresh buffers, with the next read already under way on a
//! thread of its own while the consumer handles the current chunk.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::buffers::read_full;
use crate::error::{Error, Result};
use crate::storage::{ObjectReader, ServedChunks, CHUNK_LEN};

/// Chunks read ahead of the consumer.
const READ_AHEAD_CHUNKS: usize = 2;

pub struct FsReader {
    size_bytes: u64,
    total_size_bytes: u64,
    chunks: ServedChunks,
    /// The read-ahead thread, joined on drop so the file is closed once the reader is gone.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl FsReader {
    /// Must run on a blocking thread: small ranges are read right here.
    pub fn start(mut file: File, range: Range<u64>, total_size_bytes: u64, locator: String) -> Result<Self> {
        let size_bytes = range.end - range.start;
        let read_error = |source: io::Error| Error::io(format!("reading {locator}"), source);
        file.seek(SeekFrom::Start(range.start)).map_err(read_error)?;
        let (chunks, reader) = if size_bytes <= CHUNK_LEN as u64 {
            let chunk = read_chunk(&mut file, size_bytes as usize).map_err(read_error)?;
            (ServedChunks::Ready((size_bytes > 0).then_some(chunk)), None)
        } else {
            let (sender, chunks) = mpsc::channel(READ_AHEAD_CHUNKS);
            let reader = std::thread::Builder::new()
                .name("serve".into())
                .spawn(move || read_ahead(file, size_bytes, locator, sender))
                .map_err(|e| Error::io("starting a serve thread", e))?;
            (ServedChunks::ReadAhead(chunks), Some(reader))
        };
        Ok(FsReader { size_bytes, total_size_bytes, chunks, reader })
    }
}

fn read_ahead(mut file: File, mut remaining: u64, locator: String, sender: mpsc::Sender<Result<Bytes>>) {
    while remaining > 0 {
        let len = remaining.min(CHUNK_LEN as u64) as usize;
        let chunk = read_chunk(&mut file, len).map_err(|e| Error::io(format!("reading {locator}"), e));
        let failed = chunk.is_err();
        // The consumer went away (a `break` out of its loop): stop and close the file now.
        if sender.blocking_send(chunk).is_err() || failed {
            return;
        }
        remaining -= len as u64;
    }
}

/// Reads exactly `len` bytes into a fresh buffer, which the consumer then owns without a copy.
fn read_chunk(file: &mut File, len: usize) -> io::Result<Bytes> {
    let mut buffer = vec![0u8; len];
    if read_full(file, &mut buffer)? < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the object is shorter than when opened"));
    }
    Ok(Bytes::from(buffer))
}

#[async_trait]
impl ObjectReader for FsReader {
    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn total_size_bytes(&self) -> u64 {
        self.total_size_bytes
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        self.chunks.next().await
    }
}

impl Drop for FsReader {
    /// Stops the read-ahead thread and waits for it, so the file is closed once the reader is gone.
    fn drop(&mut self) {
        self.chunks.close();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
