//! Every unary operation served from its wire form: the one place where an operation's name, its
//! request's CBOR and the [`DataPlane`] method meet, for the front ends that speak CBOR (the Node
//! binding's `call`, the daemon). Each call is counted here (see [`crate::metrics`]), except the
//! one that reads the counts.

use crate::api::{
    operation_named, CommitUploadRequest, DeleteRequest, FindMissingRequest, HealthRequest, IngestRequest, ListRequest,
    ListUploadsRequest, MetricsRequest, ObjectPage, Operation, PurgeUploadsRequest, ScrubRequest, StatRequest,
    TouchRequest, UploadRequest, VerifyRequest, IN_PROCESS_LIST_PAGE_LEN,
};
use crate::error::{Error, Result};
use crate::metrics::{operation_index, METRICS_OPERATION};
use crate::plane::DataPlane;
use crate::wire::{cbor, Wire};

/// Runs a unary operation given in its wire form: the request's CBOR in, the result's CBOR out.
/// The daemon (and any front end that speaks CBOR) serves every unary operation through this one
/// function; an operation that moves bytes is `INVALID_ARGUMENT` here.
pub async fn call(plane: &DataPlane, name: &str, request: &[u8]) -> Result<Vec<u8>> {
    let operation = operation_named(name)?;
    if operation.name == METRICS_OPERATION {
        MetricsRequest::from_cbor(request)?;
        return Ok(cbor::text(&plane.metrics().await?));
    }
    let timer = plane.meter().start(operation_index(operation.name));
    let result = run(plane, operation, request).await;
    timer.finish(&result);
    result
}

/// `list_objects` as [`call`] runs it, counted alike, with its page as it is and of up to
/// [`IN_PROCESS_LIST_PAGE_LEN`] objects: for a front end in the caller's process that makes its own
/// values of a page without going through CBOR (the Node binding's listing).
pub async fn list_objects(plane: &DataPlane, request: &[u8]) -> Result<ObjectPage> {
    let timer = plane.meter().start(operation_index("list_objects"));
    let result = match ListRequest::from_cbor(request) {
        Ok(request) => plane.list_up_to(&request, IN_PROCESS_LIST_PAGE_LEN).await,
        Err(e) => Err(e),
    };
    timer.finish(&result);
    result
}

async fn run(plane: &DataPlane, operation: &Operation, request: &[u8]) -> Result<Vec<u8>> {
    match operation.name {
        "verify_object" => Ok(plane.verify(&VerifyRequest::from_cbor(request)?).await?.to_cbor()),
        "delete_object" => Ok(plane.delete(&DeleteRequest::from_cbor(request)?).await?.to_cbor()),
        "backend_health" => {
            HealthRequest::from_cbor(request)?;
            Ok(plane.health().await?.to_cbor())
        }
        "stat_object" => Ok(plane.stat(&StatRequest::from_cbor(request)?).await?.to_cbor()),
        "touch_object" => Ok(plane.touch(&TouchRequest::from_cbor(request)?).await?.to_cbor()),
        "find_missing" => Ok(plane.find_missing(&FindMissingRequest::from_cbor(request)?).await?.to_cbor()),
        "list_objects" => Ok(plane.list(&ListRequest::from_cbor(request)?).await?.to_cbor()),
        "scrub" => Ok(plane.scrub(&ScrubRequest::from_cbor(request)?).await?.to_cbor()),
        "create_upload" => Ok(plane.create_upload(&IngestRequest::from_cbor(request)?).await?.to_cbor()),
        "upload_status" => Ok(plane.upload_status(&UploadRequest::from_cbor(request)?).await?.to_cbor()),
        "commit_upload" => Ok(plane.commit_upload(&CommitUploadRequest::from_cbor(request)?).await?.to_cbor()),
        "abort_upload" => Ok(plane.abort_upload(&UploadRequest::from_cbor(request)?).await?.to_cbor()),
        "list_uploads" => Ok(plane.list_uploads(&ListUploadsRequest::from_cbor(request)?).await?.to_cbor()),
        "purge_uploads" => Ok(plane.purge_uploads(&PurgeUploadsRequest::from_cbor(request)?).await?.to_cbor()),
        _ => Err(Error::invalid_argument(format!("{operation} moves bytes: it is not a unary call"))),
    }
}
