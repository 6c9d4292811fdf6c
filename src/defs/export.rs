//! Value → JSON, as `cue export --out json` does: defaults chosen, optional
//! fields and definitions left out, every non-concrete field reported with
//! its path, keys in declaration order, 4-space indentation.

use serde::Serialize;

use base64::Engine as _;

use crate::defs::budget;
use crate::defs::error::{CueError, Files, Pos};
use crate::defs::value::{to_cue, Value};

/// Deepest nesting exported; deeper values are reported, not recursed into.
const MAX_EXPORT_DEPTH: usize = 400;

/// How non-concrete values are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An error naming the field (what `cue export` does).
    Strict,
    /// The value's CUE text as a JSON string (`"string"`, `">0"`), for
    /// showing templates that still have holes.
    Lenient,
}

pub fn export(v: &Value, files: &Files, mode: Mode) -> Result<serde_json::Value, Vec<CueError>> {
    // an evaluation that ran out of budget reports only that
    if let Some(e) = budget::error() {
        return Err(vec![e]);
    }
    let mut errs = Vec::new();
    let out = walk(v, "", Pos::default(), files, mode, &mut errs, 0);
    if errs.is_empty() {
        Ok(out)
    } else {
        let mut seen = std::collections::HashSet::new();
        errs.retain(|e| seen.insert(e.to_string()));
        Err(errs)
    }
}

fn join(path: &str, label: &str) -> String {
    if path.is_empty() {
        label.to_string()
    } else {
        format!("{path}.{label}")
    }
}

fn walk(
    v: &Value,
    path: &str,
    pos: Pos,
    files: &Files,
    mode: Mode,
    errs: &mut Vec<CueError>,
    depth: usize,
) -> serde_json::Value {
    use serde_json::Value as J;
    if depth > MAX_EXPORT_DEPTH {
        errs.push(files.err(pos, format!("{path}: value nested too deeply")));
        return J::Null;
    }
    let v = v.default();
    match &v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        // a float CUE prints without a point (`6 / 3` is `2`) is written so
        Value::Float(f, e) => match crate::defs::value::fmt_float(*f, *e).parse::<i64>() {
            Ok(i) => J::from(i),
            Err(_) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
        },
        Value::Str(s) => J::String(s.to_string()),
        // as `cue export` does: standard base64
        Value::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        // a template hole that depends on another hole
        Value::Bottom(e) if e.incomplete && mode == Mode::Lenient => J::String("<incomplete>".into()),
        Value::Bottom(e) => {
            let mut e = (**e).clone();
            // say which field an incomplete error leaves open
            if e.incomplete && !path.is_empty() && !e.message.starts_with(&format!("{path}:")) {
                e.message = format!("{path}: {}", e.message);
            }
            errs.push(e);
            J::Null
        }
        Value::Top | Value::Basic(_) | Value::Disj(_) => match mode {
            Mode::Lenient => J::String(to_cue(&v)),
            Mode::Strict => {
                let p = if path.is_empty() { "value" } else { path };
                errs.push(files.incomplete(pos, format!("{p}: incomplete value {}", to_cue(&v))));
                J::Null
            }
        },
        Value::Struct(s) => {
            let mut m = serde_json::Map::new();
            for f in &s.fields {
                let fp = join(path, &f.label);
                if f.def || f.optional {
                    // not exported, but a conflict inside a definition is
                    // still an error (as in `cue export`)
                    if f.def {
                        find_errors(&f.value, errs, depth + 1);
                    }
                    continue;
                }
                let j = walk(&f.value, &fp, f.pos, files, mode, errs, depth + 1);
                m.insert(f.label.clone(), j);
            }
            J::Object(m)
        }
        Value::List(l) => J::Array(
            l.elems
                .iter()
                .enumerate()
                .map(|(i, e)| walk(e, &join(path, &i.to_string()), pos, files, mode, errs, depth + 1))
                .collect(),
        ),
    }
}

fn find_errors(v: &Value, errs: &mut Vec<CueError>, depth: usize) {
    if depth > MAX_EXPORT_DEPTH {
        return;
    }
    match v {
        Value::Bottom(e) if !e.incomplete => errs.push((**e).clone()),
        Value::Struct(s) => {
            for f in &s.fields {
                if !f.optional {
                    find_errors(&f.value, errs, depth + 1);
                }
            }
        }
        Value::List(l) => l.elems.iter().for_each(|e| find_errors(e, errs, depth + 1)),
        _ => {}
    }
}

/// JSON text exactly as `cue export --out json` prints it: 4-space indent,
/// trailing newline.
pub fn to_json_string(v: &serde_json::Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if v.serialize(&mut ser).is_err() {
        return "null\n".into();
    }
    let mut out = go_json_escapes(&String::from_utf8(buf).unwrap_or_default());
    out.push('\n');
    out
}

/// JSON text with the escapes Go's encoding/json (used by cue) writes even
/// inside strings: `<`, `>`, `&`, U+2028 and U+2029. Outside strings they
/// cannot occur in JSON text.
pub(crate) fn go_json_escapes(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 1);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}
