//! Package `list`.

use std::cmp::Ordering;
use std::rc::Rc;

use super::{arity, int_arg, list_arg, list_of, not_concrete, num_arg, strings_list, strs_arg, CallError, CallResult};
use crate::defs::value::{compare, to_cue, Exp, FieldV, StructV, Value, K_BOOL, K_NUMBER, K_STRING};

pub const NAMES: &[&str] = &[
    "Concat",
    "Contains",
    "FlattenN",
    "Sum",
    "Range",
    "Sort",
    "SortStable",
    "IsSorted",
    "SortStrings",
    "IsSortedStrings",
];

/// The functions that take a comparator: the evaluator calls them
/// (`eval/sort.rs`), since a comparator written in CUE is evaluated once
/// per comparison.
pub const WITH_COMPARATOR: &[&str] = &["Sort", "SortStable", "IsSorted"];

/// `list.Ascending` / `list.Descending`: comparators the evaluator knows
/// by a marker (a definition field, so it is not exported) and compares
/// natively. Their other fields are CUE's (`T: number | string`, `x: T`,
/// `y: T`, `less`), not concrete, so exporting one is an error as in CUE.
pub fn comparator(name: &str) -> Option<Value> {
    let order = match name {
        "Ascending" => "asc",
        "Descending" => "desc",
        _ => return None,
    };
    let field = |label: &str, value: Value, def: bool| FieldV {
        label: label.to_string(),
        value,
        optional: false,
        def,
        pos: Default::default(),
    };
    let t = Value::kind(K_NUMBER | K_STRING);
    Some(Value::Struct(Rc::new(StructV {
        fields: vec![
            field("T", t.clone(), false),
            field("x", t.clone(), false),
            field("y", t, false),
            field("less", Value::kind(K_BOOL), false),
            field(SORT_MARK, Value::str(order), true),
        ],
        closed: false,
        open: false,
    })))
}

const SORT_MARK: &str = "#substrateSortOrder";

/// Whether `cmp` is `list.Ascending` (false) or `list.Descending` (true),
/// exactly as the package gives them; None for any other comparator.
pub fn builtin_order(cmp: &Value) -> Option<bool> {
    let Value::Struct(s) = cmp else { return None };
    let order = match &s.fields.iter().find(|f| f.label == SORT_MARK)?.value {
        Value::Str(o) => o.to_string(),
        _ => return None,
    };
    let name = if order == "desc" { "Descending" } else { "Ascending" };
    (comparator(name).as_ref() == Some(cmp)).then_some(order == "desc")
}

/// Whether `cmp` holds the marker of `list.Ascending` or
/// `list.Descending` (possibly unified with more).
pub fn has_order_marker(cmp: &Value) -> bool {
    matches!(cmp, Value::Struct(s) if s.fields.iter().any(|f| f.label == SORT_MARK))
}

/// `less` of `list.Ascending` (or of `list.Descending` when `desc`):
/// both values must be numbers or strings (`T: number | string`) of
/// comparable kinds, as `x < y` requires.
pub fn builtin_less(x: &Value, y: &Value, desc: bool) -> Result<bool, String> {
    let (x, y) = (x.default(), y.default());
    for v in [&x, &y] {
        if let Some(e) = not_concrete(v) {
            return Err(match e {
                CallError::Bad(m) | CallError::Incomplete(m) => m,
            });
        }
        if !matches!(v, Value::Int(_) | Value::Float(..) | Value::Str(_)) {
            return Err(format!("conflicting values number | string and {}", to_cue(v)));
        }
    }
    let o = compare(&x, &y).ok_or_else(|| {
        format!(
            "invalid operands {} and {} to '{}'",
            to_cue(&x),
            to_cue(&y),
            if desc { ">" } else { "<" }
        )
    })?;
    Ok(if desc {
        o == Ordering::Greater
    } else {
        o == Ordering::Less
    })
}

/// Go's `sort.Stable`, which CUE's `list.Sort` uses: insertion sort of
/// blocks of 20, then SymMerge of ever larger blocks. The result of a
/// consistent comparator is the one stable order; an inconsistent one
/// (`less: true`) gives CUE's order only if the comparisons are the same,
/// so this follows Go's algorithm step by step.
pub fn stable_sort<T>(xs: &mut [T], less: &mut dyn FnMut(&T, &T) -> bool) {
    let n = xs.len();
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        insertion_sort(xs, a, b, less);
        a = b;
        b += block;
    }
    insertion_sort(xs, a, n, less);
    while block < n {
        let (mut a, mut b) = (0, 2 * block);
        while b <= n {
            sym_merge(xs, a, a + block, b, less);
            a = b;
            b += 2 * block;
        }
        if a + block < n {
            sym_merge(xs, a, a + block, n, less);
        }
        block *= 2;
    }
}

/// Go's `sort.IsSorted`: no element is less than the one before it,
/// checked from the end.
pub fn is_sorted<T>(xs: &[T], less: &mut dyn FnMut(&T, &T) -> bool) -> bool {
    (1..xs.len()).rev().all(|i| !less(&xs[i], &xs[i - 1]))
}

