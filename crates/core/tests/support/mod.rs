//! What several test files share: a data plane over an fs store.

use artifactstore_core::{BackendOptions, DataPlane, PlaneConfig};

/// The configuration of a plane over the fs store at `root` (backend id "local", not durable).
#[allow(dead_code)] // not every test file that includes this module calls each helper
pub fn fs_config(root: &std::path::Path) -> PlaneConfig {
    let options = BackendOptions {
        id: Some("local".into()),
        kind: Some("fs".into()),
        root: Some(root.to_string_lossy().into_owned()),
        durable: Some(false),
        ..Default::default()
    };
    PlaneConfig::new(vec![options], None).unwrap()
}

/// A data plane over the fs store at `root` (backend id "local", not durable).
#[allow(dead_code)]
pub async fn open_fs(root: &std::path::Path) -> DataPlane {
    DataPlane::open(fs_config(root)).await.unwrap()
}
