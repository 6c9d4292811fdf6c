//! Loading `defs/` and resolving instances: the seed example, `#var`
//! overrides, package and conflict errors, lazy template fields, digests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use substrate::defs::{self, ResolveError};

fn project_defs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("defs")
}

/// A fresh defs folder holding the project's schema plus `files`.
fn temp_defs(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("substrate-defs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(project_defs().join("substrate.cue"), dir.join("substrate.cue")).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    dir
}

fn no_vars() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[test]
fn seed_foo_loads_and_exports_image_and_environment() {
    let d = defs::load_dir(&project_defs(), &no_vars()).unwrap();
    let foo = &d.services["foo"];
    assert!(foo.enabled);
    assert_eq!(foo.image.as_deref(), Some("substrate-foo"));
    let export = d.export_json(None);
    assert_eq!(export["services"]["foo"]["image"], json!("substrate-foo"));
    assert_eq!(
        export["services"]["foo"]["template"]["environment"],
        json!({"SOME_VARIABLE": "some_value", "PORT": "8080"})
    );
    assert_eq!(export["imagespecs"]["foo"]["image"], json!("substrate-foo"));
    assert_eq!(d.imagespecs["foo"].build.dockerfile, "images/foo/Dockerfile");
}

#[test]
fn defs_export_command_prints_seed_service() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_substrate"))
        .args(["defs", "export", "--defs"])
        .arg(project_defs())
        .arg("foo")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["services"]["foo"]["image"], json!("substrate-foo"));
    assert_eq!(
        v["services"]["foo"]["template"]["environment"]["SOME_VARIABLE"],
        json!("some_value")
    );
}

#[test]
fn var_override_changes_image() {
    let vars = BTreeMap::from([("image_prefix".to_string(), "dev-".to_string())]);
    let d = defs::load_dir(&project_defs(), &vars).unwrap();
    assert_eq!(d.services["foo"].image.as_deref(), Some("dev-foo"));
}

#[test]
fn unknown_var_is_an_error() {
    let vars = BTreeMap::from([("no_such_var".to_string(), "x".to_string())]);
    let errs = defs::load_dir(&project_defs(), &vars).unwrap_err();
    assert!(errs.iter().any(|e| e.message.contains("no_such_var")), "{errs:?}");
}

#[test]
fn conflict_across_files_names_both_positions() {
    let dir = temp_defs(
        "conflict",
        &[
            ("a.cue", "package defs\n\na: \"x\"\n"),
            ("b.cue", "package defs\n\na: \"y\"\n"),
        ],
    );
    let errs = defs::load_dir(&dir, &no_vars()).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let a = format!("{}:3:4", dir.join("a.cue").display());
    let b = format!("{}:3:4", dir.join("b.cue").display());
    assert!(
        text.iter()
            .any(|t| t.contains(&a) && t.contains(&b) && t.contains("conflicting values")),
        "{text:?}"
    );
    // and through the command: both positions, exit 1
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_substrate"))
        .args(["defs", "check", "--defs"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&a) && stderr.contains(&b), "{stderr}");
}

#[test]
fn other_package_is_an_error_with_position() {
    let dir = temp_defs("pkg", &[("x.cue", "package other\n\na: 1\n")]);
    let errs = defs::load_dir(&dir, &no_vars()).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.file.ends_with("x.cue") && e.line == 1 && e.col == 1 && e.message.contains("other")),
        "{errs:?}"
    );
}

#[test]
fn unknown_template_field_is_rejected() {
    let dir = temp_defs(
        "typo",
        &[(
            "s.cue",
            "package defs\n\nservices: s: instances: [string]: {enviroment: A: \"1\"}\n",
        )],
    );
    let errs = defs::load_dir(&dir, &no_vars()).unwrap_err();
    assert!(
        errs.iter().any(|e| e.message.contains("enviroment not allowed")),
        "{errs:?}"
    );
}

const TTY: &str = r#"package defs

