//! Reusable read buffers. A chunk read from a file travels on as `Bytes` (to the SHA-256 thread, to
//! a writer); when its last holder lets go, its memory returns to the pool, so a long read does not
//! fault in fresh pages for every chunk.

use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

type FreeList = Mutex<Vec<Vec<u8>>>;

pub struct BufferPool {
    free: Arc<FreeList>,
    chunk_len: usize,
}

impl BufferPool {
    pub fn new(chunk_len: usize) -> Self {
        BufferPool { free: Arc::new(Mutex::new(Vec::new())), chunk_len }
    }

    /// Reads the next chunk of `file` (shorter only at its end); `None` at the end.
    pub fn read_chunk(&self, file: &mut File) -> io::Result<Option<Bytes>> {
        let mut buffer = self.free.lock().expect("never poisoned").pop().unwrap_or_default();
        buffer.resize(self.chunk_len, 0);
        let filled = read_full(file, &mut buffer)?;
        if filled == 0 {
            self.free.lock().expect("never poisoned").push(buffer);
            return Ok(None);
        }
        Ok(Some(Bytes::from_owner(Pooled { buffer, filled, home: Arc::downgrade(&self.free) })))
    }
}

struct Pooled {
    buffer: Vec<u8>,
    filled: usize,
    home: Weak<FreeList>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[..self.filled]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(home) = self.home.upgrade() {
            home.lock().expect("never poisoned").push(std::mem::take(&mut self.buffer));
        }
    }
}

/// Reads until the buffer is full or the file ends; returns the bytes read.
pub fn read_full(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn chunks_cover_the_file_and_buffers_come_back() {
        let mut source = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        source.write_all(&data).unwrap();
        let mut file = source;
        std::io::Seek::rewind(&mut file).unwrap();
        let pool = BufferPool::new(4096);
        let mut read = Vec::new();
        while let Some(chunk) = pool.read_chunk(&mut file).unwrap() {
            read.extend_from_slice(&chunk);
        }
        assert_eq!(read, data);
        assert_eq!(pool.free.lock().unwrap().len(), 1, "one buffer, reused for every chunk");
    }
}
