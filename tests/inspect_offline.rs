//! `substrate inspect` against a database this test populates, and its
//! refusal (exit 2) while a daemon holds the database.

mod common;

use std::path::Path;

use common::*;
use substrate::datadir::DataDir;
use substrate::ids::{CheckpointId, SpaceId};
use substrate::store::*;

struct Populated {
    root: SpaceId,
    fork: SpaceId,
    ckpt: CheckpointId,
}

fn populate(dir: &Path) -> Populated {
    let data = DataDir::new(dir);
    data.create().unwrap();
    let store = Store::open(&data.db(), &StoreOptions::default()).unwrap();
    let root = SpaceId::generate();
    let ckpt = CheckpointId::generate();
    let fork = SpaceId::generate();
    for id in [&root, &fork] {
        std::fs::create_dir_all(data.space_tree(id)).unwrap();
    }
    std::fs::create_dir_all(data.checkpoint_tree(&ckpt)).unwrap();
    std::fs::write(data.space_tree(&root).join("note.txt"), "hello").unwrap();
    let space = |id: &SpaceId, name: Option<&str>, from: Option<ForkedFrom>| SpaceRecord {
        id: id.clone(),
        created_at: now_millis(),
        forked_from: from,
        name: name.map(Into::into),
        size_hint: 0,
        origin: SpaceOrigin::Api,
        deleted: false,
    };
    store.put_space(&space(&root, Some("mine"), None)).unwrap();
    store
        .put_checkpoint(&CheckpointRecord {
            id: ckpt.clone(),
            space: root.clone(),
            parent: None,
            message: Some("first".into()),
            created_at: now_millis(),
            method: CopyMethod::Copy,
        })
        .unwrap();
    store
        .put_space(&space(
            &fork,
            None,
            Some(ForkedFrom {
                space: Some(root.clone()),
                checkpoint: Some(ckpt.clone()),
            }),
        ))
        .unwrap();
    store.bind_alias(&format!("notes;data={root}"), "data", &root).unwrap();
    store
        .put_instance(
            &format!("notes;data={root}"),
            &InstanceRecord {
                service: "notes".into(),
                container_id: Some("abc123".into()),
                container_name: "substrate-notes-abc123".into(),
                address: Some("172.18.0.2".into()),
                port: 8080,
                state: InstanceState::Ready,
                definition_digest: "d1".into(),
                created_at: now_millis(),
                last_request_at: now_millis(),
            },
        )
        .unwrap();
    Populated { root, fork, ckpt }
}

fn inspect(data: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["inspect", "--data", data.to_str().unwrap()];
    all.extend_from_slice(args);
    substrate(&all)
}

#[test]
fn every_command_prints_what_the_store_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let p = populate(tmp.path());
    let d = tmp.path();

    let out = inspect(d, &["summary"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("schema version: 2"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("spaces") && l.trim_end().ends_with(" 2")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("checkpoints") && l.trim_end().ends_with(" 1")),
        "{text}"
    );

    let json: serde_json::Value = serde_json::from_slice(&inspect(d, &["summary", "--json"]).stdout).unwrap();
    assert_eq!(json["schema_version"], 2);
    assert_eq!(json["counts"]["instances"], 1);
    assert!(json["data_dir_bytes"].as_u64().unwrap() >= 5);

    let text = stdout(&inspect(d, &["instances"]));
    assert!(
        text.contains(&format!("notes;data={}", p.root)) && text.contains("172.18.0.2:8080"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_slice(&inspect(d, &["instances", "--json"]).stdout).unwrap();
    assert_eq!(json[0]["record"]["state"], "ready");

    let text = stdout(&inspect(d, &["spaces"]));
    assert!(text.contains(p.root.as_str()) && text.contains("mine"), "{text}");
    assert!(text.contains(&format!("{}@{}", p.root, p.ckpt)), "{text}");

    let text = stdout(&inspect(d, &["space", p.root.as_str()]));
    assert!(text.contains(p.ckpt.as_str()) && text.contains("first"), "{text}");
    assert!(text.contains(&format!("notes;data={} (slot data)", p.root)), "{text}");
    let out = inspect(d, &["space", "sp-../../etc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid space id"), "{}", stderr(&out));

    let text = stdout(&inspect(d, &["lineage", p.fork.as_str()]));
    assert!(text.contains(&format!("ancestors: {} > {}", p.root, p.ckpt)), "{text}");
    let text = stdout(&inspect(d, &["lineage", p.root.as_str()]));
    assert!(text.contains(p.fork.as_str()) && text.contains("└── "), "{text}");

    let dump: serde_json::Value = serde_json::from_slice(&inspect(d, &["dump"]).stdout).unwrap();
    assert_eq!(dump["spaces"].as_array().unwrap().len(), 2);
    assert_eq!(dump["space_uses"].as_array().unwrap().len(), 1);
    assert_eq!(dump["meta"].as_array().unwrap().len(), 3);

    let out = inspect(d, &["verify"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("ok"));
}

#[test]
fn verify_lists_each_problem_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let p = populate(tmp.path());
    let data = DataDir::new(tmp.path());
    std::fs::remove_dir_all(data.space_tree(&p.fork)).unwrap();
    let stray = SpaceId::generate();
    std::fs::create_dir_all(data.space_tree(&stray)).unwrap();
    std::fs::create_dir_all(data.staging().join("half-copy")).unwrap();
    {
        let store = Store::open(&data.db(), &StoreOptions::default()).unwrap();
        store
            .put_raw_for_test(Tree::Instances, "broken;x=1", b"\x01\xff\xff\xff")
            .unwrap();
    }

    let out = inspect(tmp.path(), &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("spaces/{}: record has no tree", p.fork)),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}: directory without a record", stray)),
        "{text}"
    );
    assert!(text.contains("half-copy: leftover in staging/"), "{text}");
    assert!(text.contains("instances/broken;x=1: corrupt record"), "{text}");
    assert!(text.contains("4 problem(s)"), "{text}");

    // dump shows the corrupt value as an error under its key, not a crash.
    let out = inspect(tmp.path(), &["dump"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let broken = &dump["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "broken;x=1")
        .unwrap();
    assert!(broken["error"].as_str().unwrap().contains("undecodable"), "{broken}");
}

#[test]
fn every_command_exits_2_while_a_daemon_holds_the_database() {
    let tmp = tempfile::tempdir().unwrap();
    let p = populate(tmp.path());
    let defs = test_defs(tmp.path(), &[]);
    let daemon = Daemon::start(tmp.path(), &defs, &unique_namespace("inspect"));
    let pid = daemon.child.id();
    for args in [
        vec!["summary"],
        vec!["instances"],
        vec!["spaces"],
        vec!["space", p.root.as_str()],
        vec!["lineage", p.root.as_str()],
        vec!["dump"],
        vec!["verify"],
    ] {
        let out = inspect(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("is in use by a running daemon") && err.contains(&format!("(pid {pid})")),
            "{args:?}: {err}"
        );
        assert!(err.contains("use the admin API or stop it"), "{err}");
    }
    drop(daemon);
    let out = inspect(tmp.path(), &["summary"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn missing_database_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = inspect(&tmp.path().join("nothing"), &["summary"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no database at"), "{}", stderr(&out));
}
