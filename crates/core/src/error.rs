//! One error type for the whole core. Each variant maps onto exactly one code of the SPEC, and every
//! message names the value or the operation that failed.

use std::io;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no object {address} in backend '{backend}'")]
    NotFound { address: String, backend: String },
    #[error("invalid content address {value:?}: {reason}")]
    InvalidAddress { value: String, reason: &'static str },
    #[error("invalid byte range [{start}, {end}) for an object of {size} bytes: {reason}")]
    InvalidRange { start: u64, end: u64, size: u64, reason: &'static str },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("unknown backend {0:?}")]
    UnknownBackend(String),
    #[error("unsupported hash algorithm {0:?} (expected \"blake3\" or \"sha256\")")]
    UnsupportedAlgorithm(String),
    #[error("{0}")]
    IntegrityMismatch(String),
    #[error("{0}")]
    Aborted(String),
    /// An upload id that names no upload (or is not an upload id at all).
    #[error("{0}")]
    UnknownUpload(String),
    /// An append at an offset other than the upload's current one.
    #[error("appendUpload: offset {given} is not the current offset of upload {upload_id:?}, which is {current}")]
    WrongOffset { upload_id: String, given: u64, current: u64 },
    /// The operation collides with another under way on the same thing.
    #[error("{0}")]
    Conflict(String),
    #[error("backend '{backend}' unavailable: {cause}")]
    BackendUnavailable { backend: String, cause: String },
    #[error("the data plane is closed")]
    Closed,
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl Error {
    /// The stable code of the SPEC for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "NOT_FOUND",
            Error::InvalidAddress { .. } => "INVALID_ADDRESS",
            Error::InvalidRange { .. } => "INVALID_RANGE",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::UnknownBackend(_) => "UNKNOWN_BACKEND",
            Error::UnsupportedAlgorithm(_) => "UNSUPPORTED_ALGORITHM",
            Error::IntegrityMismatch(_) => "INTEGRITY_MISMATCH",
            Error::Aborted(_) => "ABORTED",
            Error::UnknownUpload(_) => "NOT_FOUND",
            Error::WrongOffset { .. } => "INVALID_RANGE",
            Error::Conflict(_) => "CONFLICT",
            Error::BackendUnavailable { .. } => "BACKEND_UNAVAILABLE",
            Error::Closed => "CLOSED",
            Error::Io { .. } => "IO",
        }
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}

/// Attaches a description of the failed operation to an `io::Result`.
pub trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::io(what(), source))
    }
}
