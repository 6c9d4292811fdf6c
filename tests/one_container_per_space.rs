//! One container per space at a time (SPEC §4): stopping is a state that
//! requests wait on, so a successor never runs beside a predecessor that is
//! still shutting down with the same space mounted read-write; and a DELETE
//! during a start leaves no container behind.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A space-backed echo whose process keeps running 3 s after SIGTERM, and
/// ones that take 2 s before they listen.
const DEFS: &str = r#"
package defs

enable: "lingering": true
services: "lingering": instances: [string]: {
    image: "substrate-echo"
    parameters: data: {type: "space"}
    environment: ECHO_STOP_GRACE_MS: "3000"
    environment: VERSION: "1"
}

// The same, reaped by the idle timeout instead of stopped by a request.
enable: "idlelinger": true
services: "idlelinger": instances: [string]: {
    image: "substrate-echo"
    parameters: data: {type: "space"}
    environment: ECHO_STOP_GRACE_MS: "3000"
    idle_timeout: "1s"
    pause_after: "0"
}

enable: "slowstart": true
services: "slowstart": instances: [string]: {
    image: "substrate-echo"
    environment: ECHO_START_DELAY_MS: "2000"
}

// The same with a space.
enable: "slowspace": true
services: "slowspace": instances: [string]: {
    image: "substrate-echo"
    parameters: data: {type: "space"}
    environment: ECHO_START_DELAY_MS: "2000"
}
"#;

/// `docker events` for a namespace, recorded with the time each arrived.
struct Events {
    child: std::process::Child,
    seen: Arc<Mutex<Vec<(Instant, String, String)>>>,
}

impl Events {
    fn follow(namespace: &str) -> Events {
        let mut child = Command::new("docker")
            .args([
                "events",
                "--filter",
                &format!("label=substrate.namespace={namespace}"),
                "--filter",
                "type=container",
                "--format",
                "{{.Status}} {{.ID}}",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker events");
        let out = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some((status, id)) = line.split_once(' ') {
                    sink.lock()
                        .unwrap()
                        .push((Instant::now(), status.to_owned(), id.to_owned()));
                }
            }
        });
        Events { child, seen }
    }

    fn at(&self, status: &str, id: &str) -> Option<Instant> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .find(|(_, s, i)| s == status && i == id)
            .map(|(t, _, _)| *t)
    }

    fn wait(&self, status: &str, id: &str) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(t) = self.at(status, id) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "no {status} event for {id}: {:?}",
                self.seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `/lingering/` and follows its redirect: the concrete viewspec.
async fn open_space(daemon: &Daemon) -> String {
    open_space_of(daemon, "lingering").await
}

/// Opens `/<service>/` and follows its redirect: the concrete viewspec.
async fn open_space_of(daemon: &Daemon, service: &str) -> String {
    let resp = http().get(daemon.url(&format!("/{service}/"))).send().await.unwrap();
    assert_eq!(resp.status(), 307);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    location.trim_matches('/').to_owned()
}

fn container_id(echo: &serde_json::Value, ns: &Namespace) -> String {
    let host = echo["hostname"].as_str().unwrap();
    ns.containers(false)
        .into_iter()
        .find(|id| id.starts_with(host))
        .unwrap_or_else(|| panic!("no container {host}"))
}

