//! Hostile input never panics, hangs or overflows the stack: deep nesting,
//! long chains, exponential strings and structures end in errors.

use std::time::{Duration, Instant};

use substrate::defs::eval_sources;

fn eval(src: String) -> (Result<serde_json::Value, Vec<substrate::defs::CueError>>, Duration) {
    let t = Instant::now();
    let r = eval_sources(&[("adv.cue".to_string(), src)]);
    (r, t.elapsed())
}

#[test]
fn deep_struct_nesting_is_an_error_not_a_crash() {
    let (r, _) = eval(format!("x: {}1{}", "{a: ".repeat(5000), "}".repeat(5000)));
    assert!(r.unwrap_err()[0].message.contains("nesting too deep"));
    // 200 levels are fine
    let (r, _) = eval(format!("x: {}1{}", "{a: ".repeat(200), "}".repeat(200)));
    assert!(r.is_ok());
}

#[test]
fn deep_lists_parens_and_unary_are_errors() {
    for (open, close) in [("[", "]"), ("(", ")"), ("-", ""), ("!", "")] {
        let (r, _) = eval(format!("x: {}1{}", open.repeat(100_000), close.repeat(100_000)));
        assert!(r.is_err(), "{open}");
    }
}

#[test]
fn long_reference_chains_end() {
    let mut src: String = (0..5000).map(|i| format!("a{i}: a{} + 1\n", i + 1)).collect();
    src.push_str("a5000: 0\n");
    let (_, took) = eval(src);
    assert!(took < Duration::from_secs(20));
}

#[test]
fn string_doubling_is_bounded() {
    let mut src = String::from("a0: \"xy\"\n");
    for i in 0..64 {
        src.push_str(&format!("a{}: a{i} + a{i}\n", i + 1));
    }
    let (r, took) = eval(src);
    assert!(r.unwrap_err().iter().any(|e| e.message.contains("string longer than")));
    assert!(took < Duration::from_secs(20));
}

#[test]
fn exponential_structure_is_bounded() {
    let mut src = String::from("s0: {v: 1}\n");
    for i in 0..40 {
        src.push_str(&format!("s{}: {{l: s{i}, r: s{i}}}\n", i + 1));
    }
    let (r, took) = eval(src);
    assert!(r.is_err());
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[test]
fn disjunction_explosion_is_bounded() {
    let alts: Vec<String> = (0..20).map(|i| format!("{{k{i}: {i}}}")).collect();
    let d = alts.join(" | ");
    let src = format!("x: ({d}) & ({d}) & ({d}) & ({d}) & ({d})\n");
    let (_, took) = eval(src);
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn reference_cycles_are_errors() {
    for src in [
        "a: b + 1\nb: a + 1\n",
        "a: b: a\n",
        "#A: {x: #A}\ny: #A\n",
        "a: [a]\n",
        "a: \"\\(a)\"\n",
    ] {
        let (r, _) = eval(src.to_string());
        assert!(r.is_err(), "{src}");
    }
}

#[test]
fn garbage_is_an_error() {
    for src in [
        "\u{0}", "a: \"\\", "\"\"\"", "a: 1e", "a: 0x", "{{{{", "a: [,]", "a: *", "for", "let", "a: b.", "[x=]: 1",
    ] {
        let (r, _) = eval(src.to_string());
        assert!(r.is_err(), "{src:?} accepted");
    }
}
