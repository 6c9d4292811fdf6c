//! Replay rules (SPEC §4, RFC 9110 §9.2.2): a request that reached a
//! container is never sent to another one unless its method is idempotent
//! and its body was buffered; and a pooled keep-alive connection that
//! fails is retried on a fresh connection to the same container before the
//! container is taken for gone.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_that_reached_the_container_is_not_sent_again() {
    example_images();
    let ns = Namespace::new("noreplay");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    // The POST twice, and PATCH: another method that is not
    // idempotent (RFC 9110 §9.2.2).
    for (round, method) in ["POST", "POST", "PATCH"].into_iter().enumerate() {
        let warm: serde_json::Value = daemon.fetch_json("/echo/").await;
        let old = warm["hostname"].as_str().unwrap().to_owned();
        let url = daemon.url("/echo/slow?ms=3000");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let post = tokio::spawn(async move { http().request(method, url).body("charge=1").send().await.unwrap() });
        // The POST is in the container once the daemon counts it open.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let i = daemon.get_json("/substrate/v1/instances/echo").await;
            if i["open_connections"].as_u64() == Some(1) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the POST never reached the instance: {i}"
            );
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
            let echoed: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                echoed["hostname"],
                old.as_str(),
                "round {round}: the POST was replayed on a new container: {text}"
            );
        } else {
            assert_eq!(status, 502, "round {round}: {text}");
        }
        // No container other than the one deleted ever saw it: none runs now.
        assert!(
            ns.containers(false).is_empty(),
            "round {round}: a container was started for the POST"
        );
    }
}

