//! The daemon's config file (JSON, SPEC "The daemon"), read and checked before anything listens.
//! Every rejection names the field at fault; the backends are checked by the core exactly as
//! `openDataPlane` checks them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use artifactstore_core::{BackendOptions, PlaneConfig};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    socket_path: Option<PathBuf>,
    socket_mode: Option<String>,
    #[serde(default)]
    allowed_uids: Vec<u32>,
    #[serde(default)]
    backends: Vec<BackendFile>,
    default_backend: Option<String>,
    #[serde(default)]
    limits: LimitsFile,
}

/// A backend as `openDataPlane` takes it (camelCase, every field optional, checked by the core).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BackendFile {
    id: Option<String>,
    kind: Option<String>,
    root: Option<String>,
    durable: Option<bool>,
    bucket: Option<String>,
    prefix: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

impl From<BackendFile> for BackendOptions {
    fn from(b: BackendFile) -> Self {
        BackendOptions {
            id: b.id,
            kind: b.kind,
            root: b.root,
            durable: b.durable,
            bucket: b.bucket,
            prefix: b.prefix,
            endpoint: b.endpoint,
            region: b.region,
            access_key_id: b.access_key_id,
            secret_access_key: b.secret_access_key,
            session_token: b.session_token,
        }
    }
}

/// Overrides of the limits (PROTOCOL.md, "Limits"); for tests and unusual hosts.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LimitsFile {
    max_connections: Option<u32>,
    max_calls: Option<u32>,
    handshake_timeout_ms: Option<u64>,
    frame_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    drain_timeout_ms: Option<u64>,
}

/// The limits the daemon enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: u32,
    pub max_calls: u32,
    /// From accept to the client's HELLO.
    pub handshake_timeout: Duration,
    /// From a frame's first byte to its last (slowloris).
    pub frame_timeout: Duration,
    /// A connection with no call under way and nothing received for this long is closed; also how
    /// long a write to a peer that reads nothing may block.
    pub idle_timeout: Duration,
    /// How long SIGTERM waits for calls under way.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_calls: 64,
            handshake_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from, named in messages (e.g. PERMISSION_DENIED's).
    pub source: PathBuf,
    pub socket_path: PathBuf,
    pub socket_mode: u32,
    pub allowed_uids: Vec<u32>,
    pub plane: PlaneConfig,
    pub limits: Limits,
    /// Where to serve the metrics (`--metrics-address`); nowhere when absent.
    pub metrics_address: Option<std::net::SocketAddr>,
}

impl Config {
    /// Reads and checks the file; `socket` (from `--socket`) overrides its `socketPath`.
    pub fn load(path: &Path, socket: Option<PathBuf>) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
        Config::parse(path, &text, socket).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    pub fn parse(path: &Path, text: &str, socket: Option<PathBuf>) -> Result<Config, String> {
        let mut json = serde_json::Deserializer::from_str(text);
        let file: ConfigFile = serde_path_to_error::deserialize(&mut json).map_err(|e| match e.path().to_string() {
            root if root == "." => e.inner().to_string(),
            field => format!("{field}: {}", e.inner()),
        })?;
        let socket_path = socket
            .or(file.socket_path)
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or("socketPath is required (or give --socket PATH)")?;
        let socket_mode = socket_mode(file.socket_mode.as_deref().unwrap_or("660"))?;
        let backends = file.backends.into_iter().map(BackendOptions::from).collect();
        let plane = PlaneConfig::new(backends, file.default_backend).map_err(|e| e.to_string())?;
        Ok(Config {
            source: path.to_owned(),
            socket_path,
            socket_mode,
            allowed_uids: file.allowed_uids,
            plane,
            limits: limits(file.limits)?,
            metrics_address: None,
        })
    }
}

fn socket_mode(text: &str) -> Result<u32, String> {
    let octal = !text.is_empty() && text.len() <= 4 && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    octal
        .then(|| u32::from_str_radix(text, 8).ok())
        .flatten()
        .filter(|&mode| mode <= 0o777)
        .ok_or_else(|| format!("socketMode {text:?} is not an octal file mode like \"660\""))
}

fn limits(file: LimitsFile) -> Result<Limits, String> {
    let defaults = Limits::default();
    let count = |value: Option<u32>, name: &str, default: u32| match value {
        Some(0) => Err(format!("limits.{name} must be at least 1")),
        value => Ok(value.unwrap_or(default)),
    };
    let millis = |value: Option<u64>, name: &str, default: Duration| match value {
        Some(0) => Err(format!("limits.{name} must be at least 1")),
        value => Ok(value.map_or(default, Duration::from_millis)),
    };
    Ok(Limits {
        max_connections: count(file.max_connections, "maxConnections", defaults.max_connections)?,
        max_calls: count(file.max_calls, "maxCalls", defaults.max_calls)?,
        handshake_timeout: millis(file.handshake_timeout_ms, "handshakeTimeoutMs", defaults.handshake_timeout)?,
        frame_timeout: millis(file.frame_timeout_ms, "frameTimeoutMs", defaults.frame_timeout)?,
        idle_timeout: millis(file.idle_timeout_ms, "idleTimeoutMs", defaults.idle_timeout)?,
        drain_timeout: millis(file.drain_timeout_ms, "drainTimeoutMs", defaults.drain_timeout)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKENDS: &str = r#""backends": [{"id": "local", "kind": "fs", "root": "/tmp/store"}]"#;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("daemon.json"), text, None)
    }

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let config = parse(&format!(r#"{{"socketPath": "/run/x.sock", {BACKENDS}}}"#)).unwrap();
        assert_eq!(config.socket_mode, 0o660);
        assert!(config.allowed_uids.is_empty());
        assert_eq!(config.plane.default_backend, "local");
        assert_eq!(config.limits, Limits::default());
        let overridden = Config::parse(Path::new("d.json"), &format!("{{{BACKENDS}}}"), Some("/s".into())).unwrap();
        assert_eq!(overridden.socket_path, PathBuf::from("/s"));
    }

    #[test]
    fn every_rejection_names_its_field() {
        let cases = [
            (format!(r#"{{"socketPath": "/s", "socketMode": "9x", {BACKENDS}}}"#), "socketMode \"9x\""),
            (format!(r#"{{"socketPath": "/s", "socketMode": "1777", {BACKENDS}}}"#), "socketMode \"1777\""),
            (format!(r#"{{"socketPath": "/s", "allowedUids": ["me"], {BACKENDS}}}"#), "allowedUids[0]"),
            (format!(r#"{{"socketPath": "/s", "sockPath": 1, {BACKENDS}}}"#), "unknown field `sockPath`"),
            (format!("{{{BACKENDS}}}"), "socketPath is required"),
            (r#"{"socketPath": "/s"}"#.to_owned(), "backends must list at least one backend"),
            (r#"{"socketPath": "/s", "backends": [{"id": "a", "kind": "fs"}]}"#.to_owned(), "backends[0].root"),
            (format!(r#"{{"socketPath": "/s", "defaultBackend": "zz", {BACKENDS}}}"#), "defaultBackend \"zz\""),
            (format!(r#"{{"socketPath": "/s", "limits": {{"maxCalls": 0}}, {BACKENDS}}}"#), "limits.maxCalls"),
            ("{".to_owned(), "EOF"),
        ];
        for (text, expected) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
