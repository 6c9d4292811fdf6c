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
    // the budget or the longest-string limit, whichever comes first
    assert!(r
        .unwrap_err()
        .iter()
        .any(|e| e.message.contains("string longer than") || e.message.contains("budget exceeded")));
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

/// Found by the `cue_eval` fuzzer: these 159 bytes made `substrate defs
/// eval` use 1.1 GB and 4 s (a disjunction re-evaluated its vertex outside
/// the structural-cycle check). Now a cycle error, fast and small.
const FUZZ_159: &str = "#Outer: {\n    inler: {\n        v: i.tL| *0\n       inner: {\n        v: int | *0\n    }\n}\nx: #Outer\ny: #Outer &*{inner: v }\n}\nx: #Outer\ny: #Outer & {inner: v: 5}\n";

#[test]
fn fuzz_159_bytes_is_cheap() {
    assert_eq!(FUZZ_159.len(), 159);
    let (r, took) = eval(FUZZ_159.to_string());
    let errs = r.unwrap_err();
    assert!(errs.iter().any(|e| e.message.contains("structural cycle")), "{errs:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let ((work, bytes), _) = substrate::defs::testing::cost(&[("f.cue".into(), FUZZ_159.into())]);
    assert!(work < 100_000 && bytes < 4 << 20, "{work} steps, {bytes} bytes");
}

/// Inputs that cost too much end in one error that says the budget was
/// exceeded and where, within the budget's memory (measured as the
/// child's peak RSS) — never an out-of-memory kill.
#[test]
fn costly_inputs_stop_at_the_budget() {
    let double: String = std::iter::once("s0: {v: 1}\n".to_string())
        .chain((0..40).map(|i| format!("s{}: {{l: s{i}, r: s{i}}}\n", i + 1)))
        .collect();
    let defdisj: String = std::iter::once("#D0: {v: int | *0}\n".to_string())
        .chain((0..30).map(|i| format!("#D{}: {{a: #D{i} | {{x: #D{i}}}, b: #D{i}}}\n", i + 1)))
        .chain(std::iter::once("out: #D30\n".to_string()))
        .collect();
    let strings: String = std::iter::once("a0: \"xy\"\n".to_string())
        .chain((0..64).map(|i| format!("a{}: a{i} + a{i}\n", i + 1)))
        .collect();
    let dir = std::env::temp_dir().join(format!("substrate-budget-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, src) in [("double", double), ("defdisj", defdisj), ("strings", strings)] {
        let f = dir.join(format!("{name}.cue"));
        std::fs::write(&f, &src).unwrap();
        let t = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_substrate"))
            .args(["defs", "eval"])
            .arg(&f)
            .output()
            .unwrap();
        let took = t.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}");
        assert!(
            stderr.contains(&format!("{name}.cue:")) && stderr.contains("evaluation budget exceeded"),
            "{name}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        // debug builds are some ten times slower than release
        assert!(took < Duration::from_secs(20), "{name}: {took:?}");
    }
    // peak RSS of the largest child so far (kilobytes on Linux)
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) }, 0);
    println!("peak RSS of the evaluations: {} KiB", ru.ru_maxrss);
    assert!(ru.ru_maxrss < 64 * 1024, "{} KiB", ru.ru_maxrss);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two literals declaring thousands of fields in opposite orders: the
/// output order is computed in O(n log n) (it was quadratic: 4 s for 6000
/// fields in a debug build).
#[test]
fn contradicting_field_orders_stay_cheap() {
    let n = 6000;
    let fwd: Vec<String> = (0..n).map(|i| format!("f{i}: 1")).collect();
    let back: Vec<String> = (0..n).rev().map(|i| format!("f{i}: 1")).collect();
    let src = format!("x: {{{}}}\nx: {{{}}}\n", fwd.join(", "), back.join(", "));
    let (r, took) = eval(src);
    assert_eq!(r.unwrap()["x"].as_object().map(|o| o.len()), Some(n));
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// Found by the `cue_eval` fuzzer (a 20 s "slow unit" under the fuzzer,
/// 0.8 s in a release build): a definition whose disjunction names the
/// definition itself (`#B: #A | #B`) was re-evaluated alternative inside
/// alternative until the budget ran out. The alternative that reaches its
/// own disjunction again now fails at once as a cycle.
const FUZZ_SELF_DISJUNCTION: &str = "#A: {type: \"a\", port: int | *80}\n#B: {type: \"b\",port: int | *80}\n#B:#A | #B\nsvc: type: \"b\"\nsvc: path: \"/x\"\nother: #A | #B\nother: {type: \"a\"}\n";

#[test]
fn fuzz_self_referencing_disjunction_is_cheap() {
    assert_eq!(FUZZ_SELF_DISJUNCTION.len(), 141);
    let (r, took) = eval(FUZZ_SELF_DISJUNCTION.to_string());
    let errs = r.unwrap_err();
    assert!(errs.iter().all(|e| !e.message.contains("budget")), "{errs:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let ((work, bytes), _) = substrate::defs::testing::cost(&[("f.cue".into(), FUZZ_SELF_DISJUNCTION.into())]);
    assert!(work < 100_000 && bytes < 4 << 20, "{work} steps, {bytes} bytes");
    // the same shape without the conflicting declaration evaluates
    let (r, _) = eval("#A: {a: 1}\n#B: #A | #B\nx: #B\n".to_string());
    assert_eq!(r.unwrap(), serde_json::json!({"x": {"a": 1}}));
}
