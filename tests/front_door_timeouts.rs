//! Every phase a client or a container controls has a bound (SPEC §4
//! "Timeouts and limits"): a stalled request body gets 408 and the
//! connection closes; a client that stops reading is cut off; a container
//! slower than an upstream response timeout gets 504; and with no response
//! timeout by default, a slow stream (SSE) keeps flowing.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

/// Sends `head` plus `body_start`, then goes silent; what comes back.
fn stall(addr: &str, head: &str, body_start: &[u8]) -> (String, Duration) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body_start).unwrap();
    let began = Instant::now();
    let mut out = Vec::new();
    // read_to_end returns once the daemon closes the connection.
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), began.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_request_body_gets_408_and_the_connection_closes() {
    example_images();
    let ns = Namespace::new("stall");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--body-read-timeout", "1s", "--body-buffer-mib", "1"],
    );
    // Buffered: Content-Length 100, five bytes, silence.
    let head = "POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
    let (resp, took) = stall(&daemon.addr, head, b"12345");
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(took < Duration::from_secs(10), "answered after {took:?}");

    // Streaming (larger than the buffer): the same.
    let head = format!(
        "POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        4 << 20
    );
    let (resp, took) = stall(&daemon.addr, &head, b"12345");
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(took < Duration::from_secs(10), "answered after {took:?}");

    // The daemon still serves.
    assert_eq!(http().get(daemon.url("/echo/")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_cut_off() {
    example_images();
    let ns = Namespace::new("sendto");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--send-timeout", "1s"],
    );
    assert_eq!(http().get(daemon.url("/echo/")).send().await.unwrap().status(), 200);
    // About 38 MB of events, far more than socket buffers hold.
    let lines: u64 = 3_000_000;
    let mut s = std::net::TcpStream::connect(&daemon.addr).unwrap();
    s.write_all(format!("GET /echo/stream?n={lines}&ms=0 HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    // Not reading: the daemon's writes block, then time out.
    std::thread::sleep(Duration::from_secs(4));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let last = format!("data: {}\n\n", lines - 1);
    assert!(
        !String::from_utf8_lossy(&got).ends_with(&last),
        "the whole stream arrived: the stalled client was not cut off ({} bytes)",
        got.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_response_timeout_is_off_by_default_and_504_when_set() {
    example_images();
    let ns = Namespace::new("resp");
    let tmp = tempfile::tempdir().unwrap();
    let defs = test_defs(tmp.path(), &[]);
    {
        let daemon = Daemon::start(&tmp.path().join("data"), &defs, &ns.name);
        // Server-sent events, 1.5 s apart: all arrive.
        let resp = http().get(daemon.url("/echo/stream?n=3&ms=1500")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "data: 0\n\ndata: 1\n\ndata: 2\n\n");
    }
    let daemon = Daemon::start_with(
        &tmp.path().join("data2"),
        &defs,
        &ns.name,
        &["--upstream-response-timeout", "1s"],
    );
    let resp = http().get(daemon.url("/echo/slow?ms=3000")).send().await.unwrap();
    assert_eq!(resp.status(), 504);
    // A stream whose head comes at once is not cut by it.
    let resp = http().get(daemon.url("/echo/stream?n=2&ms=1500")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "data: 0\n\ndata: 1\n\n");
}
