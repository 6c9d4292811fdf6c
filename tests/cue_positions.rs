//! Every error points at the right place: for a dozen broken inputs the
//! reported `line:col` is checked exactly (1-based, byte columns, as `cue`).

use substrate::defs::{eval_sources, CueError};

fn errors(src: &str) -> Vec<CueError> {
    eval_sources(&[("t.cue".to_string(), src.to_string())]).expect_err("input must be rejected")
}

/// The error whose message contains `msg` is at `line:col`.
fn check(src: &str, line: u32, col: u32, msg: &str) {
    let errs = errors(src);
    let Some(e) = errs.iter().find(|e| e.message.contains(msg)) else {
        panic!("no error containing {msg:?} for {src:?}: {errs:?}");
    };
    assert_eq!(
        (e.file.as_str(), e.line, e.col),
        ("t.cue", line, col),
        "wrong position for {src:?}: {errs:?}"
    );
    assert!(e.message.contains(msg), "message {:?} lacks {msg:?}", e.message);
    assert!(e.to_string().starts_with(&format!("t.cue:{line}:{col}: ")));
}

#[test]
fn conflict_points_at_second_value_and_names_first() {
    check(
        "a: \"x\"\na: \"y\"\n",
        2,
        4,
        "conflicting values \"x\" and \"y\" (t.cue:1:4)",
    );
}

#[test]
fn conflict_across_files_names_both_files() {
    let errs = eval_sources(&[
        ("a.cue".into(), "package p\n\na: \"x\"\n".into()),
        ("b.cue".into(), "package p\n\na: \"y\"\n".into()),
    ])
    .unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "b.cue:3:4: a: conflicting values \"x\" and \"y\" (a.cue:3:4)"
    );
}

#[test]
fn unknown_reference() {
    check("a: 1\nb:   nothere\n", 2, 6, "reference \"nothere\" not found");
}

#[test]
fn missing_closing_brace_at_end_of_file() {
    check("a: {\n    b: 1\n", 3, 1, "expected '}'");
}

#[test]
fn import_outside_the_subset_is_not_supported() {
    check(
        "package p\n\nimport \"example.com/x\"\n",
        3,
        8,
        "not supported by Substrate's CUE subset",
    );
}

#[test]
fn failing_builtin_call_points_at_the_call() {
    check("a: 1\nb: [div(1, 0)]\n", 2, 5, "error in call to div: division by zero");
}

#[test]
fn malformed_attribute() {
    check("a: 1 @go\n", 1, 6, "malformed attribute");
}

#[test]
fn tag_value_of_the_wrong_type_points_at_the_attribute() {
    let mut tags = std::collections::BTreeMap::new();
    tags.insert("port".to_string(), "abc".to_string());
    let errs = substrate::defs::eval_sources_tagged(
        &[("t.cue".to_string(), "port: int | *80 @tag(port,type=int)\n".to_string())],
        &tags,
    )
    .unwrap_err();
    assert_eq!(errs[0].to_string(), "t.cue:1:17: @tag(port): \"abc\" is not an int");
}

#[test]
fn incomplete_field_names_path() {
    check("a: {\n    b: string\n}\n", 2, 5, "a.b: incomplete value string");
}

#[test]
fn closed_definition_points_at_extra_field() {
    check(
        "#A: {a: int}\nx: #A & {a: 1,\n    extra: 2}\n",
        3,
        5,
        "field extra not allowed",
    );
}

#[test]
fn bound_violation() {
    check("a: >0\na:    -1\n", 2, 7, "out of bound >0");
}

#[test]
fn unterminated_string() {
    check("a: 1\nb: \"abc\n", 2, 4, "not terminated");
}

#[test]
fn conflict_in_hidden_field() {
    check("x: {\n  _h: 2\n  _h: 3\n}\n", 3, 7, "x._h: conflicting values 2 and 3");
}

#[test]
fn illegal_character() {
    check("a: 1 ~ 2\n", 1, 6, "illegal character");
}

#[test]
fn interpolation_of_non_concrete_value() {
    check("n: int\ns: \"v\\(n)\"\n", 2, 8, "non-concrete value int");
}

#[test]
fn division_by_zero_points_at_divisor() {
    check("a: 10 / 0\n", 1, 9, "division by zero");
}

#[test]
fn bottom_literal_is_an_explicit_error() {
    check("a: 1\nb: [_|_]\n", 2, 5, "explicit error (_|_ literal) in source");
}

#[test]
fn invalid_regular_expression() {
    check("a: \"x\" =~ \"(\"\n", 1, 11, "invalid regular expression");
}

#[test]
fn budget_exceeded_says_where() {
    let src: String = std::iter::once("s0: {v: 1}\n".to_string())
        .chain((0..40).map(|i| format!("s{}: {{l: s{i}, r: s{i}}}\n", i + 1)))
        .collect();
    let errs = errors(&src);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].message.starts_with("evaluation budget exceeded"), "{errs:?}");
    assert!(
        errs[0].line > 0 && errs[0].to_string().starts_with("t.cue:"),
        "{errs:?}"
    );
}

#[test]
fn missing_and_optional_fields_point_at_the_selector() {
    // as cue: the label after the dot, not the start of the reference
    check("a: {}\nc: a.b\n", 2, 6, "undefined field");
    check("a: {b: {}}\nc: a.b.x.y\n", 2, 8, "undefined field");
    check("a: {b?: 1}\nc: a.b + 1\n", 2, 6, "cannot reference optional field b");
    check("a: {b?: 1}\nc: [a.b]\n", 2, 7, "cannot reference optional field b");
}

#[test]
fn let_redeclared_points_at_the_second() {
    check(
        "let x = 1\nlet x = 2\na: x\n",
        2,
        1,
        "alias \"x\" redeclared in same scope",
    );
}
