//! Comprehensions: the clauses (`for`, `if`, `let`) of struct
//! comprehensions, which add conjuncts to their struct, and of list
//! comprehensions, which yield one element scope per iteration.

use super::*;

impl<'a> Evaluator<'a> {
    /// The elements of a list literal with its comprehensions run: each
    /// element expression with the scope it is evaluated in.
    pub(super) fn list_elems(
        &mut self,
        elems: &'a [Expr],
        env: EnvId,
        v: VId,
    ) -> Result<Vec<(&'a Expr, EnvId)>, CueError> {
        let mut out = Vec::with_capacity(elems.len());
        for e in elems {
            match &e.kind {
                ExprKind::Comprehension { clauses, body } => {
                    let mut envs = Vec::new();
                    self.yields(clauses, env, v, &mut envs)?;
                    out.extend(envs.into_iter().map(|en| (&**body, en)));
                }
                _ => out.push((e, env)),
            }
        }
        Ok(out)
    }

    /// Runs comprehension clauses for a list: one scope per yielded element.
    pub(super) fn yields(
        &mut self,
        clauses: &'a [Clause],
        env: EnvId,
        v: VId,
        out: &mut Vec<EnvId>,
    ) -> Result<(), CueError> {
        let Some((first, rest)) = clauses.split_first() else {
            budget::charge(1, ENV_BYTES);
            out.push(env);
            return Ok(());
        };
        match first {
            Clause::If { cond, pos } => match self.eval_expr(cond, env, v).default() {
                Value::Bool(true) => self.yields(rest, env, v, out),
                Value::Bool(false) => Ok(()),
                Value::Bottom(e) => Err((*e).clone()),
                other if is_incomplete(&other) => Err(self
                    .files
                    .incomplete(*pos, format!("incomplete condition: {}", to_cue(&other)))),
                other => Err(self.err(*pos, format!("cannot use {} as bool in if clause", to_cue(&other)))),
            },
            Clause::Let { name, value, .. } => {
                let e2 = self.bind_let(env, name, value, v);
                self.yields(rest, e2, v, out)
            }
            Clause::For {
                key,
                value,
                source,
                pos,
            } => {
                let items = self.for_items(source, env, v, *pos)?;
                for (k, val) in items {
                    let e2 = self.bind_for(env, key.as_deref(), value, k, val);
                    self.yields(rest, e2, v, out)?;
                }
                Ok(())
            }
        }
    }

    /// The scope after a `let` clause: `name` bound to `value` evaluated in `env`.
    fn bind_let(&mut self, env: EnvId, name: &'a str, value: &'a Expr, v: VId) -> EnvId {
        let val = self.eval_expr(value, env, v);
        self.new_env(
            Some(env),
            EnvKind::Bind {
                name,
                target: Target::Value(val),
            },
        )
    }

    /// The scope of one iteration of a `for` clause.
    pub(super) fn bind_for(
        &mut self,
        env: EnvId,
        key: Option<&'a str>,
        value: &'a str,
        k: Value,
        val: Target,
    ) -> EnvId {
        let mut e2 = env;
        if let Some(k_name) = key {
            e2 = self.new_env(
                Some(e2),
                EnvKind::Bind {
                    name: k_name,
                    target: Target::Value(k),
                },
            );
        }
        self.new_env(
            Some(e2),
            EnvKind::Bind {
                name: value,
                target: val,
            },
        )
    }

    pub(super) fn run_clauses(
        &mut self,
        v: VId,
        clauses: &'a [Clause],
        body: &'a Expr,
        env: EnvId,
        closed: Option<u32>,
    ) {
        let Some((first, rest)) = clauses.split_first() else {
            self.vs[v].extra.push(Conj {
                expr: body,
                env,
                closed,
                opt: false,
            });
            self.vs[v].dirty = true;
            return;
        };
        match first {
            Clause::If { cond, pos } => match self.eval_expr(cond, env, v).default() {
                Value::Bool(true) => self.run_clauses(v, rest, body, env, closed),
                Value::Bool(false) => {}
                Value::Bottom(e) => self.vs[v].errors.push((*e).clone()),
                other => {
                    let e = if is_incomplete(&other) {
                        self.files
                            .incomplete(*pos, format!("incomplete condition: {}", to_cue(&other)))
                    } else {
                        self.err(*pos, format!("cannot use {} as bool in if clause", to_cue(&other)))
                    };
                    self.vs[v].errors.push(e);
                }
            },
            Clause::Let { name, value, .. } => {
                let e2 = self.bind_let(env, name, value, v);
                self.run_clauses(v, rest, body, e2, closed);
            }
            Clause::For {
                key,
                value,
                source,
                pos,
            } => {
                let items: Vec<(Value, Target)> = match self.for_items(source, env, v, *pos) {
                    Ok(i) => i,
                    Err(e) => {
                        self.vs[v].errors.push(e);
                        return;
                    }
                };
                for (k, val) in items {
                    let e2 = self.bind_for(env, key.as_deref(), value, k, val);
                    self.run_clauses(v, rest, body, e2, closed);
                }
            }
        }
    }

    pub(super) fn for_items(
        &mut self,
        source: &'a Expr,
        env: EnvId,
        v: VId,
        pos: Pos,
    ) -> Result<Vec<(Value, Target)>, CueError> {
        let t = self.resolve(source, env, v)?;
        let val = match t {
            Target::Vertex(w) => {
                self.shape(w);
                let wx = &self.vs[w];
                if !wx.lists.is_empty() && wx.disjs.is_empty() && wx.acc.is_none() && wx.errors.is_empty() {
                    let arcs = wx.arcs.clone();
                    return Ok(arcs
                        .into_iter()
                        .enumerate()
                        .map(|(i, a)| (Value::Int(i as i64), Target::Vertex(a)))
                        .collect());
                }
                if wx.is_struct && wx.disjs.is_empty() && wx.acc.is_none() && wx.errors.is_empty() {
                    let arcs = wx.arcs.clone();
                    return Ok(arcs
                        .into_iter()
                        .filter(|&a| self.vs[a].required && !self.vs[a].is_def && !self.vs[a].hidden)
                        .map(|a| (Value::str(&self.vs[a].label), Target::Vertex(a)))
                        .collect());
                }
                self.materialize(w)
            }
            Target::Value(val) => val,
            Target::Package(_) | Target::Func(_) => {
                return Err(self.err(pos, "cannot range over a package or function"))
            }
        };
        match val.default() {
            Value::Struct(s) => Ok(s
                .fields
                .iter()
                .filter(|f| !f.optional && !f.def)
                .map(|f| (Value::str(&f.label), Target::Value(f.value.clone())))
                .collect()),
            Value::List(l) => Ok(l
                .elems
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), Target::Value(e.clone())))
                .collect()),
            Value::Bottom(e) => Err((*e).clone()),
            other => Err(self.err(pos, format!("cannot range over {}", to_cue(&other)))),
        }
    }
}
