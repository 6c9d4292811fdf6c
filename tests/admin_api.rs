//! The admin API: the token is required; instances can be ensured, listed
//! and stopped; services are described; the OpenAPI document is served.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_requires_the_token_and_manages_instances() {
    example_images();
    let ns = Namespace::new("admin");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let client = http();
    let token = daemon.token();

    for path in [
        "/substrate/v1/instances",
        "/substrate/v1/services",
        "/substrate/v1/spaces",
    ] {
        let resp = client.get(daemon.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        let resp = client.get(daemon.url(path)).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }

    let services: Value = daemon.get_json("/substrate/v1/services").await;
    let echo = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "echo")
        .unwrap();
    assert_eq!(echo["image"], "substrate-echo");
    assert_eq!(echo["enabled"], true);

    let resp = daemon
        .api(
            reqwest::Method::POST,
            "/substrate/v1/instances",
            Some(json!({"service": "echo"})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let ensured: Value = resp.json().await.unwrap();
    assert_eq!(ensured, json!({"viewspec": "echo", "url": "/echo/"}));
    assert_eq!(ns.containers(false).len(), 1);

    let list: Value = daemon.get_json("/substrate/v1/instances").await;
    assert_eq!(list["instances"][0]["viewspec"], "echo");
    assert_eq!(list["instances"][0]["state"], "ready");

    let resp = daemon
        .api(reqwest::Method::DELETE, "/substrate/v1/instances/echo", None)
        .await;
    assert_eq!(resp.status(), 200);
    assert!(ns.containers(true).is_empty(), "the container survived DELETE");
    let resp = daemon
        .api(reqwest::Method::DELETE, "/substrate/v1/instances/echo", None)
        .await;
    assert_eq!(resp.status(), 404);

    let resp = daemon
        .api(
            reqwest::Method::POST,
            "/substrate/v1/instances",
            Some(json!({"service": "nosuch"})),
        )
        .await;
    assert_eq!(resp.status(), 404);
    let resp = client
        .post(daemon.url("/substrate/v1/instances"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let doc: Value = daemon.fetch_json("/substrate/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/substrate/v1/spaces/{id}/checkpoints"]["post"].is_object());
}
