//! The data plane: the five operations (and `ingest_file`) over the configured backends, each call
//! routed by backend id.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::api::{
    DeleteRequest, FindMissingRequest, IngestRequest, ListRequest, ObjectPage, ScrubPage, ScrubRequest, ServeHead,
    ServeRequest, StatRequest, TouchRequest, VerifyRequest, LIST_PAGE_LEN, SCRUB_PAGE_TIME,
};
use crate::blocking::run_blocking;
use crate::buffers::BufferPool;
use crate::config::{BackendConfig, BackendSpec, PlaneConfig};
use crate::error::{Error, IoContext, Result};
use crate::hashing::{Digests, DualHasher};
use crate::identity::ContentAddress;
use crate::ingest::{store_bytes, store_chunks, Ingest};
use crate::metrics::{operation_index, CountedReader, Meter, INGEST_FILE};
use crate::quick_lane::{QuickLane, Ticket};
use crate::results::{BackendStatus, DeletionResult, IngestResult, ObjectInfo, VerifyResult};
use crate::storage::fs::FsBackend;
use crate::storage::s3::S3Backend;
use crate::storage::{Backend, Deletion, HeldObject, ObjectReader, CHUNK_LEN};
use crate::verified::VerifiedReader;

/// An object being served: which one (by its primary address) and how many bytes, then the bytes.
pub struct Served {
    pub head: ServeHead,
    pub reader: Box<dyn ObjectReader>,
}

#[derive(Debug)]
pub struct DataPlane {
    backends: Vec<Arc<dyn Backend>>,
    default_backend: usize,
    closed: AtomicBool,
    /// Where ingests run their threads; begin_ingest may be called from outside the runtime.
    runtime: tokio::runtime::Handle,
    /// Where quick ingests run (see [`DataPlane::ingest_quickly`]).
    quick_lane: QuickLane,
    /// What the plane counts of its calls (see [`crate::metrics`]).
    meter: Meter,
}

const INGEST_STREAM: usize = operation_index("ingest_stream");
const INGEST_FILE_CALL: usize = operation_index(INGEST_FILE);
const SERVE_OBJECT: usize = operation_index("serve_object");
const STAT_OBJECT: usize = operation_index("stat_object");

/// The largest object [`DataPlane::ingest_quickly`] takes: hashing 16 KiB takes about 10 µs.
pub const QUICK_INGEST_MAX_BYTES: usize = 16 * 1024;

impl DataPlane {
    /// Opens every configured backend; fails on the first that cannot be opened.
    pub async fn open(config: PlaneConfig) -> Result<Self> {
        let metrics = config.metrics;
        let mut backends: Vec<Arc<dyn Backend>> = Vec::with_capacity(config.backends.len());
        for BackendConfig { id, spec } in config.backends {
            backends.push(match spec {
                BackendSpec::Fs(fs) => Arc::new(run_blocking(move || FsBackend::open(id, &fs)).await?),
                // Building the HTTP clients reads the system's certificates: blocking.
                BackendSpec::S3(s3) => Arc::new(run_blocking(move || S3Backend::open(id, &s3)).await?),
            });
        }
        let default_backend = backends
            .iter()
            .position(|b| b.id() == config.default_backend)
            .expect("PlaneConfig checked that the default backend exists");
        let meter = if metrics { Meter::new(backends.iter().map(|b| b.id())) } else { Meter::off() };
        Ok(DataPlane {
            backends,
            default_backend,
            closed: AtomicBool::new(false),
            runtime: tokio::runtime::Handle::current(),
            quick_lane: QuickLane::default(),
            meter,
        })
    }

    /// What the plane counts of its calls; a front end times the calls it runs itself with it.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Every figure of [`crate::metrics`] in the Prometheus text format, with each backend probed
    /// now (a probe not counted as a call); empty when the plane was opened with metrics off.
    pub async fn metrics(&self) -> Result<String> {
        if self.meter.registry().is_none() {
            return Ok(String::new());
        }
        self.meter.render(&self.health().await?)
    }

    /// The backend with this id, the default one for `None`.
    pub fn backend(&self, id: Option<&str>) -> Result<Arc<dyn Backend>> {
        self.ensure_open()?;
        match id {
            None => Ok(self.backends[self.default_backend].clone()),
            Some(id) => {
                self.backends.iter().find(|b| b.id() == id).cloned().ok_or_else(|| Error::UnknownBackend(id.to_owned()))
            }
        }
    }

