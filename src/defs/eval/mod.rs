//! The evaluator: parsed files → one evaluated value, with CUE's lazy,
//! reference-aware unification.
//!
//! Terms. A *vertex* is a node of the result tree (the root, a field, a
//! `let`, a list element). A *conjunct* is one expression contributing to a
//! vertex, with the *environment* (lexical scope) it was written in. A
//! vertex is first *shaped* — its struct conjuncts are expanded into child
//! vertices (arcs), pattern constraints are applied to arcs, comprehensions
//! run — and later *materialized* into a [`Value`] on demand.
//!
//! A reference to another vertex copies that vertex's conjuncts into the
//! referring vertex (with their own environments), instead of copying its
//! value. That gives CUE's semantics where `x: #D & {port: 1}` re-evaluates
//! `#D`'s fields at `x`, so a field inside `#D` that refers to `port` sees 1,
//! and a template field may refer to a sibling filled in later.
//!
//! Closedness: conjuncts coming from a definition carry a node of the
//! close tree (`closed.rs`), which decides which fields a vertex admits.
//!
//! This file holds the vertices: shaping (expanding conjuncts, struct and
//! list literals, embeddings, patterns) and materialization (values,
//! disjunctions, closedness checks). Beside it: `refs.rs` resolves
//! references through scopes, `expr.rs` evaluates expressions as values,
//! `comprehension.rs` runs comprehension clauses.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use rustc_hash::{FxHashMap, FxHashSet};

mod comprehension;
mod expr;
mod refs;
mod sort;

use refs::names_definition;

use crate::defs::ast::*;
use crate::defs::budget;
use crate::defs::builtins::{self, CallError, Func};
use crate::defs::closed::{CloseTree, Group, Kind, NodeId};
use crate::defs::error::{unsupported, CueError, Files, Pos};
use crate::defs::re;
use crate::defs::value::*;

pub type VId = usize;
type EnvId = usize;

/// Deepest evaluation recursion (references, nesting) before giving up with
/// an error rather than exhausting the stack.
const MAX_EVAL_DEPTH: usize = 1200;

/// Estimated bytes of the evaluator's records, for the budget: a vertex
/// with its first allocations, an environment, a conjunct (kept twice: in
/// `conjs` and `flat`), an arc (index entry and label), a struct field.
const VERTEX_BYTES: u64 = std::mem::size_of::<Vertex>() as u64 + 256;
const ENV_BYTES: u64 = std::mem::size_of::<Env>() as u64 + 16;
const CONJ_BYTES: u64 = 2 * std::mem::size_of::<Conj>() as u64;
const ARC_BYTES: u64 = 64;
const FIELD_BYTES: u64 = std::mem::size_of::<FieldV>() as u64;

/// Longest string a computation may build (guards `a + a` doubling).
const MAX_STRING: usize = 1 << 24;

#[derive(Clone, Copy)]
struct Conj<'a> {
    expr: &'a Expr,
    env: EnvId,
    closed: Option<NodeId>,
    /// From an optional field or a pattern: recursion through it is
    /// bounded by the data, so it is not a structural cycle.
    opt: bool,
}

#[derive(Clone)]
enum Target {
    Vertex(VId),
    Value(Value),
    /// An imported standard-library package (`strings`).
    Package(&'static str),
    /// A builtin function, to be called.
    Func(Func),
}

enum EnvKind<'a> {
    Package {
        vertex: VId,
        names: FxHashSet<&'a str>,
    },
    Struct {
        vertex: VId,
        decls: &'a [Decl],
        lets: Vec<(&'a str, VId)>,
    },
    Bind {
        name: &'a str,
        target: Target,
    },
    /// The imports of one file.
    Imports(Vec<(&'a str, Import)>),
}

/// What an import name stands for.
#[derive(Clone, Copy)]
enum Import {
    /// A standard-library package.
    Std(&'static str),
    /// The root vertex of a package of the module.
    Module(VId),
}

/// The names a package's files declare at top level (visible in all its
/// files).
fn top_names<'a>(files: impl IntoIterator<Item = &'a File>) -> FxHashSet<&'a str> {
    let mut names = FxHashSet::default();
    for f in files {
        if let ExprKind::Struct(decls) = &f.body.kind {
            for d in decls {
                if let Decl::Field(Field {
                    label: Label::Name { name, quoted: false },
                    ..
                }) = d
                {
                    names.insert(name.as_str());
                }
            }
        }
    }
    names
}

struct Env<'a> {
    parent: Option<EnvId>,
    kind: EnvKind<'a>,
}

struct Pattern<'a> {
    label: &'a Expr,
    alias: Option<&'a str>,
    value: &'a Expr,
    env: EnvId,
    closed: Option<NodeId>,
    matcher: Option<Value>,
}

struct Comp<'a> {
    clauses: &'a [Clause],
    body: &'a Expr,
    env: EnvId,
    closed: Option<NodeId>,
}

