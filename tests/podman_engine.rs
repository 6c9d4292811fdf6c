//! The end-to-end behaviours on Podman (SPEC §13): the daemon runs with
//! `--engine podman` against `podman system service` (started by
//! `./dev.sh test`), with the example images built on Podman under
//! `localhost/`. A subset of the Docker suite, one test per behaviour: cold
//! start and coalescing, a space whose files outlive its container (and
//! Podman's events forgetting a killed one), idle tiers (pause, resume,
//! stop), re-attach after a daemon restart (a paused container too), and no
//! replay of a request that reached a container. Each test prints why it skips when Podman does not
//! answer.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Podman when its API answers (with the example images built on it);
/// otherwise prints why the test is skipped.
fn podman(test: &str) -> Option<Engine> {
    if let Some(why) = podman_missing() {
        println!("skipping {test}: {why}");
        return None;
    }
    example_images_on_podman();
    Some(Engine::Podman)
}

/// A daemon on Podman for `ns`, with the project's definitions plus `extra`.
fn daemon(tmp: &Path, ns: &Namespace, extra: &[(&str, &str)]) -> Daemon {
    let flags = ns.engine.serve_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Daemon::start_with(&tmp.join("data"), &test_defs(tmp, extra), &ns.name, &flags)
}

/// `podman inspect -f FORMAT ID`, trimmed.
fn inspect(ns: &Namespace, format: &str, id: &str) -> String {
    let out = ns.engine.run(&["inspect", "-f", format, id]);
    assert!(out.status.success(), "podman inspect: {}", stderr(&out));
    stdout(&out).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_start_coalesces_on_podman() {
    let Some(engine) = podman("cold_start_coalesces_on_podman") else {
        return;
    };
    let ns = Namespace::on(engine, "pm-cold");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = daemon(tmp.path(), &ns, &[]);
    let began = Instant::now();
    let requests = (0..30).map(|i| {
        let url = daemon.url(&format!("/echo/burst?i={i}"));
        tokio::spawn(async move {
            let resp = http().get(&url).send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        })
    });
    let results = futures_util::future::join_all(requests).await;
    println!("30 concurrent cold requests answered in {:?}", began.elapsed());
    let mut hosts = std::collections::BTreeSet::new();
    for r in results {
        let (status, body) = r.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["path"], "/burst");
        assert_eq!(body["env"]["SOME_VARIABLE"], "some_value");
        assert_eq!(body["env"]["SUBSTRATE_URL_PREFIX"], "/echo");
        hosts.insert(body["hostname"].as_str().unwrap().to_owned());
    }
    assert_eq!(hosts.len(), 1, "answered by several containers: {hosts:?}");
    let all = ns.containers(true);
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].starts_with(hosts.first().unwrap().as_str()));
    assert_eq!(
        inspect(&ns, "{{.ImageName}}", &all[0]),
        "localhost/substrate-echo:latest"
    );

    let again: Value = daemon.fetch_json("/echo/again").await;
    assert_eq!(&again["hostname"], hosts.first().unwrap().as_str());
    let metrics = http()
        .get(daemon.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("substrate_cold_start_seconds_count 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_space_outlives_its_container_on_podman() {
    let Some(engine) = podman("a_space_outlives_its_container_on_podman") else {
        return;
    };
    let ns = Namespace::on(engine, "pm-space");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = daemon(tmp.path(), &ns, &[]);
    let client = http();
    let redirect = client.get(daemon.url("/notes/")).send().await.unwrap();
    assert_eq!(redirect.status(), 307);
    let viewspec = location_viewspec(&redirect);
    let added = client
        .post(daemon.url(&format!("/{viewspec}/notes")))
        .form(&[("text", "kept on podman")])
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 303, "{}", added.text().await.unwrap());
    let first = ns.wait_for("the notes container", Duration::from_secs(10), |c| c.len() == 1)[0].clone();
    let mounts = inspect(&ns, "{{range .Mounts}}{{.Destination}} {{end}}", &first);
    assert!(mounts.contains("/spaces/data/tree"), "{mounts}");

    // Killed behind the daemon's back: Podman's `died` event makes the
    // daemon forget it without a request having to fail first.
    assert!(ns.engine.run(&["kill", &first]).status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list: Value = daemon.get_json("/substrate/v1/instances").await;
        if list["instances"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed container's instance is still recorded: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A new container, the same space: the note is still there.
    let notes: Value = daemon.fetch_json(&format!("/{viewspec}/notes.json")).await;
    let texts: Vec<&str> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["kept on podman"]);
    let second = ns.containers(false);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second[0], first, "the killed container answered");
}

const NAPPER: &str = r#"
package defs

