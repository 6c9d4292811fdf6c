//! `substrate serve` answers health with the real Docker Engine's state,
//! creates its admin token privately, and stops cleanly on SIGTERM.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_docker_ok_and_sigterm_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let defs = test_defs(tmp.path(), &[]);
    let mut daemon = Daemon::start(&data, &defs, &unique_namespace("health"));

    let resp = reqwest::get(daemon.url("/substrate/v1/health")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["docker"], "ok", "health: {body}");
    assert_eq!(body["store"], "ok", "health: {body}");
    assert_eq!(body["defs"], "ok", "health: {body}");
    assert_eq!(body["status"], "ok", "health: {body}");

    let mode = std::fs::metadata(data.join("admin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin.token mode {mode:o}");
    assert_eq!(daemon.token().len(), 64);

    // Unknown admin endpoints answer in the API's error shape.
    let resp = reqwest::get(daemon.url("/substrate/v1/nope")).await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let status = daemon
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(15))
        .expect("daemon did not stop within 15 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(!data.join("daemon.pid").exists(), "pid file left behind");

    // The token survives restarts.
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let daemon = Daemon::start(&data, &defs, &unique_namespace("health"));
    assert_eq!(daemon.token(), token.trim());
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_down_is_reported_by_health_and_the_front_door() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let mut child = std::process::Command::new(bin())
        .args(["serve", "--listen", &addr, "--namespace", "t-nodocker"])
        .arg("--data")
        .arg(tmp.path().join("data"))
        .arg("--defs")
        .arg(test_defs(tmp.path(), &[]))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{addr}/substrate/v1/health");
    let mut body = None;
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(&url).await {
            body = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The front door says so too, instead of hanging.
    let resp = reqwest::get(format!("http://{addr}/echo/")).await.unwrap();
    let status = resp.status();
    let page = resp.text().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let body = body.expect("daemon never answered");
    let docker = body["docker"].as_str().unwrap();
    assert!(docker.starts_with("unavailable: "), "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("the Docker Engine is unavailable"), "{page}");
}
