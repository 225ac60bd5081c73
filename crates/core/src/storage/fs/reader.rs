//! Serving a stored file: large reads into buffers the serve reuses once the consumer lets go of
//! them, with the next read already under way on a thread of its own while the consumer handles
//! the current chunk.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::ops::Range;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::buffers::{read_exact, BufferPool};
use crate::error::{Error, Result};
use crate::storage::{ServedObject, CHUNK_LEN, READ_AHEAD_CHUNKS};

/// Serves `range` of an opened object file. Must run on a blocking thread: small ranges are read
/// right here.
pub(super) fn serve_file(
    mut file: File,
    range: Range<u64>,
    total_size_bytes: u64,
    locator: String,
) -> Result<ServedObject> {
    let size_bytes = range.end - range.start;
    let read_error = |source: io::Error| Error::io(format!("reading {locator}"), source);
    file.seek(SeekFrom::Start(range.start)).map_err(read_error)?;
    if size_bytes <= CHUNK_LEN as u64 {
        let whole = read_chunk(&mut file, size_bytes as usize).map_err(read_error)?;
        return Ok(ServedObject::ready(whole, total_size_bytes));
    }
    let (sender, chunks) = mpsc::channel(READ_AHEAD_CHUNKS);
    let reader = std::thread::Builder::new()
        .name("serve".into())
        .spawn(move || read_ahead(file, size_bytes, locator, sender))
        .map_err(|e| Error::io("starting a serve thread", e))?;
    Ok(ServedObject::read_ahead(size_bytes, total_size_bytes, chunks, Some(reader)))
}

/// Reads the object chunk by chunk into pooled buffers: a chunk the consumer has written out (to a
/// socket, a file) comes back for the next read instead of fresh memory being faulted in.
fn read_ahead(mut file: File, mut remaining: u64, locator: String, sender: mpsc::Sender<Result<Bytes>>) {
    let buffers = BufferPool::new(CHUNK_LEN);
    while remaining > 0 {
        let len = remaining.min(CHUNK_LEN as u64) as usize;
        let chunk = buffers.read_exact(&mut file, len).map_err(|e| Error::io(format!("reading {locator}"), e));
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
    read_exact(file, &mut buffer)?;
    Ok(Bytes::from(buffer))
}
