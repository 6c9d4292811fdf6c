//! What a client waiting on a cold start gets: a WebSocket handshake is
//! held until the container is ready and answered 101, even when it
//! carries `Accept: text/html`; and a readiness failure names its cause
//! (refused, probe timed out) instead of a generic "did not accept".

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const DEFS: &str = r#"
package defs

enable: "slowws": true
services: "slowws": instances: [string]: {
    image: "substrate-echo"
    environment: ECHO_START_DELAY_MS: "1500"
}

// Listens after 10 s but must be ready within 1 s: refused.
enable: "never": true
services: "never": instances: [string]: {
    image: "substrate-echo"
    environment: ECHO_START_DELAY_MS: "10000"
    readiness: timeout: "1s"
}

// Accepts at once, but its readiness probe takes 3 s: slower than the
// per-attempt limit.
enable: "slowprobe": true
services: "slowprobe": instances: [string]: {
    image: "substrate-echo"
    readiness: {path: "/slow?ms=3000", timeout: "3s"}
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upgrade_to_a_cold_service_is_held_until_ready() {
    example_images();
    let ns = Namespace::new("coldws");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[("svc.cue", DEFS)]),
        &ns.name,
    );
    let mut req = format!("ws://{}/slowws/ws", daemon.addr).into_client_request().unwrap();
    req.headers_mut()
        .insert("accept", "text/html,application/xhtml+xml".parse().unwrap());
    let stream = tokio::net::TcpStream::connect(&daemon.addr).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("the handshake must be answered 101, not a starting page");
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hello")).await.unwrap();
    let back = ws.next().await.unwrap().unwrap();
    assert_eq!(back.into_text().unwrap().as_str(), "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_failures_name_their_cause() {
    example_images();
    let ns = Namespace::new("readycause");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[("svc.cue", DEFS)]),
        &ns.name,
    );

    let resp = http().get(daemon.url("/never/")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let text = resp.text().await.unwrap();
    assert!(text.contains("nothing accepted connections"), "{text}");

    let resp = http().get(daemon.url("/slowprobe/")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let text = resp.text().await.unwrap();
    assert!(text.contains("accepted the connection"), "{text}");
    assert!(text.contains("did not answer within 2s"), "{text}");
    assert!(!text.contains("did not accept connections"), "{text}");
}
