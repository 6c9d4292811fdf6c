//! References and scopes: resolving identifiers through the lexical
//! environments (struct scopes, lets, comprehension bindings, imports, the
//! package), selectors and indexes, to a vertex, a value, a package or a
//! builtin.

use super::*;

impl<'a> Evaluator<'a> {
    pub(super) fn resolve(&mut self, e: &'a Expr, env: EnvId, cur: VId) -> Result<Target, CueError> {
        match &e.kind {
            ExprKind::Ident(name) => self.lookup(name, env, e.pos),
            ExprKind::Select(base, name, name_pos) => {
                let t = self.resolve(base, env, cur)?;
                self.select(t, name, *name_pos)
            }
            ExprKind::Index(base, idx) => {
                let t = self.resolve(base, env, cur)?;
                match self.eval_expr(idx, env, cur).default() {
                    Value::Str(s) => self.select(t, &s, e.pos),
                    Value::Int(i) => {
                        if let Target::Vertex(w) = t {
                            self.shape(w);
                            let wx = &self.vs[w];
                            if !wx.lists.is_empty() && wx.disjs.is_empty() && wx.acc.is_none() {
                                return match wx.arc_index.get(&i.to_string()) {
                                    Some(&a) if i >= 0 => Ok(Target::Vertex(a)),
                                    _ => Err(self.err(
                                        idx.pos,
                                        format!("index {i} out of range (list of length {})", wx.arcs.len()),
                                    )),
                                };
                            }
                        }
                        let val = self.target_value(t).default();
                        match val {
                            Value::List(l) => {
                                let el = usize::try_from(i).ok().and_then(|i| l.elems.get(i));
                                match el {
                                    Some(x) => Ok(Target::Value(x.clone())),
                                    None => Err(self.err(
                                        idx.pos,
                                        format!("index {i} out of range (list of length {})", l.elems.len()),
                                    )),
                                }
                            }
                            Value::Bottom(err) => Err((*err).clone()),
                            other => Err(self.err(e.pos, format!("cannot index {} with an integer", to_cue(&other)))),
                        }
                    }
                    Value::Bottom(err) => Err((*err).clone()),
                    other => Err(self.err(idx.pos, format!("invalid index {}", to_cue(&other)))),
                }
            }
            _ => Ok(Target::Value(self.eval_expr(e, env, cur))),
        }
    }

    pub(super) fn target_value(&mut self, t: Target) -> Value {
        match t {
            Target::Package(p) => self.bottom(Pos::default(), format!("cannot use package {p} as a value")),
            Target::Func(f) => self.bottom(Pos::default(), format!("cannot use function {} as a value", f.name)),
            Target::Vertex(w) => self.materialize(w),
            Target::Value(v) => v,
        }
    }

    pub(super) fn select(&mut self, t: Target, name: &str, pos: Pos) -> Result<Target, CueError> {
        if let Target::Package(p) = t {
            if let Some(v) = builtins::constant(p, name) {
                return Ok(Target::Value(v));
            }
            return match builtins::func(p, name) {
                Some(f) => Ok(Target::Func(f)),
                None => Err(self.err(
                    pos,
                    unsupported(&format!("{p}.{name} (not among the subset's builtins)")),
                )),
            };
        }
        if let Target::Vertex(w) = t {
            self.shape(w);
            let wx = &self.vs[w];
            if wx.is_struct && wx.disjs.is_empty() && wx.acc.is_none() {
                return match wx.arc_index.get(name) {
                    // an optional field nothing made regular is a constraint,
                    // not a value (`a: {b?: 1}`, `a.b` is an error)
                    Some(&a) if self.vs[a].is_optional() => Err(self
                        .files
                        .incomplete(pos, format!("cannot reference optional field {name}"))),
                    Some(&a) => Ok(Target::Vertex(a)),
                    None => Err(self.err(pos, format!("undefined field: {name}"))),
                };
            }
            // a definition or hidden field beside an embedded scalar
            // (`a: {"x", #y: 1}`, `a.#y`)
            if let Some(&a) = wx.arc_index.get(name) {
                if self.vs[a].is_def || self.vs[a].hidden {
                    return Ok(Target::Vertex(a));
                }
            }
        }
        match self.target_value(t).default() {
            Value::Struct(s) => match s.fields.iter().find(|f| f.label == name) {
                Some(f) => Ok(Target::Value(f.value.clone())),
                None => Err(self.err(pos, format!("undefined field: {name}"))),
            },
            Value::Bottom(e) => Err((*e).clone()),
            other if is_incomplete(&other) => Err(self.files.incomplete(
                pos,
                format!("incomplete value {} when selecting {name}", to_cue(&other)),
            )),
            other => Err(self.err(pos, format!("invalid selector {name} on {}", to_cue(&other)))),
        }
    }

    pub(super) fn lookup(&mut self, name: &str, env: EnvId, pos: Pos) -> Result<Target, CueError> {
        let mut cur = Some(env);
        while let Some(id) = cur {
            match &self.envs[id].kind {
                EnvKind::Struct { vertex, decls, lets } => {
                    if let Some((_, l)) = lets.iter().find(|(n, _)| *n == name) {
                        return Ok(Target::Vertex(*l));
                    }
                    // a field declared here, or the field an alias names
                    let declared = decls.iter().find_map(|d| match d {
                        Decl::Field(Field {
                            label: Label::Name { name: n, quoted },
                            alias,
                            ..
                        }) if (!quoted && n == name) || alias.as_deref() == Some(name) => Some(n.as_str()),
                        _ => None,
                    });
                    if let Some(label) = declared {
                        if let Some(&a) = self.vs[*vertex].arc_index.get(label) {
                            return Ok(Target::Vertex(a));
                        }
                    }
                }
                EnvKind::Package { vertex, names } => {
                    if names.contains(name) {
                        if let Some(&a) = self.vs[*vertex].arc_index.get(name) {
                            return Ok(Target::Vertex(a));
                        }
                    }
                }
                EnvKind::Bind { name: n, target } => {
                    if *n == name {
                        return Ok(target.clone());
                    }
                }
                EnvKind::Imports(list) => match list.iter().find(|(n, _)| *n == name) {
                    Some((_, Import::Std(p))) => return Ok(Target::Package(p)),
                    Some((_, Import::Module(v))) => return Ok(Target::Vertex(*v)),
                    None => {}
                },
            }
            cur = self.envs[id].parent;
        }
        let v = match name {
            "_" => Value::Top,
            "string" => Value::kind(K_STRING),
            "int" => Value::kind(K_INT),
            "float" => Value::kind(K_FLOAT),
            "number" => Value::kind(K_NUMBER),
            "bool" => Value::kind(K_BOOL),
            "bytes" => Value::kind(K_BYTES),
            "len" | "close" | "and" | "or" | "div" | "mod" | "quo" | "rem" => {
                return match builtins::func("", name) {
                    Some(f) => Ok(Target::Func(f)),
                    None => Err(self.err(pos, format!("reference \"{name}\" not found"))),
                };
            }
            _ => return Err(self.err(pos, format!("reference \"{name}\" not found"))),
        };
        Ok(Target::Value(v))
    }
}

/// Whether a reference names a definition somewhere along its path
/// (CUE's `IsDef`): `#A`, `#A.b`, `x.#B`, `#A["b"]`.
pub(super) fn names_definition(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Ident(n) => n.starts_with('#') || n.starts_with("_#"),
        ExprKind::Select(x, n, _) => n.starts_with('#') || n.starts_with("_#") || names_definition(x),
        ExprKind::Index(x, _) => names_definition(x),
        _ => false,
    }
}