/// Kills the established server-side sockets (port 8080) in the network
/// namespaces of the given container processes every 20 ms, with
/// `nsenter … ss -K`, until stopped.
struct SocketKiller {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl SocketKiller {
    fn start(pids: Vec<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut kills = 0;
            while !stopped.load(Ordering::Relaxed) {
                for pid in &pids {
                    let out = Command::new("nsenter")
                        .args(["-t", pid, "-n", "ss", "-K", "state", "established", "( sport = :8080 )"])
                        .output()
                        .expect("nsenter ss -K");
                    assert!(
                        out.status.success(),
                        "ss -K failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    kills += String::from_utf8_lossy(&out.stdout).lines().count().saturating_sub(1);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            kills
        });
        Self { stop, thread }
    }

    /// Stops killing; how many sockets were killed.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the socket killer panicked")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_alive_connections_killed_under_load_are_retried_not_failed() {
    example_images();
    let ns = Namespace::new("sskill");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let warm: serde_json::Value = daemon.fetch_json("/echo/").await;
    let host = warm["hostname"].as_str().unwrap().to_owned();
    let pid = service_pid(&ns, "echo");

    // Kill the container's established server-side sockets every 20 ms.
    let killer = SocketKiller::start(vec![pid]);
    let clients = (0..8).map(|_| {
        let base = daemon.url("/echo/load");
        tokio::spawn(async move {
            let client = http();
            let mut failures = Vec::new();
            for i in 0..50 {
                let resp = client.get(format!("{base}?i={i}")).send().await.unwrap();
                let status = resp.status();
                let text = resp.text().await.unwrap();
                if status != 200 {
                    failures.push(format!("{status}: {text}"));
                }
            }
            failures
        })
    });
    let results = futures_util::future::join_all(clients).await;
    let killed = killer.stop();
    let failures: Vec<String> = results.into_iter().flat_map(|r| r.unwrap()).collect();
    assert!(killed > 0, "ss -K killed no connection: the test proved nothing");
    assert!(
        failures.is_empty(),
        "{} of 400 failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let after: serde_json::Value = daemon.fetch_json("/echo/").await;
    assert_eq!(
        after["hostname"],
        host.as_str(),
        "the container was replaced, not the connection"
    );
}

/// The PID of the init process of `service`'s one container, for `nsenter`.
fn service_pid(ns: &Namespace, service: &str) -> String {
    let filter = format!("label=substrate.service={service}");
    let ids = ns.wait_for(&format!("the {service} container"), Duration::from_secs(30), |c| {
        !c.is_empty()
    });
    let out = docker(&["ps", "-q", "--no-trunc", "--filter", &filter]);
    let id = stdout(&out)
        .lines()
        .find(|id| ids.iter().any(|i| i == id))
        .unwrap_or_else(|| panic!("no {service} container among {ids:?}"))
        .to_owned();
    let out = docker(&["inspect", "-f", "{{.State.Pid}}", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// How one request of the PUT/POST load ended.
enum Outcome {
    Put { tag: String, status: u16, body: String },
    Post { tag: String, status: u16, body: String },
}

/// Kills the containers' established server-side sockets (`ss -K`) every
/// 20 ms under a load of PUTs (to echo: idempotent, buffered body) and
/// POSTs (to notes, which writes one file per POST it executes, in its
/// space on the host). Every PUT succeeds: a dead pooled connection is
/// retried on a fresh one. A POST fails only with 502, and no POST is ever
/// executed twice: one that got its answer was executed exactly once, one
/// that got 502 at most once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_keep_alive_connections_retry_puts_and_never_send_a_post_twice() {
    example_images();
    let ns = Namespace::new("sskillpost");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let warm: serde_json::Value = daemon.fetch_json("/echo/").await;
    let echo_host = warm["hostname"].as_str().unwrap().to_owned();
    let resp = http().get(daemon.url("/notes/")).send().await.unwrap();
    assert_eq!(resp.status(), 307);
    let notes = location_viewspec(&resp);
    let space = notes.split_once("data=").unwrap().1.to_owned();
    let resp = http().get(daemon.url(&format!("/{notes}/"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let notes_dir = daemon.data.join("spaces").join(&space).join("tree/notes");
    let pids = [service_pid(&ns, "echo"), service_pid(&ns, "notes")];
    let containers_before = {
        let mut c = ns.containers(false);
        c.sort();
        c
    };
    assert_eq!(containers_before.len(), 2, "{containers_before:?}");

    let killer = SocketKiller::start(pids.to_vec());
    let clients = (0..8).map(|c| {
        let put_url = daemon.url("/echo/put");
        let post_url = daemon.url(&format!("/{notes}/notes"));
        tokio::spawn(async move {
            let client = http();
            let mut outcomes = Vec::new();
            for i in 0..30 {
                let tag = format!("put-{c}-{i}");
                let resp = client.put(&put_url).body(tag.clone()).send().await.unwrap();
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap();
                outcomes.push(Outcome::Put { tag, status, body });

                let tag = format!("post-{c}-{i}");
                let resp = client
                    .post(&post_url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("text={tag}"))
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap();
                outcomes.push(Outcome::Post { tag, status, body });
            }
            outcomes
        })
    });
    let results = futures_util::future::join_all(clients).await;
    let killed = killer.stop();
    assert!(killed > 0, "ss -K killed no connection: the test proved nothing");

    // What notes executed: one file per POST, holding its text.
    let mut executed: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for entry in std::fs::read_dir(&notes_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        *executed.entry(std::fs::read_to_string(&path).unwrap()).or_default() += 1;
    }
    let mut put_failures = Vec::new();
    let mut post_failures = Vec::new();
    let mut posts_failed_with_502 = 0;
    for outcome in results.into_iter().flat_map(|r| r.unwrap()) {
        match outcome {
            Outcome::Put { tag, status, body } => {
                let echoed: Option<serde_json::Value> = serde_json::from_str(&body).ok();
                let right = status == 200
                    && echoed.as_ref().is_some_and(|e| {
                        e["method"] == "PUT" && e["body"] == tag.as_str() && e["hostname"] == echo_host.as_str()
                    });
                if !right {
                    put_failures.push(format!("{tag}: {status}: {body}"));
                }
            }
            Outcome::Post { tag, status, body } => {
                let times = executed.get(&tag).copied().unwrap_or(0);
                match status {
                    303 if times == 1 => {}
                    // Failed only where it may have reached notes (and was
                    // not sent again): one that provably never left is
                    // retried on a fresh connection.
                    502 if times <= 1 && body.contains("may have reached it") => posts_failed_with_502 += 1,
                    _ => post_failures.push(format!("{tag}: {status}, executed {times} times: {body}")),
                }
            }
        }
    }
    assert!(
        put_failures.is_empty(),
        "{} of 240 PUTs failed, e.g. {:?}",
        put_failures.len(),
        &put_failures[..put_failures.len().min(3)]
    );
    assert!(
        post_failures.is_empty(),
        "{} of 240 POSTs went wrong, e.g. {:?}",
        post_failures.len(),
        &post_failures[..post_failures.len().min(3)]
    );
    let tags = executed.len();
    assert!(
        executed.values().all(|&n| n == 1),
        "a POST was executed twice: {:?}",
        executed.iter().filter(|(_, &n)| n > 1).collect::<Vec<_>>()
    );
    // Every failed exchange counts one upstream error; more of them than
    // POSTs answered 502 means some were retried and recovered.
    let metrics = http()
        .get(daemon.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let upstream_errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("substrate_errors_total{kind=\"upstream\"} "))
        .map_or(0, |n| n.trim().parse().unwrap());
    eprintln!(
        "{killed} connections killed, {upstream_errors} exchanges failed; \
         {tags} POSTs executed, {posts_failed_with_502} answered 502"
    );
    assert!(
        upstream_errors > posts_failed_with_502,
        "no failed exchange was retried ({upstream_errors} failed): the test proved nothing"
    );
    let mut containers_after = ns.containers(false);
    containers_after.sort();
    assert_eq!(
        containers_after, containers_before,
        "a container was replaced, not a connection"
    );
}
