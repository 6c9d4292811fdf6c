//! Regular expressions of the subset (`=~`, `!~`, `regexp.*`): RE2 syntax,
//! which the `regex` crate implements (without RE2's `\C`) once two
//! differences are translated away: RE2's Perl classes `\d \s \w` and
//! `\b` are ASCII-only (the crate's are Unicode-aware), and RE2 quotes
//! literal text with `\Q…\E`. Compiled
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
    let r = regex::RegexBuilder::new(&from_re2(pattern))
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

/// RE2 syntax → the `regex` crate's: ASCII Perl classes and word
/// boundaries, `\Q…\E` as escaped literal text.
fn from_re2(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut cs = pattern.chars();
    while let Some(c) = cs.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = cs.next() else {
            out.push(c);
            break;
        };
        match e {
            'd' => out.push_str("[0-9]"),
            'D' => out.push_str("[^0-9]"),
            's' => out.push_str("[\\t\\n\\f\\r ]"),
            'S' => out.push_str("[^\\t\\n\\f\\r ]"),
            'w' => out.push_str("[0-9A-Za-z_]"),
            'W' => out.push_str("[^0-9A-Za-z_]"),
            'b' => out.push_str("(?-u:\\b)"),
            'B' => out.push_str("(?-u:\\B)"),
            'Q' => {
                let rest: String = cs.clone().collect();
                let (lit, after) = match rest.find("\\E") {
                    Some(i) => (&rest[..i], i + 2),
                    None => (rest.as_str(), rest.len()),
                };
                out.push_str(&regex::escape(lit));
                for _ in 0..rest[..after].chars().count() {
                    cs.next();
                }
            }
            _ => {
                out.push(c);
                out.push(e);
            }
        }
    }
    out
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

    #[test]
    fn perl_classes_are_ascii_like_re2() {
        assert!(!is_match("^\\d$", "٣"));
        assert!(!is_match("^\\w$", "é"));
        assert!(!is_match("^\\s$", "\u{a0}"));
        assert!(is_match("^[^\\d]$", "x"));
        assert!(is_match("^[a\\d]+$", "a1"));
        assert!(is_match("\\bw", "héllo wörld"));
        assert!(is_match("^\\\\d$", "\\d"));
    }

    #[test]
    fn quoted_literal_text() {
        assert!(is_match("^\\Qa.b\\E$", "a.b"));
        assert!(!is_match("^\\Qa.b\\E$", "axb"));
        assert!(is_match("^\\Qa+", "a+"));
    }
}