#[derive(Default)]
struct Vertex<'a> {
    parent: Option<VId>,
    label: String,
    /// Part of the parent's arcs (false for lets and expression temporaries).
    is_arc: bool,
    required: bool,
    is_def: bool,
    pos: Option<Pos>,
    conjs: Vec<Conj<'a>>,
    done: usize,
    extra: Vec<Conj<'a>>,
    extra_done: usize,
    arcs: Vec<VId>,
    arc_index: FxHashMap<String, VId>,
    patterns: Vec<Pattern<'a>>,
    applied: usize,
    comps: Vec<Comp<'a>>,
    comps_done: usize,
    shaping: bool,
    dirty: bool,
    is_struct: bool,
    struct_pos: Option<Pos>,
    /// List literals expanded here: (length, open, position); elements are
    /// arcs labelled "0", "1", …
    lists: Vec<(usize, bool, Pos)>,
    /// `...T` of open list literals: (length of that literal, conjunct).
    tails: Vec<(usize, Conj<'a>)>,
    /// Number of the parent's tails already applied to this arc.
    tails_applied: usize,
    acc: Option<(Value, Pos)>,
    disjs: Vec<Conj<'a>>,
    errors: Vec<CueError>,
    /// Vertices whose conjuncts were copied here (small: a Vec is faster).
    expanded: Vec<VId>,
    groups: Vec<Group>,
    /// Every leaf conjunct expanded here (references replaced by what they
    /// refer to), except comprehension output: the input for re-evaluating
    /// this vertex once per disjunction alternative.
    flat: Vec<Conj<'a>>,
    expanding_extra: bool,
    /// Reference expressions expanded here; the same reference expanded
    /// again below is a structural cycle (`#A: {a: #A}`).
    refs: Vec<*const Expr>,
    /// Field order of each struct literal expanded here, for output order.
    orders: Vec<Vec<VId>>,
    value: Option<Value>,
    evaluating: bool,
    /// Re-evaluates another vertex for one disjunction alternative: the
    /// leaves of embeddings are among its conjuncts already.
    skip_embeds: bool,
    /// Declared `name!:`: an error unless some declaration makes it regular.
    must: bool,
    /// A struct literal of only embeddings and value-yielding
    /// comprehensions was expanded here: `{}` if nothing else gives a value.
    maybe_struct: bool,
    /// A hidden field (`_x`): not exported, not ranged over, not closed.
    hidden: bool,
    /// Close node of a definition field's own conjuncts.
    def_node: Option<NodeId>,
    /// A struct literal declared `...` here (outside definitions too): the
    /// value stays open under `close()`.
    ellipsis: bool,
    /// The accumulated value came before any struct literal (`close({…})`
    /// then `a: b: 1`): its fields come first in the output.
    acc_first: bool,
}

impl Vertex<'_> {
    /// Declared only as `name?:`: a constraint, with no value to reference.
    fn is_optional(&self) -> bool {
        self.is_arc && !self.required && !self.must && !self.is_def && !self.hidden
    }
}

/// One evaluation of a set of files (one package).
pub struct Evaluator<'a> {
    files: &'a Files,
    vs: Vec<Vertex<'a>>,
    envs: Vec<Env<'a>>,
    depth: usize,
    closes: CloseTree,
    root_env: EnvId,
    /// Closedness of the conjunct whose expression is being evaluated, for
    /// struct and list literals evaluated as values (list elements inside a
    /// definition are closed too).
    closing: Option<NodeId>,
    /// Root vertices of imported module packages, by import path.
    packages: FxHashMap<&'a str, VId>,
    /// Meters this evaluation's cost (`budget.rs`) while it lives.
    _meter: budget::Guard,
}

pub const ROOT: VId = 0;

