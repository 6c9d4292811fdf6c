//! `len close and or div mod quo rem`.

use std::rc::Rc;

use super::{arity, int_arg, list_arg, want, CallError, CallResult};
use crate::defs::value::{disjunction, unify, StructV, Value};

pub fn call(name: &str, args: &[Value]) -> CallResult {
    match name {
        "len" => {
            arity(name, args, 1)?;
            let n = match &args[0].default() {
                Value::Str(s) => s.len(),
                Value::Bytes(b) => b.len(),
                Value::List(l) => l.elems.len(),
                Value::Struct(s) => s.fields.iter().filter(|f| !f.optional && !f.def).count(),
                v => return Err(want(v, "string, bytes, list or struct")),
            };
            Ok(Value::Int(n as i64))
        }
        "close" => {
            arity(name, args, 1)?;
            match &args[0] {
                Value::Struct(s) => Ok(Value::Struct(Rc::new(StructV {
                    fields: s.fields.clone(),
                    closed: !s.open,
                    open: s.open,
                }))),
                v => Err(want(v, "struct")),
            }
        }
        "and" => {
            arity(name, args, 1)?;
            let mut acc = Value::Top;
            for v in list_arg(&args[0])? {
                acc = unify(&acc, v).map_err(CallError::Bad)?;
            }
            Ok(acc)
        }
        "or" => {
            arity(name, args, 1)?;
            let alts: Vec<(Value, bool)> = list_arg(&args[0])?.iter().map(|v| (v.clone(), false)).collect();
            if alts.is_empty() {
                return Err(CallError::Bad("empty list in call to or".into()));
            }
            disjunction(alts).map_err(CallError::Bad)
        }
        "div" | "mod" | "quo" | "rem" => {
            arity(name, args, 2)?;
            let (x, y) = (int_arg(&args[0])?, int_arg(&args[1])?);
            if y == 0 {
                return Err(CallError::Bad("division by zero".into()));
            }
            // div/mod are Euclidean, quo/rem truncate (as in Go's big.Int)
            let r = match name {
                "div" => x.checked_div_euclid(y),
                "mod" => x.checked_rem_euclid(y),
                "quo" => x.checked_div(y),
                _ => x.checked_rem(y),
            };
            r.map(Value::Int)
                .ok_or_else(|| CallError::Bad("integer overflow".into()))
        }
        _ => Err(CallError::Bad(format!("unknown builtin {name}"))),
    }
}
