//! The Swarm engine (SPEC §13) on a real single-node swarm: an instance is a
//! one-replica service, started cold through the daemon, proxied to, with
//! its space mounted; re-attached after a daemon restart; forgotten when its
//! task's container is killed; paused and then removed when idle.
//!
//! Needs the local engine to be an active swarm node: `./dev.sh test` runs
//! `docker swarm init --advertise-addr 127.0.0.1` first (and leaves the swarm
//! afterwards when it made it). Elsewhere each test prints why it is skipped.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const ENGINE: &[(&str, &str)] = &[("SUBSTRATE_ENGINE", "swarm")];

/// Whether the local engine is an active swarm node; prints the skip reason when not.
fn in_a_swarm(test: &str) -> bool {
    let state = stdout(&docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]));
    if state.trim() == "active" {
        return true;
    }
    eprintln!(
        "skipping {test}: the Docker Engine is not in a swarm (state {:?}); ./dev.sh test runs `docker swarm init --advertise-addr 127.0.0.1`",
        state.trim()
    );
    false
}

/// A namespace whose services and overlay network are removed on drop
/// (its containers by [`Namespace`]).
struct SwarmNamespace {
    ns: Namespace,
}

impl SwarmNamespace {
    fn new(tag: &str) -> SwarmNamespace {
        SwarmNamespace {
            ns: Namespace::new(tag),
        }
    }

