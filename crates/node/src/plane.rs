//! The data plane as a JS class. Each method converts its arguments, calls the core, converts back.

use std::path::PathBuf;
use std::sync::Arc;

use artifactstore_core::quick_lane::QUICK_WAIT;
use artifactstore_core::wire::Wire;
use artifactstore_core::{DataPlane, PlaneConfig, ServeRequest, StatRequest, Ticket};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::*;
use crate::ingest::{NativeAppend, NativeIngest};
use crate::reader::NativeObjectReader;

#[napi]
pub struct NativeDataPlane {
    plane: Arc<DataPlane>,
}

#[napi]
impl NativeDataPlane {
    #[napi(factory)]
    pub async fn open(
        backends: Vec<NativeBackendOptions>,
        default_backend: Option<String>,
        metrics: Option<bool>,
    ) -> Result<NativeDataPlane> {
        let backends = backends.into_iter().map(Into::into).collect();
        let mut config = PlaneConfig::new(backends, default_backend).map_err(to_js_error)?;
        config.metrics = metrics.unwrap_or(true);
        let plane = DataPlane::open(config).await.map_err(to_js_error)?;
        Ok(NativeDataPlane { plane: Arc::new(plane) })
    }

    #[napi]
    pub fn begin_ingest(&self, options: NativeIngestOptions) -> Result<NativeIngest> {
        let ingest = self.plane.begin_ingest(options.try_into()?).map_err(to_js_error)?;
        Ok(NativeIngest::new(ingest))
    }

    /// Starts an append to an upload; `request` is an `AppendRequest` in the wire's CBOR. Rejects
    /// before any byte is taken when the upload is absent, busy or at another offset.
    #[napi]
    pub async fn begin_append(&self, request: Buffer) -> Result<NativeAppend> {
        let request = artifactstore_core::AppendRequest::from_cbor(&request).map_err(to_js_error)?;
        let append = self.plane.begin_append(request).await.map_err(to_js_error)?;
        Ok(NativeAppend::new(append))
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
        let request: artifactstore_core::IngestRequest = options.try_into()?;
        let bytes = artifactstore_core::Bytes::from_owner(buffer);
        // When the wait succeeds the lane has dropped its copy: the JS buffer is released here, on
        // the JS thread, and not by a wake-up of the event loop from the lane.
        let held = bytes.clone();
        match self.plane.ingest_quickly(bytes, request, wait_in_place) {
            Ok(ticket) => {
                let outcome = wait_for_quick::<_, NativeIngestResult>(env, ticket);
                drop(held);
                Ok(match outcome? {
                    Either::A(result) => Either3::A(result),
                    Either::B(promise) => Either3::B(promise),
                })
            }
            Err((bytes, request)) => {
                let task = IngestBuffer { plane: self.plane.clone(), bytes, request: Some(request) };
                Ok(Either3::C(env.spawn(task)?.promise_object()))
            }
        }
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

    /// Opens an object for reading; `request` is a `ServeRequest` in the wire's CBOR.
    #[napi]
    pub async fn serve(&self, request: Buffer) -> Result<NativeObjectReader> {
        let request = ServeRequest::from_cbor(&request).map_err(to_js_error)?;
        let served = self.plane.serve(&request).await.map_err(to_js_error)?;
        Ok(NativeObjectReader::new(served))
    }

    /// statObject answered here from the caches, or waited for in place on the quick lane when the
    /// caller has nothing else under way (`alone`), on a backend that answers in microseconds (see
    /// `DataPlane::stat_quickly`); `null` when neither, and the caller should `call` instead. The
    /// info comes as its fields (see `NativeObjectInfo`).
    #[napi(ts_return_type = "ObjectInfoFields | Promise<ObjectInfoFields> | null")]
    pub fn stat_quickly<'env>(
        &self,
        env: &'env Env,
        address: String,
        backend_id: Option<String>,
        alone: bool,
    ) -> Result<Option<Either<NativeObjectInfo, Object<'env>>>> {
        let request = StatRequest { address: parse_address(&address)?, backend_id };
        match self.plane.stat_quickly(request, alone) {
            Ok(ticket) => wait_for_quick::<_, NativeObjectInfo>(env, ticket).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// One page of listObjects; `request` is a `ListRequest` in the wire's CBOR (see
    /// `NativeObjectPage`).
    #[napi]
    pub async fn list_objects(&self, request: Buffer) -> Result<NativeObjectPage> {
        let page = artifactstore_core::dispatch::list_objects(&self.plane, &request).await;
        page.map(NativeObjectPage::from).map_err(to_js_error)
    }

    /// Runs a unary operation (see `artifactstore_core::dispatch::call`): its request and its result in
    /// the wire's CBOR.
    #[napi]
    pub async fn call(&self, operation: String, request: Buffer) -> Result<Buffer> {
        let result = artifactstore_core::dispatch::call(&self.plane, &operation, &request).await;
        result.map(Buffer::from).map_err(to_js_error)
    }

    #[napi]
    pub fn close(&self) {
        self.plane.close();
    }
}

/// An ingest's result now, or a promise of it: settled by the quick lane, or by libuv's pool.
type IngestOutcome<'env> = Either3<NativeIngestResult, Object<'env>, PromiseRaw<'env, NativeIngestResult>>;

/// Waits here for a quick call's result, up to `QUICK_WAIT`; a promise of it if it takes longer.
fn wait_for_quick<'env, T, N>(
    env: &'env Env,
    ticket: Ticket<artifactstore_core::Result<T>>,
) -> Result<Either<N, Object<'env>>>
where
    T: Send + 'static,
    N: From<T> + ToNapiValue + 'static,
{
    match ticket.wait_for(QUICK_WAIT) {
        Ok(result) => result.map(|result| Either::A(N::from(result))).map_err(to_js_error),
        Err(ticket) => {
            let (deferred, promise) = env.create_deferred()?;
            ticket.on_done(move |result| match result {
                Ok(result) => deferred.resolve(move |_| Ok(N::from(result))),
                Err(error) => deferred.reject(to_js_error(error)),
            });
            Ok(Either::B(promise))
        }
    }
}

pub struct IngestBuffer {
    plane: Arc<DataPlane>,
    /// Kept here, not only handed to the core, so that the JS buffer is released when the task
    /// ends on the JavaScript thread: released on a pool thread, it would cost a wake-up of the
    /// event loop per object.
    bytes: artifactstore_core::Bytes,
    request: Option<artifactstore_core::IngestRequest>,
}

impl Task for IngestBuffer {
    type Output = artifactstore_core::IngestResult;
    type JsValue = NativeIngestResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let request = self.request.take().expect("compute runs once");
        self.plane.ingest_bytes_blocking(self.bytes.clone(), request).map_err(to_js_error)
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