impl<'a> Evaluator<'a> {
    /// Sets up the package made of `files`; nothing is evaluated yet.
    pub fn new<I>(parsed: I, files: &'a Files) -> Self
    where
        I: IntoIterator<Item = &'a File> + Clone,
    {
        static NO_PACKAGES: BTreeMap<String, Vec<File>> = BTreeMap::new();
        Self::with_packages(parsed, &NO_PACKAGES, files)
    }

    /// Sets up the main package made of `parsed` and the packages it
    /// imports from its module (`module.rs`), each under its own root.
    pub fn with_packages<I>(parsed: I, packages: &'a BTreeMap<String, Vec<File>>, files: &'a Files) -> Self
    where
        I: IntoIterator<Item = &'a File> + Clone,
    {
        let size: usize = parsed.clone().into_iter().map(|f| f.size).sum::<usize>()
            + packages.values().flatten().map(|f| f.size).sum::<usize>();
        let mut ev = Evaluator {
            files,
            vs: Vec::new(),
            envs: Vec::new(),
            depth: 0,
            closes: CloseTree::default(),
            root_env: 0,
            closing: None,
            packages: FxHashMap::default(),
            _meter: budget::start(size),
        };
        ev.vs.push(Vertex {
            is_arc: true,
            ..Default::default()
        });
        ev.root_env = ev.new_env(
            None,
            EnvKind::Package {
                vertex: ROOT,
                names: top_names(parsed.clone()),
            },
        );
        // imported packages: a root vertex and scope each
        let mut pkg_envs = Vec::new();
        for (path, pfiles) in packages {
            ev.vs.push(Vertex {
                is_arc: true,
                label: path.rsplit(['/', ':']).next().unwrap_or(path).to_string(),
                ..Default::default()
            });
            let root = ev.vs.len() - 1;
            let env = ev.new_env(
                None,
                EnvKind::Package {
                    vertex: root,
                    names: top_names(pfiles.iter()),
                },
            );
            ev.packages.insert(path.as_str(), root);
            pkg_envs.push((root, env, pfiles));
        }
        for (root, env, pfiles) in pkg_envs {
            for f in pfiles {
                let fenv = ev.file_env_in(f, env);
                ev.add_conj(
                    root,
                    Conj {
                        expr: &f.body,
                        env: fenv,
                        closed: None,
                        opt: false,
                    },
                );
            }
        }
        for f in parsed {
            let env = ev.file_env(f);
            ev.add_conj(
                ROOT,
                Conj {
                    expr: &f.body,
                    env,
                    closed: None,
                    opt: false,
                },
            );
        }
        ev
    }

    /// Adds one more file to the package after evaluation started (its
    /// top-level fields must already exist, e.g. `services`); vertices that
    /// receive its conjuncts are re-evaluated.
    pub fn add_file(&mut self, f: &'a File) {
        let env = self.file_env(f);
        self.add_conj(
            ROOT,
            Conj {
                expr: &f.body,
                env,
                closed: None,
                opt: false,
            },
        );
    }

    /// The scope of a main-package file's declarations.
    fn file_env(&mut self, f: &'a File) -> EnvId {
        self.file_env_in(f, self.root_env)
    }

    /// The scope of a file's declarations: its package, plus its imports
    /// (checked by `module.rs`: only the subset's and the module's
    /// packages get here).
    fn file_env_in(&mut self, f: &'a File, package: EnvId) -> EnvId {
        let imports: Vec<(&'a str, Import)> = f
            .imports
            .iter()
            .filter_map(|i| {
                let target = match builtins::package(&i.path) {
                    Some(p) => Import::Std(p),
                    None => Import::Module(*self.packages.get(i.path.as_str())?),
                };
                Some((i.name.as_str(), target))
            })
            .collect();
        if imports.is_empty() {
            package
        } else {
            self.new_env(Some(package), EnvKind::Imports(imports))
        }
    }

    fn new_env(&mut self, parent: Option<EnvId>, kind: EnvKind<'a>) -> EnvId {
        budget::charge(0, ENV_BYTES);
        self.envs.push(Env { parent, kind });
        self.envs.len() - 1
    }

    fn new_vertex(&mut self, parent: VId, label: String, pos: Pos) -> VId {
        budget::charge(0, VERTEX_BYTES + label.len() as u64);
        self.vs.push(Vertex {
            parent: Some(parent),
            label,
            pos: Some(pos),
            ..Default::default()
        });
        self.vs.len() - 1
    }

    fn err(&self, pos: Pos, msg: impl Into<String>) -> CueError {
        self.files.err(pos, msg)
    }

    /// The error of a failed unification (`conflict` is why): incomplete
    /// when the value only lacks fields another conjunct may still add
    /// ([`incomplete_conflict`]).
    fn conflict_err(&self, pos: Pos, msg: String, conflict: &str) -> CueError {
        if incomplete_conflict(conflict) {
            self.files.incomplete(pos, msg)
        } else {
            self.err(pos, msg)
        }
    }

    fn incomplete(&self, pos: Pos, msg: impl Into<String>) -> Value {
        Value::Bottom(Rc::new(self.files.incomplete(pos, msg)))
    }

    fn bottom(&self, pos: Pos, msg: impl Into<String>) -> Value {
        Value::Bottom(Rc::new(self.err(pos, msg)))
    }

    fn add_conj(&mut self, v: VId, c: Conj<'a>) {
        budget::charge(0, CONJ_BYTES);
        let vx = &mut self.vs[v];
        if vx.pos.is_none() {
            vx.pos = Some(c.expr.pos);
        }
        vx.conjs.push(c);
        vx.dirty = true;
        // a conjunct arriving after materialization (from a comprehension)
        // makes the cached value stale
        vx.value = None;
    }

    /// Dotted path of a vertex, for messages.
    pub fn path(&self, v: VId) -> String {
        let mut parts = Vec::new();
        let mut cur = Some(v);
        while let Some(c) = cur {
            if !self.vs[c].label.is_empty() {
                parts.push(self.vs[c].label.clone());
            }
            cur = self.vs[c].parent;
        }
        parts.reverse();
        parts.join(".")
    }

    fn prefixed(&self, v: VId, msg: &str) -> String {
        let p = self.path(v);
        if p.is_empty() {
            msg.to_string()
        } else {
            format!("{p}: {msg}")
        }
    }

    fn enter(&mut self, pos: Pos) -> Result<(), CueError> {
        if !budget::charge(1, 0) {
            if let Some(e) = budget::exceeded_at(self.files, pos) {
                return Err(e);
            }
        }
        self.depth += 1;
        if self.depth > MAX_EVAL_DEPTH {
            self.depth -= 1;
            return Err(self.err(pos, "evaluation nested too deeply (structural cycle?)"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ---- shaping -------------------------------------------------------

    /// Expands pending conjuncts, applies patterns and runs comprehensions
    /// until nothing changes. Re-entrant calls (a comprehension reading its
    /// own struct) see the arcs known so far.
    fn shape(&mut self, v: VId) {
        if let Some(p) = self.vs[v].parent {
            if self.vs[p].dirty && !self.vs[p].shaping {
                self.shape(p);
            }
        }
        if self.vs[v].shaping || !self.vs[v].dirty {
            return;
        }
        let pos = self.vs[v].pos.unwrap_or_default();
        if let Err(e) = self.enter(pos) {
            self.vs[v].errors.push(e);
            self.vs[v].dirty = false;
            return;
        }
        self.vs[v].shaping = true;
        loop {
            self.vs[v].dirty = false;
            while self.vs[v].done < self.vs[v].conjs.len() {
                let c = self.vs[v].conjs[self.vs[v].done];
                self.vs[v].done += 1;
                self.expand(v, c);
            }
            while self.vs[v].extra_done < self.vs[v].extra.len() {
                let c = self.vs[v].extra[self.vs[v].extra_done];
                self.vs[v].extra_done += 1;
                self.vs[v].expanding_extra = true;
                self.expand(v, c);
                self.vs[v].expanding_extra = false;
            }
            self.apply_patterns(v);
            self.apply_tails(v);
            if self.vs[v].comps_done < self.vs[v].comps.len() {
                let i = self.vs[v].comps_done;
                self.vs[v].comps_done += 1;
                let (clauses, body, env, closed) = {
                    let c = &self.vs[v].comps[i];
                    (c.clauses, c.body, c.env, c.closed)
                };
                self.run_clauses(v, clauses, body, env, closed);
                self.vs[v].dirty = true;
                continue;
            }
            if !self.vs[v].dirty {
                break;
            }
        }
        self.vs[v].shaping = false;
        self.leave();
    }

    fn expand(&mut self, v: VId, c: Conj<'a>) {
        if let Err(e) = self.enter(c.expr.pos) {
            self.vs[v].errors.push(e);
            return;
        }
        match &c.expr.kind {
            ExprKind::Paren(e) => self.expand(v, Conj { expr: e, ..c }),
            ExprKind::Binary(BinOp::And, l, r) => {
                self.expand(v, Conj { expr: l, ..c });
                self.expand(v, Conj { expr: r, ..c });
            }
            ExprKind::Struct(decls) => {
                self.record_leaf(v, c);
                self.add_struct(v, decls, c)
            }
            ExprKind::List { elems, tail } => {
                self.record_leaf(v, c);
                self.add_list(v, elems, tail.as_deref(), c)
            }
            ExprKind::Ident(_) | ExprKind::Select(..) | ExprKind::Index(..) => match self.resolve(c.expr, c.env, v) {
                Ok(Target::Vertex(w)) => {
                    let key: *const Expr = c.expr;
                    // a vertex re-evaluated for a disjunction alternative
                    // carries the references its original expanded: the
                    // same one again is the disjunction reaching itself
                    // (`#B: #A | #B`), and that alternative fails
                    let again = self.vs[v].skip_embeds && self.vs[v].refs.contains(&key);
                    if !c.opt && (again || self.ancestor_expanded(v, key)) {
                        let m = self.prefixed(v, "structural cycle");
                        let e = self.err(c.expr.pos, m);
                        self.vs[v].errors.push(e);
                    } else {
                        self.vs[v].refs.push(key);
                        self.expand_ref(v, w, c)
                    }
                }
                Ok(Target::Value(val)) => {
                    self.record_leaf(v, c);
                    self.accumulate(v, val, c.expr.pos)
                }
                Ok(Target::Package(_) | Target::Func(_)) => {
                    let e = self.err(c.expr.pos, "cannot use a package or function as a value");
                    self.vs[v].errors.push(e);
                }
                Err(e) => self.vs[v].errors.push(e),
            },
            ExprKind::Binary(BinOp::Or, ..) | ExprKind::Unary(UnOp::Default, _) => {
                self.record_leaf(v, c);
                self.vs[v].disjs.push(c);
            }
            _ => {
                self.record_leaf(v, c);
                let val = self.eval_conj(v, c);
                self.accumulate(v, val, c.expr.pos);
            }
        }
        self.leave();
    }

    /// The disjunctions to unify into `v`'s value one by one; `Err` with the
    /// value when one needs vertices of its own and `v` is split on it.
    fn disjunctions_to_apply(&mut self, v: VId) -> Result<Vec<Conj<'a>>, Value> {
        let disjs = self.vs[v].disjs.clone();
        match disjs.iter().find(|d| needs_vertices(d.expr)) {
            Some(d) => Err(self.split_disjunction(v, *d)),
            None => Ok(disjs),
        }
    }

    /// The value of one conjunct's expression in `v`, evaluated under the
    /// conjunct's own closedness.
    fn eval_conj(&mut self, v: VId, c: Conj<'a>) -> Value {
        let saved = std::mem::replace(&mut self.closing, c.closed);
        let val = self.eval_expr(c.expr, c.env, v);
        self.closing = saved;
        val
    }

    fn record_leaf(&mut self, v: VId, c: Conj<'a>) {
        if !self.vs[v].expanding_extra {
            self.vs[v].flat.push(c);
        }
    }

    fn ancestor_expanded(&self, v: VId, key: *const Expr) -> bool {
        let mut cur = self.vs[v].parent;
        while let Some(c) = cur {
            if self.vs[c].refs.contains(&key) {
                return true;
            }
            cur = self.vs[c].parent;
        }
        false
    }

    fn is_ancestor(&self, a: VId, v: VId) -> bool {
        let mut cur = self.vs[v].parent;
        while let Some(c) = cur {
            if c == a {
                return true;
            }
            cur = self.vs[c].parent;
        }
        false
    }

    fn expand_ref(&mut self, v: VId, w: VId, c: Conj<'a>) {
        if w == v {
            return; // `a: a` adds nothing
        }
        if self.is_ancestor(w, v) {
            let m = self.prefixed(v, "structural cycle");
            {
                let e = self.err(c.expr.pos, m);
                self.vs[v].errors.push(e);
            }
            return;
        }
        if self.vs[v].expanded.contains(&w) {
            return;
        }
        self.vs[v].expanded.push(w);
        if let Some(p) = self.vs[w].parent {
            self.shape(p);
        }
        let conjs = self.vs[w].conjs.clone();
        budget::charge(conjs.len() as u64, CONJ_BYTES * conjs.len() as u64);
        // as in the reference: the referenced conjuncts all get one fresh
        // node under the referring conjunct's, closing when the reference
        // names a definition (`#A`, `#A.b`, `x.#B`); how they were closed
        // where they came from does not travel (`s: #S` then `s.sub` is
        // open, `#S.sub` is closed); each reference is checked on its own
        let is_def = names_definition(c.expr);
        let closed = match (is_def, c.closed) {
            (false, None) => None,
            (true, parent) => Some(self.closes.add(parent, Kind::Def)),
            (false, parent) => Some(self.closes.add(parent, Kind::Plain)),
        };
        for wc in conjs {
            self.expand(v, Conj { closed, ..wc });
        }
    }

    fn accumulate(&mut self, v: VId, val: Value, pos: Pos) {
        if let Value::Bottom(e) = val {
            self.vs[v].errors.push((*e).clone());
            return;
        }
        match self.vs[v].acc.take() {
            None => {
                self.vs[v].acc_first = self.vs[v].struct_pos.is_none();
                self.vs[v].acc = Some((val, pos))
            }
            Some((a, apos)) => match unify(&a, &val) {
                Ok(n) => self.vs[v].acc = Some((n, apos)),
                Err(m) => {
                    let msg = format!("{} ({})", self.prefixed(v, &m), self.files.at(apos));
                    let e = self.conflict_err(pos, msg, &m);
                    self.vs[v].errors.push(e);
                    self.vs[v].acc = Some((a, apos));
                }
            },
        }
    }

    fn arc(&mut self, v: VId, name: &str, pos: Pos) -> VId {
        if let Some(&a) = self.vs[v].arc_index.get(name) {
            return a;
        }
        let a = self.new_vertex(v, name.to_string(), pos);
        budget::charge(0, ARC_BYTES + name.len() as u64);
        self.vs[a].is_arc = true;
        self.vs[v].arcs.push(a);
        self.vs[v].arc_index.insert(name.to_string(), a);
        self.vs[v].dirty = true;
        a
    }

    fn group(&mut self, v: VId, node: NodeId) -> usize {
        if let Some(i) = self.vs[v].groups.iter().position(|g| g.node == node) {
            return i;
        }
        self.vs[v].groups.push(Group {
            node,
            labels: FxHashSet::default(),
            patterns: Vec::new(),
            open: false,
        });
        self.vs[v].groups.len() - 1
    }

    fn add_struct(&mut self, v: VId, decls: &'a [Decl], c: Conj<'a>) {
        // a literal of only embeddings is what it embeds (`{1}` is 1)
        let embeds = decls.iter().filter(|d| matches!(d, Decl::Embed(_))).count();
        // (as are comprehensions that yield embedded values: `{if c {"x"}}`)
        let yields_value = |d: &Decl| match d {
            Decl::Comprehension { body, .. } => {
                matches!(&body.kind, ExprKind::Struct(ds) if ds.iter().any(|x| matches!(x, Decl::Embed(_))))
            }
            _ => false,
        };
        // (definitions and hidden fields beside an embedded value do not
        // make it a struct: `{int, #default: 80}` is an int)
        let not_regular = |d: &Decl| matches!(d, Decl::Field(Field { label: Label::Name { name, quoted: false }, .. }) if name.starts_with(['#', '_']));
        let only_embeds = decls.iter().any(|d| matches!(d, Decl::Embed(_)) || yields_value(d))
            && decls
                .iter()
                .all(|d| matches!(d, Decl::Embed(_) | Decl::Let { .. }) || yields_value(d) || not_regular(d));
        if !only_embeds {
            self.vs[v].is_struct = true;
        } else {
            self.vs[v].maybe_struct = true;
        }
        if self.vs[v].struct_pos.is_none() {
            self.vs[v].struct_pos = Some(c.expr.pos);
        }
        let env = self.new_env(
            Some(c.env),
            EnvKind::Struct {
                vertex: v,
                decls,
                lets: Vec::new(),
            },
        );
        let mut lets = Vec::new();
        for d in decls {
            if let Decl::Let { name, value, pos } = d {
                let l = self.new_vertex(v, String::new(), *pos);
                self.vs[l].conjs.push(Conj {
                    expr: value,
                    env,
                    closed: None,
                    opt: false,
                });
                self.vs[l].dirty = true;
                lets.push((name.as_str(), l));
            }
        }
        if let EnvKind::Struct { lets: l, .. } = &mut self.envs[env].kind {
            *l = lets;
        }
        // with embeddings the literal needs a node even outside
        // definitions: what it declares lets the embedded values' fields
        // be joined by its own (`{#A, b: 1}` admits a and b)
        let node = match c.closed {
            None if embeds > 0 => Some(self.closes.add(None, Kind::Plain)),
            n => n,
        };
        let group = node.map(|o| self.group(v, o));
        let mut order = Vec::new();
        for d in decls {
            match d {
                Decl::Field(f) => {
                    let name = match &f.label {
                        Label::Name { name, .. } => name.clone(),
                        Label::Interp(e) => match self.eval_expr(e, env, v).default() {
                            Value::Str(s) => s.to_string(),
                            Value::Bottom(e) => {
                                self.vs[v].errors.push((*e).clone());
                                continue;
                            }
                            other => {
                                let m = format!("invalid label: {} is not a concrete string", to_cue(&other));
                                {
                                    let e = self.err(e.pos, m);
                                    self.vs[v].errors.push(e);
                                }
                                continue;
                            }
                        },
                        Label::Pattern { alias, expr } => {
                            self.vs[v].patterns.push(Pattern {
                                label: expr,
                                alias: alias.as_deref(),
                                value: &f.value,
                                env,
                                closed: c.closed,
                                matcher: None,
                            });
                            self.vs[v].dirty = true;
                            if let Some(g) = group {
                                let pi = self.vs[v].patterns.len() - 1;
                                self.vs[v].groups[g].patterns.push(pi);
                            }
                            continue;
                        }
                    };
                    let ident = matches!(&f.label, Label::Name { quoted: false, .. });
                    let is_def = ident && (name.starts_with('#') || name.starts_with("_#"));
                    let a = self.arc(v, &name, f.label_pos);
                    if ident && name.starts_with('_') {
                        self.vs[a].hidden = true;
                    }
                    order.push(a);
                    if f.required {
                        self.vs[a].must = true;
                    } else if !f.optional {
                        self.vs[a].required = true;
                    }
                    let closed = if is_def {
                        self.vs[a].is_def = true;
                        let node = match self.vs[a].def_node {
                            Some(n) => n,
                            None => {
                                let n = self.closes.add(None, Kind::Def);
                                self.vs[a].def_node = Some(n);
                                n
                            }
                        };
                        Some(node)
                    } else {
                        c.closed
                    };
                    if let Some(g) = group {
                        self.vs[v].groups[g].labels.insert(name);
                    }
                    self.add_conj(
                        a,
                        Conj {
                            expr: &f.value,
                            env,
                            closed,
                            opt: f.optional,
                        },
                    );
                }
                Decl::Comprehension { clauses, body } => {
                    // what it yields is declared by this literal (an
                    // embedding struct admits it)
                    self.vs[v].comps.push(Comp {
                        clauses,
                        body,
                        env,
                        closed: node,
                    });
                    self.vs[v].dirty = true;
                }
                Decl::Ellipsis(_) => {
                    self.vs[v].ellipsis = true;
                    if let Some(g) = group {
                        self.vs[v].groups[g].open = true;
                    }
                }
                Decl::Embed(_) | Decl::Let { .. } => {}
            }
        }
        // embedded values come after the literal's own fields (the output
        // order of `cue export`); a vertex re-evaluated for a disjunction
        // got their leaves already
        if embeds > 0 && !self.vs[v].skip_embeds {
            for d in decls {
                if let Decl::Embed(e) = d {
                    let closed = node.map(|n| self.closes.add(Some(n), Kind::Embed));
                    self.expand(
                        v,
                        Conj {
                            expr: e,
                            env,
                            closed,
                            opt: c.opt,
                        },
                    );
                }
            }
        }
        if order.len() > 1 {
            self.vs[v].orders.push(order);
        }
    }

    /// Output order of the arcs: a topological sort of the orders of all
    /// struct literals that declared them (what `cue export` prints), ties
    /// broken by the position inside a literal, then by first appearance.
    fn ordered_arcs(&self, v: VId) -> Vec<VId> {
        let vx = &self.vs[v];
        // common case: one literal declared every field, in creation order
        if vx.orders.is_empty() || (vx.orders.len() == 1 && vx.orders[0] == vx.arcs) {
            return vx.arcs.clone();
        }
        let idx: FxHashMap<VId, usize> = vx.arcs.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        let n = vx.arcs.len();
        let mut rank = vec![0usize; n];
        let mut seen_rank = vec![false; n];
        let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut indeg = vec![0usize; n];
        for o in &vx.orders {
            for (k, a) in o.iter().enumerate() {
                let Some(&i) = idx.get(a) else { continue };
                if !seen_rank[i] || k < rank[i] {
                    rank[i] = k;
                    seen_rank[i] = true;
                }
                if k > 0 {
                    if let Some(&p) = idx.get(&o[k - 1]) {
                        if p != i && !succ[p].contains(&i) {
                            succ[p].push(i);
                            indeg[i] += 1;
                        }
                    }
                }
            }
        }
        // the smallest (rank, index) without predecessors left, or, in a
        // cycle of contradicting orders, the smallest left at all; ordered
        // sets keep this O(n log n) (large structs with reversed orders
        // made it quadratic)
        let mut ready: BTreeSet<(usize, usize)> = (0..n).filter(|&i| indeg[i] == 0).map(|i| (rank[i], i)).collect();
        let mut left: BTreeSet<(usize, usize)> = (0..n).map(|i| (rank[i], i)).collect();
        let mut out = Vec::with_capacity(n);
        while let Some(&(r, i)) = ready.first().or_else(|| left.first()) {
            ready.remove(&(r, i));
            left.remove(&(r, i));
            out.push(vx.arcs[i]);
            for &s in &succ[i] {
                indeg[s] = indeg[s].saturating_sub(1);
                if indeg[s] == 0 && left.contains(&(rank[s], s)) {
                    ready.insert((rank[s], s));
                }
            }
        }
        out
    }

    /// A list literal in conjunct position: its elements become arcs so
    /// that they unify element-wise with other lists lazily (an element may
    /// refer to a sibling field another list fills in).
    fn add_list(&mut self, v: VId, elems: &'a [Expr], tail: Option<&'a Expr>, c: Conj<'a>) {
        let elems = match self.list_elems(elems, c.env, v) {
            Ok(e) => e,
            Err(e) => {
                self.vs[v].errors.push(e);
                return;
            }
        };
        self.vs[v].lists.push((elems.len(), tail.is_some(), c.expr.pos));
        for (i, &(e, env)) in elems.iter().enumerate() {
            let a = self.arc(v, &i.to_string(), e.pos);
            self.vs[a].required = true;
            self.add_conj(a, Conj { expr: e, env, ..c });
        }
        if let Some(t) = tail {
            self.vs[v].tails.push((elems.len(), Conj { expr: t, ..c }));
        }
        self.vs[v].dirty = true;
    }

    fn apply_tails(&mut self, v: VId) {
        let nt = self.vs[v].tails.len();
        if nt == 0 {
            return;
        }
        let arcs = self.vs[v].arcs.clone();
        for a in arcs {
            let from = self.vs[a].tails_applied;
            if from == nt {
                continue;
            }
            self.vs[a].tails_applied = nt;
            let Ok(idx) = self.vs[a].label.parse::<usize>() else {
                continue;
            };
            for ti in from..nt {
                let (len, conj) = self.vs[v].tails[ti];
                if idx >= len {
                    self.add_conj(a, Conj { opt: true, ..conj });
                }
            }
        }
    }

    fn pattern_matches(&mut self, v: VId, pi: usize, label: &str) -> Result<bool, CueError> {
        let m = match &self.vs[v].patterns[pi].matcher {
            Some(m) => m.clone(),
            None => {
                let (e, env) = (self.vs[v].patterns[pi].label, self.vs[v].patterns[pi].env);
                let m = self.eval_expr(e, env, v);
                self.vs[v].patterns[pi].matcher = Some(m.clone());
                m
            }
        };
        if let Value::Bottom(e) = &m {
            return Err((**e).clone());
        }
        Ok(unify(&Value::str(label), &m).is_ok())
    }

    fn apply_patterns(&mut self, v: VId) {
        let np = self.vs[v].patterns.len();
        if np == 0 {
            return;
        }
        let arcs = self.vs[v].arcs.clone();
        for a in arcs {
            let from = self.vs[a].applied;
            if from == np || self.vs[a].is_def || self.vs[a].hidden {
                continue;
            }
            self.vs[a].applied = np;
            let label = self.vs[a].label.clone();
            for pi in from..np {
                match self.pattern_matches(v, pi, &label) {
                    Ok(true) => {
                        let p = &self.vs[v].patterns[pi];
                        let (value, penv, closed, alias) = (p.value, p.env, p.closed, p.alias);
                        let env = match alias {
                            Some(name) => self.new_env(
                                Some(penv),
                                EnvKind::Bind {
                                    name,
                                    target: Target::Value(Value::str(&label)),
                                },
                            ),
                            None => penv,
                        };
                        self.add_conj(
                            a,
                            Conj {
                                expr: value,
                                env,
                                closed,
                                opt: true,
                            },
                        );
                    }
                    Ok(false) => {}
                    Err(e) => self.vs[v].errors.push(e),
                }
            }
        }
    }

    // ---- materialization ---------------------------------------------

    /// The child vertex `name` of `v`, if the evaluated struct has one.
    pub fn field(&mut self, v: VId, name: &str) -> Option<VId> {
        self.shape(v);
        self.vs[v].arc_index.get(name).copied()
    }

    /// The evaluated value of a vertex (cached).
    pub fn materialize(&mut self, v: VId) -> Value {
        if let Some(val) = &self.vs[v].value {
            return val.clone();
        }
        let pos = self.vs[v].pos.unwrap_or_default();
        if self.vs[v].evaluating {
            let m = self.prefixed(v, "cycle in references");
            return self.bottom(pos, m);
        }
        if let Err(e) = self.enter(pos) {
            return Value::Bottom(Rc::new(e));
        }
        self.vs[v].evaluating = true;
        self.shape(v);
        let val = self.compute(v);
        self.vs[v].evaluating = false;
        self.leave();
        self.vs[v].value = Some(val.clone());
        val
    }

    fn compute(&mut self, v: VId) -> Value {
        if let Some(e) = self.vs[v].errors.first() {
            return Value::Bottom(Rc::new(e.clone()));
        }
        if !self.vs[v].lists.is_empty() {
            if self.vs[v].is_struct {
                let (lp, sp) = (self.vs[v].lists[0].2, self.vs[v].struct_pos.unwrap_or_default());
                let m = format!(
                    "{} ({})",
                    self.prefixed(v, "conflicting values list and struct"),
                    self.files.at(sp)
                );
                return self.bottom(lp, m);
            }
            return self.compute_list(v);
        }
        if self.vs[v].maybe_struct && self.vs[v].acc.is_none() && self.vs[v].disjs.is_empty() {
            self.vs[v].is_struct = true;
        }
        let mut result = if self.vs[v].is_struct {
            let arcs = self.ordered_arcs(v);
            budget::charge(arcs.len() as u64, FIELD_BYTES * arcs.len() as u64);
            let mut fields = Vec::with_capacity(arcs.len());
            for a in arcs {
                // optional fields are constraints only: not evaluated (CUE
                // does not report their errors, and recursive definitions
                // like `#List: {next?: #List}` stay finite)
                let mut value = if self.vs[a].required || self.vs[a].is_def || self.vs[a].hidden {
                    self.materialize(a)
                } else if self.vs[a].must {
                    // incomplete: another declaration may still provide it
                    // (and definitions do not report it)
                    let apos = self.vs[a].pos.unwrap_or_default();
                    let m = self.prefixed(a, "field is required but not present");
                    self.incomplete(apos, m)
                } else {
                    Value::Top
                };
                let label = self.vs[a].label.clone();
                let apos = self.vs[a].pos.unwrap_or_default();
                if !self.vs[a].is_def && !self.vs[a].hidden {
                    if let Err(m) = self.allowed(v, &label) {
                        value = self.bottom(apos, self.prefixed(a, &m));
                    }
                }
                fields.push(FieldV {
                    label,
                    value,
                    optional: !self.vs[a].required && !self.vs[a].must,
                    def: self.vs[a].is_def || self.vs[a].hidden,
                    pos: apos,
                });
            }
            // closed as a value: a label no struct declares is refused
            let closed = !self.closes.allows(&self.vs[v].groups, |_| false);
            let open = self.vs[v].ellipsis;
            Value::Struct(Rc::new(StructV { fields, closed, open }))
        } else {
            Value::Top
        };
        let spos = self.vs[v].struct_pos.unwrap_or_default();
        result = match self.with_acc(v, result, spos) {
            Ok(r) => r,
            Err(bottom) => return bottom,
        };
        let disjs = match self.disjunctions_to_apply(v) {
            Ok(d) => d,
            Err(split) => return split,
        };
        for c in disjs {
            let d = self.eval_conj(v, c);
            if let Value::Bottom(_) = d {
                return d;
            }
            let first = self.vs[v].is_struct && c.expr.pos < spos;
            let r = if first { unify(&d, &result) } else { unify(&result, &d) };
            result = match r {
                Ok(r) => r,
                Err(m) => {
                    let other = self.vs[v].acc.as_ref().map(|x| x.1).unwrap_or(spos);
                    let msg = format!("{} ({})", self.prefixed(v, &m), self.files.at(other));
                    return Value::Bottom(Rc::new(self.conflict_err(c.expr.pos, msg, &m)));
                }
            };
        }
        result
    }

    /// Unifies the vertex's accumulated scalar conjuncts into `result`; a
    /// conflict names both positions (`declared`: where the struct or list
    /// was declared).
    fn with_acc(&mut self, v: VId, result: Value, declared: Pos) -> Result<Value, Value> {
        let Some((a, apos)) = self.vs[v].acc.clone() else {
            return Ok(result);
        };
        let merged = match (&result, &a) {
            (Value::Struct(_), Value::Struct(_)) if self.vs[v].acc_first => unify(&a, &result),
            _ => unify(&result, &a),
        };
        merged.map_err(|m| {
            let msg = format!("{} ({})", self.prefixed(v, &m), self.files.at(declared));
            Value::Bottom(Rc::new(self.conflict_err(apos, msg, &m)))
        })
    }

    fn compute_list(&mut self, v: VId) -> Value {
        // elements only: a hidden field or definition beside an embedded
        // list (`{_h: 1, [1, 2]}`) is not one
        let arcs: Vec<VId> = (self.vs[v].arcs.iter().copied())
            .filter(|&a| !self.vs[a].hidden && !self.vs[a].is_def)
            .collect();
        let n = arcs.len();
        for &(len, open, pos) in &self.vs[v].lists {
            if (!open && len != n) || (open && len > n) {
                let longest = self.vs[v].lists.iter().map(|l| l.0).max().unwrap_or(0);
                let m = format!("incompatible list lengths ({len} and {longest})");
                let m = self.prefixed(v, &m);
                return self.bottom(pos, m);
            }
        }
        let mut elems = Vec::with_capacity(n);
        for a in arcs {
            let e = self.materialize(a);
            if let Value::Bottom(_) = e {
                return e;
            }
            elems.push(e);
        }
        let all_open = self.vs[v].lists.iter().all(|l| l.1);
        let tail = if all_open {
            // all element types together in one vertex: the declarations
            // of one definition admit their fields together
            let tails = self.vs[v].tails.clone();
            match tails.first() {
                None => Some(Value::Top),
                Some((_, first)) => {
                    let d = self.new_vertex(v, String::new(), first.expr.pos);
                    for (_, c) in tails {
                        self.add_conj(d, c);
                    }
                    match self.materialize(d) {
                        b @ Value::Bottom(_) => return b,
                        t => Some(t),
                    }
                }
            }
        } else {
            None
        };
        let mut result = Value::List(Rc::new(ListV { elems, tail }));
        let lpos = self.vs[v].lists[0].2;
        result = match self.with_acc(v, result, lpos) {
            Ok(r) => r,
            Err(bottom) => return bottom,
        };
        let disjs = match self.disjunctions_to_apply(v) {
            Ok(d) => d,
            Err(split) => return split,
        };
        for c in disjs {
            let d = self.eval_conj(v, c);
            result = match unify(&result, &d) {
                Ok(r) => r,
                Err(m) => {
                    let msg = format!("{} ({})", self.prefixed(v, &m), self.files.at(lpos));
                    return self.bottom(c.expr.pos, msg);
                }
            };
        }
        result
    }

    /// A disjunction whose alternatives may be structs: evaluate the vertex
    /// once per alternative (all its other conjuncts plus that alternative),
    /// so references inside an alternative see the unified result.
    fn split_disjunction(&mut self, v: VId, d: Conj<'a>) -> Value {
        if let Some(p) = misplaced_mark(d.expr) {
            let m = "preference mark not allowed at this position".to_string();
            return self.bottom(p, m);
        }
        let mut alts = Vec::new();
        alternatives(d.expr, false, &mut alts);
        let flat = self.vs[v].flat.clone();
        let n = (flat.len() * alts.len()) as u64;
        budget::charge(n, CONJ_BYTES * n);
        let parent = self.vs[v].parent.unwrap_or(v);
        let label = self.vs[v].label.clone();
        let mut vals = Vec::with_capacity(alts.len());
        for (alt, dflt) in alts {
            let t = self.new_vertex(parent, label.clone(), alt.pos);
            // t re-evaluates v: what v expanded counts for cycles below t
            self.vs[t].refs = self.vs[v].refs.clone();
            self.vs[t].skip_embeds = true;
            // the alternative goes last: fields of the other conjuncts come
            // first in the output, as in `cue export`
            for c in &flat {
                if !(std::ptr::eq(c.expr, d.expr) && c.env == d.env) {
                    self.add_conj(t, *c);
                }
            }
            self.add_conj(t, Conj { expr: alt, ..d });
            let val = self.materialize(t);
            vals.push((val, dflt));
        }
        // alone, the disjunction's own rules apply (`*c | "z"` keeps only
        // c's defaults); unified with other disjunctions, the marks combine
        // as in the cross product of two disjunction values, the marks
        // inside each result standing for the other conjuncts' defaults
        // (`(1 | {}) & (*1 | {})` defaults to 1, in either order)
        let others = self.vs[v].disjs.len() > 1 || matches!(&self.vs[v].acc, Some((Value::Disj(_), _)));
        if !others {
            return match disjunction(vals) {
                Ok(v) => v,
                Err(m) => {
                    let msg = self.prefixed(v, &m);
                    self.bottom(d.expr.pos, msg)
                }
            };
        }
        let mut results = Vec::with_capacity(vals.len());
        for (val, dflt) in vals {
            match val {
                Value::Disj(inner) => results.extend(inner.iter().map(|(iv, id)| (iv.clone(), dflt, *id))),
                val => results.push((val, dflt, false)),
            }
        }
        // failed alternatives take no part in deciding which side's
        // defaults survived
        let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| hard_error(&r.0, 0).is_none());
        let alts = if ok.is_empty() {
            failed.into_iter().map(|r| (r.0, false)).collect()
        } else {
            combine_marks(ok)
        };
        match disjunction(alts) {
            Ok(v) => v,
            Err(m) => {
                let msg = self.prefixed(v, &m);
                self.bottom(d.expr.pos, msg)
            }
        }
    }

    /// Closedness (`closed.rs`): whether the struct at `v` admits `label`.
    fn allowed(&mut self, v: VId, label: &str) -> Result<(), String> {
        if self.vs[v].groups.is_empty() {
            return Ok(());
        }
        // which groups declare or match the label (patterns need `self`)
        let mut accepts = Vec::with_capacity(self.vs[v].groups.len());
        for gi in 0..self.vs[v].groups.len() {
            let g = &self.vs[v].groups[gi];
            let mut ok = g.labels.contains(label);
            if !ok {
                let pats = g.patterns.clone();
                for pi in pats {
                    if self.pattern_matches(v, pi, label).unwrap_or(false) {
                        ok = true;
                        break;
                    }
                }
            }
            accepts.push(ok);
        }
        if self.closes.allows(&self.vs[v].groups, |i| accepts[i]) {
            Ok(())
        } else {
            Err(format!("field {label} not allowed"))
        }
    }
}

/// Alternatives of a disjunction expression with their default marks.
fn alternatives<'e>(e: &'e Expr, dflt: bool, out: &mut Vec<(&'e Expr, bool)>) {
    match &e.kind {
        ExprKind::Binary(BinOp::Or, l, r) => {
            alternatives(l, dflt, out);
            alternatives(r, dflt, out);
        }
        ExprKind::Unary(UnOp::Default, x) => alternatives(x, true, out),
        ExprKind::Paren(x) if matches!(x.kind, ExprKind::Binary(BinOp::Or, ..)) => alternatives(x, dflt, out),
        _ => out.push((e, dflt)),
    }
}

/// A `*` that does not mark an alternative of the disjunction `e`
/// (`(*1) | 2`): the reference rejects it, it must not silently become a
/// failed alternative.
fn misplaced_mark(e: &Expr) -> Option<Pos> {
    match &e.kind {
        ExprKind::Binary(BinOp::Or, l, r) => misplaced_mark(l).or_else(|| misplaced_mark(r)),
        ExprKind::Paren(x) if matches!(x.kind, ExprKind::Binary(BinOp::Or, ..)) => misplaced_mark(x),
        ExprKind::Paren(x) => {
            let mut x = &**x;
            while let ExprKind::Paren(y) = &x.kind {
                x = y;
            }
            match x.kind {
                ExprKind::Unary(UnOp::Default, _) => Some(x.pos),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether a disjunction may have struct alternatives (then each one is
/// evaluated as a vertex; scalar ones are cheaper as values).
fn needs_vertices(e: &Expr) -> bool {
    let mut alts = Vec::new();
    alternatives(e, false, &mut alts);
    alts.iter().any(|(a, _)| {
        let mut a = *a;
        while let ExprKind::Paren(x) = &a.kind {
            a = x;
        }
        match &a.kind {
            ExprKind::Struct(_) | ExprKind::Select(..) | ExprKind::Index(..) | ExprKind::Binary(BinOp::And, ..) => true,
            ExprKind::Ident(n) => !matches!(
                n.as_str(),
                "string" | "int" | "float" | "number" | "bool" | "bytes" | "_"
            ),
            _ => false,
        }
    })
}

/// Not (yet) a single concrete value: a type, bound, `_` or an unresolved
/// disjunction. Structs and lists count as concrete here.
pub fn is_incomplete(v: &Value) -> bool {
    matches!(v, Value::Top | Value::Basic(_) | Value::Disj(_))
}
