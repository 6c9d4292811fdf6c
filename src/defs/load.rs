//! Loading a `defs/` folder: every `*.cue` directly inside, one package
//! `defs`. The configuration's variables bind the fields tagged `@tag(name)`
//! (`tags.rs`); the others override `#var` fields, unified in as one more
//! (synthetic) file named `<config>`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::defs::error::CueError;
use crate::defs::service::Defs;
use crate::defs::value::quote;
use crate::defs::{read_dir_cue, with_stack};

/// The package every file in `defs/` must declare.
pub const PACKAGE: &str = "defs";

/// Loads and validates `dir`. `vars` bind `@tag(k)` fields; the ones no
/// `@tag` reads override `#var` fields (each value is a string, unified as
/// `#var: {k: "v"}`), and an unknown one is an error because `#var` is a
/// closed definition.
pub fn load_dir(dir: &Path, vars: &BTreeMap<String, String>) -> Result<Defs, Vec<CueError>> {
    let sources = read_dir_cue(dir)?;
    if sources.is_empty() {
        return Err(vec![CueError::bare(
            dir.display().to_string(),
            "no .cue files in the definitions folder",
        )]);
    }
    // subdirectories hold the packages of defs/'s module, if it is one
    let module = if dir.join("cue.mod").join("module.cue").is_file() {
        crate::defs::module::find(dir)?
    } else {
        None
    };
    with_stack(|| Defs::build(sources, vars, module.as_ref()))
}

/// The synthetic `<config>` file that unifies `vars` into `#var`.
pub(crate) fn vars_source(vars: &BTreeMap<String, String>) -> String {
    let mut s = format!("package {PACKAGE}\n#var: {{\n");
    for (k, v) in vars {
        s.push_str(&format!("    {}: {}\n", quote(k), quote(v)));
    }
    s.push_str("}\n");
    s
}
