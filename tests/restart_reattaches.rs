//! A daemon killed with SIGKILL leaves its containers running; the next
//! start re-attaches them (same container, no restart), removes containers
//! of its namespace that have no record, and drops records whose container
//! is gone.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_reattaches_running_containers() {
    example_images();
    let ns = Namespace::new("restart");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let defs = test_defs(tmp.path(), &[]);
    let client = http();

    let mut daemon = Daemon::start(&data, &defs, &ns.name);
    let echo: Value = daemon.fetch_json("/echo/").await;
    let kept = echo["hostname"].as_str().unwrap().to_owned();
    let redirect = client.get(daemon.url("/notes/")).send().await.unwrap();
    assert_eq!(redirect.status(), 307);
    let notes_url = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(client.get(daemon.url(&notes_url)).send().await.unwrap().status(), 200);
    daemon.signal_and_wait(libc::SIGKILL, Duration::from_secs(10)).unwrap();

    // While the daemon is down: one recorded container disappears, and a
    // stray container of the namespace appears.
    let running = ns.containers(false);
    assert_eq!(running.len(), 2, "containers must outlive the daemon: {running:?}");
    let notes_container = running.iter().find(|c| !c.starts_with(&kept)).unwrap();
    assert!(docker(&["rm", "-f", notes_container]).status.success());
    let stray = docker(&[
        "run",
        "-d",
        "--label",
        &format!("substrate.namespace={}", ns.name),
        "substrate-echo",
    ]);
    assert!(stray.status.success(), "{}", stderr(&stray));
    let stray = stdout(&stray).trim().to_owned();

    let mut daemon = Daemon::start(&data, &defs, &ns.name);
    let again: Value = daemon.fetch_json("/echo/").await;
    assert_eq!(
        again["hostname"],
        kept.as_str(),
        "the instance was restarted, not re-attached"
    );
    let all = ns.containers(true);
    assert!(!all.contains(&stray), "the stray container was not removed: {all:?}");
    assert_eq!(all.len(), 1, "{all:?}");

    let list: Value = daemon.get_json("/substrate/v1/instances").await;
    let keys: Vec<&str> = list["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["viewspec"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["echo"], "the record of the removed notes container was kept");

    // A clean stop leaves the container running too.
    let status = daemon.signal_and_wait(libc::SIGTERM, Duration::from_secs(15)).unwrap();
    assert!(status.success());
    assert!(
        ns.containers(false).iter().any(|c| c.starts_with(&kept)),
        "SIGTERM stopped the container"
    );
}
