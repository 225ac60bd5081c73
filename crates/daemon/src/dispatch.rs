//! From a REQUEST to the core: one table of operations, each an op name and how to decode its
//! arguments, call the core's `DataPlane` and encode what it returns. Nothing else here knows an
//! operation by name.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use artifactstore_core::wire::cbor::{self, Value};
use artifactstore_core::wire::fields::{Field, Fields, MapCodec};
use artifactstore_core::wire::{IngestStreamArgs, NoArgs, ObjectArgs, ServeObjectArgs, Wire};
use artifactstore_core::{ContentAddress, DataPlane, Error, Ingest, ObjectReader, Result};

pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

/// How a call moves its bytes.
pub enum Operation {
    /// One REQUEST, one RESPONSE.
    Unary(fn(&Arc<DataPlane>, Field) -> Result<Pending<Vec<u8>>>),
    /// The client sends the bytes as DATA (REQUEST flag OPEN); the RESPONSE is the result.
    Ingest(fn(&Arc<DataPlane>, Field) -> Result<Ingest>),
    /// The RESPONSE (flag MORE) is a head; the bytes follow as DATA.
    Serve(fn(&Arc<DataPlane>, Field) -> Result<Pending<Served>>),
}

/// Every operation of protocol version 1, by its op name (the SPEC method in snake_case).
pub static OPERATIONS: &[(&str, Operation)] = &[
    ("ingest_stream", Operation::Ingest(ingest_stream)),
    ("serve_object", Operation::Serve(serve_object)),
    ("verify_object", Operation::Unary(verify_object)),
    ("delete_object", Operation::Unary(delete_object)),
    ("backend_health", Operation::Unary(backend_health)),
];

/// A call, started.
pub enum Started {
    Unary(Pending<Vec<u8>>),
    Ingest(Ingest),
    Serve(Pending<Served>),
}

/// An object opened for serving: the RESPONSE head, then the reader's bytes.
pub struct Served {
    pub head: Vec<u8>,
    pub reader: Box<dyn ObjectReader>,
}

/// A REQUEST's payload, `{op, args}`.
pub struct Request {
    pub op: String,
    pub args: Field,
}

/// Decodes the envelope; a failure here is a protocol violation, not a call's error.
pub fn request(payload: &[u8]) -> std::result::Result<Request, String> {
    let item = cbor::decode(payload).map_err(|e| format!("REQUEST: {e}"))?;
    let Value::Map(entries) = item.value else { return Err("REQUEST must be the CBOR map {op, args}".into()) };
    let (mut op, mut args) = (None, None);
    for (key, item) in entries {
        match key.as_str() {
            "op" => op = Some(Field::root("REQUEST.op", item).text().map_err(|e| e.to_string())?),
            "args" => args = Some(item),
            other => return Err(format!("REQUEST has no field {other:?}")),
        }
    }
    let op = op.ok_or("REQUEST lacks the field \"op\"")?;
    let args = args.ok_or("REQUEST lacks the field \"args\"")?;
    let args = Field::root(&format!("{op}.args"), args);
    Ok(Request { op, args })
}

/// Starts the call `request` names; `open` is the REQUEST's OPEN flag (the client sends DATA).
pub fn start(plane: &Arc<DataPlane>, request: Request, open: bool) -> Result<Started> {
    let Request { op, args } = request;
    let Some((_, operation)) = OPERATIONS.iter().find(|(name, _)| *name == op) else {
        let known: Vec<&str> = OPERATIONS.iter().map(|(name, _)| *name).collect();
        return Err(Error::invalid_argument(format!("unknown operation {op:?} (this daemon has {known:?})")));
    };
    let sends_data = matches!(operation, Operation::Ingest(_));
    if open != sends_data {
        let needs =
            if sends_data { "needs the OPEN flag: its bytes follow as DATA" } else { "takes no DATA: no OPEN flag" };
        return Err(Error::invalid_argument(format!("REQUEST {op:?} {needs}")));
    }
    Ok(match operation {
        Operation::Unary(call) => Started::Unary(call(plane, args)?),
        Operation::Ingest(call) => Started::Ingest(call(plane, args)?),
        Operation::Serve(call) => Started::Serve(call(plane, args)?),
    })
}

fn ingest_stream(plane: &Arc<DataPlane>, args: Field) -> Result<Ingest> {
    let args: IngestStreamArgs = args.decode()?;
    plane.begin_ingest(args.into_options())
}

fn serve_object(plane: &Arc<DataPlane>, args: Field) -> Result<Pending<Served>> {
    let args: ServeObjectArgs = args.decode()?;
    let plane = plane.clone();
    Ok(Box::pin(async move {
        let address = args.address()?;
        let reader = plane.serve(&address, args.byte_range, args.backend_id.as_deref()).await?;
        let head = ServeHead::of(address, reader.as_ref()).to_cbor();
        Ok(Served { head, reader })
    }))
}

fn verify_object(plane: &Arc<DataPlane>, args: Field) -> Result<Pending<Vec<u8>>> {
    let args: ObjectArgs = args.decode()?;
    let plane = plane.clone();
    Ok(Box::pin(async move { Ok(plane.verify(&args.address()?, args.backend_id.as_deref()).await?.to_cbor()) }))
}

fn delete_object(plane: &Arc<DataPlane>, args: Field) -> Result<Pending<Vec<u8>>> {
    let args: ObjectArgs = args.decode()?;
    let plane = plane.clone();
    Ok(Box::pin(async move { Ok(plane.delete(&args.address()?, args.backend_id.as_deref()).await?.to_cbor()) }))
}

fn backend_health(plane: &Arc<DataPlane>, args: Field) -> Result<Pending<Vec<u8>>> {
    let NoArgs = args.decode()?;
    let plane = plane.clone();
    Ok(Box::pin(async move { Ok(plane.health().await?.to_cbor()) }))
}

/// `serve_object`'s RESPONSE: what `ObjectStream` exposes before its first byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeHead {
    pub content_address: ContentAddress,
    pub size_bytes: u64,
    pub total_size_bytes: u64,
}

impl ServeHead {
    fn of(content_address: ContentAddress, reader: &dyn ObjectReader) -> Self {
        ServeHead { content_address, size_bytes: reader.size_bytes(), total_size_bytes: reader.total_size_bytes() }
    }
}

impl MapCodec for ServeHead {
    const NAME: &'static str = "ObjectStream";

    fn encode(&self) -> Vec<u8> {
        cbor::map(vec![
            ("content_address", self.content_address.encode()),
            ("size_bytes", cbor::unsigned(self.size_bytes)),
            ("total_size_bytes", cbor::unsigned(self.total_size_bytes)),
        ])
    }

    fn decode(fields: &mut Fields) -> Result<Self> {
        Ok(ServeHead {
            content_address: fields.required("content_address")?.decode()?,
            size_bytes: fields.required("size_bytes")?.unsigned()?,
            total_size_bytes: fields.required("total_size_bytes")?.unsigned()?,
        })
    }
}