enable: tty: true
imagespecs: tty: {image: "\(#var.image_prefix)tty", build: dockerfile: "images/tty/Dockerfile"}
services: tty: instances: [string]: {
    command: ["gotty", "--port", environment.PORT]
    environment: {
        PORT: string
        SUBSTRATE_URL_PREFIX: string
        GOTTY_PORT: PORT
        BASE: "\(SUBSTRATE_URL_PREFIX)/"
    }
    parameters: data: type: "space"
    mounts: [{source: "/srv", destination: "/srv", mode: "ro"}]
    idle_timeout: "5m"
    readiness: path: "/healthz"
    resources: cpus: 0.5
}
"#;

fn injected(port: &str) -> serde_json::Value {
    json!({
        "environment": {"PORT": port, "SUBSTRATE_URL_PREFIX": "/tty;sp-1"},
        "parameters": {"data": {"value": "sp-1"}}
    })
}

#[test]
fn resolve_fills_lazy_fields_and_defaults() {
    let dir = temp_defs("tty", &[("tty.cue", TTY)]);
    let d = defs::load_dir(&dir, &no_vars()).unwrap();
    assert_eq!(d.services["tty"].parameters["data"].kind, defs::ParamType::Space);
    let spec = d.resolve("tty", "tty;sp-1", &injected("8080")).unwrap();
    assert_eq!(spec.image, "substrate-tty");
    assert_eq!(spec.command, vec!["gotty", "--port", "8080"]);
    assert_eq!(spec.environment["GOTTY_PORT"], "8080");
    assert_eq!(spec.environment["BASE"], "/tty;sp-1/");
    assert_eq!(spec.parameters["data"].value, "sp-1");
    assert!(spec.mounts[0].read_only);
    assert_eq!(spec.idle_timeout, Some(std::time::Duration::from_secs(300)));
    assert_eq!(spec.readiness.path.as_deref(), Some("/healthz"));
    assert_eq!(spec.readiness.timeout, std::time::Duration::from_secs(60));
    assert!(spec.init);
    assert_eq!(spec.resources.cpus, Some(0.5));
    assert_eq!(spec.url_prefix, "");

    // digest: stable for the same input, different when the definition differs
    let again = d.resolve("tty", "tty;sp-1", &injected("8080")).unwrap();
    assert_eq!(spec.digest(), again.digest());
    assert_eq!(spec.digest().len(), 64);
    let other = d.resolve("tty", "tty;sp-1", &injected("9090")).unwrap();
    assert_ne!(spec.digest(), other.digest());
}

#[test]
fn resolve_names_every_missing_field() {
    let dir = temp_defs("tty2", &[("tty.cue", TTY)]);
    let d = defs::load_dir(&dir, &no_vars()).unwrap();
    match d.resolve("tty", "tty", &json!({})) {
        Err(ResolveError::Incomplete(paths)) => {
            // environment.PORT has a default ("8080") in substrate.cue.
            for want in ["environment.SUBSTRATE_URL_PREFIX", "parameters.data.value"] {
                assert!(paths.iter().any(|p| p == want), "{want} missing from {paths:?}");
            }
        }
        other => panic!("expected Incomplete, got {other:?}"),
    }
    assert!(matches!(
        d.resolve("nope", "nope", &json!({})),
        Err(ResolveError::UnknownService(_))
    ));
    // a conflicting injection is an error, not a silent override
    let bad = json!({"environment": {"PORT": 8080}});
    assert!(d.resolve("tty", "tty", &bad).is_err());
}

fn write_many(dir: &Path, n: usize) {
    for i in 0..n {
        let text = format!(
            r#"package defs

enable: "svc{i}": true

imagespecs: "svc{i}": {{
    image: "\(#var.image_prefix)svc{i}"
    build: {{
        dockerfile: "images/svc{i}/Dockerfile"
        args: VERSION: "1.{i}"
    }}
}}

services: "svc{i}": {{
    instances: [string]: {{
        command: ["serve", "--port", environment.PORT, "--name", "svc{i}"]
        environment: {{
            PORT: string | *"8080"
            NAME: "svc{i}"
            URL: "http://localhost:\(PORT)/svc{i}"
            MODE: *"prod" | "dev"
            INDEX: "{i}"
        }}
        parameters: {{
            data: type: "space"
            title: {{type: "string", optional: true}}
        }}
        mounts: [{{source: "/srv/svc{i}", destination: "/data"}}]
        url_prefix: "/app"
        idle_timeout: "10m"
        readiness: {{
            path: "/healthz"
            timeout: "30s"
        }}
        resources: {{
            memory: "256m"
            cpus: 1.5
        }}
        if environment.MODE == "dev" {{
            environment: DEBUG: "1"
        }}
    }}
}}
"#
        );
        std::fs::write(dir.join(format!("svc{i}.cue")), text).unwrap();
    }
}

