//! Regular expressions of the subset (`=~`, `!~`, `regexp.*`): RE2 syntax,
//! which the `regex` crate implements (without RE2's `\C`; Perl classes
//! such as `\d` are Unicode-aware here where Go's are ASCII). Compiled
//! expressions are cached per evaluation thread, and their size is bounded
//! so that a pattern cannot take more memory than the evaluation budget
//! allows.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regex::Regex;

/// Largest compiled program and lazy DFA cache of one expression.
const SIZE_LIMIT: usize = 1 << 20;
/// Expressions kept compiled per thread.
const CACHE: usize = 256;

thread_local! {
    static COMPILED: RefCell<HashMap<String, Rc<Regex>>> = RefCell::new(HashMap::new());
}

/// Compiles `pattern`, or says why it is not a valid expression.
pub fn compile(pattern: &str) -> Result<Rc<Regex>, String> {
    if let Some(r) = COMPILED.with(|c| c.borrow().get(pattern).cloned()) {
        return Ok(r);
    }
    let r = regex::RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => format!("regular expression {pattern:?} is too large"),
            e => format!(
                "invalid regular expression {pattern:?}: {}",
                e.to_string().lines().last().unwrap_or("").trim_start_matches("error: ")
            ),
        })?;
    let r = Rc::new(r);
    COMPILED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE {
            c.clear();
        }
        c.insert(pattern.to_string(), r.clone());
    });
    Ok(r)
}

/// Whether `s` contains a match of `pattern` (false for an invalid one).
pub fn is_match(pattern: &str, s: &str) -> bool {
    compile(pattern).is_ok_and(|r| r.is_match(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_anywhere_like_go() {
        assert!(is_match("b", "abc"));
        assert!(is_match("^a", "abc"));
        assert!(!is_match("^b", "abc"));
        assert!(compile("(").is_err());
    }
}
