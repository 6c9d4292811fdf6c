//! Packages `encoding/json`, `encoding/yaml`, `encoding/base64` and
//! `encoding/hex`.

use base64::Engine as _;

use super::{arity, bytes_arg, from_json, str_arg, to_json, CallError, CallResult};
use crate::defs::value::Value;

/// Longest text a decode may parse.
const MAX: usize = 1 << 24;

pub fn json(name: &str, args: &[Value]) -> CallResult {
    arity(name, args, 1)?;
    match name {
        "Marshal" => Ok(Value::str(&marshal_json(&to_json(&args[0], 0)?))),
        "Unmarshal" => {
            let s = bytes_arg(&args[0])?;
            if s.len() > MAX {
                return Err(CallError::Bad("json.Unmarshal: input too long".into()));
            }
            serde_json::from_slice::<serde_json::Value>(&s)
                .map(|j| from_json(&j))
                .map_err(|e| CallError::Bad(format!("json.Unmarshal: invalid JSON: {e}")))
        }
        "Valid" => {
            let s = bytes_arg(&args[0])?;
            Ok(Value::Bool(serde_json::from_slice::<serde_json::Value>(&s).is_ok()))
        }
        _ => Err(CallError::Bad(format!("unknown function json.{name}"))),
    }
}

/// Compact JSON as Go's encoding/json writes it (`<`, `>`, `&` escaped).
fn marshal_json(j: &serde_json::Value) -> String {
    crate::defs::export::go_json_escapes(&serde_json::to_string(j).unwrap_or_default())
}

pub fn yaml(name: &str, args: &[Value]) -> CallResult {
    arity(name, args, 1)?;
    match name {
        "Marshal" => {
            let j = to_json(&args[0], 0)?;
            let mut out = String::new();
            yaml_node(&j, 0, &mut out);
            Ok(Value::str(&out))
        }
        _ => Err(CallError::Bad(format!("unknown function yaml.{name}"))),
    }
}

pub fn base64(name: &str, args: &[Value]) -> CallResult {
    arity(name, args, 2)?;
    if args[0] != Value::Null {
        return Err(CallError::Bad(
            "base64: only the standard encoding (null) is supported by Substrate's CUE subset".into(),
        ));
    }
    let engine = base64::engine::general_purpose::STANDARD;
    match name {
        "Encode" => Ok(Value::str(&engine.encode(bytes_arg(&args[1])?))),
        "Decode" => engine
            .decode(str_arg(&args[1])?)
            .map(|b| Value::Bytes(b.into()))
            .map_err(|e| CallError::Bad(format!("base64.Decode: {e}"))),
        _ => Err(CallError::Bad(format!("unknown function base64.{name}"))),
    }
}

pub fn hex(name: &str, args: &[Value]) -> CallResult {
    arity(name, args, 1)?;
    match name {
        "Encode" => {
            let b = bytes_arg(&args[0])?;
            Ok(Value::str(&b.iter().map(|x| format!("{x:02x}")).collect::<String>()))
        }
        "Decode" => {
            let s = str_arg(&args[0])?;
            let bad = || CallError::Bad(format!("hex.Decode: invalid hexadecimal {s:?}"));
            if s.len() % 2 != 0 {
                return Err(bad());
            }
            let b = (0..s.len())
                .step_by(2)
                .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(bad)?;
            Ok(Value::Bytes(b.into()))
        }
        _ => Err(CallError::Bad(format!("unknown function hex.{name}"))),
    }
}

// ---- YAML, the way `yaml.Marshal` of cue prints it ------------------------

fn yaml_node(j: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value as J;
    let pad = " ".repeat(indent);
    match j {
        J::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                out.push_str(&pad);
                out.push_str(&yaml_scalar_str(k));
                out.push(':');
                match v {
                    J::Object(x) if !x.is_empty() => {
                        out.push('\n');
                        yaml_node(v, indent + 2, out);
                    }
                    J::Array(x) if !x.is_empty() => {
                        out.push('\n');
                        yaml_node(v, indent, out);
                    }
                    _ => {
                        out.push(' ');
                        yaml_inline(v, indent + 2, out);
                    }
                }
            }
        }
        J::Array(a) if !a.is_empty() => {
            for v in a {
                out.push_str(&pad);
                out.push('-');
                match v {
                    J::Object(x) if !x.is_empty() => {
                        // the first field on the dash's line
                        out.push(' ');
                        let mut inner = String::new();
                        yaml_node(v, indent + 2, &mut inner);
                        out.push_str(inner.trim_start_matches(' '));
                    }
                    J::Array(x) if !x.is_empty() => {
                        out.push(' ');
                        let mut inner = String::new();
                        yaml_node(v, indent + 2, &mut inner);
                        out.push_str(inner.trim_start_matches(' '));
                    }
                    _ => {
                        out.push(' ');
                        yaml_inline(v, indent + 2, out);
                    }
                }
            }
        }
        _ => {
            out.push_str(&pad);
            yaml_inline(j, indent, out);
        }
    }
}

/// A scalar or empty collection and its newline.
fn yaml_inline(j: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value as J;
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => out.push_str(&n.to_string()),
        J::String(s) if s.contains('\n') => {
            // literal block
            out.push('|');
            if !s.ends_with('\n') {
                out.push('-');
            }
            out.push('\n');
            let pad = " ".repeat(indent);
            for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
                if !line.is_empty() {
                    out.push_str(&pad);
                    out.push_str(line);
                }
                out.push('\n');
            }
            return;
        }
        J::String(s) => out.push_str(&yaml_scalar_str(s)),
        J::Array(_) => out.push_str("[]"),
        J::Object(_) => out.push_str("{}"),
    }
    out.push('\n');
}

/// A string as a YAML scalar: plain where it reads back as the same
/// string, double-quoted where it would read as another type, otherwise
/// single-quoted.
fn yaml_scalar_str(s: &str) -> String {
    if s.is_empty() || resolves_to_non_string(s) {
        return format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    }
    let first = s.chars().next().unwrap_or(' ');
    let needs_quotes = "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.ends_with(':')
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(|c| c.is_control());
    if needs_quotes {
        if s.chars().any(|c| c.is_control()) {
            return serde_json::to_string(s).unwrap_or_default();
        }
        return format!("'{}'", s.replace('\'', "''"));
    }
    s.to_string()
}

fn resolves_to_non_string(s: &str) -> bool {
    matches!(
        s,
        "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "null"
            | "Null"
            | "NULL"
            | "~"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | "+.inf"
            | ".nan"
            | ".NaN"
            | ".NAN"
            | "<<"
    ) || is_yaml_number(s)
}

fn is_yaml_number(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    if t.is_empty() {
        return false;
    }
    if let Some(h) = t.strip_prefix("0x") {
        return !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(o) = t.strip_prefix("0o") {
        return !o.is_empty() && o.chars().all(|c| c.is_digit(8));
    }
    // [0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)? or \.[0-9]+(…)?
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mant_ok = match mant.split_once('.') {
        Some((a, b)) => {
            (!a.is_empty() || !b.is_empty())
                && a.chars().all(|c| c.is_ascii_digit())
                && b.chars().all(|c| c.is_ascii_digit())
        }
        None => !mant.is_empty() && mant.chars().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        }
    };
    mant_ok && exp_ok
}
