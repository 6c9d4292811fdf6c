//! Evaluated values and their unification. A [`Value`] is a fully evaluated
//! CUE value (no references left): concrete scalars, constraints on scalars
//! (`string`, `>0 & <10`), structs, lists, disjunctions with defaults, and
//! bottom (an error). Unification here is the value-level lattice meet; the
//! lazy, reference-aware part lives in `eval/`.

use std::fmt::Write as _;
use std::rc::Rc;

use crate::defs::budget;
use crate::defs::error::{CueError, Pos};
use crate::defs::re;

/// The conflict reported when the evaluation budget ran out (`budget.rs`
/// replaces it by the positioned error).
const BUDGET: &str = "evaluation budget exceeded";

/// Largest disjunction a unification may produce; beyond it evaluation
/// would explode (`(a|b) & (c|d) & …`).
const MAX_ALTERNATIVES: usize = 4096;

pub const K_NULL: u8 = 1;
pub const K_BOOL: u8 = 2;
pub const K_INT: u8 = 4;
pub const K_FLOAT: u8 = 8;
pub const K_STRING: u8 = 16;
pub const K_STRUCT: u8 = 32;
pub const K_LIST: u8 = 64;
pub const K_BYTES: u8 = 128;
pub const K_NUMBER: u8 = K_INT | K_FLOAT;
pub const K_ALL: u8 = 255;
/// Everything but null: the kinds `!=null` admits.
pub const K_NOT_NULL: u8 = K_ALL & !K_NULL;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundOp {
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
    /// `=~"re"`: a string containing a match of the expression.
    Match,
    /// `!~"re"`
    NotMatch,
    /// `struct.MinFields(n)`: a struct with at least n regular fields.
    MinFields,
    /// `struct.MaxFields(n)`: a struct with at most n regular fields.
    MaxFields,
}

