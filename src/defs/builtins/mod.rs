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

use crate::defs::error::unsupported;
use crate::defs::value::{Exp, FieldV, ListV, StructV, Value};

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
        ("math", "Pi") => Some(Value::Float(std::f64::consts::PI, Exp::default())),
        ("math", "E") => Some(Value::Float(std::f64::consts::E, Exp::default())),
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
        Value::Float(f, _) => Ok(*f),
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
        open: false,
    }))
}

/// A float result as CUE shows it: integral results of integral
/// arguments stay ints.
fn number(f: f64) -> CallResult {
    if !f.is_finite() {
        return Err(CallError::Bad("result is not a finite number".into()));
    }
    Ok(Value::Float(f, Exp::default()))
}

/// A concrete value as JSON text (for `json.Marshal`): regular fields
/// only, defaults applied, bytes in base64, floats in CUE's notation
/// (`1E+3`, `2.50`), which a JSON number type would not keep.
fn write_json(v: &Value, depth: usize, out: &mut String) -> Result<(), CallError> {
    if depth > 200 {
        return Err(CallError::Bad("value nested too deeply".into()));
    }
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    match &v.default() {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f, e) => out.push_str(&crate::defs::value::float_text(*f, *e).map_err(CallError::Bad)?),
        Value::Str(s) => out.push_str(&quoted(s)),
        Value::Bytes(b) => {
            use base64::Engine as _;
            out.push_str(&quoted(&base64::engine::general_purpose::STANDARD.encode(b)))
        }
        Value::Struct(s) => {
            out.push('{');
            for (i, f) in s.fields.iter().filter(|f| !f.optional && !f.def).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quoted(&f.label));
                out.push(':');
                write_json(&f.value, depth + 1, out)?;
            }
            out.push('}');
        }
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.elems.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(e, depth + 1, out)?;
            }
            out.push(']');
        }
        other => return Err(not_concrete(other).unwrap_or_else(|| CallError::Bad("invalid value".into()))),
    }
    Ok(())
}

/// A concrete value as JSON text, as `json.Marshal` gives it.
fn to_json_text(v: &Value) -> Result<String, CallError> {
    let mut out = String::new();
    write_json(v, 0, &mut out)?;
    Ok(out)
}

/// `yaml.Marshal`'s input as JSON data: regular fields only, defaults
/// applied, bytes as their text; a float only where its JSON number text
/// is CUE's.
fn to_yaml_data(v: &Value, depth: usize) -> Result<serde_json::Value, CallError> {
    use serde_json::Value as J;
    if depth > 200 {
        return Err(CallError::Bad("value nested too deeply".into()));
    }
    let v = v.default();
    Ok(match &v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f, e) => {
            // the text must be the reference's (`1.5E-7`, not `1.5e-7`)
            let text = crate::defs::value::float_text(*f, *e).map_err(CallError::Bad)?;
            let n = serde_json::Number::from_f64(*f).ok_or_else(|| CallError::Bad("invalid float".into()))?;
            if n.to_string() != text {
                return Err(CallError::Bad(unsupported(&format!(
                    "the float {text} in encoded text"
                ))));
            }
            J::Number(n)
        }
        Value::Str(s) => J::String(s.to_string()),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => J::String(s.to_string()),
            Err(_) => return Err(CallError::Bad(unsupported("yaml.Marshal of bytes that are not UTF-8"))),
        },
        Value::Struct(s) => {
            let mut m = serde_json::Map::new();
            for f in s.fields.iter().filter(|f| !f.optional && !f.def) {
                m.insert(f.label.clone(), to_yaml_data(&f.value, depth + 1)?);
            }
            J::Object(m)
        }
        Value::List(l) => J::Array(
            l.elems
                .iter()
                .map(|e| to_yaml_data(e, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(not_concrete(other).unwrap_or_else(|| CallError::Bad("invalid value".into()))),
    })
}

/// JSON text as written: object keys in order, duplicates kept (the
/// reference unifies a repeated key's values).
pub(super) enum JsonNode {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    List(Vec<JsonNode>),
    Obj(Vec<(String, JsonNode)>),
}

impl<'de> serde::Deserialize<'de> for JsonNode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonNode;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<JsonNode, E> {
                Ok(JsonNode::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<JsonNode, E> {
                Ok(JsonNode::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<JsonNode, E> {
                Ok(JsonNode::Num(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<JsonNode, E> {
                Ok(JsonNode::Num(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<JsonNode, E> {
                serde_json::Number::from_f64(n)
                    .map(JsonNode::Num)
                    .ok_or_else(|| E::custom("number out of range"))
            }
            fn visit_str<E>(self, s: &str) -> Result<JsonNode, E> {
                Ok(JsonNode::Str(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<JsonNode, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = a.next_element()? {
                    out.push(x);
                }
                Ok(JsonNode::List(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<JsonNode, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    out.push(kv);
                }
                Ok(JsonNode::Obj(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// JSON data as a CUE value. An integer beyond 64 bits is refused: the
/// reference keeps it an integer, a float here would be a different value.
fn from_json(j: &JsonNode) -> Result<Value, CallError> {
    Ok(match j {
        JsonNode::Null => Value::Null,
        JsonNode::Bool(b) => Value::Bool(*b),
        JsonNode::Num(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => {
                let f = n.as_f64().unwrap_or(0.0);
                if n.is_u64() || (f.fract() == 0.0 && f.abs() >= 9.2e18) {
                    return Err(CallError::Bad(unsupported(&format!(
                        "the JSON number {n} beyond 64 bits"
                    ))));
                }
                Value::Float(f, Exp::default())
            }
        },
        JsonNode::Str(s) => Value::str(s),
        JsonNode::List(a) => list_of(a.iter().map(from_json).collect::<Result<_, _>>()?),
        JsonNode::Obj(o) => {
            let mut fields: Vec<(String, Value)> = Vec::with_capacity(o.len());
            for (k, v) in o {
                let v = from_json(v)?;
                match fields.iter_mut().find(|(l, _)| l == k) {
                    Some((_, old)) => {
                        *old = crate::defs::value::unify(old, &v)
                            .map_err(|m| CallError::Bad(format!("json.Unmarshal: key {k:?}: {m}")))?
                    }
                    None => fields.push((k.clone(), v)),
                }
            }
            struct_of(fields)
        }
    })
}
