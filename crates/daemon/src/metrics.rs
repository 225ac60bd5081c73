//! The daemon's metrics: the plane's figures (`artifactstore_core::metrics`) plus its connections,
//! served in the Prometheus text format over HTTP on `--metrics-address`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use artifactstore_core::DataPlane;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{IntCounter, IntGauge};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The daemon's connections, counted beside the plane's calls.
#[derive(Clone, Debug)]
pub struct Connections {
    in_flight: IntGauge,
    accepted: IntCounter,
}

impl Connections {
    /// Registers the series with the plane's figures (counting nothing when the plane's metrics are off).
    pub fn register(plane: &DataPlane) -> Self {
        let in_flight = IntGauge::new("artifactstore_daemon_connections_in_flight", "Client connections open now.")
            .expect("a well-formed series");
        let accepted = IntCounter::new("artifactstore_daemon_connections_total", "Client connections accepted.")
            .expect("a well-formed series");
        if let Some(registry) = plane.meter().registry() {
            registry.register(Box::new(in_flight.clone())).expect("registered once");
            registry.register(Box::new(accepted.clone())).expect("registered once");
        }
        Connections { in_flight, accepted }
    }

    /// Counts a connection open until the guard is dropped.
    pub fn open(&self) -> ConnectionGuard {
        self.accepted.inc();
        self.in_flight.inc();
        ConnectionGuard(self.in_flight.clone())
    }
}

pub struct ConnectionGuard(IntGauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `--metrics-address`: `HOST:PORT`, or a bare `PORT` (or `:PORT`) on the loopback address.
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| format!("--metrics-address {text:?} is not HOST:PORT (like 127.0.0.1:9464) or a port"))
}

/// Binds the endpoint now (so that a taken port fails the start), and serves `GET /metrics`
/// until `shutdown`; resolves to the address bound (port 0 picks one).
pub async fn serve(
    address: SocketAddr,
    plane: Arc<DataPlane>,
    shutdown: CancellationToken,
) -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind(address).await.map_err(|e| format!("cannot listen for metrics on {address}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| format!("metrics listener: {e}"))?;
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let plane = plane.clone();
            let service = hyper::service::service_fn(move |request| answer(plane.clone(), request));
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    Ok(bound)
}

async fn answer(plane: Arc<DataPlane>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, content_type.parse().expect("a valid header"));
        Ok(response)
    };
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "the metrics are at GET /metrics\n".into());
    }
    match plane.metrics().await {
        Ok(text) => reply(StatusCode::OK, TEXT_FORMAT, text),
        Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("{}: {e}\n", e.code())),
    }
}
