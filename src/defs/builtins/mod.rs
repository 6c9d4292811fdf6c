//! Builtins: the predeclared functions (`len close and or div mod quo rem`)
//! and the standard-library packages of the subset, one module per
//! package. A builtin works on evaluated [`Value`]s: the evaluator resolves
//! `strings.Join(…)` to a [`Func`], evaluates the arguments and calls
//! [`call`]; an argument that is not concrete yet makes the call
//! incomplete rather than wrong.

mod crypto;
mod encoding;
pub mod list;
mod math;
mod path;
mod predeclared;
mod regexp;
mod strconv;
mod strings;
mod structs;

use std::rc::Rc;

use crate::defs::value::{FieldV, ListV, StructV, Value};

/// Why a call failed; the evaluator adds the position.
pub enum CallError {
    /// Wrong arguments, or the function itself failed.
    Bad(String),
    /// An argument is not concrete yet.
    Incomplete(String),
}

pub type CallResult = Result<Value, CallError>;

/// A function of a package (`""` for the predeclared ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Func {
    pub pkg: &'static str,
    pub name: &'static str,
}

/// The standard-library packages of the subset, by import path.
pub const PACKAGES: &[&str] = &[
    "strings",
    "list",
    "struct",
    "math",
    "strconv",
    "regexp",
    "encoding/json",
    "encoding/yaml",
    "encoding/base64",
    "encoding/hex",
    "crypto/sha256",
    "path",
];

/// The package of an import path, if the subset has it.
pub fn package(path: &str) -> Option<&'static str> {
    PACKAGES.iter().find(|p| **p == path).copied()
}

/// Functions of each package.
fn names(pkg: &str) -> &'static [&'static str] {
    match pkg {
        "" => &["len", "close", "and", "or", "div", "mod", "quo", "rem"],
        "strings" => strings::NAMES,
        "list" => list::NAMES,
        "struct" => structs::NAMES,
        "math" => math::NAMES,
        "strconv" => strconv::NAMES,
        "regexp" => regexp::NAMES,
        "encoding/json" => &["Marshal", "Unmarshal", "Valid"],
        "encoding/yaml" => &["Marshal"],
        "encoding/base64" | "encoding/hex" => &["Encode", "Decode"],
        "crypto/sha256" => &["Sum256"],
        "path" => path::NAMES,
        _ => &[],
    }
}

/// `pkg.name`: a function of the package, if the subset has it.
pub fn func(pkg: &'static str, name: &str) -> Option<Func> {
    names(pkg).iter().find(|n| **n == name).map(|name| Func { pkg, name })
}

/// A constant of a package (`math.Pi`).
pub fn constant(pkg: &str, name: &str) -> Option<Value> {
    match (pkg, name) {
        ("math", "Pi") => Some(Value::Float(std::f64::consts::PI)),
        ("math", "E") => Some(Value::Float(std::f64::consts::E)),
        ("list", n) => list::comparator(n),
        _ => None,
    }
}

/// Calls `f` with evaluated arguments (defaults not yet applied).
pub fn call(f: Func, args: &[Value]) -> CallResult {
    let args: Vec<Value> = if f.pkg.is_empty() && matches!(f.name, "close" | "and" | "or") {
        args.to_vec()
    } else {
        args.iter().map(Value::default).collect()
    };
    match f.pkg {
        "" => predeclared::call(f.name, &args),
        "strings" => strings::call(f.name, &args),
        "list" => list::call(f.name, &args),
        "struct" => structs::call(f.name, &args),
        "math" => math::call(f.name, &args),
        "strconv" => strconv::call(f.name, &args),
        "regexp" => regexp::call(f.name, &args),
        "encoding/json" => encoding::json(f.name, &args),
        "encoding/yaml" => encoding::yaml(f.name, &args),
        "encoding/base64" => encoding::base64(f.name, &args),
        "encoding/hex" => encoding::hex(f.name, &args),
        "crypto/sha256" => crypto::sha256(f.name, &args),
        "path" => path::call(f.name, &args),
        _ => Err(CallError::Bad(format!("unknown package {}", f.pkg))),
    }
}

