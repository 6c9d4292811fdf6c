//! Package `list`.

use super::{arity, int_arg, list_arg, list_of, num_arg, str_arg, strings_list, CallError, CallResult};
use crate::defs::value::{equal, Value};

pub const NAMES: &[&str] = &["Concat", "Contains", "FlattenN", "Sum", "Range", "Sort", "SortStrings"];

/// `list.Ascending` / `list.Descending`: comparators `list.Sort` knows by
/// a marker (a definition field, so it is not exported). A comparator
/// written in CUE (`{x: _, y: _, less: …}`) is not supported.
pub fn comparator(name: &str) -> Option<Value> {
    let order = match name {
        "Ascending" => "asc",
        "Descending" => "desc",
        _ => return None,
    };
    Some(Value::Struct(std::rc::Rc::new(crate::defs::value::StructV {
        fields: vec![crate::defs::value::FieldV {
            label: SORT_MARK.to_string(),
            value: Value::str(order),
            optional: false,
            def: true,
            pos: Default::default(),
        }],
        closed: true,
    })))
}

const SORT_MARK: &str = "#substrateSortOrder";

/// Longest list a call may build.
const MAX: usize = 1 << 20;

pub fn call(name: &str, args: &[Value]) -> CallResult {
    match name {
        "Concat" => {
            arity(name, args, 1)?;
            let mut out = Vec::new();
            for l in list_arg(&args[0])? {
                out.extend(list_arg(l)?.iter().cloned());
                if out.len() > MAX {
                    return Err(CallError::Bad("list too long".into()));
                }
            }
            Ok(list_of(out))
        }
        "Contains" => {
            arity(name, args, 2)?;
            let x = &args[1];
            Ok(Value::Bool(list_arg(&args[0])?.iter().any(|e| equal(&e.default(), x))))
        }
        "FlattenN" => {
            arity(name, args, 2)?;
            let mut out = Vec::new();
            flatten(list_arg(&args[0])?, int_arg(&args[1])?, &mut out, 0)?;
            Ok(list_of(out))
        }
        "Sum" => {
            arity(name, args, 1)?;
            let xs = list_arg(&args[0])?;
            if xs.iter().all(|x| matches!(x.default(), Value::Int(_))) {
                let mut s: i64 = 0;
                for x in xs {
                    if let Value::Int(i) = x.default() {
                        s = s
                            .checked_add(i)
                            .ok_or_else(|| CallError::Bad("integer overflow".into()))?;
                    }
                }
                return Ok(Value::Int(s));
            }
            let mut s = 0.0;
            for x in xs {
                s += num_arg(&x.default())?;
            }
            Ok(Value::Float(s))
        }
        "Range" => {
            arity(name, args, 3)?;
            let (start, limit, step) = (&args[0], &args[1], &args[2]);
            if let (Value::Int(a), Value::Int(b), Value::Int(st)) = (start, limit, step) {
                if *st == 0 {
                    return Err(CallError::Bad("list.Range: step must be non zero".into()));
                }
                let mut out = Vec::new();
                let mut i = *a;
                while (*st > 0 && i < *b) || (*st < 0 && i > *b) {
                    out.push(Value::Int(i));
                    if out.len() > MAX {
                        return Err(CallError::Bad("list too long".into()));
                    }
                    i = match i.checked_add(*st) {
                        Some(n) => n,
                        None => break,
                    };
                }
                return Ok(list_of(out));
            }
            Err(CallError::Bad(
                "list.Range with non-integer arguments is not supported by Substrate's CUE subset".into(),
            ))
        }
        "Sort" => {
            arity(name, args, 2)?;
            let order = match &args[1] {
                Value::Struct(s) => s.fields.iter().find(|f| f.label == SORT_MARK).map(|f| f.value.clone()),
                _ => None,
            };
            let desc = match order {
                Some(Value::Str(o)) => o.as_ref() == "desc",
                _ => {
                    return Err(CallError::Bad(
                        "list.Sort with a comparator other than list.Ascending or list.Descending is not supported by Substrate's CUE subset".into(),
                    ))
                }
            };
            let mut xs: Vec<Value> = list_arg(&args[0])?.iter().map(Value::default).collect();
            let nums = xs.iter().all(|x| matches!(x, Value::Int(_) | Value::Float(_)));
            let strs = xs.iter().all(|x| matches!(x, Value::Str(_)));
            if !nums && !strs {
                return Err(CallError::Bad(
                    "list.Sort: elements must all be numbers or all be strings".into(),
                ));
            }
            // stable, as Go's sort.Stable that cue uses
            xs.sort_by(|a, b| {
                let o = crate::defs::value::compare(a, b).unwrap_or(std::cmp::Ordering::Equal);
                if desc {
                    o.reverse()
                } else {
                    o
                }
            });
            Ok(list_of(xs))
        }
        "SortStrings" => {
            arity(name, args, 1)?;
            let mut v = list_arg(&args[0])?
                .iter()
                .map(|x| str_arg(x).map(str::to_string))
                .collect::<Result<Vec<_>, _>>()?;
            v.sort();
            Ok(strings_list(v))
        }
        _ => Err(CallError::Bad(format!("unknown function list.{name}"))),
    }
}

fn flatten(xs: &[Value], depth: i64, out: &mut Vec<Value>, level: usize) -> Result<(), CallError> {
    if level > 200 {
        return Err(CallError::Bad("list nested too deeply".into()));
    }
    for x in xs {
        match x.default() {
            Value::List(l) if depth != 0 => flatten(&l.elems, depth - 1, out, level + 1)?,
            v => out.push(v),
        }
        if out.len() > MAX {
            return Err(CallError::Bad("list too long".into()));
        }
    }
    Ok(())
}
