//! Package `crypto/sha256`.

use sha2::Digest;

use super::{arity, bytes_arg, CallError, CallResult};
use crate::defs::value::Value;

pub fn sha256(name: &str, args: &[Value]) -> CallResult {
    match name {
        "Sum256" => {
            arity(name, args, 1)?;
            let d = sha2::Sha256::digest(bytes_arg(&args[0])?);
            Ok(Value::Bytes(d.to_vec().into()))
        }
        _ => Err(CallError::Bad(format!("unknown function sha256.{name}"))),
    }
}