fn insertion_sort<T>(xs: &mut [T], a: usize, b: usize, less: &mut dyn FnMut(&T, &T) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&xs[j], &xs[j - 1]) {
            xs.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Merges the sorted runs `xs[a..m]` and `xs[m..b]` in place (SymMerge,
/// Kim and Kutzner 2004, as Go's sort package does it).
fn sym_merge<T>(xs: &mut [T], a: usize, m: usize, b: usize, less: &mut dyn FnMut(&T, &T) -> bool) {
    if m - a == 1 {
        // insert xs[a] into xs[m..b] by binary search
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&xs[h], &xs[a]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        xs[a..i].rotate_left(1);
        return;
    }
    if b - m == 1 {
        // insert xs[m] into xs[a..m] by binary search
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&xs[m], &xs[h]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        xs[i..=m].rotate_right(1);
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&xs[p - c], &xs[c]) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        xs[start..end].rotate_left(m - start);
    }
    if a < start && start < mid {
        sym_merge(xs, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(xs, mid, end, b, less);
    }
}

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
            Ok(Value::Bool(
                list_arg(&args[0])?
                    .iter()
                    .any(|e| same_value(&e.default(), &x.default())),
            ))
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
            let (mut s, mut e) = (0.0, Exp::INT);
            for x in xs {
                let x = x.default();
                if let Value::Float(_, xe) = &x {
                    e = e.add(*xe);
                }
                s += num_arg(&x)?;
            }
            Ok(Value::Float(s, e))
        }
        "Range" => {
            arity(name, args, 3)?;
            let (start, limit, step) = (&args[0], &args[1], &args[2]);
            if let (Value::Int(a), Value::Int(b), Value::Int(st)) = (start, limit, step) {
                if *st == 0 {
                    return Err(CallError::Bad("list.Range: step must be non zero".into()));
                }
                // as the reference: a range running away from its end is an error
                if *st > 0 && b < a {
                    return Err(CallError::Bad(
                        "list.Range: end must be greater than start when step is positive".into(),
                    ));
                }
                if *st < 0 && b > a {
                    return Err(CallError::Bad(
                        "list.Range: end must be less than start when step is negative".into(),
                    ));
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
        "SortStrings" => {
            arity(name, args, 1)?;
            let mut v = strs_arg(&args[0])?;
            v.sort_unstable();
            Ok(strings_list(v.into_iter().map(str::to_string)))
        }
        "IsSortedStrings" => {
            arity(name, args, 1)?;
            let v = strs_arg(&args[0])?;
            Ok(Value::Bool(v.windows(2).all(|w| w[0] <= w[1])))
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

/// Equality as the reference's `list.Contains` sees it (`Value.Equals`):
/// the same kind (`1` is not `1.0`), structs by their regular fields in any
/// order, lists element by element.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x, _), Value::Float(y, _)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.elems.len() == y.elems.len()
                && x.elems
                    .iter()
                    .zip(&y.elems)
                    .all(|(p, q)| same_value(&p.default(), &q.default()))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            let regular = |s: &StructV| s.fields.iter().filter(|f| !f.def && !f.optional).count();
            regular(x) == regular(y)
                && x.fields.iter().filter(|f| !f.def && !f.optional).all(|f| {
                    y.fields
                        .iter()
                        .find(|g| g.label == f.label && !g.def && !g.optional)
                        .is_some_and(|g| same_value(&f.value.default(), &g.value.default()))
                })
        }
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no dependency for a unit test).
    fn numbers(seed: u64, n: usize, modulo: u64) -> Vec<(u64, usize)> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 33) % modulo, i)
            })
            .collect()
    }

    #[test]
    fn stable_sort_is_stable_across_blocks_and_merges() {
        for n in [0, 1, 2, 19, 20, 21, 39, 40, 41, 79, 100, 257] {
            for seed in 0..5 {
                let mut ours = numbers(seed, n, 7);
                let mut expected = ours.clone();
                expected.sort_by_key(|x| x.0); // stable
                stable_sort(&mut ours, &mut |a, b| a.0 < b.0);
                assert_eq!(ours, expected, "n={n} seed={seed}");
                assert!(is_sorted(&ours, &mut |a, b| a.0 < b.0));
            }
        }
    }

    #[test]
    fn stable_sort_with_an_inconsistent_comparator_follows_go() {
        // `less: true` reverses a list of up to 20 (insertion sort swaps
        // every element down to the front)
        let mut xs: Vec<u32> = (0..20).collect();
        stable_sort(&mut xs, &mut |_, _| true);
        assert_eq!(xs, (0..20).rev().collect::<Vec<_>>());
    }

    #[test]
    fn is_sorted_stops_at_the_first_descent() {
        let mut calls = 0;
        assert!(!is_sorted(&[1, 3, 2, 4], &mut |a, b| {
            calls += 1;
            a < b
        }));
        assert_eq!(calls, 2, "checked from the end, as Go does");
    }
}