/// `cargo test --release --test defs_load -- --ignored --nocapture`
#[test]
#[ignore]
fn load_200_services_timing() {
    let dir = temp_defs("bench", &[]);
    write_many(&dir, 200);
    let d = defs::load_dir(&dir, &no_vars()).unwrap();
    assert_eq!(d.services.len(), 200);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let d = defs::load_dir(&dir, &no_vars()).unwrap();
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(d.services.len(), 200);
    }
    let t = std::time::Instant::now();
    let inj = json!({"parameters": {"data": {"value": "sp-1"}, "title": {"value": ""}}});
    let spec = d.resolve("svc7", "svc7;sp-1", &inj).unwrap();
    let resolve_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(spec.environment["URL"], "http://localhost:8080/svc7");
    println!("defs_load_ms={best:.2} (200 service files), resolve_ms={resolve_ms:.2}");
}

/// Phase timings for the 200-file load (parse+eval root, templates).
#[test]
#[ignore]
fn load_200_services_phases() {
    let dir = temp_defs("bench2", &[]);
    write_many(&dir, 200);
    let mut srcs = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        srcs.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
    }
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let r = defs::eval_sources(&srcs);
        assert!(r.is_ok());
        println!("raw eval of the package: {:.2} ms", t.elapsed().as_secs_f64() * 1000.0);
    }
}

/// The evaluation budget (`src/defs/budget.rs`) leaves realistic trees far
/// from its limits: 200 service files use under a tenth of each.
#[test]
fn two_hundred_services_use_a_small_part_of_the_budget() {
    let dir = temp_defs("budget", &[]);
    write_many(&dir, 200);
    let mut srcs = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        srcs.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
    }
    let ((work, bytes), (work_limit, byte_limit)) = defs::testing::cost(&srcs);
    println!("200 services: {work} of {work_limit} steps, {bytes} of {byte_limit} estimated bytes");
    assert!(work > 0 && work < work_limit / 10, "{work} of {work_limit}");
    assert!(bytes > 0 && bytes < byte_limit / 10, "{bytes} of {byte_limit}");
}

/// `@tag(name)` fields take the daemon's variables (`--var`, TOML
/// `[vars]`); variables no `@tag` reads still override `#var`.
#[test]
fn vars_bind_tagged_fields() {
    let dir = temp_defs(
        "tags",
        &[(
            "svc.cue",
            r#"package defs

#tagged: {
    replicas: int | *1 @tag(replicas,type=int)
    region: string | *"eu" @tag(region)
}
enable: "web": true
services: "web": {
    instances: [string]: {
        image: "\(#var.image_prefix)web"
        environment: {
            REPLICAS: "\(#tagged.replicas)"
            REGION: #tagged.region
        }
    }
}
"#,
        )],
    );
    let d = defs::load_dir(&dir, &no_vars()).unwrap();
    let t = &d.export_json(None)["services"]["web"]["template"]["environment"];
    assert_eq!((t["REPLICAS"].as_str(), t["REGION"].as_str()), (Some("1"), Some("eu")));
    let vars = BTreeMap::from([
        ("replicas".to_string(), "3".to_string()),
        ("region".to_string(), "us".to_string()),
        ("image_prefix".to_string(), "dev-".to_string()),
    ]);
    let d = defs::load_dir(&dir, &vars).unwrap();
    let t = &d.export_json(None)["services"]["web"]["template"];
    assert_eq!(t["environment"]["REPLICAS"], json!("3"));
    assert_eq!(t["environment"]["REGION"], json!("us"));
    assert_eq!(t["image"], json!("dev-web"));
    let bad = BTreeMap::from([("replicas".to_string(), "many".to_string())]);
    let errs = defs::load_dir(&dir, &bad).unwrap_err();
    assert!(errs[0].to_string().contains("svc.cue:4:24: @tag(replicas)"), "{errs:?}");
}