/// A non-concrete value: allowed kinds plus bounds, e.g. `int & >0`, or
/// the struct validators `struct.MinFields(n)` (kind struct).
#[derive(Debug, Clone, PartialEq)]
pub struct Basic {
    pub kinds: u8,
    pub bounds: Vec<(BoundOp, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldV {
    pub label: String,
    pub value: Value,
    pub optional: bool,
    /// Definitions (`#x`) are never exported.
    pub def: bool,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StructV {
    pub fields: Vec<FieldV>,
    /// Closed (from a definition): unifying with an unknown field fails.
    pub closed: bool,
    /// Declared `...`: `close()` leaves it open, as the reference does.
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListV {
    pub elems: Vec<Value>,
    /// Type of further elements of an open list (`[...T]`); None when closed.
    pub tail: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Top,
    Bottom(Rc<CueError>),
    Null,
    Bool(bool),
    Int(i64),
    Float(f64, Exp),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Basic(Rc<Basic>),
    Struct(Rc<StructV>),
    List(Rc<ListV>),
    /// Alternatives with their default marks; never nested, at least two
    /// or one marked default (a value whose default is itself, ⟨v, v⟩).
    Disj(Rc<Vec<(Value, bool)>>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn kind(k: u8) -> Value {
        if k == K_ALL {
            Value::Top
        } else {
            Value::Basic(Rc::new(Basic {
                kinds: k,
                bounds: Vec::new(),
            }))
        }
    }

    /// Kind bit of a concrete scalar, struct or list.
    pub fn kind_bit(&self) -> u8 {
        match self {
            Value::Null => K_NULL,
            Value::Bool(_) => K_BOOL,
            Value::Int(_) => K_INT,
            Value::Float(..) => K_FLOAT,
            Value::Str(_) => K_STRING,
            Value::Bytes(_) => K_BYTES,
            Value::Struct(_) => K_STRUCT,
            Value::List(_) => K_LIST,
            _ => 0,
        }
    }

    /// The default of a disjunction (CUE's rules: the single marked default,
    /// or the single alternative); other values are their own default.
    pub fn default(&self) -> Value {
        match self {
            Value::Disj(alts) => {
                let defs: Vec<&Value> = alts.iter().filter(|a| a.1).map(|a| &a.0).collect();
                if defs.len() == 1 {
                    defs[0].clone()
                } else {
                    self.clone()
                }
            }
            v => v.clone(),
        }
    }

    pub fn is_concrete_scalar(&self) -> bool {
        matches!(
            self,
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(..) | Value::Str(_) | Value::Bytes(_)
        )
    }
}

fn kind_name(k: u8) -> String {
    let names = [
        (K_NULL, "null"),
        (K_BOOL, "bool"),
        (K_INT, "int"),
        (K_FLOAT, "float"),
        (K_STRING, "string"),
        (K_BYTES, "bytes"),
        (K_STRUCT, "struct"),
        (K_LIST, "list"),
    ];
    if k == K_ALL {
        return "_".into();
    }
    if k == K_NOT_NULL {
        return "!=null".into();
    }
    if k & K_NUMBER == K_NUMBER {
        let rest: Vec<&str> = names
            .iter()
            .filter(|(b, _)| k & b != 0 && b & K_NUMBER == 0)
            .map(|(_, n)| *n)
            .collect();
        let mut v = vec!["number"];
        v.extend(rest);
        return v.join(" | ");
    }
    names
        .iter()
        .filter(|(b, _)| k & b != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A float's decimal exponent as CUE keeps it: `1.50` is 150×10⁻², `1e3`
/// is 1×10³, `6 / 3` is 2×10⁰. It decides the float's text (`1.50`,
/// `1E+3`, `2`), never its value, so any two compare equal. `None` when
/// unknown (builtin results): the shortest digits are printed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exp(pub Option<i32>);

impl PartialEq for Exp {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Exp {
    /// The exponent of a float literal's text (`1.50` → -2, `1.0e2` → 1).
    pub fn of_literal(text: &str) -> Exp {
        let t = text.replace('_', "");
        let (mant, e) = match t.find(['e', 'E']) {
            Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()),
            None => (t.as_str(), Some(0)),
        };
        let frac = mant.split_once('.').map_or(0, |(_, f)| f.len() as i32);
        Exp(e.map(|e| e - frac))
    }

    /// The exponent of an integer operand.
    pub const INT: Exp = Exp(Some(0));

    /// `x + y`, `x - y`: the smaller exponent.
    pub fn add(self, o: Exp) -> Exp {
        Exp(self.0.zip(o.0).map(|(a, b)| a.min(b)))
    }

    /// `x * y`: the sum.
    pub fn mul(self, o: Exp) -> Exp {
        Exp(self.0.zip(o.0).and_then(|(a, b)| a.checked_add(b)))
    }

    /// `x / y` giving `r`: the ideal exponent (x's less y's) unless the
    /// quotient needs more digits than that.
    pub fn div(self, o: Exp, r: f64) -> Exp {
        let ideal = self.0.zip(o.0).and_then(|(a, b)| a.checked_sub(b));
        Exp(ideal.map(|i| i.min(shortest(r).1)))
    }
}

/// The shortest decimal digits of `f` (no sign) and their exponent.
fn shortest(f: f64) -> (String, i32) {
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let n = digits.len() as i32;
    (digits, exp - (n - 1))
}

/// Formats a float the way CUE prints a decimal (and JSON accepts):
/// coefficient and exponent as the value carries them, plain while the
/// exponent is at most 0 and the number not too small (`0.000001`, `2.50`,
/// `100.0`, `2`), otherwise `1.5E-7` / `1E+3`. Without a known exponent,
/// from the shortest digits, integral values as `N.0`.
pub fn fmt_float(f: f64, e: Exp) -> String {
    if !f.is_finite() {
        return format!("{f:?}");
    }
    if let Some(text) = e.0.and_then(|e| decimal_text(f, e)) {
        return text;
    }
    if f == 0.0 {
        return "0.0".into();
    }
    if f.fract() == 0.0 && f.abs() < 1e16 {
        return format!("{f:.1}");
    }
    let (digits, exp) = shortest(f);
    let sign = if f < 0.0 { "-" } else { "" };
    let adj = exp + digits.len() as i32 - 1;
    if f.fract() != 0.0 && adj >= -6 {
        return format!("{f}");
    }
    format!("{sign}{}", sci_text(&digits, adj))
}

/// `d.dddE±adj`.
fn sci_text(digits: &str, adj: i32) -> String {
    let (first, rest) = digits.split_at(1);
    let dot = if rest.is_empty() { "" } else { "." };
    format!("{first}{dot}{rest}E{}{}", if adj < 0 { '-' } else { '+' }, adj.abs())
}

/// apd's text of `f` as coefficient × 10^`e`; None when the coefficient is
/// not an integer of at most 15 digits (the binary value cannot say).
fn decimal_text(f: f64, e: i32) -> Option<String> {
    if !(-40..=40).contains(&e) {
        return None;
    }
    let c = if e >= 0 {
        f.abs() / 10f64.powi(e)
    } else {
        f.abs() * 10f64.powi(-e)
    };
    let r = c.round();
    if r >= 1e15 || (r - c).abs() > 1e-6 * r.max(1.0) {
        return None;
    }
    let digits = format!("{r:.0}");
    let sign = if f < 0.0 && r != 0.0 { "-" } else { "" };
    let n = digits.len() as i32;
    let adj = e + n - 1;
    if e > 0 || adj < -6 {
        return Some(format!("{sign}{}", sci_text(&digits, adj)));
    }
    if e == 0 {
        return Some(format!("{sign}{digits}"));
    }
    let point = n + e;
    Some(if point > 0 {
        let (a, b) = digits.split_at(point as usize);
        format!("{sign}{a}.{b}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    })
}

/// A float as text for a string (interpolation, `json.Marshal`). The
/// reference computes in decimal with 24 digits; here results are rounded
/// to 15, so a float with that many digits would print differently: it is
/// refused rather than printed wrong.
pub fn float_text(f: f64, e: Exp) -> Result<String, String> {
    if shortest(f).0.len() >= 15 {
        return Err(crate::defs::error::unsupported(&format!(
            "converting the float {} (15 or more significant digits) to text",
            fmt_float(f, e)
        )));
    }
    Ok(fmt_float(f, e))
}

/// CUE text of a bytes value: `'…'` with escapes.
pub fn quote_bytes(b: &[u8]) -> String {
    let mut s = String::from("'");
    for &c in b {
        match c {
            b'\'' => s.push_str("\\'"),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('\'');
    s
}

pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    let first_ok = match cs.next() {
        Some(c) => c.is_ascii_alphabetic() || c == '#' || c == '$',
        None => false,
    };
    first_ok
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !matches!(
            s,
            "true" | "false" | "null" | "for" | "in" | "if" | "let" | "package" | "import"
        )
}

/// CUE source text of a value (used in messages, `defs export` and tests).
pub fn to_cue(v: &Value) -> String {
    to_cue_capped(v, MAX_TEXT)
}

/// Longest text [`to_cue`] writes (values can be large; texts are for
/// people).
const MAX_TEXT: usize = 1 << 20;

/// CUE text of a value, cut off after about `cap` bytes.
fn to_cue_capped(v: &Value, cap: usize) -> String {
    let mut s = String::new();
    write_cue(v, &mut s, 0, cap);
    s
}

fn write_cue(v: &Value, out: &mut String, depth: usize, cap: usize) {
    if depth > 300 || out.len() > cap {
        out.push_str("...");
        return;
    }
    match v {
        Value::Top => out.push('_'),
        Value::Bottom(_) => out.push_str("_|_"),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f, e) => out.push_str(&fmt_float(*f, *e)),
        Value::Str(s) => out.push_str(&quote(s)),
        Value::Bytes(b) => out.push_str(&quote_bytes(b)),
        Value::Basic(b) => {
            let mut parts = Vec::new();
            let implied = b.bounds.iter().fold(0u8, |k, (_, v)| k | bound_kinds(v));
            if b.bounds.is_empty() || (b.kinds != implied && b.kinds & implied == b.kinds) {
                parts.push(kind_name(b.kinds));
            }
            for (op, bv) in &b.bounds {
                let o = match op {
                    BoundOp::Lt => "<",
                    BoundOp::Le => "<=",
                    BoundOp::Gt => ">",
                    BoundOp::Ge => ">=",
                    BoundOp::Ne => "!=",
                    BoundOp::Match => "=~",
                    BoundOp::NotMatch => "!~",
                    BoundOp::MinFields | BoundOp::MaxFields => {
                        parts.push(validator_text(*op, bv));
                        continue;
                    }
                };
                let mut t = String::new();
                write_cue(bv, &mut t, depth + 1, cap);
                parts.push(format!("{o}{t}"));
            }
            out.push_str(&parts.join(" & "));
        }
        Value::Struct(st) => {
            out.push('{');
            for (i, f) in st.fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if is_ident(&f.label) {
                    out.push_str(&f.label);
                } else {
                    out.push_str(&quote(&f.label));
                }
                if f.optional {
                    out.push('?');
                }
                out.push_str(": ");
                write_cue(&f.value, out, depth + 1, cap);
            }
            out.push('}');
        }
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.elems.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_cue(e, out, depth + 1, cap);
            }
            if let Some(t) = &l.tail {
                if !l.elems.is_empty() {
                    out.push_str(", ");
                }
                out.push_str("...");
                if *t != Value::Top {
                    write_cue(t, out, depth + 1, cap);
                }
            }
            out.push(']');
        }
        Value::Disj(alts) => {
            // ⟨v, v⟩ as `*v | v`: a lone `*v` is not valid CUE
            let single = [alts[0].clone(), (alts[0].0.clone(), false)];
            let alts: &[(Value, bool)] = if alts.len() == 1 { &single } else { alts };
            for (i, (a, d)) in alts.iter().enumerate() {
                if i > 0 {
                    out.push_str(" | ");
                }
                if *d {
                    out.push('*');
                }
                let paren = matches!(a, Value::Basic(b) if b.bounds.len() > 1);
                if paren {
                    out.push('(');
                }
                write_cue(a, out, depth + 1, cap);
                if paren {
                    out.push(')');
                }
            }
        }
    }
}

/// `struct.MinFields(2)` as CUE writes it.
fn validator_text(op: BoundOp, n: &Value) -> String {
    let name = if op == BoundOp::MinFields {
        "MinFields"
    } else {
        "MaxFields"
    };
    format!("struct.{name}({})", to_cue(n))
}

/// What a `struct.MinFields` failure says; such a failure is incomplete
/// (more fields may come), as in CUE v0.4: not reported inside definitions.
const TOO_FEW_FIELDS: &str = "len(fields) < MinFields(";

/// Whether a failed unification only lacks fields (see [`TOO_FEW_FIELDS`]).
pub fn incomplete_conflict(m: &str) -> bool {
    m.contains(TOO_FEW_FIELDS)
}

/// Regular fields of a struct: what `struct.MinFields` / `MaxFields`
/// count (not optional, hidden or definition fields).
fn regular_fields(s: &StructV) -> i64 {
    s.fields.iter().filter(|f| !f.optional && !f.def).count() as i64
}

/// Why a struct fails a struct validator, as CUE says it; None if it
/// satisfies it.
fn validator_failure(op: BoundOp, n: &Value, v: &Value) -> Option<String> {
    let (Value::Struct(s), Value::Int(n)) = (v, n) else {
        return None; // the kinds were checked before
    };
    let count = regular_fields(s);
    let what = validator_text(op, &Value::Int(*n));
    let detail = match op {
        BoundOp::MinFields if count < *n => format!(": {TOO_FEW_FIELDS}{n}) ({count} < {n})"),
        BoundOp::MaxFields if count > *n => String::new(),
        _ => return None,
    };
    Some(format!("invalid value {} (does not satisfy {what}){detail}", short(v)))
}

fn bound_kinds(v: &Value) -> u8 {
    match v {
        Value::Int(_) | Value::Float(..) => K_NUMBER,
        Value::Str(_) => K_STRING,
        _ => K_ALL,
    }
}

/// Compares two concrete scalars of comparable kinds.
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Float(y, _)) => (*x as f64).partial_cmp(y),
        (Value::Float(x, _), Value::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Value::Float(x, _), Value::Float(y, _)) => x.partial_cmp(y),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Equality as CUE's `==` sees it (int 1 == float 1.0).
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(_) | Value::Float(..), Value::Int(_) | Value::Float(..)) => {
            compare(a, b) == Some(std::cmp::Ordering::Equal)
        }
        _ => a == b,
    }
}

fn bound_ok(op: BoundOp, bound: &Value, v: &Value) -> bool {
    use std::cmp::Ordering::*;
    if op == BoundOp::Ne {
        return !equal(v, bound);
    }
    if let (BoundOp::Match | BoundOp::NotMatch, Value::Str(re), Value::Str(s)) = (op, bound, v) {
        return re::is_match(re, s) == (op == BoundOp::Match);
    }
    match compare(v, bound) {
        Some(o) => match op {
            BoundOp::Lt => o == Less,
            BoundOp::Le => o != Greater,
            BoundOp::Gt => o == Greater,
            BoundOp::Ge => o != Less,
            BoundOp::Ne | BoundOp::Match | BoundOp::NotMatch | BoundOp::MinFields | BoundOp::MaxFields => true,
        },
        None => false,
    }
}

/// Why a unification failed; the caller adds positions.
pub type Conflict = String;

fn conflict(a: &Value, b: &Value) -> Conflict {
    let (ka, kb) = (a.kind_bit(), b.kind_bit());
    let mut m = format!("conflicting values {} and {}", short(a), short(b));
    if ka != 0 && kb != 0 && ka != kb {
        let _ = write!(m, " (mismatched types {} and {})", kind_name(ka), kind_name(kb));
    }
    m
}

fn short(v: &Value) -> String {
    let s = to_cue_capped(v, 64);
    if s.len() > 60 {
        match v {
            Value::Struct(_) => "{...}".into(),
            Value::List(_) => "[...]".into(),
            _ => format!("{}...", s.chars().take(57).collect::<String>()),
        }
    } else {
        s
    }
}

/// Value-level unification (`a & b`). Errors inside structs and lists are
/// returned as a conflict naming the field path.
pub fn unify(a: &Value, b: &Value) -> Result<Value, Conflict> {
    unify_d(a, b, 0)
}

fn unify_d(a: &Value, b: &Value, depth: usize) -> Result<Value, Conflict> {
    if !budget::charge(1, 0) {
        return Err(BUDGET.into());
    }
    if depth > 400 {
        return Err("value nested too deeply".into());
    }
    match (a, b) {
        (Value::Bottom(e), _) | (_, Value::Bottom(e)) => Err(e.message.clone()),
        (Value::Top, x) | (x, Value::Top) => Ok(x.clone()),
        // a disjunction unified with itself (a field referring to the
        // same value twice) is itself, as in the reference: the cross
        // product would add alternatives that differ only in nested
        // defaults (`[...(*>0 | _)] | [...int]`)
        (Value::Disj(x), Value::Disj(y)) if Rc::ptr_eq(x, y) || x == y => Ok(a.clone()),
        (Value::Disj(x), Value::Disj(y)) => {
            if x.len() * y.len() > MAX_ALTERNATIVES {
                return Err(format!("disjunction with more than {MAX_ALTERNATIVES} alternatives"));
            }
            let mut out = Vec::new();
            let mut last = String::new();
            for (xa, xm) in x.iter() {
                for (ya, ym) in y.iter() {
                    match unify_d(xa, ya, depth + 1) {
                        Ok(v) => out.push((v, *xm, *ym)),
                        Err(e) => last = e,
                    }
                }
            }
            normalize_disj(combine_marks(out), last, a, b)
        }
        (Value::Disj(x), o) | (o, Value::Disj(x)) => {
            let mut out = Vec::new();
            let mut last = String::new();
            let flip = matches!(b, Value::Disj(_));
            for (xa, xm) in x.iter() {
                let r = if flip {
                    unify_d(o, xa, depth + 1)
                } else {
                    unify_d(xa, o, depth + 1)
                };
                match r {
                    Ok(v) => out.push((v, *xm)),
                    Err(e) => last = e,
                }
            }
            normalize_disj(out, last, a, b)
        }
        (Value::Basic(x), Value::Basic(y)) => {
            let kinds = x.kinds & y.kinds;
            if kinds == 0 {
                return Err(conflict(a, b));
            }
            let mut bounds = x.bounds.clone();
            for bd in &y.bounds {
                if !bounds.contains(bd) {
                    bounds.push(bd.clone());
                }
            }
            simplify_bounds(kinds, &bounds)?;
            if bounds.is_empty() && kinds == K_ALL {
                return Ok(Value::Top);
            }
            Ok(Value::Basic(Rc::new(Basic { kinds, bounds })))
        }
        (Value::Basic(x), v) | (v, Value::Basic(x)) => {
            let k = v.kind_bit();
            if x.kinds & k == 0 {
                return Err(conflict(a, b));
            }
            for (op, bv) in &x.bounds {
                if matches!(op, BoundOp::MinFields | BoundOp::MaxFields) {
                    if let Some(m) = validator_failure(*op, bv, v) {
                        return Err(m);
                    }
                    continue;
                }
                if !bound_ok(*op, bv, v) {
                    return Err(format!(
                        "invalid value {} (out of bound {})",
                        short(v),
                        to_cue(&Value::Basic(Rc::new(Basic {
                            kinds: K_ALL,
                            bounds: vec![(*op, bv.clone())],
                        })))
                    ));
                }
            }
            Ok(v.clone())
        }
        (Value::Struct(x), Value::Struct(y)) => unify_structs(x, y, depth),
        (Value::List(x), Value::List(y)) => unify_lists(x, y, depth),
        (x, y) if x.is_concrete_scalar() && y.is_concrete_scalar() => {
            if x == y {
                Ok(x.clone())
            } else {
                Err(conflict(a, b))
            }
        }
        _ => Err(conflict(a, b)),
    }
}

/// Default marks of the cross product of two disjunctions, from the marks
/// of the two parts of each result: the default is the default of one
/// unified with the default of the other (`(*{a: 1} | B) & (*{a: 1} | C)`
/// is `{a: 1}`). A side whose defaults were all eliminated counts as
/// having none (`(*1 | int) & (*2 | 3)` is 2, as in the reference); a side
/// without defaults admits any alternative of the other.
pub fn combine_marks(results: Vec<(Value, bool, bool)>) -> Vec<(Value, bool)> {
    let xd = results.iter().any(|r| r.1);
    let yd = results.iter().any(|r| r.2);
    results
        .into_iter()
        .map(|(v, xm, ym)| (v, (xd || yd) && (xm || !xd) && (ym || !yd)))
        .collect()
}

/// Bounds that admit nothing (`>5 & <3`) are a conflict. Ranges admitting
/// exactly one value are left alone.
fn simplify_bounds(kinds: u8, bounds: &[(BoundOp, Value)]) -> Result<(), Conflict> {
    // the tightest lower and upper bound; an empty range is a conflict
    let mut lo: Option<(&Value, bool)> = None;
    let mut hi: Option<(&Value, bool)> = None;
    for (op, v) in bounds {
        use std::cmp::Ordering::*;
        match op {
            BoundOp::Gt | BoundOp::Ge => {
                let strict = *op == BoundOp::Gt;
                lo = match lo {
                    Some((l, ls)) => match compare(v, l) {
                        Some(Greater) => Some((v, strict)),
                        Some(Equal) => Some((l, ls || strict)),
                        Some(Less) => Some((l, ls)),
                        None => return Err("conflicting bounds of different kinds".into()),
                    },
                    None => Some((v, strict)),
                }
            }
            BoundOp::Lt | BoundOp::Le => {
                let strict = *op == BoundOp::Lt;
                hi = match hi {
                    Some((h, hs)) => match compare(v, h) {
                        Some(Less) => Some((v, strict)),
                        Some(Equal) => Some((h, hs || strict)),
                        Some(Greater) => Some((h, hs)),
                        None => return Err("conflicting bounds of different kinds".into()),
                    },
                    None => Some((v, strict)),
                }
            }
            BoundOp::Ne | BoundOp::Match | BoundOp::NotMatch | BoundOp::MinFields | BoundOp::MaxFields => {}
        }
    }
    let _ = kinds;
    if let (Some((l, ls)), Some((h, hs))) = (lo, hi) {
        match compare(l, h) {
            Some(std::cmp::Ordering::Greater) => {
                return Err(format!("incompatible bounds {} and {}", short(l), short(h)))
            }
            Some(std::cmp::Ordering::Equal) if ls || hs => {
                return Err(format!("incompatible bounds {} and {}", short(l), short(h)))
            }
            None => return Err("conflicting bounds of different kinds".into()),
            _ => {}
        }
    }
    Ok(())
}

fn normalize_disj(alts: Vec<(Value, bool)>, last: Conflict, a: &Value, b: &Value) -> Result<Value, Conflict> {
    let mut out: Vec<(Value, bool)> = Vec::new();
    for (v, d) in alts {
        // flatten nested disjunctions produced by unifying alternatives
        let items: Vec<(Value, bool)> = match v {
            Value::Disj(inner) => inner.iter().map(|(iv, id)| (iv.clone(), *id && d)).collect(),
            v => vec![(v, d)],
        };
        for (v, d) in items {
            if let Some(e) = out.iter_mut().find(|e| e.0 == v) {
                e.1 |= d;
            } else {
                out.push((v, d));
            }
        }
    }
    // drop a type alternative that another one already admits
    // (`int | (int & >0)` is `int`), keeping defaults
    let subsumes = |y: &Value, x: &Value| subsumes(y, x, 0);
    let mut keep = vec![true; out.len()];
    for i in 0..out.len() {
        for j in 0..out.len() {
            if i != j && keep[j] && (out[j].1 || !out[i].1) && subsumes(&out[j].0, &out[i].0) {
                // two that admit the same values: which one stays must not
                // depend on the order of the alternatives
                if out[j].1 == out[i].1 && subsumes(&out[i].0, &out[j].0) {
                    let (ci, cj) = (canonical(&out[i].0), canonical(&out[j].0));
                    if ci < cj || (ci == cj && i < j) {
                        continue;
                    }
                }
                keep[i] = false;
                break;
            }
        }
    }
    let mut k = keep.iter();
    out.retain(|_| *k.next().unwrap_or(&true));
    match out.len() {
        0 => {
            if last.is_empty() {
                Err(conflict(a, b))
            } else {
                Err(format!("empty disjunction: {last}"))
            }
        }
        // a single default alternative stays marked: `((*1 | {}) & 1) | 2`
        // defaults to 1
        1 if !out[0].1 => Ok(out.remove(0).0),
        _ => Ok(Value::Disj(Rc::new(out))),
    }
}

/// Text of a value with struct fields, disjunction alternatives and bounds
/// sorted and closedness ignored: equal texts mean equal values.
pub fn canonical(v: &Value) -> String {
    fn go(v: &Value, depth: usize) -> String {
        if depth > 300 {
            return "...".into();
        }
        match v {
            Value::Struct(s) => {
                let mut f: Vec<String> = s
                    .fields
                    .iter()
                    .map(|f| {
                        format!(
                            "{}{}{}: {}",
                            quote(&f.label),
                            if f.optional { "?" } else { "" },
                            if f.def { "#" } else { "" },
                            go(&f.value, depth + 1)
                        )
                    })
                    .collect();
                f.sort();
                format!("{{{}}}", f.join(", "))
            }
            Value::List(l) => {
                let mut e: Vec<String> = l.elems.iter().map(|e| go(e, depth + 1)).collect();
                if let Some(t) = &l.tail {
                    e.push(format!("...{}", go(t, depth + 1)));
                }
                format!("[{}]", e.join(", "))
            }
            Value::Disj(alts) => {
                let mut a: Vec<String> = alts
                    .iter()
                    .map(|(v, d)| format!("{}{}", if *d { "*" } else { "" }, go(v, depth + 1)))
                    .collect();
                a.sort();
                a.join(" | ")
            }
            Value::Basic(b) => {
                let mut bs: Vec<String> = b
                    .bounds
                    .iter()
                    .map(|(op, v)| format!("{op:?}{}", go(v, depth + 1)))
                    .collect();
                bs.sort();
                bs.dedup();
                format!("{}<{}>", kind_name(b.kinds), bs.join(","))
            }
            other => to_cue(other),
        }
    }
    go(v, 0)
}

/// Whether every value `x` admits is admitted by `y` (conservative: false
/// when unsure).
fn subsumes(y: &Value, x: &Value, depth: usize) -> bool {
    if depth > 100 {
        return false;
    }
    if y == x {
        return true;
    }
    match (y, x) {
        (Value::Top, _) => true,
        (Value::Basic(yb), Value::Basic(xb)) => {
            xb.kinds & !yb.kinds == 0 && yb.bounds.iter().all(|b| xb.bounds.contains(b))
        }
        (Value::Basic(_), x) if x.is_concrete_scalar() => unify(y, x).is_ok(),
        // lists and structs of different shapes stay apart, as in the
        // reference (`[...int] | [1]` and `{a: 1} | {a: 1, b: 2}` are
        // ambiguous, not the more general one)
        (Value::List(yl), Value::List(xl)) => {
            if yl.tail.is_some() != xl.tail.is_some() || xl.elems.len() != yl.elems.len() {
                return false;
            }
            let elems_ok = xl
                .elems
                .iter()
                .enumerate()
                .all(|(i, xe)| match yl.elems.get(i).or(yl.tail.as_ref()) {
                    Some(ye) => subsumes(ye, xe, depth + 1),
                    None => false,
                });
            let tail_ok = match (&yl.tail, &xl.tail) {
                (Some(yt), Some(xt)) => subsumes(yt, xt, depth + 1),
                _ => true,
            };
            elems_ok && tail_ok
        }
        (Value::Struct(ys), Value::Struct(xs)) => {
            !ys.closed
                && !xs.closed
                && ys.fields.len() == xs.fields.len()
                && ys.fields.iter().all(|yf| {
                    xs.fields
                        .iter()
                        .find(|xf| xf.label == yf.label)
                        .is_some_and(|xf| xf.optional == yf.optional && subsumes(&yf.value, &xf.value, depth + 1))
                })
        }
        _ => false,
    }
}

/// The first error inside a value that more unification cannot fix (an
/// alternative holding one is eliminated from a disjunction).
pub(crate) fn hard_error(v: &Value, depth: usize) -> Option<Rc<CueError>> {
    if depth > 100 {
        return None;
    }
    match v {
        // a struct that lacks fields for `struct.MinFields` may still get
        // them: an alternative, as in CUE (the check fails when exported)
        Value::Bottom(e) if e.incomplete && incomplete_conflict(&e.message) => None,
        Value::Bottom(e) => Some(e.clone()),
        Value::Struct(s) => s.fields.iter().filter(|f| !f.optional).find_map(|f| match &f.value {
            Value::Bottom(e) if e.incomplete => None,
            other => hard_error(other, depth + 1),
        }),
        Value::List(l) => l.elems.iter().find_map(|e| match e {
            Value::Bottom(e) if e.incomplete => None,
            other => hard_error(other, depth + 1),
        }),
        _ => None,
    }
}

/// Builds a disjunction from alternatives (dropping failed ones).
pub fn disjunction(alts: Vec<(Value, bool)>) -> Result<Value, Conflict> {
    let mut last = String::new();
    let ok: Vec<(Value, bool)> = alts
        .into_iter()
        .filter(|(v, _)| match hard_error(v, 0) {
            Some(e) => {
                last = e.message.clone();
                false
            }
            None => true,
        })
        .collect();
    // a disjunction with defaults keeps defaults of nested disjunctions only
    // where the nested one was itself marked
    let any_default = ok.iter().any(|a| a.1);
    let mut flat = Vec::new();
    for (v, d) in ok {
        match v {
            Value::Disj(inner) => {
                let inner_has = inner.iter().any(|a| a.1);
                for (iv, id) in inner.iter() {
                    let mark = if any_default { d && (*id || !inner_has) } else { *id };
                    flat.push((iv.clone(), mark));
                }
            }
            v => flat.push((v, d)),
        }
    }
    if flat.is_empty() {
        return Err(if last.is_empty() {
            "empty disjunction".into()
        } else {
            format!("empty disjunction: {last}")
        });
    }
    normalize_disj(flat, last, &Value::Top, &Value::Top)
}

fn unify_structs(x: &StructV, y: &StructV, depth: usize) -> Result<Value, Conflict> {
    let n = (x.fields.len() + y.fields.len()) as u64;
    budget::charge(n, n * std::mem::size_of::<FieldV>() as u64);
    let mut fields = x.fields.clone();
    for f in &y.fields {
        if let Some(e) = fields.iter_mut().find(|e| e.label == f.label) {
            e.value = unify_d(&e.value, &f.value, depth + 1).map_err(|m| format!("{}: {m}", f.label))?;
            e.optional &= f.optional;
        } else {
            if x.closed && !f.def {
                return Err(format!("field {} not allowed", f.label));
            }
            fields.push(f.clone());
        }
    }
    if y.closed {
        for f in &x.fields {
            if !f.def && !y.fields.iter().any(|g| g.label == f.label) {
                return Err(format!("field {} not allowed", f.label));
            }
        }
    }
    Ok(Value::Struct(Rc::new(StructV {
        fields,
        closed: x.closed || y.closed,
        open: x.open || y.open,
    })))
}

fn unify_lists(x: &ListV, y: &ListV, depth: usize) -> Result<Value, Conflict> {
    let n = x.elems.len().max(y.elems.len());
    budget::charge(n as u64, (n * std::mem::size_of::<Value>()) as u64);
    let mut elems = Vec::with_capacity(n);
    for i in 0..n {
        let a = match (x.elems.get(i), &x.tail) {
            (Some(v), _) => v,
            (None, Some(t)) => t,
            (None, None) => {
                return Err(format!(
                    "incompatible list lengths ({} and {})",
                    x.elems.len(),
                    y.elems.len()
                ))
            }
        };
        let b = match (y.elems.get(i), &y.tail) {
            (Some(v), _) => v,
            (None, Some(t)) => t,
            (None, None) => {
                return Err(format!(
                    "incompatible list lengths ({} and {})",
                    x.elems.len(),
                    y.elems.len()
                ))
            }
        };
        elems.push(unify_d(a, b, depth + 1).map_err(|m| format!("{i}: {m}"))?);
    }
    let tail = match (&x.tail, &y.tail) {
        (Some(a), Some(b)) => Some(unify_d(a, b, depth + 1)?),
        _ => None,
    };
    Ok(Value::List(Rc::new(ListV { elems, tail })))
}