    /// Ids of the namespace's services.
    fn services(&self) -> Vec<String> {
        let filter = format!("label=substrate.namespace={}", self.ns.name);
        stdout(&docker(&["service", "ls", "-q", "--filter", &filter]))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn wait_services(&self, what: &str, timeout: Duration, cond: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.services();
            if cond(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; services: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SwarmNamespace {
    fn drop(&mut self) {
        let ids = self.services();
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker")
                .args(["service", "rm"])
                .args(&ids)
                .output();
        }
        // The containers go with their services; the network once they are gone.
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.ns.containers(true).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn instance_keys(list: &Value) -> Vec<String> {
    list["instances"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["viewspec"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swarm_cold_start_is_a_one_replica_service_with_its_space_mounted() {
    if !in_a_swarm("swarm_cold_start_is_a_one_replica_service_with_its_space_mounted") {
        return;
    }
    example_images();
    let sw = SwarmNamespace::new("swarm-cold");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::start_env(&data, &test_defs(tmp.path(), &[]), &sw.ns.name, &[], ENGINE);

    let began = Instant::now();
    let echo: Value = daemon.fetch_json("/echo/hi?x=1").await;
    eprintln!(
        "swarm cold start of echo through the daemon: {} ms",
        began.elapsed().as_millis()
    );
    assert_eq!(echo["path"], "/hi", "{echo}");
    assert_eq!(echo["query"], "x=1", "{echo}");

    let services = sw.services();
    assert_eq!(services.len(), 1, "{services:?}");
    let spec = stdout(&docker(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}} {{.Spec.TaskTemplate.RestartPolicy.Condition}} {{json .Spec.TaskTemplate.Placement.Constraints}} {{index .Spec.Labels \"substrate.instance\"}}",
        &services[0],
    ]));
    let node = stdout(&docker(&["info", "--format", "{{.Swarm.NodeID}}"]));
    assert_eq!(
        spec.trim(),
        format!("1 none [\"node.id=={}\"] echo", node.trim()),
        "the service's replicas, restart policy, placement or labels"
    );
    // The task's container carries the namespace label, like a container on Docker.
    assert_eq!(sw.ns.containers(false).len(), 1);
    let network = stdout(&docker(&[
        "network",
        "inspect",
        "--format",
        "{{.Driver}} {{.Attachable}}",
        &format!("substrate-{}", sw.ns.name),
    ]));
    assert_eq!(network.trim(), "overlay true");

    // A space's file, written on the host, is seen by the container.
    let redirect = http().get(daemon.url("/notes/")).send().await.unwrap();
    assert_eq!(redirect.status(), 307);
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    let space = location.split("data=").nth(1).unwrap().trim_end_matches('/').to_owned();
    let notes_dir = data.join("spaces").join(&space).join("tree").join("notes");
    std::fs::create_dir_all(&notes_dir).unwrap();
    std::fs::write(notes_dir.join("00000000000000000001-0001.txt"), "written on the host").unwrap();
    let notes: Value = daemon.fetch_json(&format!("{location}notes.json")).await;
    assert!(
        notes.to_string().contains("written on the host"),
        "the container does not see the space's file: {notes}"
    );
    assert_eq!(sw.services().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swarm_restart_reattaches_and_a_killed_task_is_forgotten() {
    if !in_a_swarm("swarm_restart_reattaches_and_a_killed_task_is_forgotten") {
        return;
    }
    example_images();
    let sw = SwarmNamespace::new("swarm-restart");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let defs = test_defs(tmp.path(), &[]);
    let mut daemon = Daemon::start_env(&data, &defs, &sw.ns.name, &[], ENGINE);
    let first: Value = daemon.fetch_json("/echo/").await;
    let kept = first["hostname"].as_str().unwrap().to_owned();
    let service = sw.services();
    daemon.signal_and_wait(libc::SIGKILL, Duration::from_secs(10)).unwrap();
    assert_eq!(sw.services(), service, "the service must outlive the daemon");

    let daemon = Daemon::start_env(&data, &defs, &sw.ns.name, &[], ENGINE);
    let again: Value = daemon.fetch_json("/echo/").await;
    assert_eq!(
        again["hostname"],
        kept.as_str(),
        "the instance was restarted, not re-attached"
    );
    assert_eq!(sw.services(), service);

    // The task's container is killed: the daemon forgets the instance and
    // removes its service; the next request starts a new one.
    let containers = sw.ns.containers(false);
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert!(docker(&["kill", &containers[0]]).status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list: Value = daemon.get_json("/substrate/v1/instances").await;
        if instance_keys(&list).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the killed instance is still listed: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sw.wait_services(
        "the dead instance's service to be removed",
        Duration::from_secs(10),
        |s| s.is_empty(),
    );
    let fresh: Value = daemon.fetch_json("/echo/").await;
    assert_ne!(fresh["hostname"], kept.as_str());
    assert_eq!(sw.services().len(), 1);
}

const IDLE_DEFS: &str = r#"
package defs

enable: "napper": true
services: "napper": instances: [string]: {
    image: "substrate-echo"
    pause_after: "1s"
    idle_timeout: "4s"
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swarm_idle_instance_is_paused_then_its_service_removed() {
    if !in_a_swarm("swarm_idle_instance_is_paused_then_its_service_removed") {
        return;
    }
    example_images();
    let sw = SwarmNamespace::new("swarm-idle");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_env(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[("svc.cue", IDLE_DEFS)]),
        &sw.ns.name,
        &[],
        ENGINE,
    );
    let first: Value = daemon.fetch_json("/napper/").await;
    let container = sw.ns.containers(false)[0].clone();
    let paused = || stdout(&docker(&["inspect", "-f", "{{.State.Paused}}", &container])).trim() == "true";
    let deadline = Instant::now() + Duration::from_secs(10);
    while !paused() {
        assert!(Instant::now() < deadline, "the idle task's container was not paused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed: Value = daemon.fetch_json("/napper/").await;
    assert_eq!(
        resumed["hostname"], first["hostname"],
        "a paused instance was restarted"
    );
    assert!(!paused());

    sw.wait_services(
        "the idle instance's service to be removed",
        Duration::from_secs(20),
        |s| s.is_empty(),
    );
    // `stopping` until the container is gone, then forgotten.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list: Value = daemon.get_json("/substrate/v1/instances").await;
        if instance_keys(&list).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the reaped instance is still listed: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sw.ns.containers(false).is_empty(),
        "the task's container outlived the stop"
    );
}
