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
        _ => Err(to_js_error(artifactstore_core::Error::InvalidRange {
            start: start.max(0) as u64,
            end: end.max(0) as u64,
            size: 0,
            reason: "offsets must not be negative",
        })),
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

    /// An object that arrived whole in one chunk: one round trip. With `wait_in_place` (the caller
    /// has nothing else under way), a quick one (see `DataPlane::ingest_is_quick`) is waited for
    /// here, up to `QUICK_WAIT`, and its result returned at once; any other goes to libuv's thread
    /// pool, which answers small calls with one thread hop where the async runtime needs two.
    #[napi(ts_return_type = "NativeIngestResult | Promise<NativeIngestResult>")]
    pub fn ingest_buffer<'env>(
        &self,
        env: &'env Env,
        buffer: Buffer,
        options: NativeIngestOptions,
        wait_in_place: bool,
    ) -> Result<IngestOutcome<'env>> {
        let options: artifactstore_core::IngestOptions = options.try_into()?;
        let bytes = artifactstore_core::Bytes::from_owner(buffer);
        if wait_in_place && self.plane.ingest_is_quick(bytes.len(), &options) {
            return ingest_in_place(env, &self.plane, bytes, options);
        }
        let task = IngestBuffer { plane: self.plane.clone(), bytes, options: Some(options) };
        Ok(Either3::C(env.spawn(task)?.promise_object()))
    }

    /// Ingests a file; `cancellation.cancel()` abandons it unless it has already committed.
    #[napi]
    pub async fn ingest_file(
        &self,
        path: String,
        options: NativeIngestOptions,
        cancellation: &Cancellation,
    ) -> Result<NativeIngestResult> {
        let cancel = cancellation.flag.clone();
        let result = self.plane.ingest_file(PathBuf::from(path), options.try_into()?, cancel).await;
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

/// An ingest's result now, or a promise of it: settled by the quick lane, or by libuv's pool.
type IngestOutcome<'env> = Either3<NativeIngestResult, Object<'env>, PromiseRaw<'env, NativeIngestResult>>;

/// Runs a quick ingest on the plane's quick lane and waits for it here; a promise if it takes
/// longer than `QUICK_WAIT`.
fn ingest_in_place<'env>(
    env: &'env Env,
    plane: &Arc<DataPlane>,
    bytes: artifactstore_core::Bytes,
    options: artifactstore_core::IngestOptions,
) -> Result<IngestOutcome<'env>> {
    // When the wait succeeds the lane has dropped its copy: the JS buffer is released here, on the
    // JS thread, and not by a wake-up of the event loop from the lane.
    let _held = bytes.clone();
    match plane.ingest_quickly(bytes, options).wait_for(QUICK_WAIT) {
        Ok(result) => result.map(|result| Either3::A(result.into())).map_err(to_js_error),
        Err(ticket) => {
            let (deferred, promise) = env.create_deferred()?;
            ticket.on_done(move |result| match result {
                Ok(result) => deferred.resolve(move |_| Ok(NativeIngestResult::from(result))),
                Err(error) => deferred.reject(to_js_error(error)),
            });
            Ok(Either3::B(promise))
        }
    }
}

/// How long the JavaScript thread may wait in place for a quick ingest before it takes a promise
/// instead: the most a stalled device can hold up the event loop.
const QUICK_WAIT: std::time::Duration = std::time::Duration::from_micros(50);

pub struct IngestBuffer {
    plane: Arc<DataPlane>,
    /// Kept here, not only handed to the core, so that the JS buffer is released when the task
    /// ends on the JavaScript thread: released on a pool thread, it would cost a wake-up of the
    /// event loop per object.
    bytes: artifactstore_core::Bytes,
    options: Option<artifactstore_core::IngestOptions>,
}

impl Task for IngestBuffer {
    type Output = artifactstore_core::IngestResult;
    type JsValue = NativeIngestResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let options = self.options.take().expect("compute runs once");
        self.plane.ingest_bytes_blocking(self.bytes.clone(), options).map_err(to_js_error)
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output.into())
    }
}

/// A flag JavaScript sets (from an AbortSignal) and a long native call checks.
#[napi]
#[derive(Default)]
pub struct Cancellation {
    flag: Arc<std::sync::atomic::AtomicBool>,
}

#[napi]
impl Cancellation {
    #[napi(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    #[napi]
    pub fn cancel(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Release);
    }
}
