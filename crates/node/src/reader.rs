//! A served object as a JS object: `next()` hands out Rust-owned buffers without a copy.

use artifactstore_core::{ObjectReader, Served};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use tokio::sync::Mutex;

use crate::chunk::ServedChunk;
use crate::convert::{size, to_js_error, NativeDigest};

#[napi]
pub struct NativeObjectReader {
    content_address: artifactstore_core::ContentAddress,
    size_bytes: i64,
    total_size_bytes: i64,
    // `None` once closed: the file or connection is released.
    reader: Mutex<Option<Box<dyn ObjectReader>>>,
}

impl NativeObjectReader {
    pub fn new(Served { head, reader }: Served) -> Self {
        NativeObjectReader {
            content_address: head.content_address,
            size_bytes: size(head.size_bytes),
            total_size_bytes: size(head.total_size_bytes),
            reader: Mutex::new(Some(reader)),
        }
    }
}

#[napi]
impl NativeObjectReader {
    /// The object's primary address (also when it was asked for by its SHA-256).
    #[napi(getter)]
    pub fn content_address(&self) -> NativeDigest {
        self.content_address.into()
    }

    #[napi(getter)]
    pub fn size_bytes(&self) -> i64 {
        self.size_bytes
    }

    #[napi(getter)]
    pub fn total_size_bytes(&self) -> i64 {
        self.total_size_bytes
    }

    /// The next chunk, or `null` at the end (after which the reader is closed).
    #[napi(ts_return_type = "Promise<Buffer | null>")]
    pub async fn next(&self) -> Result<Option<ServedChunk>> {
        let mut guard = self.reader.lock().await;
        let Some(reader) = guard.as_mut() else { return Ok(None) };
        match reader.next_chunk().await.map_err(to_js_error)? {
            Some(chunk) => Ok(Some(ServedChunk(chunk))),
            None => {
                *guard = None;
                Ok(None)
            }
        }
    }

    /// Releases the file or connection; resolves once it is released.
    #[napi]
    pub async fn close(&self) {
        if let Some(reader) = self.reader.lock().await.take() {
            // Dropping may wait for a read in progress: not on an async thread.
            let _ = tokio::task::spawn_blocking(move || drop(reader)).await;
        }
    }
}
