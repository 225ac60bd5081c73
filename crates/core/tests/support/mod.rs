//! What several test files share: a data plane over an fs store.

use artifactstore_core::{BackendOptions, DataPlane, PlaneConfig};

/// A data plane over the fs store at `root` (backend id "local", not durable).
pub async fn open_fs(root: &std::path::Path) -> DataPlane {
    let options = BackendOptions {
        id: Some("local".into()),
        kind: Some("fs".into()),
        root: Some(root.to_string_lossy().into_owned()),
        durable: Some(false),
        ..Default::default()
    };
    DataPlane::open(PlaneConfig::new(vec![options], None).unwrap()).await.unwrap()
}