enable: "napper": true
services: "napper": instances: [string]: {
    image: "substrate-echo"
    pause_after: "1s"
    idle_timeout: "5s"
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_instances_pause_resume_and_stop_on_podman() {
    let Some(engine) = podman("idle_instances_pause_resume_and_stop_on_podman") else {
        return;
    };
    let ns = Namespace::on(engine, "pm-idle");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = daemon(tmp.path(), &ns, &[("napper.cue", NAPPER)]);
    let first: Value = daemon.fetch_json("/napper/").await;
    let id = ns.containers(false)[0].clone();

    let deadline = Instant::now() + Duration::from_secs(20);
    while inspect(&ns, "{{.State.Paused}}", &id) != "true" {
        assert!(Instant::now() < deadline, "the idle container was not paused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = daemon.get_json("/substrate/v1/instances/napper").await;
    assert_eq!(shown["state"], "paused", "{shown}");

    let began = Instant::now();
    let again: Value = daemon.fetch_json("/napper/again").await;
    println!("resumed and answered in {:?}", began.elapsed());
    assert_eq!(again["hostname"], first["hostname"], "a new container answered");
    assert_eq!(inspect(&ns, "{{.State.Paused}}", &id), "false");

    // Paused again after a second, then stopped and removed at 5 s idle.
    let began = Instant::now();
    ns.wait_for("the idle container's stop", Duration::from_secs(30), |c| c.is_empty());
    println!("stopped {:?} after the last request", began.elapsed());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ns.containers(true).is_empty() {
        assert!(Instant::now() < deadline, "the stopped container was not removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.wait_no_instances(Duration::from_secs(10)).await;
}

const SLEEPER: &str = r#"
package defs

enable: "sleeper": true
services: "sleeper": instances: [string]: {
    image: "substrate-echo"
    pause_after: "1s"
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_reattaches_on_podman() {
    let Some(engine) = podman("restart_reattaches_on_podman") else {
        return;
    };
    let ns = Namespace::on(engine, "pm-restart");
    let tmp = tempfile::tempdir().unwrap();
    let mut first = daemon(tmp.path(), &ns, &[("sleeper.cue", SLEEPER)]);
    let echo: Value = first.fetch_json("/echo/").await;
    let sleeper: Value = first.fetch_json("/sleeper/").await;
    // One of the two is paused when the daemon dies.
    let paused = ns
        .wait_for("the sleeper", Duration::from_secs(10), |c| c.len() == 2)
        .into_iter()
        .find(|c| c.starts_with(sleeper["hostname"].as_str().unwrap()))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while inspect(&ns, "{{.State.Paused}}", &paused) != "true" {
        assert!(Instant::now() < deadline, "the idle container was not paused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.signal_and_wait(libc::SIGKILL, Duration::from_secs(10)).unwrap();
    drop(first);

    // While the daemon is down, a stray container of the namespace appears.
    let stray = ns.engine.run(&[
        "run",
        "-d",
        "--label",
        &format!("substrate.namespace={}", ns.name),
        "localhost/substrate-echo",
    ]);
    assert!(stray.status.success(), "{}", stderr(&stray));
    let stray = stdout(&stray).trim().to_owned();

    let second = daemon(tmp.path(), &ns, &[("sleeper.cue", SLEEPER)]);
    for (path, before) in [("/echo/", &echo), ("/sleeper/", &sleeper)] {
        let again: Value = second.fetch_json(path).await;
        assert_eq!(
            again["hostname"], before["hostname"],
            "{path}: restarted, not re-attached"
        );
    }
    let all = ns.containers(true);
    assert!(!all.contains(&stray), "the stray container was not removed: {all:?}");
    assert_eq!(all.len(), 2, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_that_reached_the_container_is_not_replayed_on_podman() {
    let Some(engine) = podman("a_post_that_reached_the_container_is_not_replayed_on_podman") else {
        return;
    };
    let ns = Namespace::on(engine, "pm-noreplay");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = daemon(tmp.path(), &ns, &[]);
    let warm: Value = daemon.fetch_json("/echo/").await;
    let old = warm["hostname"].as_str().unwrap().to_owned();
    let url = daemon.url("/echo/slow?ms=3000");
    let post = tokio::spawn(async move { http().post(url).body("charge=1").send().await.unwrap() });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let i = daemon.get_json("/substrate/v1/instances/echo").await;
        if i["open_connections"].as_u64() == Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "the POST never reached the instance: {i}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let del = daemon
        .api(reqwest::Method::DELETE, "/substrate/v1/instances/echo", None)
        .await;
    assert_eq!(del.status(), 200);
    let resp = post.await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    if status == 200 {
        let echoed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(echoed["hostname"], old.as_str(), "the POST was replayed: {text}");
    } else {
        assert_eq!(status, 502, "{text}");
    }
    assert!(ns.containers(false).is_empty(), "a container was started for the POST");
}
