//! The configuration of a data plane, as a caller gives it, and its validation. Every rejection is
//! `INVALID_ARGUMENT` and names the field at fault, e.g. `backends[1].root`.

use std::collections::HashSet;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// One backend as the caller describes it: every field optional, checked by [`PlaneConfig::new`].
#[derive(Clone, Debug, Default)]
pub struct BackendOptions {
    pub id: Option<String>,
    pub kind: Option<String>,
    // fs
    pub root: Option<String>,
    pub durable: Option<bool>,
    // s3
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsConfig {
    pub root: PathBuf,
    /// fsync file and directory before an object becomes visible.
    pub durable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Prepended to every key; empty or ending in '/'.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendSpec {
    Fs(FsConfig),
    S3(S3Config),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    pub id: String,
    pub spec: BackendSpec,
}

/// A validated configuration: at least one backend, unique ids, a default that exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaneConfig {
    pub backends: Vec<BackendConfig>,
    pub default_backend: String,
    /// Count calls and bytes (see [`crate::metrics`]); true unless turned off.
    pub metrics: bool,
}

impl PlaneConfig {
    pub fn new(backends: Vec<BackendOptions>, default_backend: Option<String>) -> Result<Self> {
        if backends.is_empty() {
            return Err(Error::invalid_argument("backends must list at least one backend"));
        }
        let backends = backends
            .into_iter()
            .enumerate()
            .map(|(index, options)| BackendConfig::new(index, options))
            .collect::<Result<Vec<_>>>()?;
        let mut seen = HashSet::new();
        for (index, backend) in backends.iter().enumerate() {
            if !seen.insert(backend.id.as_str()) {
                return Err(Error::invalid_argument(format!(
                    "backends[{index}].id {:?} is used by another backend",
                    backend.id
                )));
            }
        }
        let default_backend = match default_backend {
            None => backends[0].id.clone(),
            Some(id) if seen.contains(id.as_str()) => id,
            Some(id) => {
                return Err(Error::invalid_argument(format!(
                    "defaultBackend {id:?} names none of the configured backends"
                )))
            }
        };
        Ok(PlaneConfig { backends, default_backend, metrics: true })
    }
}

impl BackendConfig {
    fn new(index: usize, options: BackendOptions) -> Result<Self> {
        let field = |name: &str| format!("backends[{index}].{name}");
        let required = |value: Option<String>, name: &str| -> Result<String> {
            value.filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::invalid_argument(format!("{} is required and must be a non-empty string", field(name)))
            })
        };
        let id = required(options.id.clone(), "id")?;
        let kind = required(options.kind.clone(), "kind")?;
        let spec = match kind.as_str() {
            "fs" if options.root.as_deref().is_some_and(|root| root.contains('\0')) => {
                return Err(Error::invalid_argument(format!(
                    "{} {:?} contains a NUL character",
                    field("root"),
                    options.root.unwrap_or_default()
                )))
            }
            "fs" => BackendSpec::Fs(FsConfig {
                // Relative to the working directory at open, not at each later call.
                root: std::path::absolute(required(options.root, "root")?)
                    .map_err(|e| Error::invalid_argument(format!("{} cannot be made absolute: {e}", field("root"))))?,
                durable: options.durable.unwrap_or(true),
            }),
            "s3" => BackendSpec::S3(S3Config {
                bucket: required(options.bucket, "bucket")?,
                prefix: normalize_prefix(options.prefix.unwrap_or_default()),
                endpoint: options.endpoint,
                region: options.region,
                access_key_id: options.access_key_id,
                secret_access_key: options.secret_access_key,
                session_token: options.session_token,
            }),
            other => {
                return Err(Error::invalid_argument(format!(
                    "{} {other:?} is not a known backend kind (expected \"fs\" or \"s3\")",
                    field("kind")
                )))
            }
        };
        Ok(BackendConfig { id, spec })
    }
}

fn normalize_prefix(prefix: String) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(id: &str) -> BackendOptions {
        BackendOptions {
            id: Some(id.into()),
            kind: Some("fs".into()),
            root: Some("/tmp/x".into()),
            ..Default::default()
        }
    }

    fn rejection(backends: Vec<BackendOptions>, default: Option<&str>) -> String {
        let err = PlaneConfig::new(backends, default.map(String::from)).unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT");
        err.to_string()
    }

    #[test]
    fn the_first_backend_is_the_default_and_durable_defaults_to_true() {
        let config = PlaneConfig::new(vec![fs("a"), fs("b")], None).unwrap();
        assert_eq!(config.default_backend, "a");
        assert_eq!(config.backends[1].spec, BackendSpec::Fs(FsConfig { root: "/tmp/x".into(), durable: true }));
    }

    #[test]
    fn every_rejection_names_its_field() {
        assert!(rejection(vec![], None).contains("backends"));
        assert!(rejection(vec![fs("a"), fs("a")], None).contains("backends[1].id"));
        assert!(rejection(vec![fs("a")], Some("zz")).contains("defaultBackend \"zz\""));
        let unknown = BackendOptions { kind: Some("ftp".into()), ..fs("a") };
        assert!(rejection(vec![unknown], None).contains("backends[0].kind \"ftp\""));
        let rootless = BackendOptions { root: None, ..fs("a") };
        assert!(rejection(vec![fs("x"), rootless], None).contains("backends[1].root"));
        let s3 = BackendOptions { id: Some("s".into()), kind: Some("s3".into()), ..Default::default() };
        assert!(rejection(vec![s3], None).contains("backends[0].bucket"));
    }

    #[test]
    fn prefixes_end_in_one_slash() {
        assert_eq!(normalize_prefix("cas".into()), "cas/");
        assert_eq!(normalize_prefix("/cas//".into()), "cas/");
        assert_eq!(normalize_prefix(String::new()), "");
    }
}