/// The successor's `start` must come after the predecessor's `die`.
fn assert_no_overlap(events: &Events, old: &str, new: &str) {
    let died = events.wait("die", old);
    let started = events.wait("start", new);
    assert!(
        started > died,
        "the new container started {:?} before the old one died: both had the space mounted",
        died - started
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_instance_is_gone_before_its_successor_starts() {
    example_images();
    let ns = Namespace::new("stopfirst");
    let tmp = tempfile::tempdir().unwrap();
    let defs = test_defs(tmp.path(), &[("svc.cue", DEFS)]);
    let daemon = Daemon::start(&tmp.path().join("data"), &defs, &ns.name);
    let events = Events::follow(&ns.name);
    let viewspec = open_space(&daemon).await;
    let first: serde_json::Value = daemon.fetch_json(&format!("/{viewspec}/")).await;
    let old = container_id(&first, &ns);

    let path = format!("/substrate/v1/instances/{}", viewspec.replace(';', "%3B"));
    let deleting = {
        let url = daemon.url(&path);
        let token = daemon.token();
        tokio::spawn(async move { http().delete(url).bearer_auth(token).send().await.unwrap().status() })
    };
    // Wait until the stop is under way (SIGTERM sent), then ask again.
    events.wait("kill", &old);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second: serde_json::Value = daemon.fetch_json(&format!("/{viewspec}/")).await;
    assert_eq!(deleting.await.unwrap(), 200);
    let new = container_id(&second, &ns);
    assert_ne!(old, new);
    assert_no_overlap(&events, &old, &new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reaped_instance_is_gone_before_its_successor_starts() {
    example_images();
    let ns = Namespace::new("reapfirst");
    let tmp = tempfile::tempdir().unwrap();
    let defs = test_defs(tmp.path(), &[("svc.cue", DEFS)]);
    let daemon = Daemon::start(&tmp.path().join("data"), &defs, &ns.name);
    let events = Events::follow(&ns.name);
    let viewspec = open_space_of(&daemon, "idlelinger").await;
    let first: serde_json::Value = daemon.fetch_json(&format!("/{viewspec}/")).await;
    let old = container_id(&first, &ns);

    // Idle for its 1 s: the reaper sends SIGTERM, the process lingers 3 s.
    events.wait("kill", &old);
    let second: serde_json::Value = daemon.fetch_json(&format!("/{viewspec}/")).await;
    let new = container_id(&second, &ns);
    assert_ne!(old, new);
    assert_no_overlap(&events, &old, &new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_restart_stops_the_old_container_before_the_new_one_starts() {
    example_images();
    let ns = Namespace::new("reloadfirst");
    let tmp = tempfile::tempdir().unwrap();
    let defs = test_defs(tmp.path(), &[("svc.cue", DEFS)]);
    let daemon = Daemon::start(&tmp.path().join("data"), &defs, &ns.name);
    let events = Events::follow(&ns.name);
    let viewspec = open_space(&daemon).await;
    let first: serde_json::Value = daemon.fetch_json(&format!("/{viewspec}/")).await;
    let old = container_id(&first, &ns);

    std::fs::write(defs.join("svc.cue"), DEFS.replace("VERSION: \"1\"", "VERSION: \"2\"")).unwrap();
    let reload = daemon.api(reqwest::Method::POST, "/substrate/v1/reload", None).await;
    assert_eq!(reload.status(), 200);
    events.wait("kill", &old);
    let second: serde_json::Value = daemon.fetch_json(&format!("/{viewspec}/")).await;
    let new = container_id(&second, &ns);
    assert_ne!(old, new);
    assert_no_overlap(&events, &old, &new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_during_a_start_leaves_no_container() {
    example_images();
    let ns = Namespace::new("cancelstart");
    let tmp = tempfile::tempdir().unwrap();
    let defs = test_defs(tmp.path(), &[("svc.cue", DEFS)]);
    let daemon = Daemon::start(&tmp.path().join("data"), &defs, &ns.name);
    let url = daemon.url("/slowstart/");
    let waiting = tokio::spawn(async move { http().get(url).send().await.unwrap().status() });
    ns.wait_for("the container of the start", Duration::from_secs(30), |c| c.len() == 1);

    let resp = daemon
        .api(reqwest::Method::DELETE, "/substrate/v1/instances/slowstart", None)
        .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["stopped"], "slowstart", "{body}");
    assert!(
        ns.containers(true).is_empty(),
        "a container is left after the DELETE answered"
    );
    assert_eq!(
        waiting.await.unwrap(),
        503,
        "the waiting request learns the start was cancelled"
    );
    // And nothing comes back later.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(ns.containers(true).is_empty(), "the cancelled start left a container");
}

/// The ids of every container the namespace's events mention.
fn containers_seen(events: &Events) -> std::collections::BTreeSet<String> {
    events
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, id)| id.clone())
        .collect()
}

/// A forced space delete while the space's instance is `stopping` (its
/// process lingers 3 s after SIGTERM): the delete waits for the stop, and
/// no request for the space — one already waiting on the stop, or one
/// arriving during the delete — starts a container on it. They are told
/// the space is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forced_space_delete_during_a_stop_finishes_the_stop_and_starts_nothing() {
    example_images();
    let ns = Namespace::new("delstopping");
    let tmp = tempfile::tempdir().unwrap();
    let defs = test_defs(tmp.path(), &[("svc.cue", DEFS)]);
    let daemon = Daemon::start(&tmp.path().join("data"), &defs, &ns.name);
    let events = Events::follow(&ns.name);
    let viewspec = open_space(&daemon).await;
    let space = viewspec.split_once("data=").unwrap().1.to_owned();
    let first: serde_json::Value = daemon.fetch_json(&format!("/{viewspec}/")).await;
    let old = container_id(&first, &ns);
    let tree = daemon.data.join("spaces").join(&space);
    assert!(tree.is_dir(), "no tree at {}", tree.display());

    let delete = |path: String| {
        let url = daemon.url(&path);
        let token = daemon.token();
        tokio::spawn(async move {
            let resp = http().delete(url).bearer_auth(token).send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        })
    };
    let get = || {
        let url = daemon.url(&format!("/{viewspec}/"));
        tokio::spawn(async move {
            match http().get(url).send().await {
                Ok(resp) => (resp.status().as_u16(), resp.text().await.unwrap_or_default()),
                Err(e) => (0, e.to_string()),
            }
        })
    };
    let stopping = delete(format!("/substrate/v1/instances/{}", viewspec.replace(';', "%3B")));
    // SIGTERM sent: the instance is `stopping` for the next 3 s.
    events.wait("kill", &old);
    let mut requests = vec![get()];
    let forced = delete(format!("/substrate/v1/spaces/{space}?force=true"));
    while !forced.is_finished() {
        requests.push(get());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = forced.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        ns.containers(true).is_empty(),
        "a container is left after the forced delete answered; events: {:?}",
        events.seen.lock().unwrap()
    );
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["deleted"], space.as_str(), "{body}");
    assert_eq!(body["stopped"], serde_json::json!([viewspec]), "{body}");
    let (status, body) = stopping.await.unwrap();
    assert_eq!(status, 200, "{body}");

    requests.push(get());
    let count = requests.len();
    for (i, request) in requests.into_iter().enumerate() {
        let (status, body) = request.await.unwrap();
        assert!(
            status == 404 || status == 410,
            "request {i} of {count} for the deleted space got {status}: {body}"
        );
        assert!(
            body.contains(&space),
            "request {i}: the answer does not name the space: {body}"
        );
    }
    assert!(
        ns.containers(true).is_empty(),
        "a request for the deleted space left a container"
    );
    let seen = containers_seen(&events);
    assert!(
        seen.iter().all(|id| *id == old),
        "a container other than {old} was created on the deleted space: {seen:?}"
    );
    assert!(!tree.exists(), "the deleted space's tree is back at {}", tree.display());
    let resp = daemon
        .api(reqwest::Method::GET, &format!("/substrate/v1/spaces/{space}"), None)
        .await;
    assert_eq!(resp.status(), 410);
}

/// A forced space delete while the space's instance is starting cancels
/// the start (its container is gone when the delete answers), and the
/// request waiting for that start is told the space is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forced_space_delete_during_a_start_cancels_it() {
    example_images();
    let ns = Namespace::new("delstarting");
    let tmp = tempfile::tempdir().unwrap();
    let defs = test_defs(tmp.path(), &[("svc.cue", DEFS)]);
    let daemon = Daemon::start(&tmp.path().join("data"), &defs, &ns.name);
    let viewspec = open_space_of(&daemon, "slowspace").await;
    let space = viewspec.split_once("data=").unwrap().1.to_owned();
    let url = daemon.url(&format!("/{viewspec}/"));
    let waiting = tokio::spawn(async move {
        let resp = http().get(url).send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    });
    ns.wait_for("the container of the start", Duration::from_secs(30), |c| c.len() == 1);

    let resp = daemon
        .api(
            reqwest::Method::DELETE,
            &format!("/substrate/v1/spaces/{space}?force=true"),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["stopped"], serde_json::json!([viewspec]), "{body}");
    assert!(
        ns.containers(true).is_empty(),
        "a container is left after the forced delete answered"
    );
    let (status, text) = waiting.await.unwrap();
    assert_eq!(status, 410, "{text}");
    assert!(text.contains(&space), "{text}");
    assert!(ns.containers(true).is_empty(), "the cancelled start left a container");
}
