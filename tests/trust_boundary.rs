//! The trust boundary (SPEC §4): forwarded headers from a peer outside
//! `trusted_proxies` are not believed; from a trusted peer the chain is
//! extended, every header line in order.

mod common;

use common::*;
use reqwest::header::{HeaderMap, HeaderValue};

/// Forged forwarding headers, two `X-Forwarded-For` lines among them.
fn forged() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
    h.append("x-forwarded-for", HeaderValue::from_static("7.7.7.7, 8.8.8.8"));
    h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    h.insert("x-forwarded-host", HeaderValue::from_static("bank.example"));
    h.insert("x-forwarded-prefix", HeaderValue::from_static("/admin"));
    h.insert("forwarded", HeaderValue::from_static("for=6.6.6.6;proto=https"));
    h.insert("x-real-ip", HeaderValue::from_static("6.6.6.6"));
    h
}

async fn echoed_headers(daemon: &Daemon) -> serde_json::Value {
    echoed_headers_at(&daemon.url("/echo/who")).await
}

/// The headers the echo container received for a forged request to `url`.
async fn echoed_headers_at(url: &str) -> serde_json::Value {
    let resp = http().get(url).headers(forged()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    body["headers"].clone()
}

/// The forged headers were dropped: the peer alone in `X-Forwarded-For`,
/// our own proto, host and prefix, no `Forwarded` or `X-Real-IP`.
fn assert_not_believed(h: &serde_json::Value, peer: &str, daemon: &Daemon) {
    assert_eq!(h["x-forwarded-for"], peer, "{h}");
    assert_eq!(h["x-forwarded-proto"], "http", "{h}");
    assert_eq!(h["x-forwarded-host"], daemon.addr.as_str(), "{h}");
    assert_eq!(h["x-forwarded-prefix"], "/echo", "{h}");
    assert!(h.get("forwarded").is_none(), "Forwarded passed through: {h}");
    assert!(h.get("x-real-ip").is_none(), "X-Real-IP passed through: {h}");
}

/// The trusted proxy's headers were believed: `peer` appended to its
/// chain, its proto, host, `Forwarded` and `X-Real-IP` kept.
fn assert_believed(h: &serde_json::Value, peer: &str) {
    assert_eq!(
        h["x-forwarded-for"],
        format!("6.6.6.6, 7.7.7.7, 8.8.8.8, {peer}").as_str(),
        "{h}"
    );
    assert_eq!(h["x-forwarded-proto"], "https", "{h}");
    assert_eq!(h["x-forwarded-host"], "bank.example", "{h}");
    assert_eq!(h["x-forwarded-prefix"], "/echo", "{h}");
    assert_eq!(h["forwarded"], "for=6.6.6.6;proto=https", "{h}");
    assert_eq!(h["x-real-ip"], "6.6.6.6", "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_cannot_forge_their_address() {
    example_images();
    let ns = Namespace::new("untrusted");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let h = echoed_headers(&daemon).await;
    assert_not_believed(&h, "127.0.0.1", &daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trusted_proxy_extends_the_chain() {
    example_images();
    let ns = Namespace::new("trusted");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--trusted-proxies", "10.0.0.0/8,127.0.0.0/8"],
    );
    let h = echoed_headers(&daemon).await;
    assert_believed(&h, "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trusted_proxies_from_the_config_file() {
    example_images();
    let ns = Namespace::new("trustfile");
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("substrate.toml");
    std::fs::write(&config, "trusted_proxies = [\"127.0.0.1\"]\n").unwrap();
    let daemon = Daemon::start_with(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--config", config.to_str().unwrap()],
    );
    let h = echoed_headers(&daemon).await;
    assert_eq!(h["x-forwarded-for"], "6.6.6.6, 7.7.7.7, 8.8.8.8, 127.0.0.1", "{h}");
}

/// An HTTP/1.0 client may send no `Host`. The container gets HTTP/1.1, which
/// requires one (RFC 9112 §3.2): its own address, as the readiness probe
/// sends; no `X-Forwarded-Host` is invented.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_without_host_reaches_the_container_with_one() {
    use std::io::{Read, Write};
    example_images();
    let ns = Namespace::new("nohost");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    // Started (and so ready) first, so the raw request goes to a warm instance.
    assert_eq!(http().get(daemon.url("/echo/")).send().await.unwrap().status(), 200);
    let addr = daemon.addr.clone();
    let raw = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /echo/old HTTP/1.0\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    let status_line = raw.lines().next().unwrap_or_default();
    assert!(
        status_line.starts_with("HTTP/1.") && status_line[8..].starts_with(" 200"),
        "{raw}"
    );
    let body = &raw[raw.find("\r\n\r\n").map(|i| i + 4).unwrap_or(0)..];
    let echoed: serde_json::Value = serde_json::from_str(body).unwrap();
    let h = &echoed["headers"];
    let host = h["host"].as_str().unwrap_or_default();
    assert!(host.ends_with(":8080") && !host.starts_with("127.0.0.1"), "{h}");
    assert!(h.get("x-forwarded-host").is_none(), "{h}");
    assert_eq!(echoed["path"], "/old", "{echoed}");
}

/// The same boundary for an HTTP/2 client (h2c, prior knowledge): its forged
/// headers are not believed either, and the host it asked for comes from
/// `:authority`, as HTTP/2 has no `Host` line.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http2_clients_cannot_forge_their_address_either() {
    example_images();
    let ns = Namespace::new("untrusted-h2");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let mut args: Vec<String> = vec!["-s".into(), "--http2-prior-knowledge".into()];
    for (name, value) in forged().iter() {
        args.push("-H".into());
        args.push(format!("{}: {}", name, value.to_str().unwrap()));
    }
    args.push(daemon.url("/echo/who"));
    let out = std::process::Command::new("curl").args(&args).output().unwrap();
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = &body["headers"];
    assert_not_believed(h, "127.0.0.1", &daemon);
    assert_eq!(h["host"], daemon.addr.as_str(), "{h}");
}

/// Skips an IPv6 test where the machine has no IPv6 loopback, saying why.
macro_rules! require_ipv6_loopback {
    () => {
        if let Some(why) = ipv6_loopback_missing() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// An IPv6 peer outside `trusted_proxies` is not believed either, even
/// with the IPv4 loopback trusted: `::1` is not `127.0.0.1`.
/// `X-Forwarded-For` is the peer alone, written without brackets.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ipv6_clients_cannot_forge_their_address() {
    require_ipv6_loopback!();
    example_images();
    let ns = Namespace::new("untrusted-v6");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_on(
        "::1".parse().unwrap(),
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--trusted-proxies", "127.0.0.0/8"],
    );
    assert!(daemon.addr.starts_with("[::1]:"), "{}", daemon.addr);
    let h = echoed_headers(&daemon).await;
    assert_not_believed(&h, "::1", &daemon);
}

/// A trusted IPv6 proxy (`::1/128`) is believed, and `::1` is appended to
/// its chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trusted_ipv6_proxy_extends_the_chain() {
    require_ipv6_loopback!();
    example_images();
    let ns = Namespace::new("trusted-v6");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_on(
        "::1".parse().unwrap(),
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--trusted-proxies", "10.0.0.0/8,::1/128"],
    );
    let h = echoed_headers(&daemon).await;
    assert_believed(&h, "::1");
}

/// An IPv4 client of an IPv6 socket arrives as an IPv4-mapped address
/// (`::ffff:127.0.0.1`). It is the IPv4 peer it stands for: written as
/// `127.0.0.1`, and trusted by a CIDR that names it either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ipv4_mapped_peers_are_their_ipv4_address() {
    require_ipv6_loopback!();
    example_images();
    let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let defs = test_defs(tmp.path(), &[]);
    // (trusted_proxies, the chain the container gets)
    let cases = [
        ("", "127.0.0.1"),
        ("::1/128", "127.0.0.1"),
        ("127.0.0.1", "6.6.6.6, 7.7.7.7, 8.8.8.8, 127.0.0.1"),
        ("::ffff:127.0.0.1", "6.6.6.6, 7.7.7.7, 8.8.8.8, 127.0.0.1"),
        ("::ffff:127.0.0.0/104", "6.6.6.6, 7.7.7.7, 8.8.8.8, 127.0.0.1"),
    ];
    for (round, (trusted, chain)) in cases.into_iter().enumerate() {
        let ns = Namespace::new(&format!("mapped{round}"));
        let data = tmp.path().join(format!("data{round}"));
        let flags: &[&str] = if trusted.is_empty() {
            &[]
        } else {
            &["--trusted-proxies", trusted]
        };
        let daemon = Daemon::start_on(mapped, &data, &defs, &ns.name, flags);
        // An IPv4 client, to the dual-stack socket.
        let port = daemon.addr.rsplit(':').next().unwrap();
        let h = echoed_headers_at(&format!("http://127.0.0.1:{port}/echo/who")).await;
        assert_eq!(h["x-forwarded-for"], chain, "trusted_proxies {trusted:?}: {h}");
        let believed = chain.starts_with("6.6.6.6");
        assert_eq!(
            h.get("x-real-ip").is_some(),
            believed,
            "trusted_proxies {trusted:?}: {h}"
        );
    }
}
