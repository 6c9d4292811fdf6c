//! Definitions reload under a running daemon: a file edit is picked up
//! without a restart, a broken edit keeps the last good definitions and
//! shows in health, and an instance whose definition changed is replaced.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Polls `path` until `cond` holds.
async fn wait_until(daemon: &Daemon, path: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = daemon.get_json(path).await;
        if cond(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn service<'v>(services: &'v Value, name: &str) -> Option<&'v Value> {
    services["services"].as_array()?.iter().find(|s| s["name"] == name)
}

const GREETER: &str = "package defs\nenable: \"greeter\": true\nservices: \"greeter\": instances: [string]: {\n    image: \"substrate-echo\"\n    environment: GREETING: \"hello\"\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edits_are_picked_up_and_broken_edits_are_not() {
    example_images();
    let ns = Namespace::new("reload");
    let tmp = tempfile::tempdir().unwrap();
    let defs = test_defs(tmp.path(), &[("greeter.cue", GREETER)]);
    let daemon = Daemon::start(&tmp.path().join("data"), &defs, &ns.name);
    let client = http();

    let before: Value = daemon.fetch_json("/greeter/").await;
    assert_eq!(before["env"]["PORT"], "8080");

    // A file edit: a new service appears, and greeter's definition changes.
    std::fs::write(
        defs.join("extra.cue"),
        "package defs\nenable: \"late\": true\nservices: \"late\": instances: [string]: image: \"substrate-echo\"\n",
    )
    .unwrap();
    std::fs::write(defs.join("greeter.cue"), GREETER.replace("\"hello\"", "\"bonjour\"")).unwrap();
    wait_until(&daemon, "/substrate/v1/services", "the new service", |v| {
        service(v, "late").is_some()
    })
    .await;
    // The changed instance is stopped; the next request starts the new definition.
    ns.wait_for("the changed instance to stop", Duration::from_secs(20), |c| {
        c.is_empty()
    });
    let after: Value = daemon.fetch_json("/greeter/").await;
    assert_ne!(after["hostname"], before["hostname"]);
    let resp = client.get(daemon.url("/late/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // A broken edit: the old definitions stay, health says why.
    std::fs::write(defs.join("broken.cue"), "package defs\nenable: \"late\": \"yes\"\n").unwrap();
    let health = wait_until(&daemon, "/substrate/v1/health", "the reload error", |v| {
        v["defs"] != "ok"
    })
    .await;
    let msg = health["defs"].as_str().unwrap();
    assert!(msg.contains("broken.cue:2:"), "{msg}");
    assert_eq!(health["status"], "degraded");
    let services = daemon.get_json("/substrate/v1/services").await;
    assert!(
        service(&services, "late").is_some(),
        "the last good definitions were dropped"
    );
    assert_eq!(client.get(daemon.url("/late/")).send().await.unwrap().status(), 200);

    // The reload endpoint reports the same errors.
    let resp = daemon.api(reqwest::Method::POST, "/substrate/v1/reload", None).await;
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("broken.cue"),
        "{body}"
    );

    // Fixed: healthy again, through SIGHUP this time.
    std::fs::remove_file(defs.join("broken.cue")).unwrap();
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGHUP) };
    wait_until(&daemon, "/substrate/v1/health", "a clean reload", |v| v["defs"] == "ok").await;
}
