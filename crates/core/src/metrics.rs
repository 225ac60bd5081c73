//! What a data plane counts of its own work, in Prometheus' terms: calls by operation and outcome,
//! their latency, calls in flight, bytes in and out, and the backends' health as probed when the
//! figures are read. Every front end (the Node binding, the daemon) reads the same figures.
//!
//! The hot path takes no lock: every series a call touches on success is resolved once, when the
//! plane opens, and a call then costs a few atomic additions. Only an error's series is looked up
//! by its labels (under the registry's read lock), errors being rare and slow anyway.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::api::OPERATIONS;
use crate::error::Result;
use crate::results::BackendStatus;
use crate::storage::ObjectReader;

/// `ingestFile` is no operation of the wire (it travels as `ingest_stream`), but the in-process
/// plane runs it on its own path: it is counted under this name, after the table's operations.
pub const INGEST_FILE: &str = "ingest_file";

/// The operation that reads these figures, which is not counted among them.
pub const METRICS_OPERATION: &str = "metrics";

/// What a call ended with when nothing says otherwise: dropped before it finished.
const DROPPED: &str = "ABORTED";

/// Upper bounds of the latency histograms, in seconds: from a quick-lane ingest (tens of
/// microseconds) to a scrub page or a large S3 ingest.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0,
];

/// The index of an operation among the counted ones: its row in [`OPERATIONS`], or
/// `OPERATIONS.len()` for [`INGEST_FILE`]. A name that is neither fails at compile time where the
/// index is a constant.
pub const fn operation_index(name: &str) -> usize {
    let mut index = 0;
    while index < OPERATIONS.len() {
        if same(OPERATIONS[index].name, name) {
            return index;
        }
        index += 1;
    }
    if same(INGEST_FILE, name) {
        return OPERATIONS.len();
    }
    panic!("not an operation of the data plane");
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

fn operation_names() -> impl Iterator<Item = &'static str> {
    OPERATIONS.iter().map(|op| op.name).filter(|&name| name != METRICS_OPERATION).chain([INGEST_FILE])
}

/// The series of one operation that its successful calls touch.
struct OperationSeries {
    ok: IntCounter,
    duration: Histogram,
    in_flight: IntGauge,
}

/// The byte counters of one backend.
#[derive(Clone)]
struct BackendSeries {
    ingested: IntCounter,
    served: IntCounter,
}

struct Metrics {
    registry: Registry,
    calls: IntCounterVec,
    /// By [`operation_index`]; `None` for the metrics operation itself.
    operations: Vec<Option<OperationSeries>>,
    backends: HashMap<String, BackendSeries>,
    backend_up: IntGaugeVec,
    probe_seconds: GaugeVec,
    free_bytes: IntGaugeVec,
    total_bytes: IntGaugeVec,
}

/// A data plane's figures, or nothing when the plane was opened with metrics off. Cheap to clone.
#[derive(Clone, Default)]
pub struct Meter(Option<Arc<Metrics>>);

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meter").field("enabled", &self.0.is_some()).finish()
    }
}

impl Meter {
    /// The figures of a plane with these backends (by id), all at zero.
    pub fn new<'a>(backends: impl IntoIterator<Item = &'a str>) -> Self {
        Meter(Some(Arc::new(Metrics::new(backends).expect("the series are well-formed and registered once"))))
    }

    /// A meter that counts nothing.
    pub fn off() -> Self {
        Meter(None)
    }

    /// Where a front end registers figures of its own (the daemon's connections), to be read with
    /// the plane's; `None` when metrics are off.
    pub fn registry(&self) -> Option<&Registry> {
        self.0.as_ref().map(|metrics| &metrics.registry)
    }

    /// Starts timing a call of the operation at `index` (see [`operation_index`]).
    pub fn start(&self, index: usize) -> CallTimer {
        let timing = self.0.as_ref().and_then(|metrics| {
            let series = metrics.operations[index].as_ref()?;
            series.in_flight.inc();
            Some((metrics.clone(), index, Instant::now()))
        });
        CallTimer(timing)
    }

    /// Counts the bytes ingests of this backend receive.
    pub fn ingested(&self, backend_id: &str) -> ByteCounter {
        ByteCounter(self.backend(backend_id).map(|series| series.ingested))
    }

    /// Counts the bytes serves of this backend yield.
    pub fn served(&self, backend_id: &str) -> ByteCounter {
        ByteCounter(self.backend(backend_id).map(|series| series.served))
    }

    fn backend(&self, backend_id: &str) -> Option<BackendSeries> {
        self.0.as_ref()?.backends.get(backend_id).cloned()
    }

    /// Every figure in the Prometheus text exposition format (version 0.0.4), with the backends'
    /// health as `status` found it; empty when metrics are off.
    pub fn render(&self, status: &BackendStatus) -> Result<String> {
        let Some(metrics) = &self.0 else { return Ok(String::new()) };
        metrics.record_health(status);
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&metrics.registry.gather(), &mut text)
            .map_err(|e| crate::Error::io("metrics", std::io::Error::other(e)))?;
        Ok(String::from_utf8(text).expect("the text format is UTF-8"))
    }
}

