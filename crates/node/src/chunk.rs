//! A served chunk as a JS Buffer: the Rust memory itself (no copy), with its size counted as V8
//! external memory while JS holds it, so the garbage collector frees spent chunks as fast as a
//! stream produces them instead of letting them pile up unseen.

use std::ffi::c_void;
use std::ptr;

use artifactstore_core::Bytes;
use napi::bindgen_prelude::*;
use napi::sys;

pub struct ServedChunk(pub Bytes);

impl TypeName for ServedChunk {
    fn type_name() -> &'static str {
        "Buffer"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for ServedChunk {
    unsafe fn to_napi_value(env: sys::napi_env, chunk: Self) -> Result<sys::napi_value> {
        let len = chunk.0.len();
        let mut buffer = ptr::null_mut();
        if len == 0 {
            check_status!(unsafe { sys::napi_create_buffer(env, 0, ptr::null_mut(), &mut buffer) })?;
            return Ok(buffer);
        }
        let data = chunk.0.as_ptr() as *mut c_void;
        let owner = Box::into_raw(Box::new(chunk.0));
        let status =
            unsafe { sys::napi_create_external_buffer(env, len, data, Some(release), owner.cast(), &mut buffer) };
        if status != sys::Status::napi_ok {
            // Runtimes that forbid external buffers get a copy.
            let bytes = unsafe { Box::from_raw(owner) };
            check_status!(unsafe {
                sys::napi_create_buffer_copy(env, len, bytes.as_ptr().cast(), ptr::null_mut(), &mut buffer)
            })?;
            return Ok(buffer);
        }
        adjust_external_memory(env, len as i64);
        Ok(buffer)
    }
}

unsafe extern "C" fn release(env: sys::napi_env, _data: *mut c_void, owner: *mut c_void) {
    let bytes = unsafe { Box::from_raw(owner.cast::<Bytes>()) };
    adjust_external_memory(env, -(bytes.len() as i64));
}

fn adjust_external_memory(env: sys::napi_env, change: i64) {
    let mut total = 0;
    unsafe { sys::napi_adjust_external_memory(env, change, &mut total) };
}
