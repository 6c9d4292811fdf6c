//! `list.Sort`, `list.SortStable` and `list.IsSorted`: the builtins that
//! take a comparator. `list.Ascending` and `list.Descending` compare
//! natively; a comparator written in CUE (`{x: T, y: T, less: bool}`) is
//! evaluated once per comparison, as CUE does: a fresh vertex gets the
//! comparator's conjuncts, `x` and `y` are unified with the two elements
//! and `less` is read. The order of comparisons is Go's `sort.Stable`
//! (`builtins/list.rs`), so even an inconsistent comparator sorts as in
//! CUE.

use super::*;
use crate::defs::builtins::list;

/// Elements a comparator written in CUE may sort: each comparison builds
/// a few vertices, and the budget stops long sorts anyway; this keeps the
/// error message about the sort rather than the budget.
const MAX_CUE_SORTED: usize = 1 << 14;

impl<'a> Evaluator<'a> {
    /// `f(args…)` for a function of [`list::WITH_COMPARATOR`].
    pub(super) fn call_with_comparator(
        &mut self,
        e: &'a Expr,
        f: Func,
        args: &'a [Expr],
        env: EnvId,
        cur: VId,
    ) -> Value {
        let what = format!("list.{}", f.name);
        if args.len() != 2 {
            let m = format!(
                "error in call to {what}: {}: takes 2 arguments, got {}",
                f.name,
                args.len()
            );
            return self.bottom(e.pos, m);
        }
        let elems = match self.eval_expr(&args[0], env, cur).default() {
            Value::List(l) => l.elems.clone(),
            b @ Value::Bottom(_) => return b,
            other if is_incomplete(&other) => {
                let m = format!("error in call to {what}: non-concrete argument {}", to_cue(&other));
                return self.incomplete(args[0].pos, m);
            }
            other => {
                let m = format!(
                    "error in call to {what}: cannot use {} as list in argument 1",
                    to_cue(&other)
                );
                return self.bottom(args[0].pos, m);
            }
        };
        let cmp = &args[1];
        let cmp_value = self.eval_expr(cmp, env, cur).default();
        if let Value::Bottom(err) = &cmp_value {
            if !err.incomplete {
                return cmp_value;
            }
        }
        let builtin = list::builtin_order(&cmp_value);
        if builtin.is_none() && list::has_order_marker(&cmp_value) {
            let m = unsupported("list.Ascending or list.Descending unified with other values");
            return self.bottom(cmp.pos, m);
        }
        if builtin.is_none() && elems.len() > MAX_CUE_SORTED {
            let m = format!("error in call to {what}: more than {MAX_CUE_SORTED} elements to sort with a comparator");
            return self.bottom(e.pos, m);
        }
        let mut elems = elems;
        let mut failed: Option<Value> = None;
        let mut less = |ev: &mut Self, x: &Value, y: &Value| -> bool {
            if failed.is_some() {
                return false;
            }
            let r = match builtin {
                Some(desc) => list::builtin_less(x, y, desc).map_err(|m| ev.bottom(cmp.pos, m)),
                None => ev.cue_less(cmp, env, cur, x, y),
            };
            match r {
                Ok(b) => b,
                // as CUE: the first failed comparison counts as "less"
                Err(b) => {
                    failed = Some(b);
                    true
                }
            }
        };
        let sorted = if f.name == "IsSorted" {
            // CUE ignores a failed comparison here: it only makes the
            // list unsorted
            let r = list::is_sorted(&elems, &mut |x, y| less(self, x, y));
            return Value::Bool(r);
        } else {
            list::stable_sort(&mut elems, &mut |x, y| less(self, x, y));
            elems
        };
        match failed {
            Some(Value::Bottom(err)) => {
                let mut err = (*err).clone();
                err.message = format!("error in call to {what}: {}", err.message);
                Value::Bottom(Rc::new(err))
            }
            _ => Value::List(Rc::new(ListV {
                elems: sorted,
                tail: None,
            })),
        }
    }

    /// One comparison with a comparator written in CUE: `less` of the
    /// comparator unified with `{x: x, y: y}`; an error as a bottom value.
    fn cue_less(&mut self, cmp: &'a Expr, env: EnvId, cur: VId, x: &Value, y: &Value) -> Result<bool, Value> {
        let t = self.new_vertex(cur, String::new(), cmp.pos);
        // x and y hold the elements before the comparator is expanded, so
        // nothing in it (a comprehension) sees them without
        for (label, v) in [("x", x), ("y", y)] {
            let a = self.arc(t, label, cmp.pos);
            self.vs[a].required = true;
            self.accumulate(a, v.clone(), cmp.pos);
        }
        let closed = self.closing;
        self.add_conj(
            t,
            Conj {
                expr: cmp,
                env,
                closed,
                opt: false,
            },
        );
        let Some(l) = self.field(t, "less") else {
            return Err(self.bottom(cmp.pos, "value \"less\" not found"));
        };
        match self.materialize(l).default() {
            Value::Bool(b) => Ok(b),
            b @ Value::Bottom(_) => Err(b),
            other if is_incomplete(&other) => {
                Err(self.incomplete(cmp.pos, format!("less: incomplete value {}", to_cue(&other))))
            }
            other => Err(self.bottom(cmp.pos, format!("cannot use value {} as bool", to_cue(&other)))),
        }
    }
}
