//! Properties of unification on generated CUE values: commutative,
//! idempotent, a concrete value unified with its type is itself, and a
//! value printed as CUE parses back to the same value.

use proptest::prelude::*;
use substrate::defs::testing::{canonical, eval_expr, to_cue, unify, TestValue};

/// A generated value as CUE source, plus (for concrete ones) its type.
fn scalar() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        (-50i64..50).prop_map(|i| (i.to_string(), "int".to_string())),
        (-40i32..40).prop_map(|i| (format!("{}.5", i), "float".to_string())),
        "[a-c]{0,3}".prop_map(|s| (format!("{s:?}"), "string".to_string())),
        any::<bool>().prop_map(|b| (b.to_string(), "bool".to_string())),
        Just(("null".to_string(), "null".to_string())),
    ]
}

fn concrete() -> impl Strategy<Value = (String, String)> {
    scalar().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(("[a-d]", inner.clone()), 0..3).prop_map(|fields| {
                let mut seen = std::collections::HashSet::new();
                let fields: Vec<_> = fields.into_iter().filter(|(l, _)| seen.insert(l.clone())).collect();
                let v = fields
                    .iter()
                    .map(|(l, (v, _))| format!("{l}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let t = fields
                    .iter()
                    .map(|(l, (_, t))| format!("{l}: {t}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                (format!("{{{v}}}"), format!("{{{t}}}"))
            }),
            prop::collection::vec(inner, 0..3).prop_map(|elems| {
                let v = elems.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>().join(", ");
                let t = elems.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>().join(", ");
                (format!("[{v}]"), format!("[{t}]"))
            }),
        ]
    })
}

/// Any value: concrete ones, types, bounds, disjunctions with defaults.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        scalar().prop_map(|(v, _)| v),
        prop_oneof![
            Just("string"),
            Just("int"),
            Just("float"),
            Just("number"),
            Just("bool"),
            Just("_")
        ]
        .prop_map(String::from),
        (
            prop_oneof![Just(">"), Just("<"), Just(">="), Just("<="), Just("!=")],
            -5i64..5
        )
            .prop_map(|(op, n)| format!("{op}{n}")),
        Just("!=\"\"".to_string()),
    ];
    leaf.prop_recursive(3, 20, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone(), any::<bool>()).prop_map(|(a, b, d)| if d {
                format!("*({a}) | ({b})")
            } else {
                format!("({a}) | ({b})")
            }),
            prop::collection::vec(("[a-c]", inner.clone()), 0..3).prop_map(|fields| {
                let mut seen = std::collections::HashSet::new();
                let f: Vec<String> = fields
                    .into_iter()
                    .filter(|(l, _)| seen.insert(l.clone()))
                    .map(|(l, v)| format!("{l}: {v}"))
                    .collect();
                format!("{{{}}}", f.join(", "))
            }),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|e| format!("[{}]", e.join(", "))),
            inner.prop_map(|t| format!("[...{t}]")),
        ]
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400)
}

fn eval(src: &str) -> Option<TestValue> {
    eval_expr(src).ok()
}

fn canon(r: Result<TestValue, String>) -> Option<String> {
    r.ok().map(|v| canonical(&v))
}

proptest! {
    // 400 cases unless PROPTEST_CASES says otherwise (an explicit `cases`
    // would silently override the variable)
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn unification_is_commutative(a in value(), b in value()) {
        if let (Some(va), Some(vb)) = (eval(&a), eval(&b)) {
            prop_assert_eq!(canon(unify(&va, &vb)), canon(unify(&vb, &va)), "{} & {}", a, b);
        }
        // and through the evaluator
        let ab = eval(&format!("({a}) & ({b})")).map(|v| canonical(&v));
        let ba = eval(&format!("({b}) & ({a})")).map(|v| canonical(&v));
        prop_assert_eq!(ab, ba, "{} & {}", a, b);
    }

    #[test]
    fn unification_is_idempotent(a in value()) {
        if let Some(va) = eval(&a) {
            prop_assert_eq!(canon(unify(&va, &va)), Some(canonical(&va)), "{}", a);
        }
    }

    #[test]
    fn concrete_value_unified_with_its_type_is_itself((v, t) in concrete()) {
        let val = eval(&v).expect("concrete values evaluate");
        let ty = eval(&t).expect("types evaluate");
        prop_assert_eq!(canon(unify(&val, &ty)), Some(canonical(&val)), "{} & {}", v, t);
        prop_assert_eq!(eval(&format!("({t}) & ({v})")).map(|x| canonical(&x)), Some(canonical(&val)));
    }

    #[test]
    fn printing_and_parsing_gives_the_same_value(a in value()) {
        if let Some(va) = eval(&a) {
            let printed = to_cue(&va);
            let back = eval(&printed);
            prop_assert_eq!(back.map(|b| canonical(&b)), Some(canonical(&va)), "{} printed as {}", a, printed);
        }
    }
}

/// Inputs the properties once failed on, checked in both orders (the
/// regressions file keeps proptest's seeds; these keep the inputs).
#[test]
fn commutative_on_past_failures() {
    let pairs = [
        ("(0) | ({})", "*(!=\"\") | ({})"),
        ("*(int) | ({})", "(int) | ((0.5) | ({}))"),
        ("*(1) | (int)", "*(2) | (3)"),
        ("*({a: 1}) | ({a: 1, b: 2})", "*({a: 1}) | ({a: 1, b: 2, c: 3})"),
    ];
    for (a, b) in pairs {
        let (va, vb) = (eval(a).expect(a), eval(b).expect(b));
        assert_eq!(canon(unify(&va, &vb)), canon(unify(&vb, &va)), "{a} & {b}");
        let ab = eval(&format!("({a}) & ({b})")).map(|v| canonical(&v));
        let ba = eval(&format!("({b}) & ({a})")).map(|v| canonical(&v));
        assert_eq!(ab, ba, "{a} & {b}");
        assert_eq!(canon(unify(&va, &vb)), ab, "{a} & {b}: value and evaluator");
    }
    // `0 & !=""` is a conflict: `!=""` admits strings only
    assert_eq!(
        eval("(0) | ({})").map(|a| canon(unify(&a, &eval("*(!=\"\") | ({})").unwrap()))),
        Some(Some("{}".to_string()))
    );
    for a in [
        "*([...(>0) | (\"\")]) | ([1])",
        "([...0]) | ([...*(_) | (0)])",
        "([...*(>0) | (_)]) | ([...int])",
    ] {
        let va = eval(a).expect(a);
        assert_eq!(canon(unify(&va, &va)), Some(canonical(&va)), "{a}");
    }
}