    /// Every backend, the default one first: where an upload's id is looked for.
    pub(crate) fn backends_in_turn(&self) -> Result<Vec<Arc<dyn Backend>>> {
        let default = self.backend(None)?;
        let others: Vec<_> = self.backends.iter().filter(|b| b.id() != default.id()).cloned().collect();
        Ok(std::iter::once(default).chain(others).collect())
    }

    /// Where streaming calls run their threads.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Starts a streaming ingest; push chunks into it, then `finish` it.
    pub fn begin_ingest(&self, request: IngestRequest) -> Result<Ingest> {
        let mut timer = self.meter.start(INGEST_STREAM);
        let backend = self.backend(request.backend_id()).inspect_err(|e| timer.fail(e))?;
        let ingested = self.meter.ingested(backend.id());
        Ok(Ingest::start(&self.runtime, backend, request, timer, ingested))
    }

    /// Ingests an object that is already whole in memory, in one step.
    pub async fn ingest_bytes(&self, bytes: Bytes, request: IngestRequest) -> Result<IngestResult> {
        let timer = self.meter.start(INGEST_STREAM);
        let result = match self.backend(request.backend_id()) {
            Ok(backend) => {
                self.meter.ingested(backend.id()).add(bytes.len());
                run_blocking(move || store_bytes(backend.as_ref(), bytes, &request)).await
            }
            Err(e) => Err(e),
        };
        timer.finish(&result);
        result
    }

    /// [`Self::ingest_bytes`] on the caller's thread, for callers with a thread pool of their own.
    pub fn ingest_bytes_blocking(&self, bytes: Bytes, request: IngestRequest) -> Result<IngestResult> {
        let timer = self.meter.start(INGEST_STREAM);
        let result = self.backend(request.backend_id()).and_then(|backend| {
            self.meter.ingested(backend.id()).add(bytes.len());
            store_bytes(backend.as_ref(), bytes, &request)
        });
        timer.finish(&result);
        result
    }

    /// [`Self::ingest_bytes`] on the plane's quick lane, when the ingest takes microseconds: a
    /// small object for a backend that stores it without a device flush or a network round trip,
    /// while the caller has no other call under way (`alone`; several at once overlap better on a
    /// thread pool). The lane is a thread that stays awake between jobs, whose result the caller
    /// may wait for in place ([`Ticket::wait_for`]) with no thread wake-up on either side.
    /// Hands the bytes back when the ingest is not quick: run it elsewhere.
    pub fn ingest_quickly(
        self: &Arc<Self>,
        bytes: Bytes,
        request: IngestRequest,
        alone: bool,
    ) -> std::result::Result<Ticket<Result<IngestResult>>, (Bytes, IngestRequest)> {
        if !(alone && self.quick_lane.is_open() && self.stores_quickly(&bytes, &request)) {
            return Err((bytes, request));
        }
        let plane = self.clone();
        Ok(self.quick_lane.run(move || plane.ingest_bytes_blocking(bytes, request)))
    }

    /// Whether an ingest of `bytes`, whole in memory, takes microseconds: a small object, for a
    /// backend that stores it without a device flush or a network round trip.
    pub fn stores_quickly(&self, bytes: &Bytes, request: &IngestRequest) -> bool {
        bytes.len() <= QUICK_INGEST_MAX_BYTES
            && self.backend(request.backend_id()).is_ok_and(|backend| backend.puts_small_objects_quickly())
    }

    /// Ingests a file on disk. Setting `cancel` abandons the ingest (nothing is stored) unless it
    /// has already committed.
    pub async fn ingest_file(
        &self,
        path: PathBuf,
        request: IngestRequest,
        cancel: Arc<AtomicBool>,
    ) -> Result<IngestResult> {
        let mut timer = self.meter.start(INGEST_FILE_CALL);
        let backend = self.backend(request.backend_id()).inspect_err(|e| timer.fail(e))?;
        let ingested = self.meter.ingested(backend.id());
        let result = run_blocking(move || {
            let context = || format!("ingestFile: reading {}", path.display());
            let mut file = File::open(&path).context(context)?;
            let cancelled = || cancel.load(Ordering::Acquire);
            let buffers = BufferPool::new(CHUNK_LEN);
            let chunks = std::iter::from_fn(|| {
                if cancelled() {
                    return None;
                }
                let chunk = buffers.read_chunk(&mut file).context(context).transpose();
                if let Some(Ok(chunk)) = &chunk {
                    ingested.add(chunk.len());
                }
                chunk
            });
            store_chunks(backend.as_ref(), chunks, &request, cancelled)
        })
        .await;
        timer.finish(&result);
        result
    }

