//! `@tag` attributes: a field written `name: string @tag(key)` takes the
//! value of variable `key` when one is given (`substrate defs eval -t
//! key=value`, the daemon's `--var key=value` / TOML `[vars]`), like
//! `cue -t`. `@tag(key,type=int)` and `type=bool` parse the text first.
//! The binding is made on the syntax tree before evaluation: the field's
//! value `v` becomes `v & <value>`, so references and definitions see it
//! like any other conjunct. Other attributes are parsed and ignored.

use std::collections::{BTreeMap, BTreeSet};

use crate::defs::ast::{Decl, Expr, ExprKind, Field, File, Lit};
use crate::defs::error::{CueError, Files, Pos};

/// One `@tag(…)`: the variable it reads and the type it parses.
struct Tag {
    key: String,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
}

fn parse_tag(body: &str, pos: Pos, files: &Files) -> Result<Tag, CueError> {
    let mut parts = body.split(',').map(str::trim);
    let key = parts.next().unwrap_or("").to_string();
    if key.is_empty() || key.contains('=') {
        return Err(files.err(pos, "@tag needs a name: @tag(name) or @tag(name,type=int)"));
    }
    let mut kind = Kind::Str;
    for p in parts {
        match p.split_once('=') {
            Some(("type", "string")) => kind = Kind::Str,
            Some(("type", "int")) => kind = Kind::Int,
            Some(("type", "bool")) => kind = Kind::Bool,
            Some(("type", t)) => {
                return Err(files.err(pos, format!("@tag: unsupported type {t:?} (string, int or bool)")))
            }
            // short=… and other options do not change the binding
            _ => {}
        }
    }
    Ok(Tag { key, kind })
}

fn literal(tag: &Tag, text: &str, pos: Pos, files: &Files) -> Result<Lit, CueError> {
    match tag.kind {
        Kind::Str => Ok(Lit::Str(text.to_string())),
        Kind::Int => int_literal(text.trim())
            .map(Lit::Int)
            .ok_or_else(|| files.err(pos, format!("@tag({}): {text:?} is not an int", tag.key))),
        Kind::Bool => match text.trim() {
            "true" => Ok(Lit::Bool(true)),
            "false" => Ok(Lit::Bool(false)),
            _ => Err(files.err(pos, format!("@tag({}): {text:?} is not a bool", tag.key))),
        },
    }
}

/// An integer written as in CUE: `-5`, `1_000`, `0x10`, `0o7`, `0b1`.
fn int_literal(text: &str) -> Option<i64> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let t = t.replace('_', "");
    let (digits, radix) = match t.get(..2) {
        Some("0x" | "0X") => (&t[2..], 16),
        Some("0o" | "0O") => (&t[2..], 8),
        Some("0b" | "0B") => (&t[2..], 2),
        _ => (t.as_str(), 10),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let sign = if neg { "-" } else { "" };
    i64::from_str_radix(&format!("{sign}{digits}"), radix).ok()
}

/// Binds the tagged fields of `parsed` to `values`; returns the names of
/// the variables some `@tag` used.
pub fn apply(
    parsed: &mut [File],
    values: &BTreeMap<String, String>,
    files: &Files,
) -> Result<BTreeSet<String>, Vec<CueError>> {
    let mut used = BTreeSet::new();
    let mut errs = Vec::new();
    for f in parsed.iter_mut() {
        walk(&mut f.body, values, files, &mut used, &mut errs, 0, None);
    }
    if errs.is_empty() {
        Ok(used)
    } else {
        Err(errs)
    }
}

fn walk(
    e: &mut Expr,
    values: &BTreeMap<String, String>,
    files: &Files,
    used: &mut BTreeSet<String>,
    errs: &mut Vec<CueError>,
    depth: usize,
    within: Option<&'static str>,
) {
    // the parser bounds nesting; this only guards against surprises
    if depth > 2000 {
        return;
    }
    match &mut e.kind {
        ExprKind::Struct(decls) => {
            for d in decls {
                match d {
                    Decl::Field(f) => field(f, values, files, used, errs, depth, within),
                    Decl::Comprehension { body, .. } => walk(body, values, files, used, errs, depth + 1, within),
                    Decl::Embed(x) => walk(x, values, files, used, errs, depth + 1, within),
                    _ => {}
                }
            }
        }
        ExprKind::Binary(_, l, r) => {
            walk(l, values, files, used, errs, depth + 1, within);
            walk(r, values, files, used, errs, depth + 1, within);
        }
        ExprKind::Paren(x) | ExprKind::Unary(_, x) => walk(x, values, files, used, errs, depth + 1, within),
        // as cue: a tag inside a list or an optional field is an error
        ExprKind::List { elems, .. } => {
            for x in elems {
                walk(x, values, files, used, errs, depth + 1, Some("lists"));
            }
        }
        _ => {}
    }
}

fn field(
    f: &mut Field,
    values: &BTreeMap<String, String>,
    files: &Files,
    used: &mut BTreeSet<String>,
    errs: &mut Vec<CueError>,
    depth: usize,
    within: Option<&'static str>,
) {
    let within = within.or(f.optional.then_some("optional fields"));
    walk(&mut f.value, values, files, used, errs, depth + 1, within);
    for (name, body, pos) in &f.attrs {
        if name != "tag" {
            continue;
        }
        if let Some(w) = within {
            errs.push(files.err(*pos, format!("@tag not allowed within {w}")));
            continue;
        }
        let tag = match parse_tag(body, *pos, files) {
            Ok(t) => t,
            Err(e) => {
                errs.push(e);
                continue;
            }
        };
        let Some(text) = values.get(&tag.key) else { continue };
        used.insert(tag.key.clone());
        match literal(&tag, text, *pos, files) {
            Ok(lit) => {
                let value = std::mem::replace(
                    &mut f.value,
                    Expr {
                        kind: ExprKind::Bottom,
                        pos: *pos,
                    },
                );
                let vpos = value.pos;
                f.value = Expr {
                    kind: ExprKind::Binary(
                        crate::defs::ast::BinOp::And,
                        Box::new(value),
                        Box::new(Expr {
                            kind: ExprKind::Lit(lit),
                            pos: *pos,
                        }),
                    ),
                    pos: vpos,
                };
            }
            Err(e) => errs.push(e),
        }
    }
}
