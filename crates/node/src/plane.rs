//! The data plane as a JS class. Each method converts its arguments, calls the core, converts back.

use std::path::PathBuf;
use std::sync::Arc;

use artifactstore_core::{DataPlane, PlaneConfig};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::*;
use crate::ingest::NativeIngest;
use crate::reader::NativeObjectReader;

#[napi]
pub struct NativeDataPlane {
    plane: Arc<DataPlane>,
}

fn byte_range(start: Option<i64>, end: Option<i64>) -> Result<Option<(u64, u64)>> {
    let (Some(start), Some(end)) = (start, end) else { return Ok(None) };
    match (u64::try_from(start), u64::try_from(end)) {
        (Ok(s), Ok(e)) => Ok(Some((s, e))),
        _ => Err(to_js_error(artifactstore_core::Error::InvalidRange { start: start.max(0) as u64, end: end.max(0) as u64, size: 0, reason: "offsets must not be negative" })),
    }
}

#[napi]
impl NativeDataPlane {
    #[napi(factory)]
    pub async fn open(backends: Vec<NativeBackendOptions>, default_backend: Option<String>) -> Result<NativeDataPlane> {
        let backends = backends.into_iter().map(Into::into).collect();
        let config = PlaneConfig::new(backends, default_backend).map_err(to_js_error)?;
        let plane = DataPlane::open(config).await.map_err(to_js_error)?;
        Ok(NativeDataPlane { plane: Arc::new(plane) })
    }

    #[napi]
    pub fn begin_ingest(&self, options: NativeIngestOptions) -> Result<NativeIngest> {
        let ingest = self.plane.begin_ingest(options.try_into()?).map_err(to_js_error)?;
        Ok(NativeIngest::new(ingest))
    }

    /// An object that arrived whole in one chunk: one round trip.
    #[napi]
    pub async fn ingest_buffer(&self, buffer: Buffer, options: NativeIngestOptions) -> Result<NativeIngestResult> {
        let bytes = artifactstore_core::Bytes::from_owner(buffer);
        let result = self.plane.ingest_bytes(bytes, options.try_into()?).await;
        result.map(Into::into).map_err(to_js_error)
    }

    #[napi]
    pub async fn ingest_file(&self, path: String, options: NativeIngestOptions) -> Result<NativeIngestResult> {
        let result = self.plane.ingest_file(PathBuf::from(path), options.try_into()?).await;
        result.map(Into::into).map_err(to_js_error)
    }

    #[napi]
    pub async fn serve(
        &self,
        address: String,
        start: Option<i64>,
        end: Option<i64>,
        backend_id: Option<String>,
    ) -> Result<NativeObjectReader> {
        let address = parse_address(&address)?;
        let range = byte_range(start, end)?;
        let reader = self.plane.serve(&address, range, backend_id.as_deref()).await.map_err(to_js_error)?;
        Ok(NativeObjectReader::new(reader))
    }

    #[napi]
    pub async fn verify(&self, address: String, backend_id: Option<String>) -> Result<NativeVerifyResult> {
        let address = parse_address(&address)?;
        let result = self.plane.verify(&address, backend_id.as_deref()).await;
        result.map(Into::into).map_err(to_js_error)
    }

    #[napi]
    pub async fn delete(&self, address: String, backend_id: Option<String>) -> Result<NativeDeletionResult> {
        let address = parse_address(&address)?;
        let result = self.plane.delete(&address, backend_id.as_deref()).await;
        result.map(Into::into).map_err(to_js_error)
    }

    #[napi]
    pub async fn health(&self) -> Result<NativeBackendStatus> {
        self.plane.health().await.map(Into::into).map_err(to_js_error)
    }

    #[napi]
    pub fn close(&self) {
        self.plane.close();
    }
}
