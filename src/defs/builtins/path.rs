//! Package `path` (slash-separated paths, like Go's `path`).

use super::{arity, str_arg, strs_arg, CallError, CallResult};
use crate::defs::value::Value;

pub const NAMES: &[&str] = &["Join", "Base", "Dir"];

pub fn call(name: &str, args: &[Value]) -> CallResult {
    // the optional second argument names the OS flavour; only unix here
    if args.len() == 2 {
        match &args[1] {
            Value::Str(os) if os.as_ref() == "unix" => {}
            Value::Null => {}
            _ => {
                return Err(CallError::Bad(
                    "path: only the unix flavour is supported by Substrate's CUE subset".into(),
                ))
            }
        }
    } else {
        arity(name, args, 1)?;
    }
    Ok(match name {
        "Join" => {
            let mut joined = strs_arg(&args[0])?;
            joined.retain(|p| !p.is_empty());
            if joined.is_empty() {
                Value::str("")
            } else {
                Value::str(&clean(&joined.join("/")))
            }
        }
        "Base" => Value::str(&base(str_arg(&args[0])?)),
        "Dir" => Value::str(&dir(str_arg(&args[0])?)),
        _ => return Err(CallError::Bad(format!("unknown function path.{name}"))),
    })
}

/// Go's path.Clean.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let s = out.join("/");
    match (rooted, s.is_empty()) {
        (true, _) => format!("/{s}"),
        (false, true) => ".".into(),
        (false, false) => s,
    }
}

fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn dir(p: &str) -> String {
    let d = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    clean(d)
}
