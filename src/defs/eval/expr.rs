//! Expressions in value context: literals, interpolation, operators,
//! disjunction values, existence tests (`x == _|_`) and builtin calls.

use super::*;

impl<'a> Evaluator<'a> {
    /// Evaluates an expression in value context. `cur` is the vertex being
    /// computed; temporaries (struct and list literals) hang below it so
    /// that structural cycles are detected.
    pub(super) fn eval_expr(&mut self, e: &'a Expr, env: EnvId, cur: VId) -> Value {
        if let Err(err) = self.enter(e.pos) {
            return Value::Bottom(Rc::new(err));
        }
        let r = self.eval_inner(e, env, cur);
        self.leave();
        r
    }

    pub(super) fn temp(&mut self, e: &'a Expr, env: EnvId, cur: VId, label: String) -> Value {
        let d = self.new_vertex(cur, label, e.pos);
        let closed = self.closing;
        self.add_conj(
            d,
            Conj {
                expr: e,
                env,
                closed,
                opt: false,
            },
        );
        self.materialize(d)
    }

    pub(super) fn eval_inner(&mut self, e: &'a Expr, env: EnvId, cur: VId) -> Value {
        match &e.kind {
            ExprKind::Lit(l) => match l {
                Lit::Null => Value::Null,
                Lit::Bool(b) => Value::Bool(*b),
                Lit::Int(i) => Value::Int(*i),
                Lit::Float(f, e) => Value::Float(*f, *e),
                Lit::Str(s) => Value::str(s),
                Lit::Bytes(b) => Value::Bytes(Rc::from(b.as_slice())),
            },
            ExprKind::Interp(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        InterpPart::Lit(l) => s.push_str(l),
                        InterpPart::Expr(x) => match self.eval_expr(x, env, cur).default() {
                            Value::Str(t) => s.push_str(&t),
                            Value::Int(i) => s.push_str(&i.to_string()),
                            Value::Float(f, fe) => match float_text(f, fe) {
                                Ok(t) => s.push_str(&t),
                                Err(m) => return self.bottom(x.pos, m),
                            },
                            Value::Bool(b) => s.push_str(&b.to_string()),
                            Value::Bytes(b) => match std::str::from_utf8(&b) {
                                Ok(t) => s.push_str(t),
                                Err(_) => {
                                    return self.bottom(x.pos, unsupported("interpolating bytes that are not UTF-8"))
                                }
                            },
                            b @ Value::Bottom(_) => return b,
                            other => {
                                return if is_incomplete(&other) {
                                    self.incomplete(
                                        x.pos,
                                        format!("invalid interpolation: non-concrete value {}", to_cue(&other)),
                                    )
                                } else {
                                    self.bottom(
                                        x.pos,
                                        format!("invalid interpolation: cannot use {} in a string", to_cue(&other)),
                                    )
                                };
                            }
                        },
                    }
                }
                if s.len() > MAX_STRING {
                    return self.bottom(e.pos, format!("string longer than {MAX_STRING} bytes"));
                }
                budget::charge(0, 2 * s.len() as u64);
                Value::str(&s)
            }
            ExprKind::Ident(_) | ExprKind::Select(..) | ExprKind::Index(..) => match self.resolve(e, env, cur) {
                Ok(Target::Package(p)) => self.bottom(e.pos, format!("cannot use package {p} as a value")),
                Ok(Target::Func(f)) => self.bottom(e.pos, format!("cannot use function {} as a value", f.name)),
                Ok(t) => self.target_value(t),
                Err(err) => Value::Bottom(Rc::new(err)),
            },
            ExprKind::Call(callee, args) => self.call(e, callee, args, env, cur),
            ExprKind::Struct(_) => self.temp(e, env, cur, String::new()),
            ExprKind::List { elems, tail } => {
                let elems = match self.list_elems(elems, env, cur) {
                    Ok(e) => e,
                    Err(err) => return Value::Bottom(Rc::new(err)),
                };
                let mut out = Vec::with_capacity(elems.len());
                for (i, (x, env)) in elems.into_iter().enumerate() {
                    let v = self.temp(x, env, cur, i.to_string());
                    if let Value::Bottom(_) = v {
                        return v;
                    }
                    out.push(v);
                }
                let tail = match tail {
                    Some(t) => {
                        let tv = self.temp(t, env, cur, String::new());
                        if let Value::Bottom(_) = tv {
                            return tv;
                        }
                        Some(tv)
                    }
                    None => None,
                };
                Value::List(Rc::new(ListV { elems: out, tail }))
            }
            ExprKind::Paren(x) => self.eval_expr(x, env, cur),
            ExprKind::Unary(op, x) => self.unary(*op, x, env, cur, e.pos),
            ExprKind::Binary(BinOp::And, l, r) => {
                let a = self.eval_expr(l, env, cur);
                let b = self.eval_expr(r, env, cur);
                match unify(&a, &b) {
                    Ok(v) => v,
                    Err(m) => {
                        if let Value::Bottom(_) = a {
                            return a;
                        }
                        if let Value::Bottom(_) = b {
                            return b;
                        }
                        let msg = format!("{m} ({})", self.files.at(l.pos));
                        Value::Bottom(Rc::new(self.conflict_err(r.pos, msg, &m)))
                    }
                }
            }
            ExprKind::Binary(BinOp::Or, ..) => {
                if let Some(p) = misplaced_mark(e) {
                    let m = "preference mark not allowed at this position".to_string();
                    return self.bottom(p, m);
                }
                let mut alts = Vec::new();
                self.collect_alts(e, env, cur, &mut alts);
                match disjunction(alts) {
                    Ok(v) => v,
                    Err(m) => self.bottom(e.pos, m),
                }
            }
            ExprKind::Binary(op @ (BinOp::Eq | BinOp::Ne), l, r)
                if matches!(l.kind, ExprKind::Bottom) || matches!(r.kind, ExprKind::Bottom) =>
            {
                let x = if matches!(l.kind, ExprKind::Bottom) { r } else { l };
                self.exists_test(*op, x, env, cur)
            }
            ExprKind::Bottom => self.bottom(e.pos, "explicit error (_|_ literal) in source"),
            ExprKind::Comprehension { .. } => self.bottom(e.pos, "a comprehension is only allowed in a list or struct"),
            ExprKind::Binary(op, l, r) => {
                let a = self.eval_expr(l, env, cur).default();
                let b = self.eval_expr(r, env, cur).default();
                self.binary(*op, a, b, l.pos, r.pos)
            }
        }
    }

    /// `x == _|_` / `x != _|_`: whether `x` is an error (a missing field
    /// included). A reference to nothing stays an error, and a value that
    /// is not concrete yet cannot be decided (incomplete).
    pub(super) fn exists_test(&mut self, op: BinOp, x: &'a Expr, env: EnvId, cur: VId) -> Value {
        // a reference to nothing is an error, not a missing field
        let mut root = x;
        while let ExprKind::Select(b, ..) | ExprKind::Index(b, _) | ExprKind::Paren(b) = &root.kind {
            root = b;
        }
        if let ExprKind::Ident(name) = &root.kind {
            if let Err(e) = self.lookup(name, env, root.pos) {
                return Value::Bottom(Rc::new(e));
            }
        }
        // an optional field that nothing made regular does not exist
        if matches!(x.kind, ExprKind::Ident(_) | ExprKind::Select(..) | ExprKind::Index(..)) {
            if let Ok(Target::Vertex(w)) = self.resolve(x, env, cur) {
                self.shape(w);
                if self.vs[w].is_arc && !self.vs[w].required {
                    return Value::Bool(op == BinOp::Eq);
                }
            }
        }
        let v = self.eval_expr(x, env, cur).default();
        let is_bottom = match &v {
            Value::Bottom(_) => true,
            v if is_incomplete(v) => {
                return self.incomplete(x.pos, format!("incomplete value {} in test against _|_", to_cue(v)))
            }
            v => hard_error(v, 0).is_some(),
        };
        Value::Bool(is_bottom == (op == BinOp::Eq))
    }

    /// A call of a builtin: the arguments are evaluated, then the builtin.
    pub(super) fn call(&mut self, e: &'a Expr, callee: &'a Expr, args: &'a [Expr], env: EnvId, cur: VId) -> Value {
        let f = match &callee.kind {
            ExprKind::Ident(_) | ExprKind::Select(..) => match self.resolve(callee, env, cur) {
                Ok(Target::Func(f)) => f,
                Ok(_) => return self.bottom(callee.pos, "cannot call a value that is not a function"),
                Err(err) => return Value::Bottom(Rc::new(err)),
            },
            _ => return self.bottom(callee.pos, "cannot call a value that is not a function"),
        };
        if f.pkg == "list" && builtins::list::WITH_COMPARATOR.contains(&f.name) {
            return self.call_with_comparator(e, f, args, env, cur);
        }
        let mut vals = Vec::with_capacity(args.len());
        for a in args {
            let v = self.eval_expr(a, env, cur);
            if let Value::Bottom(_) = v {
                return v;
            }
            vals.push(v);
        }
        budget::charge(vals.len() as u64 + 1, 0);
        let what = if f.pkg.is_empty() {
            f.name.to_string()
        } else {
            format!("{}.{}", f.pkg.rsplit('/').next().unwrap_or(f.pkg), f.name)
        };
        match builtins::call(f, &vals) {
            Ok(v) => v,
            Err(CallError::Incomplete(m)) => self.incomplete(e.pos, format!("error in call to {what}: {m}")),
            Err(CallError::Bad(m)) => self.bottom(e.pos, format!("error in call to {what}: {m}")),
        }
    }

    pub(super) fn collect_alts(&mut self, e: &'a Expr, env: EnvId, cur: VId, out: &mut Vec<(Value, bool)>) {
        match &e.kind {
            ExprKind::Binary(BinOp::Or, l, r) => {
                self.collect_alts(l, env, cur, out);
                self.collect_alts(r, env, cur, out);
            }
            ExprKind::Unary(UnOp::Default, x) => {
                let v = self.eval_expr(x, env, cur);
                out.push((v, true));
            }
            _ => {
                let v = self.eval_expr(e, env, cur);
                out.push((v, false));
            }
        }
    }

    pub(super) fn unary(&mut self, op: UnOp, x: &'a Expr, env: EnvId, cur: VId, pos: Pos) -> Value {
        if op == UnOp::Default {
            // `*` marks an alternative of a disjunction (`collect_alts`)
            let m = "preference mark not allowed at this position".to_string();
            return self.bottom(pos, m);
        }
        let v = self.eval_expr(x, env, cur);
        let v = v.default();
        if let Value::Bottom(_) = v {
            return v;
        }
        if is_incomplete(&v) {
            return self.incomplete(pos, format!("incomplete value {} in unary expression", to_cue(&v)));
        }
        let bound = |o: BoundOp, v: Value, kinds: u8| {
            Value::Basic(Rc::new(Basic {
                kinds,
                bounds: vec![(o, v)],
            }))
        };
        match (op, &v) {
            (UnOp::Neg, Value::Int(i)) => match i.checked_neg() {
                Some(n) => Value::Int(n),
                None => self.bottom(pos, unsupported("integer overflow beyond 64 bits")),
            },
            (UnOp::Neg, Value::Float(f, e)) => Value::Float(-f, *e),
            (UnOp::Plus, Value::Int(_) | Value::Float(..)) => v,
            (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
            (UnOp::Lt | UnOp::Le | UnOp::Gt | UnOp::Ge, Value::Int(_) | Value::Float(..)) => {
                bound(bop(op), v, K_NUMBER)
            }
            (UnOp::Lt | UnOp::Le | UnOp::Gt | UnOp::Ge, Value::Str(_)) => bound(bop(op), v, K_STRING),
            // like `<` and `>`, `!=x` admits only values of x's kind
            // (`0 & !=""` is a conflict); `!=null` admits every other kind
            (UnOp::Ne, Value::Int(_) | Value::Float(..)) => bound(BoundOp::Ne, v, K_NUMBER),
            (UnOp::Ne, Value::Str(_)) => bound(BoundOp::Ne, v, K_STRING),
            (UnOp::Ne, Value::Null) => Value::kind(K_NOT_NULL),
            (UnOp::Match | UnOp::NotMatch, Value::Str(s)) => match re::compile(s) {
                Ok(_) => bound(bop(op), v, K_STRING),
                Err(m) => self.bottom(pos, m),
            },
            (UnOp::Ne, Value::Bool(_)) => {
                self.bottom(pos, format!("invalid value {} (type bool) for bound !=", to_cue(&v)))
            }
            _ => self.bottom(pos, format!("invalid operand {} to unary operator", to_cue(&v))),
        }
    }

    pub(super) fn binary(&mut self, op: BinOp, a: Value, b: Value, lpos: Pos, rpos: Pos) -> Value {
        if let Value::Bottom(_) = a {
            return a;
        }
        if let Value::Bottom(_) = b {
            return b;
        }
        let sym = match op {
            BinOp::LOr => "||",
            BinOp::LAnd => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Match => "=~",
            BinOp::NotMatch => "!~",
            BinOp::Or | BinOp::And => "",
        };
        for (v, p) in [(&a, lpos), (&b, rpos)] {
            if is_incomplete(v) {
                return self.incomplete(p, format!("non-concrete value {} in operand to {sym}", to_cue(v)));
            }
        }
        let mismatch = |s: &Self| {
            s.bottom(
                rpos,
                format!(
                    "invalid operands {} and {} to '{sym}' ({})",
                    to_cue(&a),
                    to_cue(&b),
                    s.files.at(lpos)
                ),
            )
        };
        let num = |v: &Value| matches!(v, Value::Int(_) | Value::Float(..));
        let f = |v: &Value| match v {
            Value::Int(i) => *i as f64,
            Value::Float(x, _) => *x,
            _ => 0.0,
        };
        let exp = |v: &Value| match v {
            Value::Float(_, e) => *e,
            _ => Exp::INT,
        };
        match op {
            BinOp::LOr | BinOp::LAnd => match (&a, &b) {
                (Value::Bool(x), Value::Bool(y)) => Value::Bool(if op == BinOp::LOr { *x || *y } else { *x && *y }),
                _ => mismatch(self),
            },
            BinOp::Eq | BinOp::Ne => {
                let eq = if a.is_concrete_scalar() && b.is_concrete_scalar() {
                    if num(&a) && num(&b) || a.kind_bit() == b.kind_bit() {
                        equal(&a, &b)
                    } else if a == Value::Null || b == Value::Null {
                        false
                    } else {
                        return mismatch(self);
                    }
                } else if a == Value::Null || b == Value::Null {
                    false
                } else if let Some(eq) = scalar_lists_equal(&a, &b) {
                    eq
                } else {
                    return self.bottom(
                        rpos,
                        unsupported(&format!("comparing {} values with {sym}", to_cue(&a))),
                    );
                };
                Value::Bool(if op == BinOp::Eq { eq } else { !eq })
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ok = (num(&a) && num(&b))
                    || matches!(
                        (&a, &b),
                        (Value::Str(_), Value::Str(_)) | (Value::Bytes(_), Value::Bytes(_))
                    );
                if !ok {
                    return mismatch(self);
                }
                use std::cmp::Ordering::*;
                let o = compare(&a, &b);
                Value::Bool(matches!(
                    (op, o),
                    (BinOp::Lt, Some(Less))
                        | (BinOp::Le, Some(Less | Equal))
                        | (BinOp::Gt, Some(Greater))
                        | (BinOp::Ge, Some(Greater | Equal))
                ))
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul => match (&a, &b) {
                (Value::Int(x), Value::Int(y)) => {
                    let r = match op {
                        BinOp::Add => x.checked_add(*y),
                        BinOp::Sub => x.checked_sub(*y),
                        _ => x.checked_mul(*y),
                    };
                    match r {
                        Some(r) => Value::Int(r),
                        None => self.bottom(lpos, unsupported("integer arithmetic beyond 64 bits")),
                    }
                }
                (x, y) if num(x) && num(y) => {
                    let (r, e) = match op {
                        BinOp::Add => (f(x) + f(y), exp(x).add(exp(y))),
                        BinOp::Sub => (f(x) - f(y), exp(x).add(exp(y))),
                        _ => (f(x) * f(y), exp(x).mul(exp(y))),
                    };
                    float_value(r, e, self, lpos)
                }
                (Value::Str(x), Value::Str(y)) if op == BinOp::Add => {
                    if x.len() + y.len() > MAX_STRING {
                        return self.bottom(lpos, format!("string longer than {MAX_STRING} bytes"));
                    }
                    budget::charge(0, 2 * (x.len() + y.len()) as u64);
                    let mut s = x.to_string();
                    s.push_str(y);
                    Value::str(&s)
                }
                (Value::Bytes(x), Value::Bytes(y)) if op == BinOp::Add => {
                    if x.len() + y.len() > MAX_STRING {
                        return self.bottom(lpos, format!("bytes longer than {MAX_STRING} bytes"));
                    }
                    budget::charge(0, 2 * (x.len() + y.len()) as u64);
                    Value::Bytes(x.iter().chain(y.iter()).copied().collect())
                }
                (Value::Str(s), Value::Int(n)) | (Value::Int(n), Value::Str(s)) if op == BinOp::Mul => {
                    if *n < 0 || (*n as u128) * (s.len() as u128) > MAX_STRING as u128 {
                        return self.bottom(rpos, "string repetition count out of range");
                    }
                    budget::charge(0, (*n as u64).saturating_mul(2 * s.len() as u64));
                    Value::str(&s.repeat(*n as usize))
                }
                (Value::Bytes(s), Value::Int(n)) | (Value::Int(n), Value::Bytes(s)) if op == BinOp::Mul => {
                    if *n < 0 || (*n as u128) * (s.len() as u128) > MAX_STRING as u128 {
                        return self.bottom(rpos, "bytes repetition count out of range");
                    }
                    budget::charge(0, (*n as u64).saturating_mul(2 * s.len() as u64));
                    Value::Bytes(s.repeat(*n as usize).into())
                }
                (Value::List(_), Value::List(_))
                | (Value::List(_), Value::Int(_))
                | (Value::Int(_), Value::List(_)) => self.bottom(lpos, unsupported("list arithmetic")),
                _ => mismatch(self),
            },
            BinOp::Div => {
                if !(num(&a) && num(&b)) {
                    return mismatch(self);
                }
                if f(&b) == 0.0 {
                    return self.bottom(rpos, "division by zero");
                }
                let r = f(&a) / f(&b);
                float_value(r, exp(&a).div(exp(&b), r), self, lpos)
            }
            BinOp::Match | BinOp::NotMatch => match (&a, &b) {
                (Value::Str(s), Value::Str(p)) => match re::compile(p) {
                    Ok(r) => Value::Bool(r.is_match(s) == (op == BinOp::Match)),
                    Err(m) => self.bottom(rpos, m),
                },
                _ => mismatch(self),
            },
            BinOp::Or | BinOp::And => Value::Top,
        }
    }
}

/// `==` on two lists whose elements are concrete scalars or such lists:
/// element by element, as the reference compares them (`[1] == [1.0]`).
/// None for anything else (structs, incomplete values), whose comparison
/// the reference answers in ways of its own.
fn scalar_lists_equal(a: &Value, b: &Value) -> Option<bool> {
    let (Value::List(x), Value::List(y)) = (a, b) else {
        return None;
    };
    let mut eq = x.elems.len() == y.elems.len();
    for (p, q) in x.elems.iter().zip(&y.elems) {
        let (p, q) = (p.default(), q.default());
        let same = match (&p, &q) {
            (Value::List(_), Value::List(_)) => scalar_lists_equal(&p, &q)?,
            _ if p.is_concrete_scalar() && q.is_concrete_scalar() => {
                let num = |v: &Value| matches!(v, Value::Int(_) | Value::Float(..));
                if !(num(&p) && num(&q) || p.kind_bit() == q.kind_bit()) {
                    return None;
                }
                equal(&p, &q)
            }
            _ => return None,
        };
        eq &= same;
    }
    Some(eq)
}

/// Floats are binary here but decimal in CUE: round to 15 significant
/// digits so `0.1 + 0.2` prints as `0.3` like the reference.
pub(super) fn float_value(r: f64, e: Exp, ev: &Evaluator<'_>, pos: Pos) -> Value {
    if !r.is_finite() {
        return ev.bottom(pos, unsupported("a float result outside the 64-bit range"));
    }
    let rounded = format!("{r:.14e}").parse::<f64>().unwrap_or(r);
    Value::Float(rounded, e)
}

pub(super) fn bop(op: UnOp) -> BoundOp {
    match op {
        UnOp::Lt => BoundOp::Lt,
        UnOp::Le => BoundOp::Le,
        UnOp::Gt => BoundOp::Gt,
        UnOp::Ge => BoundOp::Ge,
        UnOp::Match => BoundOp::Match,
        UnOp::NotMatch => BoundOp::NotMatch,
        _ => BoundOp::Ne,
    }
}
