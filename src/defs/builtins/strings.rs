//! Package `strings`.

use super::{arity, int_arg, str_arg, strings_list, strs_arg, CallError, CallResult};
use crate::defs::value::Value;

pub const NAMES: &[&str] = &[
    "Join",
    "Split",
    "HasPrefix",
    "HasSuffix",
    "TrimPrefix",
    "TrimSuffix",
    "TrimSpace",
    "ToUpper",
    "ToLower",
    "Contains",
    "Replace",
    "Repeat",
];

/// Longest string a call may build.
const MAX: usize = 1 << 24;

pub fn call(name: &str, args: &[Value]) -> CallResult {
    let n = match name {
        "TrimSpace" | "ToUpper" | "ToLower" => 1,
        "Replace" => 4,
        _ => 2,
    };
    arity(name, args, n)?;
    let s = |i: usize| str_arg(&args[i]);
    Ok(match name {
        "Join" => Value::str(&strs_arg(&args[0])?.join(s(1)?)),
        "Split" => strings_list(go_split(s(0)?, s(1)?)),
        "HasPrefix" => Value::Bool(s(0)?.starts_with(s(1)?)),
        "HasSuffix" => Value::Bool(s(0)?.ends_with(s(1)?)),
        "TrimPrefix" => Value::str(s(0)?.strip_prefix(s(1)?).unwrap_or(s(0)?)),
        "TrimSuffix" => Value::str(s(0)?.strip_suffix(s(1)?).unwrap_or(s(0)?)),
        "TrimSpace" => Value::str(s(0)?.trim()),
        "ToUpper" => Value::str(&simple_case(s(0)?, true)),
        "ToLower" => Value::str(&simple_case(s(0)?, false)),
        "Contains" => Value::Bool(s(0)?.contains(s(1)?)),
        "Replace" => {
            let (src, old, new, n) = (s(0)?, s(1)?, s(2)?, int_arg(&args[3])?);
            let out = if n < 0 {
                src.replace(old, new)
            } else {
                src.replacen(old, new, n as usize)
            };
            if out.len() > MAX {
                return Err(CallError::Bad("result too long".into()));
            }
            Value::str(&out)
        }
        "Repeat" => {
            let (x, n) = (s(0)?, int_arg(&args[1])?);
            if n < 0 {
                return Err(CallError::Bad("strings.Repeat: negative count".into()));
            }
            if (n as u128) * (x.len() as u128) > MAX as u128 {
                return Err(CallError::Bad("result too long".into()));
            }
            Value::str(&x.repeat(n as usize))
        }
        _ => return Err(CallError::Bad(format!("unknown function strings.{name}"))),
    })
}

/// Go's strings.Split: an empty separator splits into UTF-8 characters.
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(String::from).collect()
}

/// Go's `strings.ToUpper`/`ToLower`: each character maps to one character
/// (Unicode's simple case mapping), so `ß` stays `ß` where Rust's full
/// mapping would give `SS`.
fn simple_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut m: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            match (m.len(), c) {
                (1, _) => m.remove(0),
                // `İ`: Go lower-cases it to `i`
                (_, '\u{130}') if !upper => 'i',
                _ => c,
            }
        })
        .collect()
}
