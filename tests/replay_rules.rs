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

/// The PID of a container's init process, for `nsenter`.
fn container_pid(ns: &Namespace) -> String {
    let id = ns.wait_for("the echo container", Duration::from_secs(30), |c| c.len() == 1)[0].clone();
    let out = docker(&["inspect", "-f", "{{.State.Pid}}", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_alive_connections_killed_under_load_are_retried_not_failed() {
    example_images();
    let ns = Namespace::new("sskill");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let warm: serde_json::Value = daemon.fetch_json("/echo/").await;
    let host = warm["hostname"].as_str().unwrap().to_owned();
    let pid = container_pid(&ns);

    // Kill the container's established server-side sockets every 20 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut kills = 0;
            while !stop.load(Ordering::Relaxed) {
                let out = Command::new("nsenter")
                    .args([
                        "-t",
                        &pid,
                        "-n",
                        "ss",
                        "-K",
                        "state",
                        "established",
                        "( sport = :8080 )",
                    ])
                    .output()
                    .expect("nsenter ss -K");
                assert!(
                    out.status.success(),
                    "ss -K failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                kills += String::from_utf8_lossy(&out.stdout).lines().count().saturating_sub(1);
                std::thread::sleep(Duration::from_millis(20));
            }
            kills
        })
    };
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
    stop.store(true, Ordering::Relaxed);
    let killed = killer.join().unwrap();
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
