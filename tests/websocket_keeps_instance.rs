//! WebSockets pass through the proxy, and an open one keeps its instance
//! from idle reaping; once closed, the instance is reaped.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const IDLE: &str = r#"
package defs

enable: "quick": true
services: "quick": instances: [string]: {
    image: "substrate-echo"
    idle_timeout: "1s"
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn websocket_echoes_and_holds_off_the_reaper() {
    example_images();
    let ns = Namespace::new("ws");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[("idle.cue", IDLE)]),
        &ns.name,
    );

    // Without a WebSocket the instance is reaped after its idle timeout.
    let resp = http().get(daemon.url("/quick/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(ns.containers(false).len(), 1);
    ns.wait_for("the idle instance to be reaped", Duration::from_secs(15), |c| {
        c.is_empty()
    });

    // With one open it is not, for well past the timeout.
    let stream = tokio::net::TcpStream::connect(&daemon.addr).await.unwrap();
    let url = format!("ws://{}/quick/ws", daemon.addr);
    let (mut ws, resp) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hello through the proxy")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("hello through the proxy"));
    let container = ns.containers(false);
    assert_eq!(container.len(), 1);

    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(3) {
        assert_eq!(ns.containers(false), container, "reaped while a WebSocket was open");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(vec![1u8, 2, 3]));
    ws.close(None).await.unwrap();
    drop(ws);
    ns.wait_for("reaping after the WebSocket closed", Duration::from_secs(15), |c| {
        c.is_empty()
    });
}
