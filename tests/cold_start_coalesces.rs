//! A cold request starts one container and is answered by it; later
//! requests reuse it; a burst of concurrent first requests starts exactly one.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_request_starts_a_container_and_the_second_reuses_it() {
    example_images();
    let ns = Namespace::new("cold");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let client = http();

    let resp = client.get(daemon.url("/echo/hello?x=1")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let first: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(first["path"], "/hello");
    assert_eq!(first["query"], "x=1");
    assert_eq!(first["headers"]["x-forwarded-prefix"], "/echo");
    assert_eq!(first["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(first["env"]["SUBSTRATE_URL_PREFIX"], "/echo");
    assert_eq!(first["env"]["SOME_VARIABLE"], "some_value");

    let second: serde_json::Value = daemon.fetch_json("/echo/again").await;
    assert_eq!(second["hostname"], first["hostname"], "a second container answered");
    let running = ns.containers(false);
    assert_eq!(running.len(), 1, "{running:?}");
    assert!(running[0].starts_with(first["hostname"].as_str().unwrap()));

    let metrics = client
        .get(daemon.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("substrate_cold_start_seconds_count 1"), "{metrics}");
    assert!(
        metrics.contains("substrate_requests_total{class=\"2xx\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("substrate_instances{state=\"ready\"} 1"), "{metrics}");
    assert!(metrics.contains("substrate_proxy_latency_seconds_count 2"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_requests_start_one_container() {
    example_images();
    let ns = Namespace::new("coalesce");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let client = http();
    let url = daemon.url("/echo/burst");
    let requests = (0..100).map(|i| {
        let client = client.clone();
        let url = format!("{url}?i={i}");
        tokio::spawn(async move {
            let resp = client.get(&url).send().await.unwrap();
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, body["hostname"].as_str().unwrap_or_default().to_owned())
        })
    });
    let results = futures_util::future::join_all(requests).await;
    let mut hosts = std::collections::BTreeSet::new();
    for r in results {
        let (status, host) = r.unwrap();
        assert_eq!(status, 200);
        hosts.insert(host);
    }
    assert_eq!(hosts.len(), 1, "answered by several containers: {hosts:?}");
    assert_eq!(ns.containers(true).len(), 1);
}
