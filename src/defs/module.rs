//! Modules: a directory with `cue.mod/module.cue` (`module: "example.com/defs"`)
//! whose subdirectories hold packages that files import by path
//! (`import "example.com/defs/schema"`, or `…/lib:service` to name the
//! package). This module finds the module root, reads `module.cue`, and
//! loads every imported package (transitively) into one [`Program`]: the
//! main package's files plus each imported package's files, all parsed
//! against one file table so positions stay unambiguous. Standard-library
//! imports are left to `builtins/`; anything else is "not supported".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::defs::ast::File;
use crate::defs::builtins;
use crate::defs::error::{unsupported, CueError, Files};
use crate::defs::{parser, read_dir_cue};

/// Most packages one program may import (guards runaway trees).
const MAX_PACKAGES: usize = 256;

/// Parsed sources of one evaluation: the main package and every package
/// it imports from its module.
pub struct Program {
    pub files: Files,
    pub main: Vec<File>,
    /// Imported packages by import path (as written, with any `:pkg`).
    pub packages: BTreeMap<String, Vec<File>>,
}

/// A module: its root directory and its path (`example.com/defs`).
pub struct Module {
    pub root: PathBuf,
    pub path: String,
}

/// The module `dir` belongs to: the nearest ancestor (or `dir`) with a
/// `cue.mod/module.cue`.
pub fn find(dir: &Path) -> Result<Option<Module>, Vec<CueError>> {
    let start = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    for d in start.ancestors() {
        let m = d.join("cue.mod").join("module.cue");
        if m.is_file() {
            let (name, text) = crate::defs::read_source(&m)?;
            let files = Files { names: vec![name] };
            let f = parser::parse_file(&text, 0, &files).map_err(|e| vec![e])?;
            let path = module_path(&f).ok_or_else(|| {
                vec![files.err(
                    f.body.pos,
                    "cue.mod/module.cue must declare module: \"path\" as a plain string",
                )]
            })?;
            return Ok(Some(Module {
                root: d.to_path_buf(),
                path,
            }));
        }
    }
    Ok(None)
}

fn module_path(f: &File) -> Option<String> {
    use crate::defs::ast::{Decl, ExprKind, Field, Label, Lit};
    let ExprKind::Struct(decls) = &f.body.kind else {
        return None;
    };
    decls.iter().find_map(|d| match d {
        Decl::Field(Field {
            label: Label::Name { name, .. },
            value,
            ..
        }) if name == "module" => match &value.kind {
            ExprKind::Lit(Lit::Str(s)) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    })
}

/// Parses the main package `sources` and, through `module`, every package
/// they import.
pub fn load(
    sources: &[(String, String)],
    module: Option<&Module>,
    want_package: Option<&str>,
) -> Result<Program, Vec<CueError>> {
    let mut files = Files {
        names: sources.iter().map(|s| s.0.clone()).collect(),
    };
    let main = crate::defs::parse_all(sources, &files, want_package)?;
    let mut packages: BTreeMap<String, Vec<File>> = BTreeMap::new();
    let mut errs = Vec::new();
    // imports still to load: (path, the file table index and position of one importer)
    let mut todo: Vec<(String, crate::defs::error::Pos)> = imports_of(&main);
    while let Some((path, pos)) = todo.pop() {
        if builtins::package(&path).is_some() || packages.contains_key(&path) {
            continue;
        }
        let Some(m) = module.filter(|m| within(&m.path, &path)) else {
            errs.push(files.err(
                pos,
                unsupported(&format!(
                    "importing {path:?} (neither a standard-library package of the subset nor a package of this module)"
                )),
            ));
            continue;
        };
        if packages.len() >= MAX_PACKAGES {
            errs.push(files.err(pos, format!("more than {MAX_PACKAGES} imported packages")));
            break;
        }
        let (dir, pkg) = locate(m, &path);
        let srcs = match read_dir_cue(&dir) {
            Ok(s) => s,
            Err(_) => {
                errs.push(files.err(
                    pos,
                    format!("cannot find package {path:?} (no directory {})", dir.display()),
                ));
                continue;
            }
        };
        let mut parsed = Vec::new();
        for (name, text) in srcs {
            files.names.push(name);
            match parser::parse_file(&text, (files.names.len() - 1) as u32, &files) {
                // files of other packages in the directory are not part of it
                Ok(f) if f.package.as_ref().is_some_and(|p| p.0 == pkg) => parsed.push(f),
                Ok(_) => {}
                Err(e) => errs.push(e),
            }
        }
        if parsed.is_empty() {
            errs.push(files.err(
                pos,
                format!(
                    "cannot find package {path:?}: no files of package {pkg} in {}",
                    dir.display()
                ),
            ));
            continue;
        }
        todo.extend(imports_of(&parsed));
        packages.insert(path, parsed);
    }
    if errs.is_empty() {
        Ok(Program { files, main, packages })
    } else {
        Err(errs)
    }
}

fn imports_of(files: &[File]) -> Vec<(String, crate::defs::error::Pos)> {
    files
        .iter()
        .flat_map(|f| f.imports.iter().map(|i| (i.path.clone(), i.pos)))
        .collect()
}

/// Whether import path `p` (without `:pkg`) names a package of module `m`
/// (never a directory outside it: no `.` or `..` elements).
fn within(m: &str, p: &str) -> bool {
    let p = p.split_once(':').map(|x| x.0).unwrap_or(p);
    let inside = p == m || p.strip_prefix(m).is_some_and(|r| r.starts_with('/'));
    inside && !p.split('/').any(|s| s == "." || s == ".." || s.contains('\\'))
}

/// The directory and package name of an import path of module `m`.
fn locate(m: &Module, path: &str) -> (PathBuf, String) {
    let (p, qual) = match path.split_once(':') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let rel = p.strip_prefix(&m.path).unwrap_or("").trim_start_matches('/');
    let dir = rel
        .split('/')
        .filter(|s| !s.is_empty())
        .fold(m.root.clone(), |d, s| d.join(s));
    let pkg = qual
        .map(str::to_string)
        .unwrap_or_else(|| p.rsplit('/').next().unwrap_or(p).to_string());
    (dir, pkg)
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn import_paths_stay_inside_the_module() {
        assert!(within("example.com/defs", "example.com/defs/lib"));
        assert!(within("example.com/defs", "example.com/defs/lib:svc"));
        assert!(!within("example.com/defs", "example.com/defsx/lib"));
        assert!(!within("example.com/defs", "example.com/defs/../../etc"));
        assert!(!within("example.com/defs", "example.com/defs/./lib"));
    }
}
