//! HTTPS on a name (SPEC §11): a local CA made once under `<data>/tls/`
//! (key 0600) issues the certificate for `substrate.home.arpa`; a client
//! that trusts only that CA gets HTTP/2 by ALPN, the container sees
//! `X-Forwarded-Proto: https` and an `https://` origin, and WebSockets work
//! over `wss://`. Operator certificate files are served instead when given,
//! and reloaded on SIGHUP.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `curl` of `https://NAME:PORT/PATH` resolving NAME to 127.0.0.1 and
/// trusting only `ca`: (HTTP version, status, body).
fn curl(name: &str, port: u16, path: &str, ca: &Path) -> (String, String, String) {
    let out = Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .args(["-w", "\n%{http_version} %{http_code}"])
        .arg(format!("https://{name}:{port}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (version, status) = tail.split_once(' ').unwrap_or(("", ""));
    (version.to_owned(), status.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_on_substrate_home_arpa_with_a_local_ca() {
    example_images();
    let ns = Namespace::new("https");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let daemon = Daemon::start_with(
        &data,
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--tls-listen", &format!("127.0.0.1:{port}")],
    );
    let ca = data.join("tls/ca.crt");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("tls/ca.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the CA key must be private");

    let (version, status, body) = curl("substrate.home.arpa", port, "/echo/tls", &ca);
    assert_eq!((version.as_str(), status.as_str()), ("2", "200"), "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["headers"]["x-forwarded-proto"], "https");
    let origin = format!("https://substrate.home.arpa:{port}");
    assert_eq!(echoed["env"]["ORIGIN"], origin.as_str(), "{echoed}");
    assert_eq!(echoed["env"]["SUBSTRATE_ORIGIN"], origin.as_str(), "{echoed}");
    let (_, status, _) = curl("localhost", port, "/echo/", &ca);
    assert_eq!(status, "200");
    // A name the certificate does not cover fails verification.
    let (_, status, _) = curl("elsewhere.example", port, "/echo/", &ca);
    assert_eq!(status, "000", "a certificate for a foreign name was accepted");
    // Plain HTTP keeps working beside it, and says so.
    let plain = daemon.fetch_json("/echo/plain").await;
    assert_eq!(plain["headers"]["x-forwarded-proto"], "http");

    // wss:// through the proxy, trusting the CA only.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_file_iter(&ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("substrate.home.arpa").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let url = format!("wss://substrate.home.arpa:{port}/echo/ws");
    let (mut ws, resp) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("over tls")).await.unwrap();
    let back = ws.next().await.unwrap().unwrap();
    assert_eq!(back.into_text().unwrap().as_str(), "over tls");
    drop(daemon);

    // The CA is made once: a restart keeps it.
    let before = std::fs::read(&ca).unwrap();
    let _again = Daemon::start_with(
        &data,
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--tls-listen", &format!("127.0.0.1:{port}")],
    );
    assert_eq!(std::fs::read(&ca).unwrap(), before, "the CA changed across a restart");
    let (_, status, _) = curl("substrate.home.arpa", port, "/echo/", &ca);
    assert_eq!(status, "200");
}

/// A self-signed certificate for `name`, written as PEM files.
fn write_cert(dir: &Path, name: &str) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_certificates_are_served_and_reloaded_on_sighup() {
    example_images();
    let ns = Namespace::new("opcert");
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    write_cert(&certs, "first.test");
    let port = free_port();
    let mut daemon = Daemon::start_with(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &[
            "--tls-listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            certs.join("cert.pem").to_str().unwrap(),
            "--tls-key",
            certs.join("key.pem").to_str().unwrap(),
        ],
    );
    let (_, status, _) = curl("first.test", port, "/echo/", &certs.join("first.test.pem"));
    assert_eq!(status, "200");
    assert!(
        !tmp.path().join("data/tls/ca.key").exists(),
        "a local CA was made though files were given"
    );

    write_cert(&certs, "second.test");
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGHUP) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, status, _) = curl("second.test", port, "/echo/", &certs.join("second.test.pem"));
        if status == "200" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was not served after SIGHUP"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = &mut daemon;
}
