//! Building the object_store clients from an [`S3Config`], and turning their errors into ours.

use std::error::Error as _;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, Checksum, S3CopyIfNotExists};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::config::S3Config;
use crate::error::{Error, Result};

/// The client for data: a few retries, and no limit on a whole request (a large part or a slowly
/// consumed download may take long), only on a stalled read.
pub(super) fn data_client(id: &str, config: &S3Config) -> Result<AmazonS3> {
    build(id, config, streaming_options(), data_retry(), Some(Checksum::SHA256))
}

/// No limit on a whole request, only on connecting and on a read that stalls for a minute.
fn streaming_options() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout_disabled()
        .with_read_timeout(Duration::from_secs(60))
}

fn data_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    }
}

/// The client for the commit's server-side copy: no checksum algorithm (a copy sends no payload).
pub(super) fn copy_client(id: &str, config: &S3Config) -> Result<AmazonS3> {
    // A server-side copy may take long, but a server silent for a minute is gone, not copying.
    build(id, config, streaming_options(), data_retry(), None)
}

/// The client for health probes: one attempt, answered within seconds either way.
pub(super) fn probe_client(id: &str, config: &S3Config) -> Result<AmazonS3> {
    let options =
        ClientOptions::new().with_connect_timeout(Duration::from_secs(2)).with_timeout(Duration::from_secs(5));
    let retry = RetryConfig { max_retries: 0, retry_timeout: Duration::from_secs(5), ..Default::default() };
    build(id, config, options, retry, None)
}

/// Settings from the usual `AWS_*` environment, overridden by whatever the configuration gives.
/// (The HTTP client's own settings are ours alone: `options` replaces those from the environment.)
fn build(
    id: &str,
    config: &S3Config,
    options: ClientOptions,
    retry: RetryConfig,
    checksum: Option<Checksum>,
) -> Result<AmazonS3> {
    let mut builder = AmazonS3Builder::from_env()
        .with_client_options(options)
        .with_bucket_name(&config.bucket)
        // A create-only copy where the server honours If-None-Match on CopyObject (AWS does; a
        // server that ignores it overwrites the object with the same bytes, which is harmless for
        // content-addressed data). One request, and no multipart upload under objects/ that a
        // crash could leave behind, as the multipart form of a conditional copy would.
        .with_copy_if_not_exists(S3CopyIfNotExists::Header("If-None-Match".into(), "*".into()))
        .with_retry(retry);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
    }
    // The endpoint may also come from AWS_ENDPOINT; plain HTTP is allowed when it says so.
    if builder.get_config_value(&AmazonS3ConfigKey::Endpoint).is_some_and(|e| e.starts_with("http://")) {
        builder = builder.with_allow_http(true);
    }
    if let Some(checksum) = checksum {
        // The signed x-amz-checksum-sha256 header already vouches for every byte; a signed payload
        // too would make the server hash every byte twice.
        builder = builder.with_checksum_algorithm(checksum).with_unsigned_payload(true);
    }
    if let Some(region) = &config.region {
        builder = builder.with_region(region);
    }
    if let Some(key) = &config.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &config.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(token) = &config.session_token {
        builder = builder.with_token(token);
    }
    builder.build().map_err(|e| {
        Error::invalid_argument(format!(
            "backend '{id}': cannot configure S3 bucket {:?}: {}",
            config.bucket,
            describe(&e)
        ))
    })
}

/// Whether a delete failed only because the key was gone. object_store deletes through S3's
/// DeleteObjects, whose per-key `NoSuchKey` (a key deleted meanwhile, as versitygw reports it)
/// comes back as a generic error, not `NotFound`.
pub(super) fn key_gone(error: &object_store::Error) -> bool {
    match error {
        object_store::Error::NotFound { .. } => true,
        object_store::Error::Generic { .. } => error.to_string().contains("NoSuchKey"),
        _ => false,
    }
}

/// `BACKEND_UNAVAILABLE` for a failed request, saying what was being done and why it failed.
pub(super) fn unavailable(backend: &str, doing: impl std::fmt::Display, error: &object_store::Error) -> Error {
    Error::BackendUnavailable { backend: backend.to_owned(), cause: format!("{doing}: {}", describe(error)) }
}

/// The error and its causes in one line, without the repetitions object_store's messages carry
/// (each layer tends to quote the one below it), and an S3 error document cut to its code and
/// message.
pub(super) fn describe(error: &object_store::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    shorten_error_document(message)
}

/// `...: <?xml ...><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>...`
/// becomes `...: NoSuchBucket: The specified bucket does not exist`.
fn shorten_error_document(message: String) -> String {
    let element = |name: &str| {
        let start = message.find(&format!("<{name}>"))? + name.len() + 2;
        let len = message[start..].find(&format!("</{name}>"))?;
        Some(message[start..start + len].to_owned())
    };
    let (Some(document), Some(code)) = (message.find("<?xml"), element("Code")) else { return message };
    let detail = element("Message").map(|m| format!(": {m}")).unwrap_or_default();
    format!("{}{code}{detail}", &message[..document])
}
