//! Packages `encoding/json`, `encoding/yaml`, `encoding/base64` and
//! `encoding/hex`.

use base64::Engine as _;

use super::{arity, bytes_arg, from_json, str_arg, to_json_text, to_yaml_data, CallError, CallResult};
use crate::defs::value::Value;

/// Longest text a decode may parse.
const MAX: usize = 1 << 24;

pub fn json(name: &str, args: &[Value]) -> CallResult {
    arity(name, args, 1)?;
    match name {
        "Marshal" => Ok(Value::str(&crate::defs::export::go_json_escapes(&to_json_text(
            &args[0],
        )?))),
        "Unmarshal" => {
            let s = bytes_arg(&args[0])?;
            if s.len() > MAX {
                return Err(CallError::Bad("json.Unmarshal: input too long".into()));
            }
            let j = serde_json::from_slice::<super::JsonNode>(&s)
                .map_err(|e| CallError::Bad(format!("json.Unmarshal: invalid JSON: {e}")))?;
            from_json(&j)
        }
        "Valid" => {
            let s = bytes_arg(&args[0])?;
            Ok(Value::Bool(serde_json::from_slice::<serde_json::Value>(&s).is_ok()))
        }
        _ => Err(CallError::Bad(format!("unknown function json.{name}"))),
    }
}

pub fn yaml(name: &str, args: &[Value]) -> CallResult {
    arity(name, args, 1)?;
    match name {
        "Marshal" => {
            let j = to_yaml_data(&args[0], 0)?;
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
        // a document that is one scalar: continuation lines are indented
        _ => {
            out.push_str(&pad);
            yaml_inline(j, indent + 2, out);
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
            // literal block; a leading blank needs the indentation written
            // out, trailing newlines beyond one need "keep"
            out.push('|');
            if s.starts_with([' ', '\n']) {
                out.push('2');
            }
            if !s.ends_with('\n') {
                out.push('-');
            } else if s.ends_with("\n\n") {
                out.push('+');
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
        J::String(s) => {
            let text = yaml_scalar_str(s);
            let column = out.len() - out.rfind('\n').map_or(0, |i| i + 1);
            fold_scalar(&text, column, indent, out);
        }
        J::Array(_) => out.push_str("[]"),
        J::Object(_) => out.push_str("{}"),
    }
    out.push('\n');
}

/// Writes a plain or single-quoted scalar, breaking lines at spaces past
/// column 80 the way yaml.v2's emitter does (a break replaces one space
/// that is not followed by another; in quotes, never the first or last
/// character). Double-quoted scalars are written whole.
fn fold_scalar(text: &str, mut column: usize, indent: usize, out: &mut String) {
    const BEST_WIDTH: usize = 80;
    if text.starts_with('"') {
        out.push_str(text);
        return;
    }
    let quoted = text.starts_with('\'');
    let cs: Vec<char> = text.chars().collect();
    let mut spaces = false;
    for (i, &c) in cs.iter().enumerate() {
        let inner = !quoted || (i > 1 && i + 2 < cs.len());
        if c == ' ' {
            if inner && !spaces && column > BEST_WIDTH && cs.get(i + 1).is_some_and(|&n| n != ' ') {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                column = indent;
            } else {
                out.push(c);
                column += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            column += 1;
            spaces = false;
        }
    }
}

/// A string as a YAML scalar: plain where it reads back as the same
/// string, double-quoted where it would read as another type, otherwise
/// single-quoted.
fn yaml_scalar_str(s: &str) -> String {
    if s.is_empty() || resolves_to_non_string(s) {
        return format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    }
    // yaml.v3's emitter: `-`, `?` and `:` lead a plain scalar unless a
    // blank (or the end) follows them; `---` and `...` open a document marker
    let mut cs = s.chars();
    let first = cs.next().unwrap_or(' ');
    let blank_after_first = cs.next().is_none_or(|c| c == ' ' || c == '\t');
    let needs_quotes = ",[]{}#&*!|>'\"%@`".contains(first)
        || ("-?:".contains(first) && blank_after_first)
        || s.starts_with("---")
        || s.starts_with("...")
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
    ) || is_yaml_number(s)
        || is_yaml_timestamp(s)
}

/// `2001-12-14`, `2001-1-2T…`, `2001-12-14 21:59:43`: YAML 1.1 timestamps,
/// which the reference's encoder quotes.
fn is_yaml_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize, min: usize, max: usize| {
        let n = b[from.min(b.len())..].iter().take_while(|c| c.is_ascii_digit()).count();
        (min..=max).contains(&n).then_some(from + n)
    };
    let date_end = digits(0, 4, 4)
        .filter(|&i| b.get(i) == Some(&b'-'))
        .and_then(|i| digits(i + 1, 1, 2))
        .filter(|&i| b.get(i) == Some(&b'-'))
        .and_then(|i| digits(i + 1, 1, 2));
    match date_end {
        Some(i) => matches!(b.get(i), None | Some(b'T' | b't' | b' ' | b'\t')),
        None => false,
    }
}

fn is_yaml_number(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    if t.is_empty() {
        return false;
    }
    // YAML 1.1 numbers may carry `_` separators after their first character
    if t.contains('_') && !t.starts_with('_') {
        return is_yaml_number(&s.replace('_', ""));
    }
    if let Some(bin) = t.strip_prefix("0b") {
        return !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1');
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
