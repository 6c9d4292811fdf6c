//! Package `strconv`.

use super::{arity, int_arg, str_arg, CallError, CallResult};
use crate::defs::value::Value;

pub const NAMES: &[&str] = &["Atoi", "ParseBool", "FormatInt", "Quote"];

pub fn call(name: &str, args: &[Value]) -> CallResult {
    match name {
        "Atoi" => {
            arity(name, args, 1)?;
            let s = str_arg(&args[0])?;
            s.parse::<i64>()
                .map(Value::Int)
                .map_err(|_| CallError::Bad(format!("strconv.Atoi: parsing {s:?}: invalid syntax")))
        }
        "ParseBool" => {
            arity(name, args, 1)?;
            let s = str_arg(&args[0])?;
            match s {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
                _ => Err(CallError::Bad(format!(
                    "strconv.ParseBool: parsing {s:?}: invalid syntax"
                ))),
            }
        }
        "FormatInt" => {
            arity(name, args, 2)?;
            let (i, base) = (int_arg(&args[0])?, int_arg(&args[1])?);
            if !(2..=36).contains(&base) {
                return Err(CallError::Bad(format!("strconv.FormatInt: invalid base {base}")));
            }
            Ok(Value::str(&format_radix(i, base as u32)))
        }
        "Quote" => {
            arity(name, args, 1)?;
            Ok(Value::str(&go_quote(str_arg(&args[0])?)))
        }
        _ => Err(CallError::Bad(format!("unknown function strconv.{name}"))),
    }
}

fn format_radix(i: i64, base: u32) -> String {
    let neg = i < 0;
    let mut n = i.unsigned_abs();
    let mut digits = Vec::new();
    loop {
        let d = (n % base as u64) as u32;
        digits.push(std::char::from_digit(d, base).unwrap_or('?'));
        n /= base as u64;
        if n == 0 {
            break;
        }
    }
    if neg {
        digits.push('-');
    }
    digits.iter().rev().collect()
}

/// Go's strconv.Quote: a double-quoted Go string literal.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