impl Metrics {
    fn new<'a>(backends: impl IntoIterator<Item = &'a str>) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let calls = IntCounterVec::new(
            Opts::new(
                "artifactstore_calls_total",
                "Calls of the data plane that ended, by operation and outcome (OK or the SPEC's error code).",
            ),
            &["operation", "code"],
        )?;
        let durations = prometheus::HistogramVec::new(
            HistogramOpts::new(
                "artifactstore_call_duration_seconds",
                "How long calls took, by operation, whatever their outcome.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new("artifactstore_calls_in_flight", "Calls of the data plane under way, by operation."),
            &["operation"],
        )?;
        let operations = (0..=OPERATIONS.len())
            .map(|index| {
                let name = series_name(index);
                operation_names().any(|counted| counted == name).then(|| OperationSeries {
                    ok: calls.with_label_values(&[name, "OK"]),
                    duration: durations.with_label_values(&[name]),
                    in_flight: in_flight.with_label_values(&[name]),
                })
            })
            .collect();
        let ingested = IntCounterVec::new(
            Opts::new(
                "artifactstore_ingested_bytes_total",
                "Bytes received by ingests, by backend (also of ingests that failed).",
            ),
            &["backend"],
        )?;
        let served = IntCounterVec::new(
            Opts::new("artifactstore_served_bytes_total", "Bytes yielded by serves, by backend."),
            &["backend"],
        )?;
        let backend_up = IntGaugeVec::new(
            Opts::new(
                "artifactstore_backend_up",
                "1 when the backend's probe succeeded when these figures were read, else 0.",
            ),
            &["backend", "kind"],
        )?;
        let probe_seconds = GaugeVec::new(
            Opts::new(
                "artifactstore_backend_probe_seconds",
                "The backend probe's round trip when these figures were read.",
            ),
            &["backend"],
        )?;
        let free_bytes = IntGaugeVec::new(
            Opts::new("artifactstore_backend_free_bytes", "Free bytes the backend reported (fs backends)."),
            &["backend"],
        )?;
        let total_bytes = IntGaugeVec::new(
            Opts::new("artifactstore_backend_total_bytes", "Total bytes the backend reported (fs backends)."),
            &["backend"],
        )?;
        let mut series = HashMap::new();
        for id in backends {
            let backend =
                BackendSeries { ingested: ingested.with_label_values(&[id]), served: served.with_label_values(&[id]) };
            series.insert(id.to_owned(), backend);
        }
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(durations))?;
        registry.register(Box::new(in_flight))?;
        registry.register(Box::new(ingested))?;
        registry.register(Box::new(served))?;
        registry.register(Box::new(backend_up.clone()))?;
        registry.register(Box::new(probe_seconds.clone()))?;
        registry.register(Box::new(free_bytes.clone()))?;
        registry.register(Box::new(total_bytes.clone()))?;
        Ok(Metrics {
            registry,
            calls,
            operations,
            backends: series,
            backend_up,
            probe_seconds,
            free_bytes,
            total_bytes,
        })
    }

    fn record_health(&self, status: &BackendStatus) {
        for backend in &status.backends {
            let id = backend.backend_id.as_str();
            self.backend_up.with_label_values(&[id, backend.kind.as_str()]).set(i64::from(backend.healthy));
            self.probe_seconds.with_label_values(&[id]).set(backend.latency_micros as f64 / 1e6);
            let gauge = |vec: &IntGaugeVec, value: Option<u64>| {
                if let Some(value) = value {
                    vec.with_label_values(&[id]).set(i64::try_from(value).unwrap_or(i64::MAX));
                }
            };
            gauge(&self.free_bytes, backend.free_bytes);
            gauge(&self.total_bytes, backend.total_bytes);
        }
    }
}

/// One call under way: [`Self::finish`] records its outcome and duration; dropped unfinished (its
/// caller went away), it counts as `ABORTED`.
#[must_use = "a call's outcome is recorded by finish"]
pub struct CallTimer(Option<(Arc<Metrics>, usize, Instant)>);

impl CallTimer {
    pub fn finish<T>(mut self, result: &Result<T>) {
        self.record(result.as_ref().err().map(crate::Error::code));
    }

    /// Forgets the call without counting it: it goes on under another timer.
    pub fn abandon(mut self) {
        if let Some((metrics, index, _)) = self.0.take() {
            metrics.operations[index].as_ref().expect("timed operations have series").in_flight.dec();
        }
    }

    /// Records a call that failed before it began its work.
    pub fn fail(&mut self, error: &crate::Error) {
        self.record(Some(error.code()));
    }

    fn record(&mut self, error: Option<&str>) {
        let Some((metrics, index, started)) = self.0.take() else { return };
        let series = metrics.operations[index].as_ref().expect("timed operations have series");
        series.duration.observe(started.elapsed().as_secs_f64());
        series.in_flight.dec();
        match error {
            None => series.ok.inc(),
            Some(code) => metrics.calls.with_label_values(&[series_name(index), code]).inc(),
        }
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        self.record(Some(DROPPED));
    }
}

fn series_name(index: usize) -> &'static str {
    OPERATIONS.get(index).map_or(INGEST_FILE, |op| op.name)
}

/// Adds bytes to one backend's counter (or to nothing, with metrics off).
#[derive(Clone, Default)]
pub struct ByteCounter(Option<IntCounter>);

impl ByteCounter {
    pub fn add(&self, bytes: usize) {
        if let Some(counter) = &self.0 {
            counter.inc_by(bytes as u64);
        }
    }
}

/// A served object's reader that counts the bytes it yields.
pub(crate) struct CountedReader {
    pub inner: Box<dyn ObjectReader>,
    pub served: ByteCounter,
}

#[async_trait::async_trait]
impl ObjectReader for CountedReader {
    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }

    fn total_size_bytes(&self) -> u64 {
        self.inner.total_size_bytes()
    }

    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>> {
        let chunk = self.inner.next_chunk().await?;
        if let Some(chunk) = &chunk {
            self.served.add(chunk.len());
        }
        Ok(chunk)
    }
}
