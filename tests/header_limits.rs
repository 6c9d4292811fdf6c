//! One header-size limit for HTTP/1.1 and HTTP/2 (SPEC §4): a 30 KB cookie
//! passes over both; over HTTP/2 an oversized header block fails its own
//! stream with 431, never the connection and its other streams.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

async fn h2_connection(addr: &str) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .max_header_list_size(1 << 20)
        .handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

fn get(addr: &str, path: &str, cookie_len: usize) -> http::Request<Empty<Bytes>> {
    http::Request::get(format!("http://{addr}{path}"))
        .header("cookie", format!("c={}", "a".repeat(cookie_len)))
        .body(Empty::new())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http1_and_http2_share_one_header_limit() {
    example_images();
    let ns = Namespace::new("hdr");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);

    // 30 KB over HTTP/1.1.
    let resp = http()
        .get(daemon.url("/echo/h1"))
        .header("cookie", format!("c={}", "a".repeat(30_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // 30 KB over HTTP/2.
    let mut h2 = h2_connection(&daemon.addr).await;
    let resp = h2.send_request(get(&daemon.addr, "/echo/h2", 30_000)).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();

    // 70 KB over HTTP/2: 431 on that stream; the connection lives on.
    let resp = h2.send_request(get(&daemon.addr, "/echo/big", 70_000)).await;
    match resp {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => panic!("the oversized stream failed without a 431: {e}"),
    }
    let resp = h2.send_request(get(&daemon.addr, "/echo/after", 10)).await.unwrap();
    assert_eq!(resp.status(), 200, "a later stream on the same connection failed");

    // The limit is configurable and holds for both protocols.
    let small = Daemon::start_with(
        &tmp.path().join("data2"),
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--max-header-kib", "16"],
    );
    let resp = http()
        .get(small.url("/echo/h1"))
        .header("cookie", format!("c={}", "a".repeat(30_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    let mut h2 = h2_connection(&small.addr).await;
    let resp = h2.send_request(get(&small.addr, "/echo/h2", 30_000)).await.unwrap();
    assert_eq!(resp.status(), 431);
}
