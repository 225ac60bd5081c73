//! From a REQUEST to the core, driven by the core's one table of operations (`api::OPERATIONS`):
//! the op name picks the row, the row's transfer says how bytes move, the core decodes the
//! arguments (its request types' CBOR), does the work and its result is encoded back. Unary
//! operations all go through `artifactstore_core::dispatch::call`, so an operation added to the core is served here with
//! no change.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use artifactstore_core::api::{self, Transfer};
use artifactstore_core::metrics::operation_index;
use artifactstore_core::wire::cbor::{self, Value};
use artifactstore_core::wire::fields::Field;
use artifactstore_core::wire::Wire;
use artifactstore_core::{
    AppendRequest, Bytes, DataPlane, Error, IngestRequest, Operation, Result, ServeRequest, Served,
};

pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

/// A call, started.
pub enum Started {
    /// The result's CBOR, when the core has it.
    Unary(Pending<Vec<u8>>),
    /// The client's DATA is this ingest's (or append's) bytes.
    Ingest(BytesIn),
    /// The object, once open.
    Serve(Pending<Served>),
}

/// What the client's DATA goes to.
pub enum BytesIn {
    /// A new object (its backend exists).
    Object(IngestRequest),
    /// An upload's append.
    Append(AppendRequest),
}

/// A REQUEST's payload, `{op, args}`; `args` keeps its CBOR for the core to decode.
pub struct Request {
    pub op: String,
    pub args: Bytes,
}

/// Decodes the envelope; a failure here is a protocol violation, not a call's error.
pub fn request(payload: &Bytes) -> std::result::Result<Request, String> {
    let item = cbor::decode(payload).map_err(|e| format!("REQUEST: {e}"))?;
    let Value::Map(entries) = item.value else { return Err("REQUEST must be the CBOR map {op, args}".into()) };
    let (mut op, mut args_at) = (None, None);
    for (key, item) in entries {
        match key.as_str() {
            "op" => op = Some(Field::root("REQUEST.op", item).text().map_err(|e| e.to_string())?),
            "args" => args_at = Some(item.at),
            other => return Err(format!("REQUEST has no field {other:?}")),
        }
    }
    let op = op.ok_or("REQUEST lacks the field \"op\"")?;
    let args_at = args_at.ok_or("REQUEST lacks the field \"args\"")?;
    // Keys are in canonical order, "op" before "args": the arguments run to the payload's end.
    Ok(Request { op, args: payload.slice(args_at..) })
}

/// Starts the call `request` names; `open` is the REQUEST's OPEN flag (the client sends DATA).
pub fn start(plane: &Arc<DataPlane>, request: Request, open: bool) -> Result<Started> {
    let Request { op, args } = request;
    let operation: &'static Operation = api::operation_named(&op)?;
    let sends_data = operation.transfer == Transfer::BytesIn;
    if open != sends_data {
        let needs =
            if sends_data { "needs the OPEN flag: its bytes follow as DATA" } else { "takes no DATA: no OPEN flag" };
        return Err(Error::invalid_argument(format!("REQUEST {op:?} {needs}")));
    }
    let plane = plane.clone();
    Ok(match operation.transfer {
        Transfer::Unary => {
            Started::Unary(Box::pin(
                async move { artifactstore_core::dispatch::call(&plane, operation.name, &args).await },
            ))
        }
        Transfer::BytesIn if operation.name == "append_upload" => {
            Started::Ingest(BytesIn::Append(AppendRequest::from_cbor(&args)?))
        }
        Transfer::BytesIn => {
            let request = IngestRequest::from_cbor(&args)?;
            if let Err(e) = plane.backend(request.backend_id()) {
                // Refused before it reaches the core's ingest: counted here, as the core counts it in-process.
                plane.meter().start(operation_index(operation.name)).fail(&e);
                return Err(e);
            }
            Started::Ingest(BytesIn::Object(request))
        }
        Transfer::BytesOut => {
            let request = ServeRequest::from_cbor(&args)?;
            Started::Serve(Box::pin(async move { plane.serve(&request).await }))
        }
    })
}