// ---- argument helpers ---------------------------------------------------

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), CallError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(CallError::Bad(format!(
            "{name}: takes {n} argument{}, got {}",
            if n == 1 { "" } else { "s" },
            args.len()
        )))
    }
}

fn not_concrete(v: &Value) -> Option<CallError> {
    match v {
        Value::Top | Value::Basic(_) | Value::Disj(_) => Some(CallError::Incomplete(format!(
            "non-concrete argument {}",
            crate::defs::value::to_cue(v)
        ))),
        Value::Bottom(e) => Some(CallError::Bad(e.message.clone())),
        _ => None,
    }
}

fn want(v: &Value, what: &str) -> CallError {
    if let Some(e) = not_concrete(v) {
        return e;
    }
    CallError::Bad(format!(
        "cannot use {} as {what} in argument",
        crate::defs::value::to_cue(v)
    ))
}

fn str_arg(v: &Value) -> Result<&str, CallError> {
    match v {
        Value::Str(s) => Ok(s),
        v => Err(want(v, "string")),
    }
}

fn int_arg(v: &Value) -> Result<i64, CallError> {
    match v {
        Value::Int(i) => Ok(*i),
        v => Err(want(v, "int")),
    }
}

fn num_arg(v: &Value) -> Result<f64, CallError> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        v => Err(want(v, "number")),
    }
}

fn list_arg(v: &Value) -> Result<&[Value], CallError> {
    match v {
        Value::List(l) => Ok(&l.elems),
        v => Err(want(v, "list")),
    }
}

/// A list whose elements are all strings.
fn strs_arg(v: &Value) -> Result<Vec<&str>, CallError> {
    list_arg(v)?.iter().map(str_arg).collect()
}

/// Strings and bytes both pass as bytes (`base64.Encode(null, "x")`).
fn bytes_arg(v: &Value) -> Result<Vec<u8>, CallError> {
    match v {
        Value::Str(s) => Ok(s.as_bytes().to_vec()),
        Value::Bytes(b) => Ok(b.to_vec()),
        v => Err(want(v, "bytes or string")),
    }
}

fn list_of(elems: Vec<Value>) -> Value {
    Value::List(Rc::new(ListV { elems, tail: None }))
}

fn strings_list(items: impl IntoIterator<Item = String>) -> Value {
    list_of(items.into_iter().map(|s| Value::str(&s)).collect())
}

fn struct_of(fields: Vec<(String, Value)>) -> Value {
    Value::Struct(Rc::new(StructV {
        fields: fields
            .into_iter()
            .map(|(label, value)| FieldV {
                label,
                value,
                optional: false,
                def: false,
                pos: Default::default(),
            })
            .collect(),
        closed: false,
    }))
}

/// A float result as CUE shows it: integral results of integral
/// arguments stay ints.
fn number(f: f64) -> CallResult {
    if !f.is_finite() {
        return Err(CallError::Bad("result is not a finite number".into()));
    }
    Ok(Value::Float(f))
}

/// A concrete value as JSON (for `json.Marshal`, `yaml.Marshal`): regular
/// fields only, defaults applied.
fn to_json(v: &Value, depth: usize) -> Result<serde_json::Value, CallError> {
    use serde_json::Value as J;
    if depth > 200 {
        return Err(CallError::Bad("value nested too deeply".into()));
    }
    let v = v.default();
    Ok(match &v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
        Value::Str(s) => J::String(s.to_string()),
        Value::Bytes(b) => {
            use base64::Engine as _;
            J::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Value::Struct(s) => {
            let mut m = serde_json::Map::new();
            for f in s.fields.iter().filter(|f| !f.optional && !f.def) {
                m.insert(f.label.clone(), to_json(&f.value, depth + 1)?);
            }
            J::Object(m)
        }
        Value::List(l) => J::Array(
            l.elems
                .iter()
                .map(|e| to_json(e, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(not_concrete(other).unwrap_or_else(|| CallError::Bad("invalid value".into()))),
    })
}

/// JSON data as a CUE value.
fn from_json(j: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::str(s),
        J::Array(a) => list_of(a.iter().map(from_json).collect()),
        J::Object(o) => struct_of(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}
