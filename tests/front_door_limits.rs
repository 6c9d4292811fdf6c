//! Bad or unusual input at the front door: oversized chunked bodies (413),
//! oversized headers (431), HTTP/2 clients, and abandoned spaces.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn raw_request(addr: &str, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_protocols_and_abandoned_spaces() {
    example_images();
    let ns = Namespace::new("limits");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &[
            "--body-buffer-mib",
            "1",
            "--abandoned-space-ttl",
            "1s",
            "--header-timeout",
            "1s",
        ],
    );
    // Without a pool: the daemon closes a keep-alive connection that stays
    // idle for the header timeout (1 s here, hyper's header read timer runs
    // while waiting for the next request), and a pooled connection reused in
    // the instant it closes fails on the client's side, which is not what
    // this test is about.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    // A chunked body over the buffer limit: 413.
    let chunk = vec![b'x'; 256 * 1024];
    let mut req =
        b"POST /echo/ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..6 {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let resp = raw_request(&daemon.addr, &req);
    assert!(resp.starts_with("HTTP/1.1 413"), "{}", &resp[..resp.len().min(200)]);

    // The same size with a Content-Length streams through.
    let body = vec![b'y'; 1536 * 1024];
    let resp = client.post(daemon.url("/echo/big")).body(body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let echoed: Value = resp.json().await.unwrap();
    assert_eq!(echoed["body"].as_str().unwrap().len(), 1536 * 1024);

    // Oversized headers: refused, and the daemon keeps serving.
    let huge = format!(
        "GET /echo/ HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let resp = raw_request(&daemon.addr, huge.as_bytes());
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 431"),
        "{}",
        &resp[..resp.len().min(200)]
    );
    assert_eq!(client.get(daemon.url("/echo/")).send().await.unwrap().status(), 200);

    // A slow client that never finishes its headers is cut off.
    let mut slow = std::net::TcpStream::connect(&daemon.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    slow.write_all(b"GET /echo/ HTTP/1.1\r\nHost: t\r\n").unwrap();
    let began = Instant::now();
    let mut rest = Vec::new();
    let n = slow.read_to_end(&mut rest).unwrap_or(0);
    println!("slow client cut off after {:?}", began.elapsed());
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "the slow client was not cut off"
    );
    assert!(
        n == 0 || String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408"),
        "{rest:?}"
    );
    assert_eq!(client.get(daemon.url("/echo/")).send().await.unwrap().status(), 200);

    // HTTP/2 with prior knowledge.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg(daemon.url("/echo/h2"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");

    // A redirect whose URL is never requested leaves an abandoned space,
    // collected after its TTL; a used one and an API-made one stay.
    let abandoned = client.get(daemon.url("/notes/")).send().await.unwrap();
    let abandoned = abandoned.headers()["location"]
        .to_str()
        .unwrap()
        .trim_matches('/')
        .replace("notes;data=", "");
    let used = client.get(daemon.url("/notes/")).send().await.unwrap();
    let used_url = used.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(client.get(daemon.url(&used_url)).send().await.unwrap().status(), 200);
    let api_made: Value = daemon
        .api(reqwest::Method::POST, "/substrate/v1/spaces", None)
        .await
        .json()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let spaces = loop {
        let v: Value = daemon.get_json("/substrate/v1/spaces").await;
        let gone = v["spaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == abandoned.as_str() && s["deleted"] == true);
        if gone {
            break v;
        }
        assert!(Instant::now() < deadline, "the abandoned space was not collected: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let live: Vec<&str> = spaces["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["deleted"] == false)
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(live.contains(&api_made["space"]["id"].as_str().unwrap()), "{spaces}");
    assert!(
        live.iter().any(|id| used_url.contains(id)),
        "the used space was collected: {spaces}"
    );
}
