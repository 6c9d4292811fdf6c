//! Package `math`.

use super::{arity, num_arg, CallError, CallResult};
use crate::defs::value::{Exp, Value};

pub const NAMES: &[&str] = &["Floor", "Ceil", "Abs", "Pow"];

pub fn call(name: &str, args: &[Value]) -> CallResult {
    match name {
        "Floor" | "Ceil" => {
            arity(name, args, 1)?;
            let x = num_arg(&args[0])?;
            let r = if name == "Floor" { x.floor() } else { x.ceil() };
            int_valued(r)
        }
        "Abs" => {
            arity(name, args, 1)?;
            match &args[0] {
                Value::Int(i) => i
                    .checked_abs()
                    .map(Value::Int)
                    .ok_or_else(|| CallError::Bad("integer overflow".into())),
                Value::Float(f, e) => Ok(Value::Float(f.abs(), *e)),
                v => Ok(Value::Float(num_arg(v)?.abs(), Exp::default())),
            }
        }
        "Pow" => {
            arity(name, args, 2)?;
            // the reference computes in decimal, where 0**0 is undefined
            if num_arg(&args[0])? == 0.0 && num_arg(&args[1])? == 0.0 {
                return Err(CallError::Bad("math.Pow: invalid operation (0 to the power 0)".into()));
            }
            if let (Value::Int(x), Value::Int(y)) = (&args[0], &args[1]) {
                if let Ok(y) = u32::try_from(*y) {
                    if let Some(r) = x.checked_pow(y) {
                        return Ok(Value::Int(r));
                    }
                }
            }
            let r = num_arg(&args[0])?.powf(num_arg(&args[1])?);
            if !r.is_finite() {
                return Err(CallError::Bad("math.Pow: result out of range".into()));
            }
            Ok(Value::Float(r, Exp::default()))
        }
        _ => Err(CallError::Bad(format!("unknown function math.{name}"))),
    }
}

/// CUE prints an integral Floor/Ceil result as an integer.
fn int_valued(r: f64) -> CallResult {
    if r.is_finite() && r.abs() < 9.0e15 {
        Ok(Value::Int(r as i64))
    } else {
        super::number(r)
    }
}