    /// Opens an object (or a half-open byte range of it) for reading: what it is, then its bytes.
    /// Counted as a call until the object is open; its bytes are counted as they are read.
    pub async fn serve(&self, request: &ServeRequest) -> Result<Served> {
        let timer = self.meter.start(SERVE_OBJECT);
        let served = self.open_served(request).await;
        timer.finish(&served);
        served
    }

    async fn open_served(&self, request: &ServeRequest) -> Result<Served> {
        let backend = self.backend(request.backend_id.as_deref())?;
        let address = backend.resolve(&request.address).await?;
        let request = ServeRequest { address, ..request.clone() };
        let inner = match request.verify {
            true => Box::new(VerifiedReader::open(backend.clone(), &request).await?),
            false => backend.open(&request).await?,
        };
        let head = ServeHead {
            content_address: address,
            size_bytes: inner.size_bytes(),
            total_size_bytes: inner.total_size_bytes(),
        };
        Ok(Served { head, reader: Box::new(CountedReader { inner, served: self.meter.served(backend.id()) }) })
    }

    /// Re-reads an object and reports whether its bytes still digest to its address.
    pub async fn verify(&self, request: &VerifyRequest) -> Result<VerifyResult> {
        let backend = self.backend(request.backend_id.as_deref())?;
        let address = backend.resolve(&request.address).await?;
        verify_held(backend.as_ref(), &address).await
    }

    /// One page of a scrub (see [`ScrubRequest`]).
    pub async fn scrub(&self, request: &ScrubRequest) -> Result<ScrubPage> {
        let backend = self.backend(request.backend_id.as_deref())?;
        let rate = request.bytes_per_second.filter(|&rate| rate > 0);
        let started = std::time::Instant::now();
        let addresses = backend.addresses(request.after.as_ref(), LIST_PAGE_LEN).await?;
        let mut page = ScrubPage { backend_id: backend.id().to_owned(), ..Default::default() };
        for address in &addresses {
            let verified = match verify_held(backend.as_ref(), address).await {
                Ok(verified) => verified,
                Err(Error::NotFound { .. }) => continue, // deleted since it was listed
                Err(e) => return Err(e),
            };
            page.checked_objects += 1;
            page.checked_bytes += verified.actual_size_bytes;
            page.last_address = Some(*address);
            if !verified.verified {
                if request.quarantine && backend.quarantine(address).await? {
                    page.quarantined += 1;
                }
                page.corrupt.push(verified);
            }
            let worked = started.elapsed().max(due_at(page.checked_bytes, rate));
            if worked >= SCRUB_PAGE_TIME && Some(address) != addresses.last() {
                page.next_after = Some(*address);
                break;
            }
        }
        if page.next_after.is_none() && addresses.len() == LIST_PAGE_LEN {
            page.next_after = addresses.last().copied();
        }
        let pause = due_at(page.checked_bytes, rate).saturating_sub(started.elapsed());
        page.pause_ms = pause.as_micros().div_ceil(1000) as u64;
        Ok(page)
    }

    /// Removes an object; deleting an absent object is not an error. With `unless_touched_since`
    /// an object touched since then is kept, and the result says when it was touched.
    pub async fn delete(&self, request: &DeleteRequest) -> Result<DeletionResult> {
        let backend = self.backend(request.backend_id.as_deref())?;
        let address = backend.resolve(&request.address).await?;
        let deletion = backend.delete(&DeleteRequest { address, ..request.clone() }).await?;
        Ok(DeletionResult {
            content_address: address,
            backend_id: backend.id().to_owned(),
            deleted: deletion == Deletion::Deleted,
            touched_at: match deletion {
                Deletion::Kept(touched_at) => Some(touched_at),
                Deletion::Deleted | Deletion::Absent => None,
            },
        })
    }

    /// What the catalogue knows of an object, without reading its bytes.
    pub async fn stat(&self, request: &StatRequest) -> Result<ObjectInfo> {
        let backend = self.backend(request.backend_id.as_deref())?;
        if backend.answers_in_place() {
            // Here, on the async thread: a lookup of microseconds, where handing it to a blocking
            // thread and back cost two thread wake-ups, each tens of microseconds on a VM.
            return backend.stat_blocking(&request.address);
        }
        let address = backend.resolve(&request.address).await?;
        backend.stat(&address).await
    }

