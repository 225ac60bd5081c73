//! artifactstore-daemon: the data plane of `artifactstore-core` served on a Unix socket, in the
//! protocol `PROTOCOL.md` describes. Each module has one job: `config` (the file), `listener`
//! (socket, mode, peer uid), `frame` (the header codec and its limits), `message` (ERROR and
//! GOAWAY payloads), `handshake` (HELLO), `connection` (one peer: calls, credit, timeouts),
//! `calls` (each call's task), `credit`, `outbound` (the writer), `dispatch` (op -> core),
//! `metrics` (the HTTP endpoint) and `server` (accepting, shutting down).

pub mod calls;
pub mod config;
pub mod connection;
pub mod credit;
pub mod dispatch;
pub mod frame;
pub mod handshake;
pub mod listener;
pub mod message;
pub mod metrics;
pub mod outbound;
pub mod server;

pub use config::Config;
pub use server::run;
