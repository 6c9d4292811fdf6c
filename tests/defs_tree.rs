//! A definitions tree in the style of the original project (issue 11): a
//! schema package imported from `defs/substrate/` through the module in
//! `defs/cue.mod`, services that embed command templates, mounts built by
//! comprehensions with interpolated labels, `_|_` guards, and a `#var`
//! field bound by `@tag`. It loads, and its instances resolve.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use substrate::defs;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// The tree plus the project's `substrate.cue`, in a fresh folder.
fn tree(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("substrate-tree-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root.join("tests").join("defs_tree"), &dir);
    std::fs::copy(root.join("defs").join("substrate.cue"), dir.join("substrate.cue")).unwrap();
    dir
}

#[test]
fn the_tree_loads_with_its_imports_and_templates() {
    let dir = tree("load");
    let d = defs::load_dir(&dir, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(d.services["web"].enabled && d.services["shell"].enabled);
    let web = &d.export_json(Some("web"))["services"]["web"];
    assert_eq!(web["image"], json!("registry.local/substrate-web"));
    let t = &web["template"];
    assert_eq!(t["command"], json!(["/bin/serve", "--root", "/data"]));
    assert_eq!(t["readiness"]["path"], json!("/healthz"));
    assert_eq!(t["environment"]["SERVICE_NAME"], json!("web"));
    assert_eq!(t["environment"]["MODE"], json!("prod"));
    assert_eq!(t["environment"]["LISTEN"], json!(":9000"));
    assert_eq!(
        t["mounts"],
        json!([
            {"source": "/srv/web/data", "destination": "/data", "mode": "rw"},
            {"source": "/srv/web/cache", "destination": "/var/cache", "mode": "rw"}
        ])
    );
}

#[test]
fn the_tag_binds_the_variable() {
    let dir = tree("tag");
    let vars = BTreeMap::from([("registry".to_string(), "reg.example".to_string())]);
    let d = defs::load_dir(&dir, &vars).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(d.services["web"].image.as_deref(), Some("reg.example/substrate-web"));
}

#[test]
fn instances_resolve() {
    let dir = tree("resolve");
    let d = defs::load_dir(&dir, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e:?}"));
    let web = d
        .resolve(
            "web",
            "web",
            &json!({"environment": {"PORT": "8080", "SUBSTRATE_URL_PREFIX": "/web"}}),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(web.image, "registry.local/substrate-web");
    assert_eq!(web.command, vec!["/bin/serve", "--root", "/data"]);
    assert_eq!(web.mounts.len(), 2);
    assert_eq!(web.url_prefix, "/app");
    let shell = d
        .resolve(
            "shell",
            "shell;sp-1",
            &json!({
                "environment": {"PORT": "8080", "SUBSTRATE_URL_PREFIX": "/shell;sp-1"},
                "parameters": {"data": {"value": "sp-1"}}
            }),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(shell.command[0], "/bin/sh");
    assert_eq!(shell.environment["DATA"], "sp-1");
    // no listen port: the _|_ guard picked the other branch
    assert_eq!(shell.environment["LISTEN"], "unix");
    assert_eq!(shell.mounts[0].destination, "/root");
}