    /// [`Self::stat`] answered here and now where the backend has the answer in memory (see
    /// `Backend::stat_cached`), else on the plane's quick lane, waited for in place, for a backend
    /// that answers in microseconds while the caller has no other call under way (as
    /// [`Self::ingest_quickly`]). Hands the request back otherwise: run it with `stat`.
    pub fn stat_quickly(
        self: &Arc<Self>,
        request: StatRequest,
        alone: bool,
    ) -> std::result::Result<Ticket<Result<ObjectInfo>>, StatRequest> {
        let backend = match self.backend(request.backend_id.as_deref()) {
            Ok(backend) if backend.answers_in_place() => backend,
            _ => return Err(request),
        };
        let timer = self.meter.start(STAT_OBJECT);
        if let Some(info) = backend.stat_cached(&request.address) {
            timer.finish(&info);
            return Ok(Ticket::ready(info));
        }
        if !alone || !self.quick_lane.is_open() {
            timer.abandon(); // the caller's `stat` times the call
            return Err(request);
        }
        Ok(self.quick_lane.run(move || {
            let info = backend.stat_blocking(&request.address);
            timer.finish(&info);
            info
        }))
    }

    /// Sets an object's touch time to now, as an ingest that finds it present does.
    pub async fn touch(&self, request: &TouchRequest) -> Result<ObjectInfo> {
        let backend = self.backend(request.backend_id.as_deref())?;
        let address = backend.resolve(&request.address).await?;
        backend.touch(&address).await
    }

    /// One page of a listing (see [`ListRequest`]).
    pub async fn list(&self, request: &ListRequest) -> Result<ObjectPage> {
        self.list_up_to(request, LIST_PAGE_LEN).await
    }

    /// [`Self::list`] in pages of at most `page_len` objects.
    pub async fn list_up_to(&self, request: &ListRequest, page_len: usize) -> Result<ObjectPage> {
        let backend = self.backend(request.backend_id.as_deref())?;
        let limit = request.limit.map_or(page_len, |limit| (limit as usize).min(page_len));
        backend.list(&ListRequest { limit: Some(limit as u64), ..request.clone() }).await
    }

    /// The given addresses the backend does not hold, in the order given.
    pub async fn find_missing(&self, request: &FindMissingRequest) -> Result<Vec<ContentAddress>> {
        self.backend(request.backend_id.as_deref())?.find_missing(&request.addresses).await
    }

    /// Probes every backend at once.
    pub async fn health(&self) -> Result<BackendStatus> {
        self.ensure_open()?;
        let probes = self.backends.iter().map(|backend| backend.health());
        let backends = futures::future::join_all(probes).await;
        Ok(BackendStatus { healthy: backends.iter().all(|b| b.healthy), backends })
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Every later call fails with `CLOSED`; calls already under way finish.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.quick_lane.stop();
        self.backends.iter().for_each(|backend| backend.close());
    }
}

/// How long after a scrub page's start its `bytes` are due at `rate` bytes a second (at once
/// without a rate).
fn due_at(bytes: u64, rate: Option<u64>) -> std::time::Duration {
    rate.map_or(std::time::Duration::ZERO, |rate| std::time::Duration::from_secs_f64(bytes as f64 / rate as f64))
}

/// Re-reads the object at `address` and reports whether its bytes still digest to it.
async fn verify_held(backend: &dyn Backend, address: &ContentAddress) -> Result<VerifyResult> {
    let held = backend.digest(address).await?;
    let (digests, mismatch) = match held {
        HeldObject::Digested(digests) => {
            let mismatch = (digests.primary != *address).then(|| {
                format!("the {} bytes held digest to {}, not to the address", digests.size_bytes, digests.primary)
            });
            (digests, mismatch)
        }
        HeldObject::NotAnObject(what) => (DualHasher::new(address.algorithm).finalize(), Some(what)),
    };
    let Digests { primary, sha256, size_bytes } = digests;
    Ok(VerifyResult {
        content_address: *address,
        verified: mismatch.is_none(),
        actual_primary_digest: primary,
        actual_sha256_digest: sha256,
        actual_size_bytes: size_bytes,
        mismatch,
    })
}
