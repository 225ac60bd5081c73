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
        let mut buffer = self.take();
        let filled = read_full(file, &mut buffer)?;
        if filled == 0 {
            self.free.lock().expect("never poisoned").push(buffer);
            return Ok(None);
        }
        Ok(Some(self.pooled(buffer, filled)))
    }

    /// Reads exactly `len` bytes (at most the pool's chunk length) of `file`, as [`read_exact`].
    pub fn read_exact(&self, file: &mut File, len: usize) -> io::Result<Bytes> {
        assert!(len <= self.chunk_len, "a read of {len} bytes from a pool of {}-byte buffers", self.chunk_len);
        let mut buffer = self.take();
        read_exact(file, &mut buffer[..len])?;
        Ok(self.pooled(buffer, len))
    }

    /// A free buffer, or a new one, of the pool's chunk length.
    fn take(&self) -> Vec<u8> {
        let mut buffer = self.free.lock().expect("never poisoned").pop().unwrap_or_default();
        buffer.resize(self.chunk_len, 0);
        buffer
    }

    /// The first `filled` bytes of `buffer`, which returns to the pool when its last holder lets go.
    fn pooled(&self, buffer: Vec<u8>, filled: usize) -> Bytes {
        Bytes::from_owner(Pooled { buffer, filled, home: Arc::downgrade(&self.free) })
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

/// Fills the buffer from `file`: a file that ends sooner is an error, as an object shorter than
/// when it was opened.
pub fn read_exact(file: &mut File, buffer: &mut [u8]) -> io::Result<()> {
    if read_full(file, buffer)? < buffer.len() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the object is shorter than when opened"));
    }
    Ok(())
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

    #[test]
    fn exact_reads_take_what_is_asked_and_refuse_a_short_file() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[7u8; 5000]).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        let pool = BufferPool::new(4096);
        assert_eq!(pool.read_exact(&mut file, 4096).unwrap().len(), 4096);
        let short = pool.read_exact(&mut file, 1000).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
    }
}
