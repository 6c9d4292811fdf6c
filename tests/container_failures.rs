//! What clients see when things go wrong: a killed container is replaced
//! transparently (the buffered body replayed), a container that exits at
//! once gives a 503 with its last log line, a missing image a clear error,
//! and bad URLs their 4xx.

mod common;

use common::*;

const EXTRA: &str = r#"
package defs

enable: "crashy": true
services: "crashy": instances: [string]: {
    image: "substrate-echo"
    environment: ECHO_EXIT_AT_START: "1"
}

enable: "ghost": true
services: "ghost": instances: [string]: image: "substrate-no-such-image"

enable: "off": false
services: "off": instances: [string]: image: "substrate-echo"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_container_is_replaced_and_the_body_replayed() {
    example_images();
    let ns = Namespace::new("killed");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let client = http();
    let first: serde_json::Value = daemon.fetch_json("/echo/").await;
    let old = first["hostname"].as_str().unwrap().to_owned();
    let out = docker(&["kill", &old]);
    assert!(out.status.success(), "{}", stderr(&out));

    let resp = client
        .post(daemon.url("/echo/submit"))
        .body("the body must survive")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echoed: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["body"], "the body must survive");
    assert_ne!(echoed["hostname"], old.as_str(), "answered by the killed container");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_answer_with_a_reason() {
    example_images();
    let ns = Namespace::new("fail");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[("extra.cue", EXTRA)]),
        &ns.name,
    );
    let client = http();

    // A container that exits at once: 503 with its last log line, not cached.
    for attempt in 0..2 {
        let resp = client.get(daemon.url("/crashy/")).send().await.unwrap();
        assert_eq!(resp.status(), 503, "attempt {attempt}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("exited during start-up"), "{text}");
        assert!(text.contains("echo: exiting at start as asked"), "{text}");
    }
    assert!(ns.containers(true).is_empty(), "failed containers left behind");

    let resp = client.get(daemon.url("/ghost/")).send().await.unwrap();
    assert_eq!(resp.status(), 502);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("substrate-no-such-image") && text.contains("missing"),
        "{text}"
    );

    let resp = client.get(daemon.url("/nosuch/")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("no service named \"nosuch\""));

    let resp = client.get(daemon.url("/off/")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("defined but not enabled"));

    let resp = client.get(daemon.url("/Bad_Name/")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("malformed viewspec"));

    let resp = client.get(daemon.url("/echo;a=1;a=2/")).send().await.unwrap();
    assert_eq!(resp.status(), 400);

    let resp = client.get(daemon.url("/echo?q=1")).send().await.unwrap();
    assert_eq!(resp.status(), 307);
    assert_eq!(resp.headers()["location"], "/echo/?q=1");

    // Browsers get HTML.
    let resp = client
        .get(daemon.url("/nosuch/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}
