//! Package `struct` (`structs` here: `struct` is a Rust keyword).
//!
//! `MinFields(n)` and `MaxFields(n)` are validators, not functions of a
//! struct: the call gives a constraint of kind struct that checks the
//! number of regular fields (not optional, hidden or definition fields)
//! of the struct it is unified with (`value.rs`).

use std::rc::Rc;

use super::{arity, int_arg, CallError, CallResult};
use crate::defs::value::{Basic, BoundOp, Value, K_STRUCT};

pub const NAMES: &[&str] = &["MinFields", "MaxFields"];

pub fn call(name: &str, args: &[Value]) -> CallResult {
    let op = match name {
        "MinFields" => BoundOp::MinFields,
        "MaxFields" => BoundOp::MaxFields,
        _ => return Err(CallError::Bad(format!("unknown function struct.{name}"))),
    };
    arity(name, args, 1)?;
    let n = int_arg(&args[0])?;
    Ok(Value::Basic(Rc::new(Basic {
        kinds: K_STRUCT,
        bounds: vec![(op, Value::Int(n))],
    })))
}
