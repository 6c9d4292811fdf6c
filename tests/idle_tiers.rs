//! Idle tiers (SPEC §4): an instance idle for its `pause_after` has its
//! container paused; the next request resumes it and is answered by the
//! same container, without a cold start; the admin API shows it `paused`,
//! and a checkpoint of its space needs no extra pause.

mod common;

use std::time::{Duration, Instant};

use common::*;

const DEFS: &str = r#"
package defs

enable: "napper": true
services: "napper": instances: [string]: {
    image: "substrate-echo"
    parameters: data: {type: "space"}
    pause_after: "1s"
    idle_timeout: "5m"
}
"#;

fn docker_paused(id: &str) -> bool {
    let out = docker(&["inspect", "-f", "{{.State.Paused}}", id]);
    stdout(&out).trim() == "true"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_instance_is_paused_and_resumes_on_the_next_request() {
    example_images();
    let ns = Namespace::new("pause");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[("svc.cue", DEFS)]),
        &ns.name,
    );
    let redirect = http().get(daemon.url("/napper/")).send().await.unwrap();
    let viewspec = location_viewspec(&redirect);
    let first: serde_json::Value = daemon.fetch_json(&format!("/{viewspec}/")).await;
    let first_answered = unix_millis();
    let id = ns.containers(false)[0].clone();

    // Paused after a second of idleness.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !docker_paused(&id) {
        assert!(Instant::now() < deadline, "the idle container was not paused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let path = format!("/substrate/v1/instances/{}", viewspec.replace(';', "%3B"));
    let shown = daemon.get_json(&path).await;
    assert_eq!(shown["state"], "paused", "{shown}");
    // Its last request is the first one (the redirect started nothing).
    let last = shown["last_request_at"].as_u64().expect("last_request_at");
    assert!(last <= first_answered + 50, "{shown} vs {first_answered}");
    assert!(last >= shown["created_at"].as_u64().unwrap(), "{shown}");

    // A checkpoint of its space leaves it paused and pauses nothing more.
    let space = viewspec.split("data=").nth(1).unwrap().to_owned();
    let ck: serde_json::Value = daemon
        .api(
            reqwest::Method::POST,
            &format!("/substrate/v1/spaces/{space}/checkpoints"),
            Some(serde_json::json!({})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ck["paused"], 0, "{ck}");
    assert!(docker_paused(&id), "the checkpoint unpaused an idle instance");

    // The next request is served by the same container, resumed.
    let began = Instant::now();
    let again: serde_json::Value = daemon.fetch_json(&format!("/{viewspec}/again")).await;
    println!("resumed and answered in {:?}", began.elapsed());
    assert_eq!(again["hostname"], first["hostname"], "a new container answered");
    assert!(!docker_paused(&id), "still paused after serving");
    assert_eq!(ns.containers(false).len(), 1);
    let shown = daemon.get_json(&path).await;
    assert_eq!(shown["state"], "ready", "{shown}");
    let again_last = shown["last_request_at"].as_u64().expect("last_request_at");
    assert!(again_last > last && again_last + 50 >= first_answered, "{shown}");
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

const SHORT_LIVED: &str = r#"
package defs

enable: "dozer": true
services: "dozer": instances: [string]: {
    image: "substrate-echo"
    pause_after: "1s"
    idle_timeout: "4s"
}
"#;

/// Waits until Docker reports `id` paused.
async fn wait_paused(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !docker_paused(id) {
        assert!(Instant::now() < deadline, "the idle container was not paused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The second tier: a paused instance still idle at its `idle_timeout` is
/// stopped and its container removed, as a running one would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_instance_is_stopped_at_its_idle_timeout() {
    example_images();
    let ns = Namespace::new("pausestop");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[("dozer.cue", SHORT_LIVED)]),
        &ns.name,
    );
    daemon.fetch_json("/dozer/").await;
    let last_request = Instant::now();
    let id = ns.containers(false)[0].clone();
    wait_paused(&id).await;
    assert_eq!(
        daemon.get_json("/substrate/v1/instances/dozer").await["state"],
        "paused"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    while !ns.containers(true).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the paused container was not stopped and removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let idle = last_request.elapsed();
    assert!(
        idle >= Duration::from_secs(4),
        "stopped after {idle:?}, before its idle timeout"
    );
    daemon.wait_no_instances(Duration::from_secs(10)).await;
    // The next request starts a new instance.
    let next = daemon.fetch_json("/dozer/").await;
    assert!(next["hostname"].is_string(), "{next}");
}

/// A daemon restarted while an instance is paused re-attaches the paused
/// container: shown paused, then resumed by the next request, which the
/// same container answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_instance_is_reattached_after_a_restart() {
    example_images();
    let ns = Namespace::new("pausedrestart");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let defs = test_defs(tmp.path(), &[("svc.cue", DEFS)]);
    let mut daemon = Daemon::start(&data, &defs, &ns.name);
    let redirect = http().get(daemon.url("/napper/")).send().await.unwrap();
    let viewspec = location_viewspec(&redirect);
    let first = daemon.fetch_json(&format!("/{viewspec}/")).await;
    let id = ns.containers(false)[0].clone();
    wait_paused(&id).await;
    let path = format!("/substrate/v1/instances/{}", viewspec.replace(';', "%3B"));
    let before = daemon.get_json(&path).await["last_request_at"].as_u64().unwrap();
    daemon.signal_and_wait(libc::SIGKILL, Duration::from_secs(10)).unwrap();
    drop(daemon);
    assert!(
        docker_paused(&id),
        "the container did not stay paused without its daemon"
    );

    let daemon = Daemon::start(&data, &defs, &ns.name);
    let shown = daemon.get_json(&path).await;
    assert_eq!(shown["state"], "paused", "{shown}");
    assert_eq!(shown["attached"], true, "{shown}");
    // Its last request is still the one before the restart.
    let after = shown["last_request_at"].as_u64().unwrap();
    assert!(
        after.abs_diff(before) <= 5,
        "{before} before the restart, {after} after"
    );
    let again = daemon.fetch_json(&format!("/{viewspec}/again")).await;
    assert_eq!(again["hostname"], first["hostname"], "restarted, not re-attached");
    assert!(!docker_paused(&id), "still paused after serving");
    assert_eq!(ns.containers(true), vec![id]);
}
