//! Package `regexp` (RE2 syntax through `re.rs`).

use super::{arity, int_arg, str_arg, strings_list, struct_of, CallError, CallResult};
use crate::defs::re;
use crate::defs::value::Value;

pub const NAMES: &[&str] = &[
    "Match",
    "Find",
    "FindAll",
    "FindSubmatch",
    "FindNamedSubmatch",
    "ReplaceAll",
];

pub fn call(name: &str, args: &[Value]) -> CallResult {
    let n = match name {
        "FindAll" | "ReplaceAll" => 3,
        _ => 2,
    };
    arity(name, args, n)?;
    let r = re::compile(str_arg(&args[0])?).map_err(CallError::Bad)?;
    let s = str_arg(&args[1])?;
    let no_match = || CallError::Bad("no match".into());
    Ok(match name {
        "Match" => Value::Bool(r.is_match(s)),
        "Find" => Value::str(r.find(s).ok_or_else(no_match)?.as_str()),
        "FindAll" => {
            let n = int_arg(&args[2])?;
            let limit = if n < 0 { usize::MAX } else { n as usize };
            let found: Vec<String> = r.find_iter(s).take(limit).map(|m| m.as_str().to_string()).collect();
            if found.is_empty() {
                return Err(no_match());
            }
            strings_list(found)
        }
        "FindSubmatch" => {
            let c = r.captures(s).ok_or_else(no_match)?;
            strings_list(c.iter().map(|m| m.map(|m| m.as_str().to_string()).unwrap_or_default()))
        }
        "FindNamedSubmatch" => {
            let c = r.captures(s).ok_or_else(no_match)?;
            struct_of(
                r.capture_names()
                    .flatten()
                    .map(|n| (n.to_string(), Value::str(c.name(n).map(|m| m.as_str()).unwrap_or(""))))
                    .collect(),
            )
        }
        "ReplaceAll" => Value::str(&r.replace_all(s, str_arg(&args[2])?)),
        _ => return Err(CallError::Bad(format!("unknown function regexp.{name}"))),
    })
}
